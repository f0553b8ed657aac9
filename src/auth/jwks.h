// JWKS key caches: one per JWKS URL (or OIDC issuer), shared by every route
// that names it, filled by one background fetcher thread and never fetched on
// the request path. Workers read keys lock-free in the common case: a version
// number tells them when to take the (rarely contended) lock and copy the new
// shared_ptr into their own slot.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "auth/jwt.h"

namespace gatehouse::auth {

class JwksRegistry;

class JwksSource {
 public:
  // `location` is the JWKS URL, or with `discovery` the issuer whose
  // /.well-known/openid-configuration names the jwks_uri.
  JwksSource(std::string location, bool discovery, int64_t refresh_ms);

  const std::string& location() const { return location_; }
  bool discovery() const { return discovery_; }

  // Bumped on every successful fetch; 0 until the first one.
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  // The current keys (nullptr before the first successful fetch).
  std::shared_ptr<const KeySet> keys() const;
  // A token named a kid we do not have: fetch again soon (at most once every
  // 10 s). Cheap and wait-free for the caller.
  void request_refresh() { refresh_requested_.store(true, std::memory_order_relaxed); }
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  friend class JwksRegistry;
  const std::string location_;
  const bool discovery_;
  int64_t refresh_ms_;  // the shortest asked for by any route

  mutable std::mutex mu_;
  std::shared_ptr<const KeySet> keys_;
  std::atomic<uint64_t> version_{0};
  std::atomic<bool> refresh_requested_{false};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> fetches_{0};
  std::atomic<std::size_t> key_count_{0};

  // Fetcher-thread only.
  int64_t next_fetch_ms_ = 0;
  int64_t last_kid_refresh_ms_ = -1'000'000;
  int failures_in_row_ = 0;
  std::string jwks_url_;  // discovery: resolved from the issuer's document
};

// A worker's view of a source: keys re-read only when the version moves.
// Each worker owns its own slot; no sharing, no lock on the hot path.
struct JwksSlot {
  uint64_t version = 0;
  std::shared_ptr<const KeySet> keys;
  const KeySet* get(const JwksSource& source) {
    uint64_t v = source.version();
    if (v != version) {
      keys = source.keys();
      version = v;
    }
    return keys.get();
  }
};

class JwksRegistry {
 public:
  JwksRegistry() = default;
  ~JwksRegistry();
  JwksRegistry(const JwksRegistry&) = delete;
  JwksRegistry& operator=(const JwksRegistry&) = delete;

  // The source for this location, made on first use. Call before start().
  std::shared_ptr<JwksSource> source(const std::string& location, bool discovery,
                                     int64_t refresh_ms);
  // Starts the fetcher thread when there is any source; idempotent.
  void start();
  void stop();
  // Prometheus lines: gatehouse_auth_jwks_fetches_total, _fetch_failures_total, _keys.
  void append_metrics(std::string& out) const;

 private:
  void run();
  void fetch(JwksSource& source, int64_t now_ms);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
  std::vector<std::shared_ptr<JwksSource>> sources_;
};

}  // namespace gatehouse::auth
