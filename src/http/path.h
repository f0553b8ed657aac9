// Request path normalization (RFC 3986 6.2.2): routes match, and upstreams
// receive, the normalized path, so "/public/../admin" cannot reach a route
// that "/admin" would not.
#pragma once

#include <string>
#include <string_view>

namespace gatehouse::http {

// Decodes percent-encoded unreserved characters, upper-cases the hex digits of
// the remaining escapes, and removes "." and ".." segments (RFC 3986 5.2.4).
// `raw` must start with '/' and hold valid percent-encoding. Writes into `out`
// (reused, so no allocation once it has grown).
void normalize_path(std::string_view raw, std::string& out);

// True when `path` has a "." or ".." segment.
bool has_dot_segment(std::string_view path);

}  // namespace gatehouse::http
