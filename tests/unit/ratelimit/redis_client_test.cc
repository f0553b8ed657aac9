// RedisClient against a real redis-server, started by the fixture on a free
// loopback port and killed at the end.
#include "ratelimit/redis_client.h"

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

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "redis_server.h"

namespace gatehouse::ratelimit {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using test::free_port;
using test::RedisServer;
using test::run_until;

void run_for(asio::io_context& io, std::chrono::milliseconds d) {
  run_until(
      io, [] { return false; }, d);
}

RedisReply eval(asio::io_context& io, RedisClient& client, const RedisScript& script,
                std::vector<std::string> keys, std::vector<std::string> args) {
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

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

const RedisScript& echo_script() {
  static const RedisScript s(
      "local r = {}\nfor i, a in ipairs(ARGV) do r[i] = tonumber(a) end\nreturn r\n");
  return s;
}

// Calls the echo script with `arg` every 50 ms until it succeeds or `limit`
// has passed; returns the last reply. each(reply, ms) sees every call and
// how long it took.
RedisReply eval_until_ok(
    asio::io_context& io, RedisClient& client, const std::string& arg,
    std::chrono::milliseconds limit,
    const std::function<void(const RedisReply&, int64_t)>& each = [](const RedisReply&, int64_t) {
    }) {
  const auto t0 = Clock::now();
  RedisReply r;
  while (Clock::now() - t0 < limit) {
    auto t = Clock::now();
    r = eval(io, client, echo_script(), {}, {arg});
    each(r, ms_since(t));
    if (r.ok) break;
    run_for(io, 50ms);
  }
  return r;
}

RedisConfig local_config(uint16_t port, int64_t timeout_ms) {
  RedisConfig cfg;
  cfg.host = "127.0.0.1";
  cfg.port = port;
  cfg.timeout_ms = timeout_ms;
  return cfg;
}

TEST(RedisScriptSha, MatchesKnownDigestsAndRedis) {
  EXPECT_EQ(RedisScript("").sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(RedisScript("abc").sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
  RedisServer server;
  ASSERT_TRUE(server.start());
  EXPECT_EQ(server.command({"SCRIPT", "LOAD", echo_script().source}), echo_script().sha1);
}

TEST(RedisClient, EvalRoundTripAndNoscriptFallback) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisClient client(io, local_config(server.port(), 2000));
  EXPECT_FALSE(client.healthy());  // lazy: nothing opened yet

  // First call: Redis has never seen the script (NOSCRIPT, then EVAL).
  RedisReply r = eval(io, client, echo_script(), {}, {"1", "-2", "9007199254740993"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.integers, (std::vector<int64_t>{1, -2, 9007199254740992}));  // Lua doubles
  EXPECT_TRUE(client.healthy());
  EXPECT_EQ(server.command({"SCRIPT", "EXISTS", echo_script().sha1}), "1");

  // Keys are passed as KEYS, binary-safe.
  static const RedisScript keys_script(
      "redis.call('SET', KEYS[1], ARGV[1])\nreturn {string.len(KEYS[1]), "
      "tonumber(redis.call('GET', KEYS[1]))}\n");
  std::string binary_key("a\0b\r\n{x}", 8);
  r = eval(io, client, keys_script, {binary_key}, {"42"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.integers, (std::vector<int64_t>{8, 42}));

  // Script cache flushed behind the client's back: EVAL once, EVALSHA after.
  EXPECT_EQ(server.command({"SCRIPT", "FLUSH"}), "OK");
  EXPECT_EQ(server.command({"CONFIG", "RESETSTAT"}), "OK");
  for (int i = 0; i < 3; ++i) {
    r = eval(io, client, echo_script(), {}, {std::to_string(i)});
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.integers, (std::vector<int64_t>{i}));
  }
  std::string stats = server.command({"INFO", "commandstats"});
  EXPECT_NE(stats.find("cmdstat_evalsha:calls=3,"), std::string::npos) << stats;
  EXPECT_NE(stats.find("cmdstat_eval:calls=1,"), std::string::npos) << stats;
}

TEST(RedisClient, BadRepliesAreErrors) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisClient client(io, local_config(server.port(), 2000));
  RedisReply r = eval(io, client, RedisScript("return {1, 'two'}"), {}, {});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("not an integer"), std::string::npos) << r.error;
  r = eval(io, client, RedisScript("return 7"), {}, {});
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.error.empty());
  r = eval(io, client, RedisScript("return redis.error_reply('boom')"), {}, {});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("boom"), std::string::npos) << r.error;
  r = eval(io, client, RedisScript("return {}"), {}, {});
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.integers.empty());
  r = eval(io, client, RedisScript("this is not lua"), {}, {});
  EXPECT_FALSE(r.ok);
  // The connection is fine after all that.
  r = eval(io, client, echo_script(), {}, {"5"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(client.healthy());
}

TEST(RedisClient, PipelinesManyConcurrentCalls) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisClient client(io, local_config(server.port(), 3000));
  constexpr int kCalls = 200;
  int completed = 0, matched = 0;
  std::vector<std::string> failures;
  for (int i = 0; i < kCalls; ++i) {
    asio::co_spawn(
        io.get_executor(),
        [&, i]() -> proxy::Task<void> {
          std::vector<std::string> args = {std::to_string(i), std::to_string(i * 7 + 1)};
          const std::vector<std::string> no_keys;
          RedisReply r = co_await client.eval(echo_script(), no_keys, args);
          ++completed;
          if (!r.ok)
            failures.push_back(r.error);
          else if (r.integers == std::vector<int64_t>{i, i * 7 + 1})
            ++matched;
        },
        asio::detached);
  }
  run_until(
      io, [&] { return completed == kCalls; }, 5000ms);
  EXPECT_EQ(completed, kCalls);
  EXPECT_EQ(matched, kCalls);
  EXPECT_TRUE(failures.empty()) << failures.front();
  EXPECT_TRUE(client.healthy());
}

TEST(RedisClient, TimesOutWhenRedisIsStoppedAndDropsStaleReplies) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisClient client(io, local_config(server.port(), 150));
  ASSERT_TRUE(eval(io, client, echo_script(), {}, {"1"}).ok);

  server.pause();
  auto t0 = Clock::now();
  RedisReply r = eval(io, client, echo_script(), {}, {"2"});
  int64_t took = ms_since(t0);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "timed out");
  EXPECT_GE(took, 140);
  EXPECT_LE(took, 400);
  EXPECT_FALSE(client.healthy());

  // Several calls waiting at once all give up on time.
  int done = 0;
  for (int i = 0; i < 5; ++i)
    asio::co_spawn(
        io.get_executor(),
        [&, i]() -> proxy::Task<void> {
          const std::vector<std::string> no_keys, args = {std::to_string(10 + i)};
          RedisReply x = co_await client.eval(echo_script(), no_keys, args);
          if (!x.ok && x.error == "timed out") ++done;
        },
        asio::detached);
  t0 = Clock::now();
  run_until(
      io, [&] { return done == 5; }, 2000ms);
  EXPECT_EQ(done, 5);
  EXPECT_LE(ms_since(t0), 400);

  // The stale replies ("2", "10".."14") arrive first and are dropped.
  server.resume();
  for (int i = 0; i < 3; ++i) {
    r = eval(io, client, echo_script(), {}, {std::to_string(100 + i)});
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.integers, (std::vector<int64_t>{100 + i}));
  }
  EXPECT_TRUE(client.healthy());
}

TEST(RedisClient, HungConnectionIsDroppedAndReplaced) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisClient client(io, local_config(server.port(), 100));
  ASSERT_TRUE(eval(io, client, echo_script(), {}, {"1"}).ok);
  server.pause();
  // Calls keep coming while Redis is hung: each ends within its timeout;
  // after a second of silence the connection is dropped for a new one.
  const auto t0 = Clock::now();
  int slow = 0;
  while (Clock::now() - t0 < 1400ms) {
    auto t = Clock::now();
    RedisReply r = eval(io, client, echo_script(), {}, {"2"});
    EXPECT_FALSE(r.ok);
    if (ms_since(t) > 250) ++slow;
    run_for(io, 20ms);
  }
  EXPECT_EQ(slow, 0);
  server.resume();
  // Back within about a second (one connection attempt per second).
  const auto t1 = Clock::now();
  RedisReply r = eval_until_ok(io, client, "77", 3000ms);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.integers, (std::vector<int64_t>{77}));
  EXPECT_LE(ms_since(t1), 1500);
}

TEST(RedisClient, ConnectionRefusedFailsFast) {
  asio::io_context io;
  RedisClient client(io, local_config(free_port(), 2000));
  auto t0 = Clock::now();
  RedisReply r = eval(io, client, echo_script(), {}, {"1"});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("connect"), std::string::npos) << r.error;
  EXPECT_LE(ms_since(t0), 500);
  // No new attempt within a second: fail at once, without waiting.
  t0 = Clock::now();
  r = eval(io, client, echo_script(), {}, {"1"});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "redis unavailable");
  EXPECT_LE(ms_since(t0), 50);
  EXPECT_FALSE(client.healthy());
}

TEST(RedisClient, ReconnectsAfterRedisRestarts) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisClient client(io, local_config(server.port(), 300));
  ASSERT_TRUE(eval(io, client, echo_script(), {}, {"1"}).ok);
  EXPECT_TRUE(client.healthy());

  server.stop();
  auto t0 = Clock::now();
  RedisReply r = eval(io, client, echo_script(), {}, {"2"});
  EXPECT_FALSE(r.ok);
  EXPECT_LE(ms_since(t0), 350);
  EXPECT_FALSE(client.healthy());

  ASSERT_TRUE(server.start());  // same port; the script cache is empty again
  const auto t1 = Clock::now();
  int failed_slowly = 0;
  r = eval_until_ok(io, client, "3", 3000ms, [&](const RedisReply& reply, int64_t ms) {
    if (!reply.ok && ms > 100) ++failed_slowly;
  });
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.integers, (std::vector<int64_t>{3}));
  EXPECT_LE(ms_since(t1), 1500);
  EXPECT_EQ(failed_slowly, 0);
  EXPECT_TRUE(client.healthy());
}

// A resolver for the name "redis.test" that tests can slow down or fail;
// shared with the lookup threads, which may outlive a test's locals.
struct FakeDns {
  std::atomic<int> lookups{0};
  std::atomic<int> delay_ms{0};
  std::atomic<bool> fail{false};
  std::atomic<uint16_t> port{0};
};

RedisConfig named_config(const std::shared_ptr<FakeDns>& dns, int64_t timeout_ms) {
  RedisConfig cfg;
  cfg.host = "redis.test";
  cfg.port = 1;  // the fake DNS answers with its own port
  cfg.timeout_ms = timeout_ms;
  cfg.resolver = [dns](const std::string& host, uint16_t,
                       std::string& error) -> std::optional<asio::ip::tcp::endpoint> {
    ++dns->lookups;
    std::this_thread::sleep_for(std::chrono::milliseconds(dns->delay_ms.load()));
    if (dns->fail || host != "redis.test") {
      error = "cannot resolve '" + host + "': no such name";
      return std::nullopt;
    }
    return asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), dns->port);
  };
  return cfg;
}

TEST(RedisClient, HostNameLookupsNeverBlockTheWorker) {
  auto dns = std::make_shared<FakeDns>();
  RedisServer server;
  ASSERT_TRUE(server.start());
  dns->port = server.port();
  asio::io_context io;
  RedisClient client(io, named_config(dns, 300));  // startup: looked up here
  EXPECT_EQ(dns->lookups, 1);
  ASSERT_TRUE(eval(io, client, echo_script(), {}, {"1"}).ok);

  // DNS turns slow, then Redis restarts: reconnecting must not wait for it.
  dns->delay_ms = 2000;
  server.stop();
  EXPECT_FALSE(eval(io, client, echo_script(), {}, {"2"}).ok);
  ASSERT_TRUE(server.start());
  dns->port = server.port();
  int64_t slowest = 0;
  RedisReply r = eval_until_ok(io, client, "3", 3000ms, [&](const RedisReply&, int64_t ms) {
    slowest = std::max(slowest, ms);
  });
  ASSERT_TRUE(r.ok) << r.error;  // with the address looked up before
  EXPECT_LE(slowest, 400) << "a call waited for the name lookup";
  EXPECT_GE(dns->lookups, 2);  // a fresh lookup went off on its own thread
  dns->delay_ms = 0;
}

TEST(RedisClient, NameThatFailedAtStartupIsLookedUpAgainInTheBackground) {
  auto dns = std::make_shared<FakeDns>();
  RedisServer server;
  ASSERT_TRUE(server.start());
  dns->port = server.port();
  dns->fail = true;
  asio::io_context io;
  RedisClient client(io, named_config(dns, 300));
  RedisReply r = eval(io, client, echo_script(), {}, {"1"});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("redis.test"), std::string::npos) << r.error;
  dns->fail = false;  // the name appears: a later attempt finds it
  r = eval_until_ok(io, client, "2", 4000ms);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.integers, (std::vector<int64_t>{2}));
}

TEST(RedisClient, AuthAndSelectFromUrl) {
  RedisServer server({}, "s3cr%t");
  ASSERT_TRUE(server.start());
  std::string error;
  auto cfg =
      parse_redis_url("redis://:s3cr%25t@127.0.0.1:" + std::to_string(server.port()) + "/3", error);
  ASSERT_TRUE(cfg) << error;
  cfg->timeout_ms = 2000;
  asio::io_context io;
  RedisClient client(io, *cfg);
  static const RedisScript set_script("redis.call('SET', KEYS[1], '1')\nreturn {1}\n");
  RedisReply r = eval(io, client, set_script, {"authselect"}, {});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(server.command({"EXISTS", "authselect"}, 3), "1");
  EXPECT_EQ(server.command({"EXISTS", "authselect"}, 0), "0");

  // A wrong password fails the calls (and says why).
  cfg->password = "wrong";
  RedisClient bad(io, *cfg);
  r = eval(io, bad, set_script, {"authselect2"}, {});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("AUTH failed"), std::string::npos) << r.error;
  EXPECT_FALSE(bad.healthy());
  EXPECT_EQ(server.command({"EXISTS", "authselect2"}, 3), "0");
}

TEST(RedisClient, DestroyedWithCallsPending) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  {  // The io_context keeps running: the callers resume with an error.
    asio::io_context io;
    auto client = std::make_unique<RedisClient>(io, local_config(server.port(), 2000));
    ASSERT_TRUE(eval(io, *client, echo_script(), {}, {"1"}).ok);
    server.pause();
    int failed = 0;
    for (int i = 0; i < 10; ++i)
      asio::co_spawn(
          io.get_executor(),
          [&]() -> proxy::Task<void> {
            const std::vector<std::string> no_keys, args = {"2"};
            RedisReply r = co_await client->eval(echo_script(), no_keys, args);
            if (!r.ok) ++failed;
          },
          asio::detached);
    run_for(io, 30ms);
    client.reset();
    auto t0 = Clock::now();
    run_until(
        io, [&] { return failed == 10; }, 1000ms);
    EXPECT_EQ(failed, 10);
    EXPECT_LE(ms_since(t0), 100);
    server.resume();
  }
  {  // The io_context is torn down with the frames still suspended.
    auto io = std::make_unique<asio::io_context>();
    auto client = std::make_unique<RedisClient>(*io, local_config(server.port(), 2000));
    server.pause();
    for (int i = 0; i < 10; ++i)
      asio::co_spawn(
          io->get_executor(),
          [&client]() -> proxy::Task<void> {
            const std::vector<std::string> no_keys, args = {"3"};
            co_await client->eval(echo_script(), no_keys, args);
          },
          asio::detached);
    run_for(*io, 30ms);
    client.reset();
    io.reset();
    server.resume();
  }
  {  // A call still connecting when the client goes.
    auto io = std::make_unique<asio::io_context>();
    auto client = std::make_unique<RedisClient>(*io, local_config(server.port(), 2000));
    asio::co_spawn(
        io->get_executor(),
        [&client]() -> proxy::Task<void> {
          const std::vector<std::string> no_keys, args = {"4"};
          co_await client->eval(echo_script(), no_keys, args);
        },
        asio::detached);
    io->poll();
    client.reset();
    io->poll();
    io.reset();
  }
}

RedisConfig url_ok(std::string_view text) {
  std::string error;
  auto cfg = parse_redis_url(text, error);
  EXPECT_TRUE(cfg.has_value()) << text << ": " << error;
  return cfg.value_or(RedisConfig{});
}

std::string url_error(std::string_view text) {
  std::string error;
  auto cfg = parse_redis_url(text, error);
  EXPECT_FALSE(cfg.has_value()) << text;
  EXPECT_FALSE(error.empty()) << text;
  return error;
}

TEST(RedisUrl, Parses) {
  RedisConfig c = url_ok("redis://10.0.0.5");
  EXPECT_EQ(c.host, "10.0.0.5");
  EXPECT_EQ(c.port, 6379);
  EXPECT_EQ(c.db, 0);
  EXPECT_EQ(c.password, "");
  EXPECT_EQ(c.timeout_ms, RedisConfig{}.timeout_ms);

  c = url_ok("redis://cache.internal:6380/2");
  EXPECT_EQ(c.host, "cache.internal");
  EXPECT_EQ(c.port, 6380);
  EXPECT_EQ(c.db, 2);

  c = url_ok("REDIS://:p%40ss:w@h/");
  EXPECT_EQ(c.password, "p@ss:w");
  EXPECT_EQ(c.host, "h");
  EXPECT_EQ(c.db, 0);

  c = url_ok("redis://default:pw@h:1");
  EXPECT_EQ(c.password, "pw");
  EXPECT_EQ(c.port, 1);

  c = url_ok("redis://[::1]:7000/15");
  EXPECT_EQ(c.host, "::1");
  EXPECT_EQ(c.port, 7000);
  EXPECT_EQ(c.db, 15);

  c = url_ok("redis://[fe80::1]");
  EXPECT_EQ(c.host, "fe80::1");
  EXPECT_EQ(c.port, 6379);
}

TEST(RedisUrl, Refuses) {
  EXPECT_EQ(url_error("http://h"), "the URL must start with redis://");
  EXPECT_EQ(url_error(""), "the URL must start with redis://");
  EXPECT_NE(url_error("rediss://h").find("TLS"), std::string::npos);
  url_error("redis://");
  url_error("redis:///0");
  url_error("redis://h:0");
  url_error("redis://h:65536");
  url_error("redis://h:port");
  url_error("redis://h:");
  url_error("redis://h/x");
  url_error("redis://h/-1");
  url_error("redis://h/1/2");
  url_error("redis://h?db=1");
  url_error("redis://user:pw@h");
  url_error("redis://pw@h");
  url_error("redis://:@h");
  url_error("redis://:%zz@h");
  url_error("redis://:%4@h");
  url_error("redis://::1:6379");
  url_error("redis://[::1");
  url_error("redis://[::1]x");
}

}  // namespace
}  // namespace gatehouse::ratelimit
