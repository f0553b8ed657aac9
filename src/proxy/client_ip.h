// The client's real address behind trusted proxies: X-Forwarded-For is
// believed only hop by hop from the right, and only while the hop that
// appended it is one of `trusted_proxies` (docs/contracts.md).
#pragma once

#include <optional>
#include <vector>

#include "core/ip.h"
#include "http/http1_parser.h"

namespace gatehouse::proxy {

// The client address for this request: the peer unless the peer is trusted,
// then the right-most X-Forwarded-For entry that is not a trusted proxy (or
// the left-most entry when every one is). An unparsable entry stops the walk
// at the last address known good.
core::IpAddr resolve_client_ip(const core::IpAddr& peer, const http::RequestHead& head,
                               const std::vector<core::Cidr>& trusted);

}  // namespace gatehouse::proxy
