// Helpers only the protection plugins use (the shared config readers are in
// plugins/plugin_config.h).
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"
#include "plugins/plugin_config.h"
#include "plugins/registry.h"

namespace gatehouse::plugins::protection {

// Without leading and trailing spaces and tabs (RFC 9110 OWS).
std::string_view trim_ows(std::string_view s);

std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);

}  // namespace gatehouse::plugins::protection
