// A blocking HTTP/1.1 call with an overall deadline, for the auth fetcher
// thread (JWKS and discovery documents). Never used on a worker thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/client.h"

namespace gatehouse::auth {

// Sends one request and reads the whole response (at most
// http::kMaxClientResponseBytes) before `timeout_ms` runs out. False with
// `error` set on any failure (resolve, connect, timeout, malformed answer).
bool http_fetch(const http::HttpUrl& url, std::string_view method, std::string_view extra_headers,
                std::string_view body, int64_t timeout_ms, http::ClientResponse& out,
                std::string& error);

}  // namespace gatehouse::auth
