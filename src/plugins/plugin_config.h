// What every plugin uses to read its YAML config and the request head.
// Plugins never include one another; they all include this.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"
#include "plugins/registry.h"

namespace gatehouse::plugins {

// Reports every key of `map` not in `allowed` ("unknown key 'x' in cors");
// false when there is any.
bool only_keys(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
               std::string_view plugin, const Report& report);

// A non-empty scalar; otherwise reports "LABEL must be a non-empty string".
std::optional<std::string> read_string(const YAML::Node& node, std::string_view label,
                                       const Report& report);

// `true` / `false`; otherwise reports "LABEL must be true or false".
std::optional<bool> read_bool(const YAML::Node& node, std::string_view label, const Report& report);

// A list of non-empty scalars; otherwise reports at the node or at each bad item.
std::optional<std::vector<std::string>> read_strings(const YAML::Node& node, std::string_view label,
                                                     const Report& report);

// The value of the first field named `name` (case-insensitive); `count` says
// how many fields of that name there are.
std::string_view find_header(const http::RequestHead& head, std::string_view name,
                             int* count = nullptr);

}  // namespace gatehouse::plugins
