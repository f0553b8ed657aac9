// A worker's connection to Redis, for limits shared by every gateway
// instance. hiredis (Debian's libhiredis) does the RESP protocol; Asio
// drives the socket on the worker's thread (no lock). A Redis host given as
// a name is looked up at startup and then on a short-lived thread of its own
// before each attempt to connect, never on the worker's thread.
//
// One connection per worker, opened at first use and kept open, pipelined:
// every caller writes its command at once and the replies come back in
// order. A call never waits longer than the configured timeout; after a
// failure the connection is dropped and opened again on a later call (at
// most one attempt per second), so a Redis that comes back is used again
// without anyone doing anything.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/task.h"

namespace gatehouse::ratelimit {

// How a host name becomes an address: getaddrinfo when empty (tests put a
// slow or failing one here). Called on a thread of its own, never on the
// worker's (see RedisClientState::endpoint).
using RedisResolver = std::function<std::optional<boost::asio::ip::tcp::endpoint>(
    const std::string& host, uint16_t port, std::string& error)>;

struct RedisConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  int db = 0;
  std::string password;  // empty: no AUTH
  int64_t timeout_ms = 50;
  RedisResolver resolver;
};

// "redis://[:password@]host[:port][/db]"; nullopt with `error` set otherwise.
std::optional<RedisConfig> parse_redis_url(std::string_view url, std::string& error);

// A Lua script and its SHA-1 (hex), for EVALSHA.
struct RedisScript {
  explicit RedisScript(std::string source);
  std::string source;
  std::string sha1;
};

struct RedisReply {
  bool ok = false;                // false: timeout, connection failure or a Redis error
  std::string error;              // why, when !ok (for logs; never sent to clients)
  std::vector<int64_t> integers;  // the script's reply: an array of integers
};

class RedisClient {
 public:
  RedisClient(boost::asio::io_context& io, RedisConfig config);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // EVALSHA script keys... args... (EVAL when Redis answers NOSCRIPT, after
  // which EVALSHA works again). Completes within the timeout, always.
  proxy::Task<RedisReply> eval(const RedisScript& script, const std::vector<std::string>& keys,
                               const std::vector<std::string>& args);

  // True while connected and the last call did not fail.
  bool healthy() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gatehouse::ratelimit
