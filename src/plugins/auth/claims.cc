#include "plugins/auth/claims.h"

#include <algorithm>

#include "http/http1_parser.h"
#include "plugins/auth/authenticator.h"

namespace gatehouse::plugins::auth {

bool read_claims_to_headers(const YAML::Node& node, const Report& report, ClaimMapping& out) {
  if (!node.IsMap()) {
    report(node, "'claims_to_headers' must be a map of header name to claim name");
    return false;
  }
  bool ok = true;
  for (const auto& kv : node) {
    const std::string name = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    if (!http::is_token(name)) {
      report(kv.first, "invalid header name '" + name + "'");
      ok = false;
      continue;
    }
    for (std::string_view reserved :
         {"host", "content-length", "transfer-encoding", "connection", "x-request-id",
          "authorization", "x-consumer", "x-consumer-tier", "x-auth-verified",
          "x-gateway-signature", "x-anonymous-consumer"}) {
      if (http::iequals(name, reserved)) {
        report(kv.first, "claims_to_headers cannot set '" + name + "'");
        ok = false;
      }
    }
    if (!kv.second.IsScalar() || kv.second.Scalar().empty()) {
      report(kv.second, "the claim for '" + name + "' must be a claim name");
      ok = false;
      continue;
    }
    out.to_headers.emplace_back(name, kv.second.Scalar());
  }
  return ok;
}

std::optional<std::string> claim_text(const nlohmann::json& claims, const std::string& name) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  std::string text;
  if (it->is_string()) {
    text = it->get<std::string>();
  } else if (it->is_number() || it->is_boolean()) {
    text = it->dump();
  } else if (it->is_array()) {
    for (const auto& v : *it) {
      if (!v.is_string()) return std::nullopt;
      if (!text.empty()) text.push_back(',');
      text += v.get<std::string>();
    }
  } else {
    return std::nullopt;
  }
  if (!http::is_field_value(text)) return std::nullopt;
  return text;
}

std::vector<std::string> token_scopes(const nlohmann::json& claims) {
  std::vector<std::string> out;
  auto split = [&](const std::string& s) {
    std::size_t i = 0;
    while (i < s.size()) {
      std::size_t j = s.find(' ', i);
      if (j == std::string::npos) j = s.size();
      if (j > i) out.push_back(s.substr(i, j - i));
      i = j + 1;
    }
  };
  for (const char* name : {"scope", "scp"}) {
    auto it = claims.find(name);
    if (it == claims.end()) continue;
    if (it->is_string()) split(it->get<std::string>());
    if (it->is_array()) {
      for (const auto& v : *it)
        if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

bool identity_from_claims(const nlohmann::json& claims, const ClaimMapping& mapping,
                          std::initializer_list<const char*> subject_claims, TokenIdentity& out) {
  out.claims = std::make_shared<const nlohmann::json>(claims);
  bool user_mapped = false;
  for (const auto& [header, claim] : mapping.to_headers) {
    std::optional<std::string> value = claim_text(claims, claim);
    auto it = claims.find(claim);
    if (!value) {
      if (it != claims.end()) return false;  // present but unusable: refuse, never inject
      continue;
    }
    if (http::iequals(header, "x-user-id")) {
      out.user_id = std::move(*value);
      user_mapped = true;
    } else if (http::iequals(header, "x-user-role")) {
      out.role = std::move(*value);
    } else {
      out.headers.emplace_back(header, std::move(*value));
    }
  }
  if (!user_mapped) {
    for (const char* name : subject_claims) {
      auto it = claims.find(name);
      if (it == claims.end()) continue;
      std::optional<std::string> value = claim_text(claims, name);
      if (!value) return false;
      out.user_id = std::move(*value);
      break;
    }
  }
  if (!mapping.roles_claim.empty()) {
    auto it = claims.find(mapping.roles_claim);
    if (it != claims.end()) {
      if (it->is_string()) {
        const std::string s = it->get<std::string>();
        std::size_t i = 0;
        while (i < s.size()) {
          std::size_t j = s.find(' ', i);
          if (j == std::string::npos) j = s.size();
          if (j > i) out.roles.push_back(s.substr(i, j - i));
          i = j + 1;
        }
      } else if (it->is_array()) {
        for (const auto& v : *it)
          if (v.is_string()) out.roles.push_back(v.get<std::string>());
      }
    }
  }
  if (!mapping.required_scopes.empty()) {
    std::vector<std::string> have = token_scopes(claims);
    for (const std::string& need : mapping.required_scopes) {
      if (std::find(have.begin(), have.end(), need) == have.end()) out.scope_ok = false;
    }
  }
  return true;
}

void apply(const TokenIdentity& from, proxy::Identity& to) {
  to.verified = true;
  to.consumer = from.consumer;
  to.user_id = from.user_id;
  to.role = from.role;
  to.roles = from.roles;
  to.headers = from.headers;
  to.claims = from.claims;
}

void refuse_scope(proxy::LocalReply& reply, const std::vector<std::string>& required) {
  std::string scopes;
  for (const std::string& s : required) {
    if (!scopes.empty()) scopes.push_back(' ');
    scopes += s;
  }
  refuse(reply, 403, "insufficient scope",
         "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", scope=\"" + scopes + "\"");
}

bool accept_token(const proxy::RequestContext& ctx, proxy::LocalReply& reply,
                  const TokenIdentity& identity, const ClaimMapping& mapping,
                  std::string_view plugin) {
  if (!identity.scope_ok) {
    refuse_scope(reply, mapping.required_scopes);
    ctx.state->log_detail.assign(plugin).append(": missing a required scope");
    return false;
  }
  apply(identity, ctx.state->identity);
  return true;
}

bool refuse_invalid_token(const proxy::RequestContext& ctx, proxy::LocalReply& reply,
                          std::string_view plugin, std::string_view why) {
  refuse(reply, 401, "invalid token", "Bearer realm=\"gatehouse\", error=\"invalid_token\"");
  ctx.state->log_detail.assign(plugin).append(": ").append(why);
  return false;
}

void strip_claim_headers(const ClaimMapping& mapping, bool hide, proxy::HeaderEdits& edits) {
  for (const auto& [header, claim] : mapping.to_headers) edits.remove.push_back(header);
  if (hide) edits.remove.emplace_back("Authorization");
}

}  // namespace gatehouse::plugins::auth
