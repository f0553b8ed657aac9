#include "core/ip.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace gatehouse::core {

std::optional<IpAddr> parse_ip(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddr ip;
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, ip.bytes.data()) != 1) return std::nullopt;
    return ip;
  }
  if (inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) return std::nullopt;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(ip.bytes.data(), kMapped, 12) == 0) {
    IpAddr v4;
    std::memcpy(v4.bytes.data(), ip.bytes.data() + 12, 4);
    return v4;
  }
  ip.v6 = true;
  return ip;
}

std::optional<Cidr> parse_cidr(std::string_view text, std::string& error) {
  std::size_t slash = text.find('/');
  std::optional<IpAddr> ip = parse_ip(text.substr(0, slash));
  if (!ip) {
    error = "'" + std::string(text) + "' is not an IP address or CIDR block";
    return std::nullopt;
  }
  const int max = ip->v6 ? 128 : 32;
  int prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || prefix < 0 ||
        prefix > max) {
      error = "bad prefix length in '" + std::string(text) + "'";
      return std::nullopt;
    }
  }
  Cidr block{*ip, prefix};
  IpAddr masked = *ip;
  for (int bit = prefix; bit < max; ++bit) masked.bytes[bit / 8] &= ~(0x80 >> (bit % 8));
  if (!(masked == *ip)) {
    error = "'" + std::string(text) + "' has host bits set (did you mean " + to_string(masked) +
            "/" + std::to_string(prefix) + "?)";
    return std::nullopt;
  }
  return block;
}

bool contains(const Cidr& block, const IpAddr& ip) {
  if (block.base.v6 != ip.v6) return false;
  int full = block.prefix / 8;
  if (std::memcmp(block.base.bytes.data(), ip.bytes.data(), static_cast<std::size_t>(full)) != 0)
    return false;
  int rest = block.prefix % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (block.base.bytes[full] & mask) == (ip.bytes[full] & mask);
}

bool contains_any(const std::vector<Cidr>& blocks, const IpAddr& ip) {
  for (const Cidr& b : blocks)
    if (contains(b, ip)) return true;
  return false;
}

std::string to_string(const IpAddr& ip) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(ip.v6 ? AF_INET6 : AF_INET, ip.bytes.data(), buf, sizeof buf);
  return buf;
}

}  // namespace gatehouse::core
