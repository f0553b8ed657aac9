// The plugin interface: the phases of a request that cross-cutting features
// hook into (see ../shared/DESIGN.md, "The phase pipeline and plugins").
//
// A Plugin object is built once per config snapshot from its YAML (the
// "factory" half: validated config and anything shared, immutable and safe
// to use from every worker) and its phases run for each request with a
// per-request RequestContext. Phases run in the order of the plugin's Stage,
// never in YAML order; response-side phases run in reverse.
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/http1_parser.h"
#include "proxy/task.h"

namespace gatehouse::auth {
struct Consumer;
}
namespace gatehouse::ratelimit {
class RedisClient;
}

namespace gatehouse::proxy {

enum class Stage : uint8_t { kEarly, kAuthn, kAuthz, kRateLimit, kCache, kTransform, kObserve };

// Header changes a plugin asks for on a head the engine is about to write.
// Names compare case-insensitively; `set` replaces every field of that name.
struct HeaderEdits {
  std::vector<std::pair<std::string, std::string>> set;
  std::vector<std::string> remove;
  bool empty() const { return set.empty() && remove.empty(); }
  // True when a field of this name from the original message is dropped.
  bool drops(std::string_view name) const;
};

// Who is calling, as established by the auth plugins of the route. The
// engine hands it to the service as trusted headers (docs/auth.md) and to
// the access log; it strips those headers from every client request.
struct Identity {
  const auth::Consumer* consumer = nullptr;  // a configured consumer, or null
  bool verified = false;                     // a credential was checked
  bool anonymous = false;                    // no credential: the route's anonymous consumer
  std::string user_id;                       // X-User-ID (empty: the consumer's name)
  std::string role;                          // X-User-Role (empty: the consumer's groups)
  std::vector<std::string> roles;            // what `acl` checks (empty: the consumer's groups)
  std::vector<std::pair<std::string, std::string>> headers;  // further claims_to_headers
  std::shared_ptr<const nlohmann::json> claims;  // a verified token's claims (rate_limit claim:)

  bool known() const { return verified || anonymous; }
  void reset() {
    consumer = nullptr;
    verified = anonymous = false;
    user_id.clear();
    role.clear();
    roles.clear();
    headers.clear();
    claims.reset();
  }
};

// Per-request state the phases share; lives in the pooled Exchange.
struct RequestState {
  Identity identity;
  std::string hidden_query_param;  // a credential's query parameter, dropped before proxying
  // Why a plugin refused (the access log's "detail"; never a credential).
  std::string log_detail;
  // Header fields for the response to the client, proxied or local
  // (RateLimit-*, CORS): they replace upstream fields of the same name.
  std::vector<std::pair<std::string, std::string>> response_headers;
  // The client's address as trusted_proxies resolve it (empty: the peer's).
  std::string client_ip;
  // Called when the request ends, whatever happened (concurrency_limit).
  std::vector<std::pair<void (*)(void*), void*>> on_end;
  // A gRPC-Web request the route translates (the grpc_web plugin): the
  // engine re-frames its body and the gRPC answer (session_grpc_web.cc).
  bool grpc_web = false;
  void reset() {
    end();  // a request that ended without finishing still releases what it held
    identity.reset();
    hidden_query_param.clear();
    log_detail.clear();
    response_headers.clear();
    client_ip.clear();
    grpc_web = false;
  }
  void end() {
    for (auto& [fn, arg] : on_end) fn(arg);
    on_end.clear();
  }
};

// What a phase sees of the request in flight.
struct RequestContext {
  const http::RequestHead* head = nullptr;  // valid until the request is sent upstream
  std::string_view route;
  std::string_view client_ip;
  std::string_view request_id;
  RequestState* state = nullptr;  // mutable per-request state
  unsigned worker = 0;            // index of the worker running it: per-worker plugin caches
  int64_t unix_s = 0;             // wall clock, seconds (coarse)
  ratelimit::RedisClient* redis = nullptr;  // the worker's Redis connection (when configured)
  // TLS listeners: the client's certificate (null: none presented) and
  // whether it verified against the listener's client_ca.
  X509* peer_certificate = nullptr;
  bool peer_verified = false;
};

// A locally generated answer: status plus the short details string that goes
// to the problem body, the access log and the rejection counter, and any
// header fields it must carry (WWW-Authenticate, Retry-After...).
struct LocalReply {
  int status = 0;
  std::string detail;
  std::vector<std::pair<std::string, std::string>> headers;
  // false: an answer, not an error (a CORS preflight): no problem body.
  bool problem = true;
};

class Plugin {
 public:
  virtual ~Plugin() = default;

  // Where the plugin runs relative to others (auth before rate limiting...).
  virtual Stage stage() const = 0;

  // on_request: after routing, before any upstream work (and before a direct
  // response). May answer the request itself: fill `reply`, return false.
  // Default: continue.
  virtual bool on_request(const RequestContext& ctx, LocalReply& reply) const { return true; }

  // A plugin whose on_request needs network I/O (token introspection, a
  // shared counter) says so here; the engine then awaits on_request_async
  // instead, on the worker's thread. Only such plugins pay for a coroutine.
  virtual bool async_request() const { return false; }
  virtual Task<bool> on_request_async(const RequestContext& ctx, LocalReply& reply) const;

  // on_upstream_request: after a target is chosen, while the request head for
  // the upstream is written. May edit that head through `edits`.
  // Default: no change.
  virtual void on_upstream_request(const RequestContext& ctx, HeaderEdits& edits) const {}

  // on_response_headers: when the upstream's response head arrived, before it
  // goes to the client. May edit it through `edits`. Default: no change.
  virtual void on_response_headers(const RequestContext& ctx, int status,
                                   HeaderEdits& edits) const {}

  // on_log: once, after the response ended or failed. Observe only.
  // Default: nothing.
  virtual void on_log(const RequestContext& ctx, int status) const {}
};

}  // namespace gatehouse::proxy
