// The compiled, immutable form of a config: what workers read on the request
// path. Built once per (re)load off the workers; a worker holds a
// shared_ptr<const Snapshot> and each request keeps the one it started with.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/consumers.h"
#include "auth/jwks.h"
#include "config/config.h"
#include "core/ip.h"
#include "plugins/registry.h"
#include "proxy/listener_tls.h"
#include "proxy/plugin.h"
#include "ratelimit/local_store.h"
#include "ratelimit/redis_client.h"
#include "router/router.h"
#include "tls/client_context.h"

namespace gatehouse::proxy {

struct CompiledTarget {
  std::string address;  // "127.0.0.1:9001", for logs
  boost::asio::ip::tcp::endpoint endpoint;
  uint32_t weight = 1;
  std::string host;  // as configured: the TLS name checked when the upstream sets none
};

struct CompiledUpstream {
  std::string name;
  std::vector<CompiledTarget> targets;
  config::Balance balance = config::Balance::kRoundRobin;
  config::HashOn hash_on = config::HashOn::kNone;
  std::string hash_key;  // lower-case header name / cookie name
  int64_t connect_timeout_ms = 1000;
  int64_t read_timeout_ms = 30000;
  config::UpstreamProtocol protocol = config::UpstreamProtocol::kHttp1;
  std::shared_ptr<const tls::ClientContext> tls;  // null: plain
  std::string tls_server_name;                    // empty: each target's host
};

// A rewrite template split into literal text and parameter references.
struct RewritePiece {
  bool param = false;
  std::string text;  // literal text, or the parameter's name
};

struct CompiledRoute {
  std::string name;
  int upstream = -1;                  // index into Snapshot::upstreams; -1 for direct responses
  std::vector<RewritePiece> rewrite;  // empty: no rewrite
  bool direct = false;
  int direct_status = 200;
  std::string direct_head;  // status line + configured headers + content-length
  std::vector<std::string> direct_header_names;  // configured ones: plugins do not repeat them
  std::string direct_body;
  // The route's plugins, ordered by stage (request-side order; response-side
  // phases walk it backwards).
  std::vector<std::unique_ptr<Plugin>> plugins;
};

struct Snapshot {
  config::Config config;
  router::Router router;
  std::vector<CompiledRoute> routes;
  std::vector<CompiledUpstream> upstreams;
  std::vector<std::string> route_names;
  std::vector<std::string> upstream_names;
  unsigned workers = 1;  // resolved from config.workers (0: one per core)
  // Auth: the consumers plugins look credentials up in, the JWKS caches
  // (shared with the next snapshot on reload) and the upstream signing key.
  std::shared_ptr<const auth::ConsumerTable> consumers;
  std::shared_ptr<auth::JwksRegistry> jwks;
  std::string signing_secret;  // empty: requests are not signed
  std::vector<core::Cidr> trusted_proxies;
  // Connections held per client address (limits.max_connections_per_ip).
  std::shared_ptr<ratelimit::CountTable> connections_per_ip;
  std::shared_ptr<plugins::SharedState> plugin_state;
  std::optional<ratelimit::RedisConfig> redis;  // each worker opens its own connection
  // One entry per config.listeners (null: plain), replaced on SIGHUP.
  std::shared_ptr<ListenerTls> listener_tls;
};

// Resolves target addresses and compiles routes. Throws std::runtime_error
// with a `FILE:LINE:COL: message` text when a target cannot be resolved.
// `jwks`: the registry of the running snapshot, so key caches survive a
// reload; a new one when null.
std::shared_ptr<const Snapshot> compile_snapshot(
    config::Config config, std::shared_ptr<auth::JwksRegistry> jwks = nullptr);

}  // namespace gatehouse::proxy
