#include "plugins/plugin_config.h"

#include <algorithm>

namespace gatehouse::plugins {

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
  bool ok = true;
  for (const YAML::Node& item : node) {
    if (!item.IsScalar() || item.Scalar().empty()) {
      report(item, std::string(label) + " must hold non-empty strings");
      ok = false;
      continue;
    }
    out.push_back(item.Scalar());
  }
  if (!ok) return std::nullopt;
  return out;
}

std::string_view find_header(const http::RequestHead& head, std::string_view name, int* count) {
  std::string_view found;
  int n = 0;
  for (std::size_t i = 0; i < head.header_count; ++i) {
    const http::Header& h = head.headers[i];
    if (h.name.size() == name.size() && http::iequals(h.name, name)) {
      if (n++ == 0) found = h.value;
    }
  }
  if (count != nullptr) *count = n;
  return found;
}

}  // namespace gatehouse::plugins
