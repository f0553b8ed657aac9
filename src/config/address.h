// Listen and target addresses: "host:port", with IPv6 literals in brackets
// ("[::1]:8080") so that the port is never ambiguous.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace gatehouse::config {

// The address (without a mark), or nullopt with `error` set to a message that
// says what is wrong ("port must be a number from 1 to 65535").
std::optional<Address> parse_address(std::string_view text, std::string& error);

// RFC 1123 host name: dot-separated labels of letters, digits and inner
// hyphens, each 1-63 characters, 253 in all. Also true for dotted IPv4 text,
// which callers that care check separately.
bool is_host_name(std::string_view name);

}  // namespace gatehouse::config
