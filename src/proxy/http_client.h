// An HTTP/1.1 call from a worker, for plugins that must ask another service
// on the request path (token introspection). Runs on the worker's thread as
// a coroutine; one connection per call (Connection: close), bounded in time
// and size. Not the proxy path.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "http/client.h"
#include "proxy/task.h"

namespace gatehouse::proxy {

// Connects to `endpoint`, sends `request` and reads the whole response
// before `timeout_ms`. False with `error` set on any failure.
Task<bool> http_call(boost::asio::ip::tcp::endpoint endpoint, std::string request,
                     int64_t timeout_ms, http::ClientResponse& out, std::string& error);

}  // namespace gatehouse::proxy
