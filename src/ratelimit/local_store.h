// Exact rate-limit counters shared by every worker of one gateway instance.
//
// A fixed-size open-addressing table of 16-byte slots {key hash, state},
// updated with a 16-byte compare-and-swap: no allocation after construction,
// no per-thread approximation (N allowed per window, never N+1, with every
// worker hitting the same key). Every hit of a key that holds a slot takes
// no lock; a key that holds none claims one under a lock of its own (one of
// 64, by key), so that two workers claiming the same new key never end up
// counting in two slots. Memory is bounded by the
// slot count; a key whose window has passed leaves its slot to the next key,
// so a flood of distinct keys costs at most the table (and keys that find
// no slot are let through and counted, never tracked without bound).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

namespace gatehouse::ratelimit {

enum class Algorithm : uint8_t { kSlidingWindow, kTokenBucket, kFixedWindow };

struct LimitSpec {
  Algorithm algorithm = Algorithm::kSlidingWindow;
  uint64_t limit = 0;     // requests per window (token bucket: refill per window)
  int64_t window_ms = 0;  // 1 s .. 30 d
  uint64_t burst = 0;     // token bucket capacity (0: limit)
};

// What a request learns from its limit; fills the RateLimit-* headers.
struct Decision {
  bool allowed = true;
  bool tracked = true;        // false: no slot was free, the request was let through
  uint64_t limit = 0;         // RateLimit-Limit
  uint64_t remaining = 0;     // RateLimit-Remaining
  int64_t reset_s = 0;        // RateLimit-Reset: seconds until the quota is back
  int64_t retry_after_s = 0;  // when refused: Retry-After
};

// The largest limit the packed counters hold.
inline constexpr uint64_t kMaxLimit = (1u << 24) - 1;

namespace detail {
// The locks that serialise claims of one key: a key's slot is looked for
// again under its lock before a free one is taken. Claims are a key's first
// hit (or first after its slot went to another key), so the lock is
// uncontended unless two workers claim keys of one stripe at once.
class ClaimLocks {
 public:
  std::mutex& operator()(uint64_t key) { return locks_[key >> 58].mutex; }

 private:
  struct alignas(64) Stripe {
    std::mutex mutex;
  };
  std::array<Stripe, 64> locks_;
};
}  // namespace detail

class LocalStore {
 public:
  // `slots` is rounded up to a power of two.
  explicit LocalStore(std::size_t slots = 1 << 16);

  // Counts one request of `key` (a 64-bit hash of the limit's key; 0 is
  // remapped) against `spec` at `now_ms` (any monotonic millisecond clock,
  // the same for every call on this store) and says whether it may pass.
  Decision hit(uint64_t key, const LimitSpec& spec, int64_t now_ms);

  // Slots holding a key (for tests and metrics; a scan, not for the hot path).
  std::size_t occupied() const;
  uint64_t untracked() const { return untracked_.load(std::memory_order_relaxed); }

 private:
  struct alignas(16) Slot {
    uint64_t key;
    uint64_t state;
  };
  // calloc'd: untouched pages stay unbacked, so an idle table costs no RSS.
  std::unique_ptr<Slot[], void (*)(void*)> slots_;
  std::size_t mask_;
  std::atomic<uint64_t> untracked_{0};
  detail::ClaimLocks claim_locks_;
};

// Counts held by key (connections per client address): acquire() takes one
// unless `max` are held already, release() gives one back. Same table
// design as LocalStore; a key's slot is freed when its count returns to 0.
class CountTable {
 public:
  explicit CountTable(std::size_t slots = 1 << 16);
  // False when `key` holds `max` already (or no slot is free: refused, as a
  // table full of distinct addresses is what this limit is for).
  bool acquire(uint64_t key, uint64_t max);
  void release(uint64_t key);
  uint64_t count(uint64_t key) const;

 private:
  struct alignas(16) Slot {
    uint64_t key;
    uint64_t count;
  };
  std::unique_ptr<Slot[], void (*)(void*)> slots_;
  std::size_t mask_;
  detail::ClaimLocks claim_locks_;
};

// Pure state transitions, exposed for tests: the new state after one hit at
// `now_ms`, and the decision. `state` 0 means "never hit".
uint64_t apply_hit(uint64_t state, const LimitSpec& spec, int64_t now_ms, Decision& d);
// True when a slot in `state` holds nothing a later hit would read.
bool is_stale(uint64_t state, const LimitSpec& spec, int64_t now_ms);

}  // namespace gatehouse::ratelimit
