#include "ratelimit/local_store.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <new>

namespace gatehouse::ratelimit {
namespace {

// Stands in for key 0, which marks an empty slot.
constexpr uint64_t kZeroKey = 0x9e3779b97f4a7c15ULL;

// Window algorithms: | window index (16 bits, mod 2^16) | previous window's
// count (24) | current window's count (24) |. The index only has to tell
// "this window", "the one before" and "older" apart.
constexpr uint64_t kCountMask = (1u << 24) - 1;
constexpr uint64_t kIndexMask = 0xffff;

uint64_t pack_window(uint64_t index, uint64_t prev, uint64_t cur) {
  return (index & kIndexMask) << 48 | (prev & kCountMask) << 24 | (cur & kCountMask);
}

// Token bucket: | tokens (24 bits) | time of the last refill + 1 (40 bits, ms) |.
constexpr uint64_t kTimeMask = (uint64_t{1} << 40) - 1;

uint64_t pack_bucket(uint64_t tokens, int64_t last_ms) {
  return (tokens & kCountMask) << 40 | (static_cast<uint64_t>(last_ms + 1) & kTimeMask);
}

int64_t ceil_seconds(int64_t ms) { return std::max<int64_t>(1, (ms + 999) / 1000); }

// Previous and current counts as seen at `now`.
void window_counts(uint64_t state, uint64_t index, uint64_t& prev, uint64_t& cur) {
  prev = cur = 0;
  if (state == 0) return;
  uint64_t at = state >> 48;
  if (at == (index & kIndexMask)) {
    prev = state >> 24 & kCountMask;
    cur = state & kCountMask;
  } else if (at == ((index - 1) & kIndexMask)) {
    prev = state & kCountMask;
  }
}

uint64_t hit_window(uint64_t state, const LimitSpec& spec, int64_t now_ms, Decision& d) {
  const int64_t w = spec.window_ms;
  const uint64_t index = static_cast<uint64_t>(now_ms / w);
  const int64_t elapsed = now_ms % w;
  uint64_t prev = 0, cur = 0;
  window_counts(state, index, prev, cur);
  if (spec.algorithm == Algorithm::kFixedWindow) prev = 0;
  const uint64_t limit = spec.limit;
  d.limit = limit;
  d.reset_s = ceil_seconds(w - elapsed);
  // Sliding estimate (the previous window weighted by how much of it still
  // overlaps the last `w` ms) plus this window, in units of 1/w requests:
  // integers only, exact at the boundaries.
  const auto weighted = [&](uint64_t c) {
    return static_cast<unsigned __int128>(prev) * static_cast<uint64_t>(w - elapsed) +
           static_cast<unsigned __int128>(c) * static_cast<uint64_t>(w);
  };
  const unsigned __int128 cap = static_cast<unsigned __int128>(limit) * static_cast<uint64_t>(w);
  if (weighted(cur + 1) <= cap) {
    d.allowed = true;
    unsigned __int128 used = weighted(cur + 1);
    d.remaining = static_cast<uint64_t>((cap - used) / static_cast<uint64_t>(w));
    return pack_window(index, prev, cur + 1);
  }
  d.allowed = false;
  d.remaining = 0;
  // When one more request would fit.
  int64_t wait_ms;
  if (cur + 1 <= limit && prev > 0) {
    // Later in this window, as the previous one slides out:
    // prev * (w - e') + (cur + 1) * w <= limit * w.
    const unsigned __int128 room =
        static_cast<unsigned __int128>(limit - cur - 1) * static_cast<uint64_t>(w);
    const int64_t need_elapsed = w - static_cast<int64_t>(room / prev);
    wait_ms = std::max<int64_t>(1, need_elapsed - elapsed);
  } else if (spec.algorithm == Algorithm::kFixedWindow || cur == 0) {
    wait_ms = w - elapsed;
  } else {
    // In the next window, where this window's count becomes `prev`.
    const unsigned __int128 room =
        static_cast<unsigned __int128>(limit - 1) * static_cast<uint64_t>(w);
    const int64_t need_elapsed = std::max<int64_t>(0, w - static_cast<int64_t>(room / cur));
    wait_ms = (w - elapsed) + need_elapsed;
  }
  d.retry_after_s = ceil_seconds(wait_ms);
  return state == 0 ? 0 : pack_window(index, prev, cur);
}

uint64_t hit_bucket(uint64_t state, const LimitSpec& spec, int64_t now_ms, Decision& d) {
  const uint64_t burst = spec.burst ? spec.burst : spec.limit;
  const uint64_t rate = spec.limit;  // tokens per window
  const int64_t w = spec.window_ms;
  uint64_t tokens = burst;
  int64_t last = now_ms;
  if (state != 0) {
    tokens = state >> 40 & kCountMask;
    last = static_cast<int64_t>(state & kTimeMask) - 1;
    if (now_ms > last) {
      const unsigned __int128 add =
          static_cast<unsigned __int128>(now_ms - last) * rate / static_cast<uint64_t>(w);
      if (add >= burst - tokens) {
        tokens = burst;
        last = now_ms;
      } else if (add > 0) {
        tokens += static_cast<uint64_t>(add);
        // Keep the fraction of a token already earned.
        last += static_cast<int64_t>(add * static_cast<uint64_t>(w) / rate);
      }
    }
  }
  d.limit = burst;
  const int64_t per_token_ms = std::max<int64_t>(1, w / static_cast<int64_t>(rate));
  if (tokens >= 1) {
    d.allowed = true;
    --tokens;
    d.remaining = tokens;
    d.reset_s = tokens == burst ? 0
                                : ceil_seconds(static_cast<int64_t>(
                                      static_cast<unsigned __int128>(burst - tokens) * w / rate));
    return pack_bucket(tokens, last);
  }
  d.allowed = false;
  d.remaining = 0;
  const int64_t since = now_ms - last;
  d.retry_after_s = ceil_seconds(std::max<int64_t>(1, per_token_ms - since));
  d.reset_s = ceil_seconds(static_cast<int64_t>(static_cast<unsigned __int128>(burst) * w / rate));
  return pack_bucket(tokens, last);
}

bool cas16(void* slot, uint64_t old_key, uint64_t old_state, uint64_t key, uint64_t state) {
  using u128 = unsigned __int128;
  const u128 expected = static_cast<u128>(old_state) << 64 | old_key;
  const u128 desired = static_cast<u128>(state) << 64 | key;
  // cmpxchg16b (built with -mcx16): lock-free on every x86-64 we run on.
  return __sync_bool_compare_and_swap(static_cast<u128*>(slot), expected, desired);
}

}  // namespace

uint64_t apply_hit(uint64_t state, const LimitSpec& spec, int64_t now_ms, Decision& d) {
  d = Decision{};
  if (spec.algorithm == Algorithm::kTokenBucket) return hit_bucket(state, spec, now_ms, d);
  return hit_window(state, spec, now_ms, d);
}

bool is_stale(uint64_t state, const LimitSpec& spec, int64_t now_ms) {
  if (state == 0) return true;
  if (spec.algorithm == Algorithm::kTokenBucket) {
    const uint64_t burst = spec.burst ? spec.burst : spec.limit;
    const uint64_t tokens = state >> 40 & kCountMask;
    const int64_t last = static_cast<int64_t>(state & kTimeMask) - 1;
    if (now_ms <= last) return false;
    const unsigned __int128 add = static_cast<unsigned __int128>(now_ms - last) * spec.limit /
                                  static_cast<uint64_t>(spec.window_ms);
    return add >= burst - tokens;
  }
  uint64_t prev = 0, cur = 0;
  window_counts(state, static_cast<uint64_t>(now_ms / spec.window_ms), prev, cur);
  return prev == 0 && cur == 0;
}

LocalStore::LocalStore(std::size_t slots) : slots_(nullptr, &std::free) {
  std::size_t n = std::bit_ceil(std::max<std::size_t>(slots, 16));
  // malloc's 16-byte alignment is what cmpxchg16b needs.
  slots_.reset(static_cast<Slot*>(std::calloc(n, sizeof(Slot))));
  if (!slots_) throw std::bad_alloc();
  mask_ = n - 1;
}

Decision LocalStore::hit(uint64_t key, const LimitSpec& spec, int64_t now_ms) {
  constexpr std::size_t kProbe = 16;
  if (key == 0) key = kZeroKey;  // 0 marks an empty slot
  // Held only while this hit claims a slot for its key (see ClaimLocks).
  std::unique_lock<std::mutex> claiming;
  // A failed compare-and-swap means another hit on the slot succeeded, so
  // retrying always makes progress overall; a thread only loses many rounds
  // in a row when others keep winning them. The cap only guards against a
  // broken CAS, far beyond any streak.
  constexpr int kMaxAttempts = 1 << 20;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    if (attempt != 0) __builtin_ia32_pause();
    Slot* candidate = nullptr;
    uint64_t candidate_key = 0, candidate_state = 0;
    bool raced = false;
    for (std::size_t i = 0; i < kProbe; ++i) {
      Slot* s = &slots_[(key + i) & mask_];
      // Torn reads are fine: the CAS below only succeeds on a consistent pair.
      uint64_t k = __atomic_load_n(&s->key, __ATOMIC_ACQUIRE);
      uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
      if (k == key) {
        // The key's one slot (claims make sure there is never a second).
        Decision d;
        uint64_t next = apply_hit(st, spec, now_ms, d);
        if (next == st || cas16(s, k, st, k, next)) return d;
        raced = true;  // another hit updated it, or another key took it over
        break;
      }
      if (candidate == nullptr && (k == 0 || is_stale(st, spec, now_ms))) {
        candidate = s;
        candidate_key = k;
        candidate_state = st;
      }
    }
    if (raced) continue;
    if (!claiming.owns_lock()) {
      // The key holds no slot: scan again under its claim lock, so that a
      // claim of the same key by another worker is seen before this one.
      claiming = std::unique_lock<std::mutex>(claim_locks_(key));
      continue;
    }
    if (candidate == nullptr) {
      untracked_.fetch_add(1, std::memory_order_relaxed);
      Decision d;
      d.tracked = false;
      d.limit = spec.algorithm == Algorithm::kTokenBucket && spec.burst ? spec.burst : spec.limit;
      d.remaining = d.limit;
      return d;
    }
    Decision d;
    uint64_t fresh = apply_hit(0, spec, now_ms, d);
    if (cas16(candidate, candidate_key, candidate_state, key, fresh)) return d;
    // Another key claimed the slot, or a hit of its stale key revived it.
  }
  // Only a broken CAS gets here: let it through rather than spin forever.
  Decision d;
  d.tracked = false;
  d.limit = spec.limit;
  d.remaining = spec.limit;
  return d;
}

std::size_t LocalStore::occupied() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i <= mask_; ++i)
    if (__atomic_load_n(&slots_[i].key, __ATOMIC_RELAXED) != 0) ++n;
  return n;
}

CountTable::CountTable(std::size_t slots) : slots_(nullptr, &std::free) {
  std::size_t n = std::bit_ceil(std::max<std::size_t>(slots, 16));
  slots_.reset(static_cast<Slot*>(std::calloc(n, sizeof(Slot))));
  if (!slots_) throw std::bad_alloc();
  mask_ = n - 1;
}

bool CountTable::acquire(uint64_t key, uint64_t max) {
  constexpr std::size_t kProbe = 16;
  if (key == 0) key = kZeroKey;
  std::unique_lock<std::mutex> claiming;  // as in LocalStore::hit
  for (int attempt = 0; attempt < 64; ++attempt) {
    Slot* empty = nullptr;
    bool raced = false;
    for (std::size_t i = 0; i < kProbe && !raced; ++i) {
      Slot* s = &slots_[(key + i) & mask_];
      uint64_t k = __atomic_load_n(&s->key, __ATOMIC_ACQUIRE);
      uint64_t c = __atomic_load_n(&s->count, __ATOMIC_ACQUIRE);
      if (k == key) {
        if (c >= max) return false;
        if (cas16(s, k, c, k, c + 1)) return true;
        raced = true;
      } else if (k == 0 && empty == nullptr) {
        empty = s;
      }
    }
    if (raced) continue;
    if (!claiming.owns_lock()) {
      claiming = std::unique_lock<std::mutex>(claim_locks_(key));
      continue;
    }
    if (empty == nullptr) return false;
    if (max == 0) return false;
    if (cas16(empty, 0, 0, key, 1)) return true;
  }
  return false;
}

void CountTable::release(uint64_t key) {
  constexpr std::size_t kProbe = 16;
  if (key == 0) key = kZeroKey;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    bool raced = false;
    for (std::size_t i = 0; i < kProbe; ++i) {
      Slot* s = &slots_[(key + i) & mask_];
      uint64_t k = __atomic_load_n(&s->key, __ATOMIC_ACQUIRE);
      uint64_t c = __atomic_load_n(&s->count, __ATOMIC_ACQUIRE);
      if (k != key || c == 0) continue;
      // The last one out frees the slot for other addresses.
      if (cas16(s, k, c, c == 1 ? 0 : k, c - 1)) return;
      raced = true;
      break;
    }
    if (!raced) return;
  }
}

uint64_t CountTable::count(uint64_t key) const {
  if (key == 0) key = kZeroKey;
  uint64_t total = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    const Slot* s = &slots_[(key + i) & mask_];
    if (__atomic_load_n(&s->key, __ATOMIC_ACQUIRE) == key)
      total += __atomic_load_n(&s->count, __ATOMIC_ACQUIRE);
  }
  return total;
}

}  // namespace gatehouse::ratelimit
