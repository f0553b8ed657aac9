// The four balancers behind make_balancer(). Each is built once per upstream
// per worker when a snapshot is compiled; pick() runs per request and never
// allocates.
#include "proxy/balancer.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace gatehouse::proxy {
namespace {

// The proxy core may pass an empty (or short) vector when nothing is excluded;
// indices past its end are usable.
bool is_excluded(const Excluded& excluded, std::size_t i) {
  return i < excluded.size() && excluded[i];
}

bool any_usable(std::size_t count, const Excluded& excluded) {
  for (std::size_t i = 0; i < count; ++i) {
    if (!is_excluded(excluded, i)) return true;
  }
  return false;
}

uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// SplitMix64 (Steele, Lea, Flood 2014): one add and a three-step mixer per
// number, passes BigCrush, 8 bytes of state. Balancing needs speed and no
// visible patterns, not cryptographic strength.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, bound) by Lemire's multiply-shift: no division, and a bias
  // of at most bound / 2^64, far below anything a balancer could notice.
  uint64_t below(uint64_t bound) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * bound) >> 64);
  }

 private:
  uint64_t state_;
};

// Weighted random choice among usable targets, shared by `random` and
// `least_request`. The common case (few or no exclusions) draws from the
// precomputed cumulative weights in O(log n) and rejects an excluded result;
// after two rejections it falls back to an exact O(n) walk over the usable
// targets. Both paths sample the same distribution (rejection sampling is
// exact), so the fallback changes only the cost, never the odds.
class WeightedSampler {
 public:
  explicit WeightedSampler(const std::vector<uint32_t>& weights)
      : weights_(weights.begin(), weights.end()) {
    cumulative_.reserve(weights.size());
    uint64_t sum = 0;
    for (uint32_t w : weights) cumulative_.push_back(sum += w);
  }

  std::size_t size() const { return weights_.size(); }
  uint64_t weight(std::size_t i) const { return weights_[i]; }

  // A target that is neither excluded nor `skip` (pass -1 to skip none), or -1.
  int sample(SplitMix64& rng, const Excluded& excluded, int skip) const {
    if (weights_.empty()) return -1;
    for (int attempt = 0; attempt < 2; ++attempt) {
      uint64_t r = rng.below(cumulative_.back());
      auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), r);
      int i = static_cast<int>(it - cumulative_.begin());
      if (i != skip && !is_excluded(excluded, i)) return i;
    }
    return sample_exact(rng, excluded, skip);
  }

 private:
  bool usable(std::size_t i, const Excluded& excluded, int skip) const {
    return static_cast<int>(i) != skip && !is_excluded(excluded, i);
  }

  int sample_exact(SplitMix64& rng, const Excluded& excluded, int skip) const {
    uint64_t total = 0;
    for (std::size_t i = 0; i < weights_.size(); ++i) {
      if (usable(i, excluded, skip)) total += weights_[i];
    }
    if (total == 0) return -1;
    uint64_t r = rng.below(total);
    for (std::size_t i = 0; i < weights_.size(); ++i) {
      if (!usable(i, excluded, skip)) continue;
      if (r < weights_[i]) return static_cast<int>(i);
      r -= weights_[i];
    }
    return -1;  // not reached: r < total
  }

  std::vector<uint64_t> weights_;
  std::vector<uint64_t> cumulative_;  // cumulative_[i] = weights_[0] + ... + weights_[i]
};

// nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every
// pick adds each usable target's weight to its current value, takes the
// largest, and subtracts the usable total from it. Weights {5,1,1} give
// a a b a c a a: the heavy target is spread out instead of sent five in a
// row. Excluded targets take no part in a pick (neither gain nor total), which
// is what nginx does with down or already-tried peers, so the rest stay smooth.
class RoundRobinBalancer final : public Balancer {
 public:
  explicit RoundRobinBalancer(const std::vector<uint32_t>& weights)
      : weights_(weights.begin(), weights.end()), current_(weights.size(), 0) {}

  int pick(uint64_t, const Excluded& excluded) override {
    int64_t total = 0;
    int best = -1;
    for (std::size_t i = 0; i < weights_.size(); ++i) {
      if (is_excluded(excluded, i)) continue;
      current_[i] += weights_[i];
      total += weights_[i];
      if (best < 0 || current_[i] > current_[best]) best = static_cast<int>(i);
    }
    if (best >= 0) current_[best] -= total;
    return best;
  }

 private:
  std::vector<int64_t> weights_;
  std::vector<int64_t> current_;
};

// Power of two choices (Mitzenmacher): two distinct weighted-random usable
// targets, keep the one with the lower load. Nearly as good as scanning every
// target for the least loaded, in O(1), and with no herd: workers that each
// see a stale picture do not all pile onto the same "least loaded" target.
class LeastRequestBalancer final : public Balancer {
 public:
  LeastRequestBalancer(const std::vector<uint32_t>& weights, uint64_t seed)
      : sampler_(weights), rng_(seed), in_flight_(weights.size(), 0) {}

  int pick(uint64_t, const Excluded& excluded) override {
    int first = sampler_.sample(rng_, excluded, -1);
    if (first < 0) return -1;
    int second = sampler_.sample(rng_, excluded, first);
    if (second < 0) return first;  // the only usable target
    return less_loaded(second, first) ? second : first;
  }

  void on_request_start(int target) override {
    if (valid(target)) ++in_flight_[target];
  }

  void on_request_end(int target) override {
    if (valid(target) && in_flight_[target] > 0) --in_flight_[target];
  }

 private:
  bool valid(int target) const {
    return target >= 0 && static_cast<std::size_t>(target) < in_flight_.size();
  }

  // Load is (in_flight + 1) / weight, compared by cross-multiplying. The +1
  // counts the request being placed, so that between two idle targets the
  // heavier one wins instead of a coin toss.
  bool less_loaded(int a, int b) const {
    unsigned __int128 load_a =
        static_cast<unsigned __int128>(in_flight_[a] + 1) * sampler_.weight(b);
    unsigned __int128 load_b =
        static_cast<unsigned __int128>(in_flight_[b] + 1) * sampler_.weight(a);
    return load_a < load_b;
  }

  WeightedSampler sampler_;
  SplitMix64 rng_;
  std::vector<uint64_t> in_flight_;
};

class RandomBalancer final : public Balancer {
 public:
  RandomBalancer(const std::vector<uint32_t>& weights, uint64_t seed)
      : sampler_(weights), rng_(seed) {}

  int pick(uint64_t, const Excluded& excluded) override {
    return sampler_.sample(rng_, excluded, -1);
  }

 private:
  WeightedSampler sampler_;
  SplitMix64 rng_;
};

// Maglev hashing (Eisenbud et al., NSDI 2016), weighted the way Envoy's
// maglev_lb.cc does it. Chosen over a ketama ring because a pick is one table
// lookup instead of a binary search over n * 160 virtual nodes, load is
// spread to within about 1% instead of several percent, and weights are exact
// shares of the table rather than counts of virtual nodes. The price is a
// little more disruption than the theoretical minimum when targets change (a
// few percent of keys move between surviving targets; see the tests) and a
// table of 65537 entries per upstream per worker (256 KiB).
//
// The table depends only on the weights, never on `seed`, so every worker and
// every restart sends a key to the same target. A target is known by its id
// (the caller's stable key, or its index when none is given): adding a target
// moves about 1/(n+1) of keys, and removing one moves only its own keys.
class MaglevBalancer final : public Balancer {
 public:
  MaglevBalancer(const std::vector<uint32_t>& weights, const std::vector<uint64_t>& ids) {
    if (!weights.empty()) build(weights, ids);
  }

  int pick(uint64_t hash, const Excluded& excluded) override {
    if (table_.empty()) return -1;
    std::size_t slot = hash % table_.size();
    int target = table_[slot];
    if (!is_excluded(excluded, target)) return target;
    return fallback(slot, excluded);
  }

 private:
  // The Maglev paper keeps the table at least 100 times the number of
  // targets (load within about 1%); it must be prime so that every skip
  // visits every slot. 65537 is Envoy's default.
  static constexpr uint64_t kMinTableSize = 65537;
  static constexpr uint64_t kSlotsPerTarget = 100;

  struct Permutation {
    uint64_t next;  // next slot this target would like
    uint64_t skip;  // in [1, size): visits every slot of a prime-sized table
    uint64_t taken = 0;
  };

  static bool is_prime(uint64_t n) {
    if (n < 2) return false;
    for (uint64_t d = 2; d * d <= n; ++d) {
      if (n % d == 0) return false;
    }
    return true;
  }

  static uint64_t table_size_for(std::size_t targets) {
    uint64_t size = std::max<uint64_t>(kMinTableSize, kSlotsPerTarget * targets);
    while (!is_prime(size)) ++size;
    return size;
  }

  // Two independent hashes of the target's id give its preference order.
  static uint64_t mix(uint64_t x) {
    x = (x ^ (x >> 33)) * 0xFF51AFD7ED558CCDULL;
    x = (x ^ (x >> 33)) * 0xC4CEB9FE1A85EC53ULL;
    return x ^ (x >> 33);
  }

  // Turns are handed out in rounds: in round r target i takes a turn when
  // r * w_i >= taken_i * w_max, so the heaviest target claims a slot every
  // round and one of half its weight every other round. Every target takes a
  // turn in round 0, so even the lightest owns a slot. Each turn claims the
  // target's next preferred slot that is still free.
  void build(const std::vector<uint32_t>& weights, const std::vector<uint64_t>& ids) {
    target_count_ = weights.size();
    const uint64_t size = table_size_for(weights.size());
    const uint64_t max_weight = *std::max_element(weights.begin(), weights.end());
    table_.assign(size, -1);
    std::vector<Permutation> permutations;
    permutations.reserve(weights.size());
    for (std::size_t i = 0; i < weights.size(); ++i) {
      uint64_t id = ids.size() == weights.size() ? ids[i] : i;
      permutations.push_back({mix(id ^ 0x6A09E667F3BCC908ULL) % size,
                              mix(id ^ 0xBB67AE8584CAA73BULL) % (size - 1) + 1});
    }
    uint64_t filled = 0;
    for (uint64_t round = 0; filled < size; ++round) {
      for (std::size_t i = 0; i < weights.size() && filled < size; ++i) {
        Permutation& p = permutations[i];
        if (round * weights[i] < p.taken * max_weight) continue;
        while (table_[p.next] >= 0) p.next = (p.next + p.skip) % size;
        table_[p.next] = static_cast<int32_t>(i);
        p.next = (p.next + p.skip) % size;
        ++p.taken;
        ++filled;
      }
    }
  }

  // Walks on from the key's slot to the first usable target. Slots are
  // interleaved across targets, so the keys of an excluded target spread over
  // the others in proportion to their shares, and a given key always lands
  // on the same fallback while the exclusions stay the same.
  int fallback(std::size_t slot, const Excluded& excluded) const {
    if (!any_usable(target_count_, excluded)) return -1;
    for (std::size_t step = 1; step < table_.size(); ++step) {
      int target = table_[(slot + step) % table_.size()];
      if (!is_excluded(excluded, target)) return target;
    }
    return -1;  // not reached: every target owns a slot (all take a turn in round 0)
  }

  std::vector<int32_t> table_;
  std::size_t target_count_ = 0;
};

}  // namespace

std::unique_ptr<Balancer> make_balancer(config::Balance kind, const std::vector<uint32_t>& weights,
                                        uint64_t seed, const std::vector<uint64_t>& target_ids) {
  switch (kind) {
    case config::Balance::kRoundRobin:
      return std::make_unique<RoundRobinBalancer>(weights);
    case config::Balance::kLeastRequest:
      return std::make_unique<LeastRequestBalancer>(weights, seed);
    case config::Balance::kConsistentHash:
      return std::make_unique<MaglevBalancer>(weights, target_ids);
    case config::Balance::kRandom:
      return std::make_unique<RandomBalancer>(weights, seed);
  }
  return nullptr;  // not reached: every Balance is handled above
}

// XXH64 (Yann Collet's xxHash, seed 0), written out here because it is short:
// it is a published, frozen algorithm, so hashes stay the same across
// platforms, compilers and releases (a key keeps its target after an
// upgrade, which std::hash does not promise), and it runs at memory speed.
// FNV-1a would be shorter but goes one byte at a time and mixes its last
// bytes poorly. Tests compare against the reference library's output.
namespace {

constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kPrime3 = 0x165667B19E3779F9ULL;
constexpr uint64_t kPrime4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t kPrime5 = 0x27D4EB2F165667C5ULL;

// Little-endian loads spelled out byte by byte so the hash is the same on
// any host; g++ turns each into a single load on x86.
uint64_t load64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

uint64_t load32(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

uint64_t xxh_round(uint64_t acc, uint64_t input) {
  acc += input * kPrime2;
  return rotl64(acc, 31) * kPrime1;
}

uint64_t xxh_merge(uint64_t acc, uint64_t lane) {
  acc ^= xxh_round(0, lane);
  return acc * kPrime1 + kPrime4;
}

}  // namespace

uint64_t hash_key(const char* data, std::size_t size) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  const unsigned char* const end = p + size;
  uint64_t h;
  if (size >= 32) {
    uint64_t v1 = kPrime1 + kPrime2;
    uint64_t v2 = kPrime2;
    uint64_t v3 = 0;
    uint64_t v4 = 0 - kPrime1;
    for (; end - p >= 32; p += 32) {
      v1 = xxh_round(v1, load64(p));
      v2 = xxh_round(v2, load64(p + 8));
      v3 = xxh_round(v3, load64(p + 16));
      v4 = xxh_round(v4, load64(p + 24));
    }
    h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
    h = xxh_merge(h, v1);
    h = xxh_merge(h, v2);
    h = xxh_merge(h, v3);
    h = xxh_merge(h, v4);
  } else {
    h = kPrime5;
  }
  h += size;
  for (; end - p >= 8; p += 8) h = rotl64(h ^ xxh_round(0, load64(p)), 27) * kPrime1 + kPrime4;
  if (end - p >= 4) {
    h = rotl64(h ^ (load32(p) * kPrime1), 23) * kPrime2 + kPrime3;
    p += 4;
  }
  for (; p < end; ++p) h = rotl64(h ^ (*p * kPrime5), 11) * kPrime1;
  h ^= h >> 33;
  h *= kPrime2;
  h ^= h >> 29;
  h *= kPrime3;
  h ^= h >> 32;
  return h;
}

}  // namespace gatehouse::proxy
