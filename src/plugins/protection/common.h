// Helpers the protection plugins share: reading their config and the request
// head. Local to this directory (plugins never include one another).
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"
#include "plugins/registry.h"

namespace gatehouse::plugins::protection {

// Reports every key of `map` not in `allowed` ("unknown key 'x' in cors");
// false when there is any.
bool only_keys(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
               std::string_view plugin, const Report& report);

// `true` / `false`; otherwise reports "LABEL must be true or false".
std::optional<bool> read_bool(const YAML::Node& node, std::string_view label, const Report& report);

// A list of non-empty scalars; otherwise reports at the node or the item.
std::optional<std::vector<std::string>> read_strings(const YAML::Node& node, std::string_view label,
                                                     const Report& report);

// The value of the first field named `name` (case-insensitive); `count` says
// how many fields of that name there are.
std::string_view find_header(const http::RequestHead& head, std::string_view name,
                             int* count = nullptr);

// Without leading and trailing spaces and tabs (RFC 9110 OWS).
std::string_view trim_ows(std::string_view s);

std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);

}  // namespace gatehouse::plugins::protection
