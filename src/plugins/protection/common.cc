#include "plugins/protection/common.h"

#include <algorithm>

namespace gatehouse::plugins::protection {

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

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

}  // namespace gatehouse::plugins::protection
