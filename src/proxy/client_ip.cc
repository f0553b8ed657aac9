#include "proxy/client_ip.h"

#include <string_view>

namespace gatehouse::proxy {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

core::IpAddr resolve_client_ip(const core::IpAddr& peer, const http::RequestHead& head,
                               const std::vector<core::Cidr>& trusted) {
  if (trusted.empty() || !core::contains_any(trusted, peer)) return peer;
  core::IpAddr client = peer;
  // Fields are walked last to first, entries right to left: the order in
  // which the hops closest to us appended them.
  for (std::size_t i = head.header_count; i-- > 0;) {
    const http::Header& h = head.headers[i];
    if (!http::iequals(h.name, "x-forwarded-for")) continue;
    std::string_view list = h.value;
    while (!list.empty()) {
      std::size_t comma = list.rfind(',');
      std::string_view entry =
          trim(comma == std::string_view::npos ? list : list.substr(comma + 1));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(0, comma);
      std::optional<core::IpAddr> ip = core::parse_ip(entry);
      if (!ip) return client;
      client = *ip;
      if (!core::contains_any(trusted, client)) return client;
    }
  }
  return client;
}

}  // namespace gatehouse::proxy
