#include "proxy/balancer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace gatehouse::proxy {
namespace {

using config::Balance;

constexpr uint64_t kSeed = 42;
constexpr int kKeys = 10000;

std::unique_ptr<Balancer> make(Balance kind, const std::vector<uint32_t>& weights,
                               uint64_t seed = kSeed) {
  return make_balancer(kind, weights, seed);
}

uint64_t key_hash(int i) {
  std::string key = "user-" + std::to_string(i);
  return hash_key(key.data(), key.size());
}

std::vector<int> count_picks(Balancer& balancer, std::size_t targets, int picks,
                             const Excluded& excluded = {}) {
  std::vector<int> counts(targets, 0);
  for (int i = 0; i < picks; ++i) {
    int t = balancer.pick(0, excluded);
    EXPECT_GE(t, 0);
    if (t >= 0) ++counts[t];
  }
  return counts;
}

std::vector<int> count_keys(Balancer& balancer, std::size_t targets,
                            const Excluded& excluded = {}) {
  std::vector<int> counts(targets, 0);
  for (int i = 0; i < kKeys; ++i) {
    int t = balancer.pick(key_hash(i), excluded);
    EXPECT_GE(t, 0);
    if (t >= 0) ++counts[t];
  }
  return counts;
}

// --- hash_key ---------------------------------------------------------------

// Reference values from libxxhash 0.8.1, XXH64(data, size, 0). They cover
// every branch: empty, byte tail, 4-byte tail, 8-byte lanes, 32-byte stripes.
TEST(HashKey, MatchesXxh64ReferenceVectors) {
  struct Vector {
    std::string input;
    uint64_t expected;
  };
  std::string bytes_0_to_99;
  for (int i = 0; i < 100; ++i) bytes_0_to_99.push_back(static_cast<char>(i));
  const std::vector<Vector> vectors = {
      {"", 0xEF46DB3751D8E999ULL},
      {"a", 0xD24EC4F1A98C6E5BULL},
      {"abc", 0x44BC2CF5AD770999ULL},
      {"user", 0x3DA0FD9C44CFC9EEULL},
      {"10.0.0.1", 0xED16CB68C786E3D7ULL},
      {"user-12345", 0x64797FCA50BFC10CULL},
      {"/api/v1/orders", 0xCDE59EBBDD4A44E5ULL},
      {"0123456789abcdef0123456789abcdef", 0x642A94958E71E6C5ULL},
      {"The quick brown fox jumps over the lazy dog", 0x0B242D361FDA71BCULL},
      {"0123456789abcdef0123456789abcdef0123456789abcdefXYZ", 0x2068B5BE32B6D8DCULL},
      {bytes_0_to_99, 0x6AC1E58032166597ULL},
  };
  for (const auto& v : vectors) {
    EXPECT_EQ(hash_key(v.input.data(), v.input.size()), v.expected)
        << "input size " << v.input.size();
  }
}

// --- every balancer -----------------------------------------------------------

class EveryBalancer : public ::testing::TestWithParam<Balance> {};

TEST_P(EveryBalancer, ReturnsMinusOneWhenEveryTargetIsExcluded) {
  auto balancer = make(GetParam(), {1, 2, 3});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(balancer->pick(key_hash(i), {true, true, true}), -1);
}

TEST_P(EveryBalancer, NeverPicksAnExcludedTarget) {
  auto balancer = make(GetParam(), {1, 5, 1, 1});
  const Excluded excluded = {false, true, false, true};
  for (int i = 0; i < 2000; ++i) {
    int t = balancer->pick(key_hash(i), excluded);
    ASSERT_TRUE(t == 0 || t == 2) << "picked " << t;
  }
}

TEST_P(EveryBalancer, PicksTheOnlyUsableTarget) {
  auto balancer = make(GetParam(), {3, 1, 2});
  for (int i = 0; i < 200; ++i) EXPECT_EQ(balancer->pick(key_hash(i), {true, false, true}), 1);
}

TEST_P(EveryBalancer, TreatsAShortExclusionVectorAsUsableBeyondItsEnd) {
  auto balancer = make(GetParam(), {1, 1});
  for (int i = 0; i < 200; ++i) EXPECT_EQ(balancer->pick(key_hash(i), {true}), 1);
  for (int i = 0; i < 200; ++i) {
    int t = balancer->pick(key_hash(i), {});
    EXPECT_TRUE(t == 0 || t == 1);
  }
}

TEST_P(EveryBalancer, HandlesASingleTarget) {
  auto balancer = make(GetParam(), {7});
  EXPECT_EQ(balancer->pick(1, {}), 0);
  EXPECT_EQ(balancer->pick(2, {true}), -1);
}

INSTANTIATE_TEST_SUITE_P(Kinds, EveryBalancer,
                         ::testing::Values(Balance::kRoundRobin, Balance::kLeastRequest,
                                           Balance::kConsistentHash, Balance::kRandom),
                         [](const auto& info) {
                           switch (info.param) {
                             case Balance::kRoundRobin:
                               return "RoundRobin";
                             case Balance::kLeastRequest:
                               return "LeastRequest";
                             case Balance::kConsistentHash:
                               return "ConsistentHash";
                             case Balance::kRandom:
                               return "Random";
                           }
                           return "Unknown";
                         });

// --- round_robin --------------------------------------------------------------

std::string rr_sequence(Balancer& balancer, int picks, const Excluded& excluded = {}) {
  std::string seq;
  for (int i = 0; i < picks; ++i)
    seq.push_back(static_cast<char>('a' + balancer.pick(0, excluded)));
  return seq;
}

TEST(RoundRobin, InterleavesWeightsLikeNginx) {
  auto balancer = make(Balance::kRoundRobin, {5, 1, 1});
  EXPECT_EQ(rr_sequence(*balancer, 14), "aabacaaaabacaa");
}

TEST(RoundRobin, AlternatesEqualWeights) {
  auto balancer = make(Balance::kRoundRobin, {1, 1, 1});
  EXPECT_EQ(rr_sequence(*balancer, 6), "abcabc");
}

TEST(RoundRobin, GivesEachTargetExactlyItsWeightPerCycle) {
  auto balancer = make(Balance::kRoundRobin, {3, 2, 1, 4});
  EXPECT_EQ(count_picks(*balancer, 4, 1000), (std::vector<int>{300, 200, 100, 400}));
}

TEST(RoundRobin, StaysSmoothAmongTheTargetsLeftWhenOneIsExcluded) {
  auto balancer = make(Balance::kRoundRobin, {5, 1, 1});
  // Without b the cycle is weights {5, 1}: c once in every six, never twice in a row.
  std::string seq = rr_sequence(*balancer, 60, {false, true, false});
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 'a'), 50);
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 'c'), 10);
  EXPECT_EQ(seq.find("cc"), std::string::npos);
  EXPECT_EQ(seq.find("aaaaaa"), std::string::npos);
}

TEST(RoundRobin, ResumesTheFullRotationWhenTheExclusionEnds) {
  auto balancer = make(Balance::kRoundRobin, {1, 1, 1});
  rr_sequence(*balancer, 5, {true, false, false});
  EXPECT_EQ(count_picks(*balancer, 3, 300), (std::vector<int>{100, 100, 100}));
}

// --- random -------------------------------------------------------------------

TEST(Random, FollowsWeights) {
  auto balancer = make(Balance::kRandom, {1, 3, 6});
  auto counts = count_picks(*balancer, 3, 100000);
  EXPECT_NEAR(counts[0], 10000, 600);
  EXPECT_NEAR(counts[1], 30000, 900);
  EXPECT_NEAR(counts[2], 60000, 900);
}

TEST(Random, FollowsWeightsOfTheTargetsLeftWhenSomeAreExcluded) {
  auto balancer = make(Balance::kRandom, {1, 100, 3});
  auto counts = count_picks(*balancer, 3, 40000, {false, true, false});
  EXPECT_EQ(counts[1], 0);
  EXPECT_NEAR(counts[0], 10000, 600);
  EXPECT_NEAR(counts[2], 30000, 600);
}

TEST(Random, RepeatsTheSameSequenceForTheSameSeed) {
  auto a = make(Balance::kRandom, {1, 1, 1, 1}, 7);
  auto b = make(Balance::kRandom, {1, 1, 1, 1}, 7);
  auto c = make(Balance::kRandom, {1, 1, 1, 1}, 8);
  std::string seq_a = rr_sequence(*a, 64);
  EXPECT_EQ(seq_a, rr_sequence(*b, 64));
  EXPECT_NE(seq_a, rr_sequence(*c, 64));
}

// --- least_request --------------------------------------------------------------

TEST(LeastRequest, PrefersTheTargetWithFewerRequestsInFlight) {
  auto balancer = make(Balance::kLeastRequest, {1, 1});
  for (int i = 0; i < 3; ++i) balancer->on_request_start(0);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(balancer->pick(0, {}), 1);
}

TEST(LeastRequest, NeverPicksTheMostLoadedTargetOfMany) {
  auto balancer = make(Balance::kLeastRequest, {1, 1, 1, 1});
  for (int i = 0; i < 5; ++i) balancer->on_request_start(2);
  auto counts = count_picks(*balancer, 4, 1000);
  EXPECT_EQ(counts[2], 0);
  // Two distinct choices: each idle target wins every pairing it is in.
  EXPECT_GT(counts[0], 250);
  EXPECT_GT(counts[1], 250);
  EXPECT_GT(counts[3], 250);
}

TEST(LeastRequest, ScalesLoadByWeight) {
  auto balancer = make(Balance::kLeastRequest, {4, 1});
  // Three in flight on a weight-4 target is a lighter load than one on a weight-1 target.
  for (int i = 0; i < 3; ++i) balancer->on_request_start(0);
  balancer->on_request_start(1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(balancer->pick(0, {}), 0);
}

TEST(LeastRequest, PicksTheHeavierOfTwoIdleTargets) {
  auto balancer = make(Balance::kLeastRequest, {1, 2});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(balancer->pick(0, {}), 1);
}

TEST(LeastRequest, FinishedRequestsNoLongerCount) {
  auto balancer = make(Balance::kLeastRequest, {1, 1});
  balancer->on_request_start(0);
  EXPECT_EQ(balancer->pick(0, {}), 1);
  balancer->on_request_end(0);
  balancer->on_request_start(1);
  EXPECT_EQ(balancer->pick(0, {}), 0);
}

TEST(LeastRequest, IgnoresUnmatchedEndsAndUnknownTargets) {
  auto balancer = make(Balance::kLeastRequest, {1, 1});
  balancer->on_request_end(0);  // must not wrap to a huge count
  balancer->on_request_start(-1);
  balancer->on_request_start(7);
  balancer->on_request_start(1);
  EXPECT_EQ(balancer->pick(0, {}), 0);
}

TEST(LeastRequest, SpreadsOpenRequestsInProportionToWeights) {
  const std::vector<uint32_t> weights = {1, 1, 2, 4};
  auto balancer = make(Balance::kLeastRequest, weights);
  std::vector<int> in_flight(weights.size(), 0);
  for (int i = 0; i < 800; ++i) {
    int t = balancer->pick(0, {});
    balancer->on_request_start(t);
    ++in_flight[t];
  }
  // Two choices keep every target within a request or two of its share.
  EXPECT_NEAR(in_flight[0], 100, 5);
  EXPECT_NEAR(in_flight[1], 100, 5);
  EXPECT_NEAR(in_flight[2], 200, 5);
  EXPECT_NEAR(in_flight[3], 400, 5);
}

// --- consistent_hash ------------------------------------------------------------

TEST(ConsistentHash, SendsAKeyToTheSameTargetOnEveryWorker) {
  auto a = make(Balance::kConsistentHash, {1, 1, 1, 1, 1}, 1);
  auto b = make(Balance::kConsistentHash, {1, 1, 1, 1, 1}, 2);
  for (int i = 0; i < kKeys; ++i) {
    int t = a->pick(key_hash(i), {});
    ASSERT_EQ(t, a->pick(key_hash(i), {}));
    ASSERT_EQ(t, b->pick(key_hash(i), {}));
  }
}

TEST(ConsistentHash, SpreadsKeysEvenly) {
  auto balancer = make(Balance::kConsistentHash, {1, 1, 1, 1, 1});
  for (int count : count_keys(*balancer, 5)) EXPECT_NEAR(count, kKeys / 5, kKeys / 5 * 0.1);
}

TEST(ConsistentHash, SpreadsKeysPerWeight) {
  auto balancer = make(Balance::kConsistentHash, {1, 2, 3, 4});
  auto counts = count_keys(*balancer, 4);
  for (int i = 0; i < 4; ++i) {
    double expected = kKeys * (i + 1) / 10.0;
    EXPECT_NEAR(counts[i], expected, expected * 0.1) << "target " << i;
  }
}

TEST(ConsistentHash, AddingATargetMovesAboutItsShareOfKeys) {
  for (std::size_t n : {3, 10, 30}) {
    auto before = make(Balance::kConsistentHash, std::vector<uint32_t>(n, 1));
    auto after = make(Balance::kConsistentHash, std::vector<uint32_t>(n + 1, 1));
    int moved = 0;
    int moved_to_new = 0;
    for (int i = 0; i < kKeys; ++i) {
      int old_target = before->pick(key_hash(i), {});
      int new_target = after->pick(key_hash(i), {});
      if (old_target != new_target) ++moved;
      if (new_target == static_cast<int>(n)) ++moved_to_new;
    }
    const double ideal = 1.0 / (n + 1);
    const double moved_fraction = static_cast<double>(moved) / kKeys;
    EXPECT_GT(moved_fraction, ideal * 0.8) << n << " targets";
    // Maglev moves a few keys between old targets too; a modulo hash would move n/(n+1).
    EXPECT_LT(moved_fraction, ideal * 1.5) << n << " targets";
    EXPECT_NEAR(static_cast<double>(moved_to_new) / kKeys, ideal, ideal * 0.2) << n << " targets";
  }
}

TEST(ConsistentHash, RemovingATargetFromTheMiddleMovesAboutItsShareOfKeys) {
  // Targets are known by stable ids (the gateway passes a hash of the
  // address), so removing the third target does not renumber the others.
  const std::vector<uint64_t> ids = {101, 202, 303, 404, 505, 606, 707, 808, 909, 1010};
  std::vector<uint64_t> fewer = ids;
  fewer.erase(fewer.begin() + 2);
  auto before =
      make_balancer(Balance::kConsistentHash, std::vector<uint32_t>(ids.size(), 1), 1, ids);
  auto after =
      make_balancer(Balance::kConsistentHash, std::vector<uint32_t>(fewer.size(), 1), 1, fewer);
  int moved = 0;
  for (int i = 0; i < kKeys; ++i) {
    uint64_t old_id = ids[static_cast<std::size_t>(before->pick(key_hash(i), {}))];
    uint64_t new_id = fewer[static_cast<std::size_t>(after->pick(key_hash(i), {}))];
    if (old_id != new_id) ++moved;
  }
  const double share = 1.0 / static_cast<double>(ids.size());
  const double moved_fraction = static_cast<double>(moved) / kKeys;
  EXPECT_GT(moved_fraction, share * 0.8);
  EXPECT_LT(moved_fraction, share * 1.5);  // by index, about half the keys would move
}

TEST(ConsistentHash, ExcludingATargetMovesOnlyItsKeys) {
  auto balancer = make(Balance::kConsistentHash, {1, 1, 1, 1, 1});
  const Excluded excluded = {false, false, true, false, false};
  std::vector<int> fallback_counts(5, 0);
  for (int i = 0; i < kKeys; ++i) {
    int home = balancer->pick(key_hash(i), {});
    int now = balancer->pick(key_hash(i), excluded);
    if (home != 2) {
      ASSERT_EQ(now, home);
    } else {
      ASSERT_NE(now, 2);
      ++fallback_counts[now];
    }
  }
  // The excluded target's keys spread over all the others, not onto one neighbour.
  for (int t : {0, 1, 3, 4}) EXPECT_GT(fallback_counts[t], kKeys / 5 / 8) << "target " << t;
}

TEST(ConsistentHash, FallsBackToTheSameTargetForTheSameKey) {
  auto a = make(Balance::kConsistentHash, {1, 1, 1, 1}, 1);
  auto b = make(Balance::kConsistentHash, {1, 1, 1, 1}, 2);
  for (int i = 0; i < 1000; ++i) {
    uint64_t h = key_hash(i);
    Excluded excluded(4, false);
    excluded[a->pick(h, {})] = true;
    int fallback = a->pick(h, excluded);
    ASSERT_EQ(fallback, a->pick(h, excluded));
    ASSERT_EQ(fallback, b->pick(h, excluded));
  }
}

TEST(ConsistentHash, FindsAVeryLightTargetWhenItIsTheOnlyOneLeft) {
  auto balancer = make(Balance::kConsistentHash, {1000000, 1});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(balancer->pick(key_hash(i), {true, false}), 1);
}

}  // namespace
}  // namespace gatehouse::proxy
