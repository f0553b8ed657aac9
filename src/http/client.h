// The small HTTP/1.1 client side the gateway needs for its own calls (JWKS
// and discovery documents, token introspection): URLs, request text and the
// parse of a complete, bounded response read until the server closes.
// Not for proxying: that path streams and lives in proxy/session*.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gatehouse::http {

struct HttpUrl {
  std::string host;  // as written, without brackets for IPv6
  uint16_t port = 80;
  std::string authority;  // for the Host header: "host:port" as written
  std::string target;     // "/path?query", "/" when empty
};

// "http://host[:port][/path][?query]"; https and userinfo are refused (the
// caller's error says so).
std::optional<HttpUrl> parse_http_url(std::string_view url, std::string& error);

// "METHOD target HTTP/1.1" with Host, Connection: close, the given extra
// header lines ("Name: value\r\n"...) and the body with its Content-Length.
std::string client_request(std::string_view method, const HttpUrl& url,
                           std::string_view extra_headers, std::string_view body);

struct ClientResponse {
  int status = 0;
  std::string body;
};

// Parses a whole response (head + body framed by Content-Length, chunked, or
// the end of the bytes). False with `error` set when it is not valid.
bool parse_client_response(std::string_view raw, ClientResponse& out, std::string& error);

inline constexpr std::size_t kMaxClientResponseBytes = 1 << 20;

}  // namespace gatehouse::http
