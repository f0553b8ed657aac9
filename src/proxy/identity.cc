#include "proxy/identity.h"

#include "auth/consumers.h"
#include "auth/crypto.h"
#include "http/http1_parser.h"

namespace gatehouse::proxy {
std::string_view identity_user_id(const Identity& id) {
  if (!id.verified) return {};
  if (!id.user_id.empty()) return id.user_id;
  return id.consumer != nullptr ? std::string_view(id.consumer->name) : std::string_view();
}

void append_identity_headers(std::string& out, const Identity& id) {
  if (id.consumer != nullptr) {
    http::append_field(out, "X-Consumer", id.consumer->name);
    if (!id.consumer->plan.empty()) http::append_field(out, "X-Consumer-Tier", id.consumer->plan);
  }
  if (id.anonymous) {
    http::append_field(out, "X-Anonymous-Consumer", "true");
    return;
  }
  if (!id.verified) return;
  if (std::string_view user = identity_user_id(id); !user.empty())
    http::append_field(out, "X-User-ID", user);
  if (!id.role.empty()) {
    http::append_field(out, "X-User-Role", id.role);
  } else if (id.consumer != nullptr && !id.consumer->groups_joined.empty()) {
    http::append_field(out, "X-User-Role", id.consumer->groups_joined);
  }
  http::append_field(out, "X-Auth-Verified", "true");
  for (const auto& [name, value] : id.headers) http::append_field(out, name, value);
}

std::string signature_base(int64_t t, std::string_view method, std::string_view target,
                           std::string_view request_id, std::string_view user_id) {
  std::string base = std::to_string(t);
  base.push_back('\n');
  base.append(method).push_back('\n');
  base.append(target).push_back('\n');
  base.append(request_id).push_back('\n');
  base.append(user_id);
  return base;
}

void append_signature(std::string& out, std::string_view secret, int64_t t, std::string_view method,
                      std::string_view target, std::string_view request_id,
                      std::string_view user_id) {
  std::string base = signature_base(t, method, target, request_id, user_id);
  out.append("X-Gateway-Signature: t=").append(std::to_string(t)).append(",v1=");
  out.append(auth::hmac_sha256_hex(secret, base)).append("\r\n");
}

void append_query_without(std::string& out, std::string_view query, std::string_view name) {
  bool first = true;
  while (true) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (pair.substr(0, pair.find('=')) != name) {
      if (!first) out.push_back('&');
      out.append(pair);
      first = false;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  // Every parameter was the credential: no "?" with nothing after it.
  if (first && !out.empty() && out.back() == '?') out.pop_back();
}

}  // namespace gatehouse::proxy
