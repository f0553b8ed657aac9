#include "ratelimit/local_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <memory>
#include <thread>
#include <vector>

namespace gatehouse::ratelimit {
namespace {

LimitSpec spec(Algorithm a, uint64_t limit, int64_t window_ms, uint64_t burst = 0) {
  return LimitSpec{a, limit, window_ms, burst};
}

int allowed(LocalStore& store, uint64_t key, const LimitSpec& s, int64_t now, int n) {
  int ok = 0;
  for (int i = 0; i < n; ++i) ok += store.hit(key, s, now).allowed ? 1 : 0;
  return ok;
}

TEST(LocalStore, FixedWindowAllowsExactlyTheLimitThenResets) {
  LocalStore store(1024);
  auto s = spec(Algorithm::kFixedWindow, 5, 60'000);
  EXPECT_EQ(allowed(store, 42, s, 1'000, 8), 5);
  Decision d = store.hit(42, s, 59'000);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 0u);
  EXPECT_EQ(d.retry_after_s, 1);
  EXPECT_EQ(allowed(store, 42, s, 60'000, 8), 5);  // next window
}

TEST(LocalStore, RemainingCountsDownAndResetIsTheWindowEnd) {
  LocalStore store(1024);
  auto s = spec(Algorithm::kSlidingWindow, 3, 10'000);
  Decision d = store.hit(7, s, 0);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.limit, 3u);
  EXPECT_EQ(d.remaining, 2u);
  EXPECT_EQ(d.reset_s, 10);
  EXPECT_EQ(store.hit(7, s, 4'000).remaining, 1u);
  EXPECT_EQ(store.hit(7, s, 4'000).remaining, 0u);
  d = store.hit(7, s, 4'000);
  EXPECT_FALSE(d.allowed);
  EXPECT_GE(d.retry_after_s, 1);
  EXPECT_LE(d.reset_s, 10);
}

TEST(LocalStore, SlidingWindowWeighsThePreviousWindow) {
  LocalStore store(1024);
  auto s = spec(Algorithm::kSlidingWindow, 10, 10'000);
  EXPECT_EQ(allowed(store, 1, s, 9'000, 10), 10);
  // 10% into the next window 90% of the previous 10 still count: 9 -> 1 left.
  EXPECT_EQ(allowed(store, 1, s, 11'000, 5), 1);
  // Halfway: 5 of the previous count, plus the 1 just taken -> 4 more.
  EXPECT_EQ(allowed(store, 1, s, 15'000, 10), 4);
  // Two windows later nothing of it is left.
  EXPECT_EQ(allowed(store, 1, s, 30'000, 20), 10);
}

TEST(LocalStore, TokenBucketAllowsTheBurstThenRefillsAtTheRate) {
  LocalStore store(1024);
  auto s = spec(Algorithm::kTokenBucket, 10, 10'000, 5);  // 1 token per second, burst 5
  EXPECT_EQ(allowed(store, 9, s, 0, 8), 5);
  Decision d = store.hit(9, s, 500);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 1);
  EXPECT_EQ(allowed(store, 9, s, 1'000, 3), 1);
  EXPECT_EQ(allowed(store, 9, s, 3'500, 5), 2);    // 2.5 s later: 2 whole tokens
  EXPECT_EQ(allowed(store, 9, s, 4'000, 5), 1);    // the half token carried over
  EXPECT_EQ(allowed(store, 9, s, 100'000, 9), 5);  // never more than the burst
}

TEST(LocalStore, KeysAreCountedSeparately) {
  LocalStore store(1024);
  auto s = spec(Algorithm::kFixedWindow, 2, 60'000);
  EXPECT_EQ(allowed(store, 1, s, 0, 5), 2);
  EXPECT_EQ(allowed(store, 2, s, 0, 5), 2);
  EXPECT_EQ(allowed(store, 0, s, 0, 5), 2);  // key 0 is remapped, still a key
}

TEST(LocalStore, ExactAcrossThreadsHittingOneKey) {
  LocalStore store(1 << 12);
  auto s = spec(Algorithm::kSlidingWindow, 1000, 60'000);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      int mine = 0;
      for (int i = 0; i < 500; ++i) mine += store.hit(77, s, 1'000).allowed ? 1 : 0;
      ok += mine;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1000);
}

TEST(LocalStore, ExactAcrossThreadsInsertingTheSameNewKeys) {
  LocalStore store(1 << 12);
  auto s = spec(Algorithm::kFixedWindow, 3, 60'000);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      int mine = 0;
      for (uint64_t key = 1; key <= 200; ++key) mine += store.hit(key * 7919, s, 5).allowed;
      ok += mine;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200 * 3);
}

// Two first hits of one key race while the slot before the key's goes
// stale between their scans: one sees it live and claims the next slot, the
// other sees it stale and claims it. Before claims of one key were
// serialised, both could count in slots of their own, and a bucket of one
// token let two requests through.
TEST(LocalStore, RacingFirstHitsAcrossAStaleSlotCountInOneSlot) {
  constexpr int kThreads = 2;
  constexpr int kRounds = 20'000;
  auto s = spec(Algorithm::kTokenBucket, 1, 1'000, 1);
  constexpr uint64_t kHome = 3, kOther = kHome + 16, kKey = kHome + 32;  // same home slot
  std::unique_ptr<LocalStore> store;
  std::atomic<int> ok{0};
  int over = 0;
  std::barrier start(kThreads + 1), done(kThreads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    // At 999 ms the other key's token is still spent (its slot is live); at
    // 1,000 ms it is back (stale). Either way the key has one token.
    threads.emplace_back([&, now = t == 0 ? 999 : 1'000] {
      for (int r = 0; r < kRounds; ++r) {
        start.arrive_and_wait();
        ok += store->hit(kKey, s, now).allowed ? 1 : 0;
        done.arrive_and_wait();
      }
    });
  }
  for (int r = 0; r < kRounds; ++r) {
    store = std::make_unique<LocalStore>(16);
    store->hit(kOther, s, 0);
    ok = 0;
    start.arrive_and_wait();
    done.arrive_and_wait();
    if (ok.load() != 1) ++over;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(over, 0) << "rounds in which the one token was given twice";
}

TEST(LocalStore, AFloodOfDistinctKeysIsBoundedAndReclaimedLater) {
  LocalStore store(256);
  auto s = spec(Algorithm::kFixedWindow, 1, 1'000);
  for (uint64_t key = 1; key <= 10'000; ++key) store.hit(key * 0x9E3779B97F4A7C15ull, s, 0);
  EXPECT_LE(store.occupied(), 256u);
  EXPECT_GT(store.untracked(), 0u);
  // Once their windows passed, the slots hold nothing: new keys are tracked.
  uint64_t before = store.untracked();
  EXPECT_TRUE(store.hit(123456789, s, 5'000).allowed);
  EXPECT_FALSE(store.hit(123456789, s, 5'000).allowed);
  EXPECT_EQ(store.untracked(), before);
}

TEST(LocalStore, StaleStatesAreRecognised) {
  auto s = spec(Algorithm::kSlidingWindow, 5, 1'000);
  Decision d;
  uint64_t st = apply_hit(0, s, 100, d);
  EXPECT_FALSE(is_stale(st, s, 1'500));  // the previous window still weighs
  EXPECT_TRUE(is_stale(st, s, 2'000));
  EXPECT_TRUE(is_stale(0, s, 0));
  auto b = spec(Algorithm::kTokenBucket, 1, 1'000, 2);
  st = apply_hit(0, b, 0, d);
  EXPECT_FALSE(is_stale(st, b, 500));
  EXPECT_TRUE(is_stale(st, b, 1'000));
}

TEST(CountTable, AcquiresUpToTheMaxAndReleases) {
  CountTable table(64);
  EXPECT_TRUE(table.acquire(5, 2));
  EXPECT_TRUE(table.acquire(5, 2));
  EXPECT_FALSE(table.acquire(5, 2));
  EXPECT_TRUE(table.acquire(6, 2));
  EXPECT_EQ(table.count(5), 2u);
  table.release(5);
  EXPECT_TRUE(table.acquire(5, 2));
  table.release(5);
  table.release(5);
  EXPECT_EQ(table.count(5), 0u);
}

TEST(CountTable, ExactAcrossThreads) {
  CountTable table(1 << 10);
  std::atomic<int> held{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) held += table.acquire(99, 50) ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(held.load(), 50);
  EXPECT_EQ(table.count(99), 50u);
}

// The same race for connection counts: one thread's first acquire of a key
// sees the slot before the key's held by another address, the other's sees
// it freed (it released that address itself just before). Before claims
// were serialised, both could take a slot of their own, and a limit of one
// connection admitted two.
TEST(CountTable, RacingFirstAcquiresAcrossAFreedSlotCountInOneSlot) {
  constexpr int kRounds = 100'000;
  constexpr uint64_t kHome = 5, kOther = kHome + 64, kKey = kHome + 128;  // same home slot
  std::unique_ptr<CountTable> table;
  std::atomic<int> held{0};
  int over = 0;
  std::barrier start(3), done(3);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, releases = t == 1] {
      for (int r = 0; r < kRounds; ++r) {
        start.arrive_and_wait();
        if (releases) table->release(kOther);
        held += table->acquire(kKey, 1) ? 1 : 0;
        done.arrive_and_wait();
      }
    });
  }
  for (int r = 0; r < kRounds; ++r) {
    table = std::make_unique<CountTable>(64);
    EXPECT_TRUE(table->acquire(kOther, 1));
    held = 0;
    start.arrive_and_wait();
    done.arrive_and_wait();
    if (held.load() != 1 || table->count(kKey) != 1) ++over;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(over, 0) << "rounds in which a limit of one admitted two";
}

}  // namespace
}  // namespace gatehouse::ratelimit
