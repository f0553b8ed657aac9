#include "config/address.h"

#include <arpa/inet.h>

#include <charconv>

namespace gatehouse::config {
namespace {

constexpr std::size_t kMaxHostName = 253;
constexpr std::size_t kMaxLabel = 63;

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_label(std::string_view label) {
  if (label.empty() || label.size() > kMaxLabel) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  for (char c : label) {
    if (!is_alnum(c) && c != '-') return false;
  }
  return true;
}

bool looks_like_ipv4(std::string_view host) {
  return host.find_first_not_of("0123456789.") == std::string_view::npos;
}

bool is_ip_literal(int family, std::string_view host) {
  unsigned char buffer[16];
  return inet_pton(family, std::string(host).c_str(), buffer) == 1;
}

std::optional<uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || value < 1 || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

// Splits "[v6]:port" into host and port text.
bool split_bracketed(std::string_view text, std::string_view& host, std::string_view& port,
                     std::string& error) {
  const std::size_t close = text.find(']');
  if (close == std::string_view::npos) {
    error = "missing ']' after IPv6 address";
    return false;
  }
  host = text.substr(1, close - 1);
  if (close + 1 >= text.size() || text[close + 1] != ':') {
    error = "missing port: expected [IPv6]:port";
    return false;
  }
  port = text.substr(close + 2);
  if (!is_ip_literal(AF_INET6, host)) {
    error = "invalid IPv6 address '" + std::string(host) + "'";
    return false;
  }
  return true;
}

// Splits "host:port" into host and port text.
bool split_plain(std::string_view text, std::string_view& host, std::string_view& port,
                 std::string& error) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    error = "missing port: expected host:port";
    return false;
  }
  host = text.substr(0, colon);
  port = text.substr(colon + 1);
  if (host.find(':') != std::string_view::npos) {
    error = "IPv6 addresses need brackets, as in [::1]:8080";
    return false;
  }
  if (host.empty()) {
    error = "missing host: expected host:port";
    return false;
  }
  if (looks_like_ipv4(host) ? !is_ip_literal(AF_INET, host) : !is_host_name(host)) {
    error = "invalid host '" + std::string(host) + "'";
    return false;
  }
  return true;
}

}  // namespace

bool is_host_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostName) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = name.find('.', start);
    if (!is_label(name.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::optional<Address> parse_address(std::string_view text, std::string& error) {
  if (text.empty()) {
    error = "address is empty";
    return std::nullopt;
  }
  std::string_view host;
  std::string_view port_text;
  const bool split = text.front() == '[' ? split_bracketed(text, host, port_text, error)
                                         : split_plain(text, host, port_text, error);
  if (!split) return std::nullopt;
  const std::optional<uint16_t> port = parse_port(port_text);
  if (!port) {
    error = "port must be a number from 1 to 65535";
    return std::nullopt;
  }
  return Address{std::string(host), *port, {}};
}

std::string Address::to_string() const {
  const std::string port_text = std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port_text;
  return host + ":" + port_text;
}

}  // namespace gatehouse::config
