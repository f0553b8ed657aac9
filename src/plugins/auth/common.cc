#include <algorithm>

#include "plugins/auth/authenticator.h"

namespace gatehouse::plugins::auth {

std::optional<std::string_view> authorization(const http::RequestHead& head,
                                              std::string_view scheme, bool& ambiguous) {
  int count = 0;
  std::string_view value = find_header(head, "authorization", &count);
  ambiguous = count > 1;
  if (count != 1) return std::nullopt;
  if (value.size() <= scheme.size() || !http::iequals(value.substr(0, scheme.size()), scheme) ||
      value[scheme.size()] != ' ') {
    return std::nullopt;
  }
  value.remove_prefix(scheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  return value;
}

bool looks_like_jws(std::string_view token) {
  int dots = 0;
  for (char c : token) {
    if (c == '.') {
      ++dots;
    } else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_')) {
      return false;
    }
  }
  return dots == 2;
}

void refuse(proxy::LocalReply& reply, int status, std::string_view detail,
            std::string_view challenge) {
  reply.status = status;
  reply.detail.assign(detail);
  if (!challenge.empty()) reply.headers.emplace_back("WWW-Authenticate", std::string(challenge));
}

bool read_anonymous(const YAML::Node& node, const PluginEnv& env, const Report& report,
                    const gatehouse::auth::Consumer*& out) {
  if (!node.IsScalar() || node.Scalar().empty()) {
    report(node, "'anonymous' must name a consumer");
    return false;
  }
  const std::string& name = node.Scalar();
  const auto& consumers = env.config.consumers;
  bool known = std::any_of(consumers.begin(), consumers.end(),
                           [&](const config::Consumer& c) { return c.name == name; });
  if (!known) {
    report(node, "'anonymous' names unknown consumer '" + name + "'");
    return false;
  }
  if (env.consumers != nullptr) out = env.consumers->by_name(name);
  return true;
}

void identify_consumer(proxy::Identity& identity, const gatehouse::auth::Consumer* consumer) {
  identity.consumer = consumer;
  identity.verified = true;
}

}  // namespace gatehouse::plugins::auth
