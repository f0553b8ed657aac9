// IP addresses and CIDR blocks, IPv4 and IPv6, for the client-IP rules
// (trusted_proxies, ip_restriction). IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) are treated as the IPv4 address they carry.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::core {

struct IpAddr {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // v4: the first 4 bytes
  bool operator==(const IpAddr&) const = default;
};

struct Cidr {
  IpAddr base;
  int prefix = 0;  // 0..32 or 0..128
};

// "10.1.2.3", "::1", "[::1]", "::ffff:10.0.0.1" (-> IPv4). nullopt otherwise.
std::optional<IpAddr> parse_ip(std::string_view text);
// "10.0.0.0/8", "2001:db8::/32", or a single address (a /32 or /128).
// Host bits set below the prefix are refused (a typo more often than not).
std::optional<Cidr> parse_cidr(std::string_view text, std::string& error);
bool contains(const Cidr& block, const IpAddr& ip);
bool contains_any(const std::vector<Cidr>& blocks, const IpAddr& ip);
std::string to_string(const IpAddr& ip);

}  // namespace gatehouse::core
