// Load balancers: choose one target of an upstream for a request. Each worker
// owns its own balancer instances, so nothing here is shared between threads
// and nothing is atomic.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "config/config.h"

namespace gatehouse::proxy {

// Which targets may not be chosen for this pick (refused recently, or already
// tried by this request). Index i set: target i is excluded.
using Excluded = std::vector<bool>;

class Balancer {
 public:
  virtual ~Balancer() = default;
  // Returns the chosen target index, or -1 when every target is excluded.
  // `hash` is the request's hash key (consistent_hash only; others ignore it).
  virtual int pick(uint64_t hash, const Excluded& excluded) = 0;
  // least_request tracks in-flight requests; the others ignore these.
  virtual void on_request_start(int target) {}
  virtual void on_request_end(int target) {}
};

// weights[i] >= 1 is target i's weight. `seed` seeds random choices (tests
// pass a fixed one; workers pass a per-worker random one). `target_ids`, when
// given (one per target, e.g. hash_key of its address), is what consistent
// hashing knows a target by, so that removing or reordering targets moves
// only the keys of the targets that changed; without it a target is its index.
std::unique_ptr<Balancer> make_balancer(config::Balance kind, const std::vector<uint32_t>& weights,
                                        uint64_t seed,
                                        const std::vector<uint64_t>& target_ids = {});

// Stable 64-bit hash for consistent hashing keys (header value, cookie, ip, path).
uint64_t hash_key(const char* data, std::size_t size);

}  // namespace gatehouse::proxy
