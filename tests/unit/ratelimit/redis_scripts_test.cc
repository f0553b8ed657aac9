// The rate-limit Lua scripts against a real redis-server (started by the
// fixture on a free loopback port), checked against the local store.
#include "ratelimit/redis_scripts.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ratelimit/local_store.h"
#include "ratelimit/redis_client.h"
#include "redis_server.h"

namespace gatehouse::ratelimit {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using test::free_port;
using test::RedisServer;
using test::run_until;

constexpr int64_t kDay = 86400000;

RedisReply eval_sync(asio::io_context& io, RedisClient& client, const RedisScript& script,
                     const std::vector<std::string>& keys, const std::vector<std::string>& args) {
  std::optional<RedisReply> out;
  asio::co_spawn(
      io.get_executor(),
      [&]() -> proxy::Task<void> { out = co_await client.eval(script, keys, args); },
      asio::detached);
  run_until(
      io, [&] { return out.has_value(); }, 5000ms);
  if (!out) {
    ADD_FAILURE() << "eval did not complete within 5 s";
    return {};
  }
  return *out;
}

class RedisScripts : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new RedisServer();
    if (!server_->start()) {
      delete server_;
      server_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr) << "redis-server did not start";
    RedisConfig cfg;
    cfg.host = "127.0.0.1";
    cfg.port = server_->port();
    cfg.timeout_ms = 3000;
    client_ = std::make_unique<RedisClient>(io_, cfg);
    key_prefix_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  // One hit on `key` (the limit's key string), at Redis's time or at `now_ms`.
  Decision hit(const std::string& key, const LimitSpec& spec,
               std::optional<int64_t> now_ms = std::nullopt) {
    std::vector<std::string> args = redis_args(spec);
    if (now_ms) args.push_back(std::to_string(*now_ms));
    RedisReply r =
        eval_sync(io_, *client_, redis_script(spec.algorithm), redis_keys(key, spec), args);
    Decision d;
    EXPECT_TRUE(decision_from_reply(r, spec, d)) << r.ok << " " << r.error;
    return d;
  }

  std::string key(const std::string& suffix) { return key_prefix_ + ":" + suffix; }

  static RedisServer* server_;
  asio::io_context io_;
  std::unique_ptr<RedisClient> client_;
  std::string key_prefix_;
};

RedisServer* RedisScripts::server_ = nullptr;

std::string describe(const Decision& d) {
  return "{allowed " + std::to_string(d.allowed) + ", limit " + std::to_string(d.limit) +
         ", remaining " + std::to_string(d.remaining) + ", reset " + std::to_string(d.reset_s) +
         ", retry " + std::to_string(d.retry_after_s) + "}";
}

bool same(const Decision& a, const Decision& b) {
  return a.allowed == b.allowed && a.limit == b.limit && a.remaining == b.remaining &&
         a.reset_s == b.reset_s && a.retry_after_s == b.retry_after_s;
}

LimitSpec make_spec(Algorithm a, uint64_t limit, int64_t window_ms, uint64_t burst = 0) {
  LimitSpec s;
  s.algorithm = a;
  s.limit = limit;
  s.window_ms = window_ms;
  s.burst = burst;
  return s;
}

const char* name(Algorithm a) {
  switch (a) {
    case Algorithm::kSlidingWindow:
      return "sliding";
    case Algorithm::kFixedWindow:
      return "fixed";
    default:
      return "bucket";
  }
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(RedisScriptGlue, KeysArgsAndScripts) {
  LimitSpec s = make_spec(Algorithm::kSlidingWindow, 100, 60000);
  EXPECT_EQ(redis_keys("route:7|1.2.3.4", s),
            std::vector<std::string>{"gh:rl:{route:7|1.2.3.4}:sw:60000"});
  EXPECT_EQ(redis_args(s), (std::vector<std::string>{"100", "60000", "100"}));
  s = make_spec(Algorithm::kFixedWindow, 5, 30 * kDay);
  EXPECT_EQ(redis_keys("k", s), std::vector<std::string>{"gh:rl:{k}:fw:2592000000"});
  s = make_spec(Algorithm::kTokenBucket, 10, 1000, 25);
  EXPECT_EQ(redis_keys("k", s), std::vector<std::string>{"gh:rl:{k}:tb:1000"});
  EXPECT_EQ(redis_args(s), (std::vector<std::string>{"10", "1000", "25"}));
  EXPECT_NE(redis_script(Algorithm::kSlidingWindow).sha1,
            redis_script(Algorithm::kFixedWindow).sha1);
  EXPECT_NE(redis_script(Algorithm::kFixedWindow).sha1, redis_script(Algorithm::kTokenBucket).sha1);
  EXPECT_EQ(&redis_script(Algorithm::kTokenBucket), &redis_script(Algorithm::kTokenBucket));
}

TEST(RedisScriptGlue, DecisionFromReply) {
  const LimitSpec s = make_spec(Algorithm::kSlidingWindow, 10, 1000);
  Decision d;
  EXPECT_TRUE(decision_from_reply(RedisReply{true, "", {0, 10, 0, 3, 2}}, s, d));
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(d.tracked);
  EXPECT_EQ(d.limit, 10u);
  EXPECT_EQ(d.remaining, 0u);
  EXPECT_EQ(d.reset_s, 3);
  EXPECT_EQ(d.retry_after_s, 2);
  EXPECT_TRUE(decision_from_reply(RedisReply{true, "", {1, 10, 9, 1, 0}}, s, d));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 9u);
  Decision before = d;
  EXPECT_FALSE(decision_from_reply(RedisReply{false, "timed out", {}}, s, d));
  EXPECT_FALSE(decision_from_reply(RedisReply{true, "", {1, 10, 9, 1}}, s, d));
  EXPECT_FALSE(decision_from_reply(RedisReply{true, "", {1, 10, 9, 1, 0, 0}}, s, d));
  EXPECT_FALSE(decision_from_reply(RedisReply{true, "", {2, 10, 9, 1, 0}}, s, d));
  EXPECT_FALSE(decision_from_reply(RedisReply{true, "", {1, 11, 9, 1, 0}}, s, d));
  EXPECT_FALSE(decision_from_reply(RedisReply{true, "", {1, 10, -1, 1, 0}}, s, d));
  EXPECT_FALSE(decision_from_reply(RedisReply{true, "", {0, 10, 0, 1, -5}}, s, d));
  EXPECT_TRUE(same(d, before));
  // The bucket reports its capacity.
  const LimitSpec b = make_spec(Algorithm::kTokenBucket, 10, 1000, 30);
  EXPECT_TRUE(decision_from_reply(RedisReply{true, "", {1, 30, 29, 1, 0}}, b, d));
  EXPECT_FALSE(decision_from_reply(RedisReply{true, "", {1, 10, 9, 1, 0}}, b, d));
}

TEST_F(RedisScripts, ExactlyTheLimitPerWindowForEachAlgorithm) {
  for (Algorithm a :
       {Algorithm::kSlidingWindow, Algorithm::kFixedWindow, Algorithm::kTokenBucket}) {
    SCOPED_TRACE(name(a));
    const LimitSpec spec = make_spec(a, 5, 3600000);
    const std::string k = key(name(a));
    int allowed = 0;
    for (int i = 0; i < 8; ++i) {
      Decision d = hit(k, spec);
      EXPECT_EQ(d.limit, 5u);
      EXPECT_GT(d.reset_s, 0);
      if (d.allowed) {
        ++allowed;
        EXPECT_EQ(d.remaining, static_cast<uint64_t>(5 - allowed)) << describe(d);
        EXPECT_EQ(d.retry_after_s, 0);
      } else {
        EXPECT_EQ(d.remaining, 0u);
        EXPECT_GT(d.retry_after_s, 0) << describe(d);
        // A sliding window may have to wait into the next window for the
        // previous one's weight to fall: up to two windows.
        EXPECT_LE(d.retry_after_s, a == Algorithm::kSlidingWindow ? 7200 : 3600);
      }
    }
    EXPECT_EQ(allowed, 5);
    // Written keys expire: two windows, or the bucket's full-refill time.
    const std::string redis_key = redis_keys(k, spec)[0];
    const int64_t ttl = std::stoll(server_->command({"PTTL", redis_key}));
    if (a == Algorithm::kTokenBucket) {
      EXPECT_GT(ttl, 3500000);
      EXPECT_LE(ttl, 3600002);
    } else {
      EXPECT_GT(ttl, 7100000);
      EXPECT_LE(ttl, 7200000);
    }
  }
  // Other keys are counted apart.
  EXPECT_TRUE(hit(key("other"), make_spec(Algorithm::kSlidingWindow, 5, 3600000)).allowed);
}

TEST_F(RedisScripts, FixedWindowResetsAfterTheWindow) {
  const LimitSpec spec = make_spec(Algorithm::kFixedWindow, 3, 1000);
  // Start early in a second, so that the hits below share one window.
  if (const int64_t into = wall_ms() % 1000; into > 600)
    std::this_thread::sleep_for(std::chrono::milliseconds(1010 - into));
  const std::string k = key("fw");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(hit(k, spec).allowed) << i;
  Decision d = hit(k, spec);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 1);
  EXPECT_EQ(d.reset_s, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1030 - wall_ms() % 1000));
  d = hit(k, spec);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 2u);
}

TEST_F(RedisScripts, TokenBucketRefills) {
  {  // On Redis's clock: 2 tokens a second (one per 500 ms), at most 2 at once.
    const LimitSpec spec = make_spec(Algorithm::kTokenBucket, 2, 1000, 2);
    const std::string k = key("real");
    Decision d = hit(k, spec);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.limit, 2u);
    EXPECT_EQ(d.remaining, 1u);
    EXPECT_EQ(d.reset_s, 1);
    EXPECT_TRUE(hit(k, spec).allowed);
    d = hit(k, spec);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.retry_after_s, 1);
    EXPECT_EQ(d.reset_s, 1);
    std::this_thread::sleep_for(700ms);  // one token back (and 2/5 of the next)
    d = hit(k, spec);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 0u);
    EXPECT_FALSE(hit(k, spec).allowed);
  }
  {  // On a synthetic clock: 5 tokens a second (one per 200 ms), at most 2.
    const LimitSpec spec = make_spec(Algorithm::kTokenBucket, 5, 1000, 2);
    const std::string k = key("synthetic");
    const int64_t t = 5'000'000;
    EXPECT_TRUE(hit(k, spec, t).allowed);
    EXPECT_TRUE(hit(k, spec, t).allowed);
    Decision d = hit(k, spec, t + 199);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.retry_after_s, 1);
    d = hit(k, spec, t + 300);  // one token, and half of the next
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 0u);
    EXPECT_FALSE(hit(k, spec, t + 399).allowed);
    EXPECT_TRUE(hit(k, spec, t + 400).allowed);
    EXPECT_FALSE(hit(k, spec, t + 400).allowed);
    // Full after a long pause, never more than the burst.
    EXPECT_TRUE(hit(k, spec, t + 60000).allowed);
    d = hit(k, spec, t + 60000);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 0u);
    EXPECT_EQ(d.reset_s, 1);  // 2 tokens * 200 ms
    d = hit(k, spec, t + 60000);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.reset_s, 1);
  }
}

TEST_F(RedisScripts, SlidingWindowCarriesThePreviousWindow) {
  const LimitSpec spec = make_spec(Algorithm::kSlidingWindow, 10, 10000);
  const std::string k = key("sw");
  const int64_t base = 1000000 * spec.window_ms;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(hit(k, spec, base + 100).allowed);
  EXPECT_FALSE(hit(k, spec, base + 200).allowed);
  // Half-way through the next window, the previous one still weighs 5.
  int allowed = 0;
  Decision last;
  for (int i = 0; i < 8; ++i) {
    last = hit(k, spec, base + 15000);
    allowed += last.allowed;
  }
  EXPECT_EQ(allowed, 5);
  EXPECT_FALSE(last.allowed);
  // One more fits once 1/10 more of the previous window has slid out.
  EXPECT_EQ(last.retry_after_s, 1);
  EXPECT_FALSE(hit(k, spec, base + 15999).allowed);
  EXPECT_TRUE(hit(k, spec, base + 16000).allowed);
  // Two windows later, nothing is left.
  Decision d = hit(k, spec, base + 30000);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 9u);
}

// The scripts against the local store's apply_hit, hit by hit, on the same
// synthetic times.
TEST_F(RedisScripts, MatchTheLocalStoreOnSyntheticTimes) {
  const std::vector<LimitSpec> specs = {
      make_spec(Algorithm::kSlidingWindow, 5, 1000),
      make_spec(Algorithm::kSlidingWindow, 100, 60000),
      make_spec(Algorithm::kSlidingWindow, 1, 1000),
      make_spec(Algorithm::kSlidingWindow, 7, 30 * kDay),
      make_spec(Algorithm::kFixedWindow, 5, 1000),
      make_spec(Algorithm::kFixedWindow, 100, 60000),
      make_spec(Algorithm::kFixedWindow, 3, 30 * kDay),
      make_spec(Algorithm::kTokenBucket, 5, 1000),
      make_spec(Algorithm::kTokenBucket, 3, 10000, 10),
      make_spec(Algorithm::kTokenBucket, 1000, 1000, 50),
      make_spec(Algorithm::kTokenBucket, 7, 30 * kDay),
  };
  std::mt19937_64 rng(20240601);
  int n = 0;
  for (const LimitSpec& spec : specs) {
    const std::string k = key(std::to_string(n++));
    SCOPED_TRACE(std::string(name(spec.algorithm)) + " limit " + std::to_string(spec.limit) +
                 " window " + std::to_string(spec.window_ms) + " burst " +
                 std::to_string(spec.burst));
    // (The local store keeps bucket times in 40 bits: stay well below 2^40 ms.)
    int64_t now = 10'000'000'000 + static_cast<int64_t>(rng() % 100000);
    uint64_t state = 0;
    int mismatches = 0, allowed = 0, refused = 0;
    for (int i = 0; i < 300 && mismatches < 3; ++i) {
      const int64_t w = spec.window_ms;
      // Mostly about two hits per limit's worth of time, so that the limit
      // is reached, with a jump over a window or more now and then.
      const uint64_t dice = rng() % (4 * spec.limit + 10);
      if (dice == 0)
        now += static_cast<int64_t>(rng() % static_cast<uint64_t>(3 * w));
      else if (dice == 1)
        now += static_cast<int64_t>(rng() % static_cast<uint64_t>(w));
      else
        now += static_cast<int64_t>(rng() % static_cast<uint64_t>(w / spec.limit + 1));
      Decision want;
      state = apply_hit(state, spec, now, want);
      Decision got = hit(k, spec, now);
      (want.allowed ? allowed : refused)++;
      if (!same(got, want)) {
        ++mismatches;
        ADD_FAILURE() << "hit " << i << " at " << now << ": redis " << describe(got) << ", local "
                      << describe(want);
      }
    }
    EXPECT_GT(allowed, 0);
    EXPECT_GT(refused, 0);
  }
}

// Counts and windows so large that the products exceed 2^53 (where Lua's
// doubles stop being exact): the scripts still agree with the local store
// at the exact boundary.
TEST_F(RedisScripts, ExactArithmeticAtTheLargestLimits) {
  const LimitSpec spec = make_spec(Algorithm::kSlidingWindow, 16000000, 30 * kDay);
  const int64_t w = spec.window_ms;
  const uint64_t index = 100;
  const int64_t start = static_cast<int64_t>(index) * w;
  // The local store's packed word: | index (16) | previous (24) | current (24) |.
  auto packed = [](uint64_t i, uint64_t prev, uint64_t cur) {
    return (i & 0xffff) << 48 | prev << 24 | cur;
  };
  {
    Decision d;
    if (apply_hit(0, spec, start, d) != packed(index, 0, 1))
      GTEST_SKIP() << "the local store's state layout changed";
  }
  // prev * (w - e) == room * w exactly at e = w / 2 (prev = 2 * room).
  const uint64_t prev = 15000000, room = 7500000, cur = spec.limit - 1 - room;
  struct Case {
    int64_t elapsed;
    uint64_t cur;
  };
  const std::vector<Case> cases = {{w / 2, cur},         {w / 2 - 1, cur}, {w / 2 + 1, cur},
                                   {w / 2, cur + 1},     {w / 3, cur - 5}, {w - 1, cur + 10},
                                   {w / 2 - 7, cur - 1}, {1, 1000000}};
  int n = 0;
  for (const Case& c : cases) {
    const std::string k = key(std::to_string(n++));
    const std::string redis_key = redis_keys(k, spec)[0];
    ASSERT_EQ(server_->command({"HSET", redis_key, "i", std::to_string(index), "p",
                                std::to_string(prev), "c", std::to_string(c.cur)}),
              "3");
    Decision want;
    apply_hit(packed(index, prev, c.cur), spec, start + c.elapsed, want);
    Decision got = hit(k, spec, start + c.elapsed);
    EXPECT_TRUE(same(got, want)) << "elapsed " << c.elapsed << " cur " << c.cur << ": redis "
                                 << describe(got) << ", local " << describe(want);
  }
}

}  // namespace
}  // namespace gatehouse::ratelimit
