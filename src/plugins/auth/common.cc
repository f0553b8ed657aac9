#include <algorithm>

#include "plugins/auth/authenticator.h"

namespace gatehouse::plugins::auth {

std::string_view find_header(const http::RequestHead& head, std::string_view name, int* count) {
  std::string_view found;
  int n = 0;
  for (std::size_t i = 0; i < head.header_count; ++i) {
    if (head.headers[i].name.size() == name.size() && http::iequals(head.headers[i].name, name)) {
      if (n++ == 0) found = head.headers[i].value;
    }
  }
  if (count != nullptr) *count = n;
  return found;
}

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

std::optional<std::string> read_string(const YAML::Node& node, std::string_view label,
                                       const Report& report) {
  if (node.IsScalar() && !node.Scalar().empty()) return node.Scalar();
  report(node, std::string(label) + " must be a non-empty string");
  return std::nullopt;
}

std::optional<bool> read_bool(const YAML::Node& node, std::string_view label,
                              const Report& report) {
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    if (s == "true") return true;
    if (s == "false") return false;
  }
  report(node, std::string(label) + " must be true or false");
  return std::nullopt;
}

std::optional<std::vector<std::string>> read_strings(const YAML::Node& node, std::string_view label,
                                                     const Report& report) {
  if (!node.IsSequence()) {
    report(node, std::string(label) + " must be a list of strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const YAML::Node& item : node) {
    if (!item.IsScalar() || item.Scalar().empty()) {
      report(item, std::string(label) + " must hold non-empty strings");
      return std::nullopt;
    }
    out.push_back(item.Scalar());
  }
  return out;
}

bool only_keys(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
               std::string_view plugin, const Report& report) {
  bool ok = true;
  for (const auto& kv : map) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      report(kv.first, "unknown key '" + key + "' in " + std::string(plugin));
      ok = false;
    }
  }
  return ok;
}

}  // namespace gatehouse::plugins::auth
