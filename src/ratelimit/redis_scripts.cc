#include "ratelimit/redis_scripts.h"

#include <charconv>

namespace gatehouse::ratelimit {
namespace {

// What every script starts with: the arguments, the time, and exact integer
// arithmetic. Lua 5.1 numbers are doubles, exact below 2^53, while the local
// store computes with 128-bit products (a count of up to 2^24 times a window
// of up to 30 days overflows 2^53): muldiv does those products by long
// division in base 2^20, so every intermediate stays below 2^53.
constexpr std::string_view kPrelude = R"lua(
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local now
if ARGV[4] then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function divmod(x, c)
  local q = math.floor(x / c)
  local r = x - q * c
  if r < 0 then
    q = q - 1
    r = r + c
  elseif r >= c then
    q = q + 1
    r = r - c
  end
  return q, r
end
local B = 1048576
-- floor(a * b / c) and the remainder, for a < 2^26, b < 2^53, 0 < c < 2^32.
local function muldiv(a, b, c)
  local b2 = math.floor(b / (B * B))
  local low = b - b2 * B * B
  local b1 = math.floor(low / B)
  local b0 = low - b1 * B
  local q2, r2 = divmod(a * b2, c)
  local q1, r1 = divmod(r2 * B + a * b1, c)
  local q0, r0 = divmod(r1 * B + a * b0, c)
  return (q2 * B + q1) * B + q0, r0
end
local function ceil_s(ms)
  return math.max(1, math.floor((ms + 999) / 1000))
end
)lua";

// Sliding and fixed window: the hash holds {i = window index, p = previous
// window's count, c = this window's count}, as the local store's packed word.
constexpr std::string_view kWindow = R"lua(
local index = math.floor(now / w)
local elapsed = now - index * w
local prev, cur = 0, 0
local st = redis.call('HMGET', key, 'i', 'p', 'c')
if st[1] then
  local at = tonumber(st[1])
  if at == index then
    prev = tonumber(st[2]) or 0
    cur = tonumber(st[3]) or 0
  elseif at == index - 1 then
    prev = tonumber(st[3]) or 0
  end
end
if fixed then prev = 0 end
local reset = ceil_s(w - elapsed)
-- Allowed iff prev * (w - elapsed) + (cur + 1) * w <= limit * w, that is
-- ceil(prev * (w - elapsed) / w) <= limit - cur - 1.
local room = limit - cur - 1
if room >= 0 then
  local used, r = muldiv(prev, w - elapsed, w)
  if r > 0 then used = used + 1 end
  if used <= room then
    redis.call('HSET', key, 'i', index, 'p', prev, 'c', cur + 1)
    redis.call('PEXPIRE', key, 2 * w)
    return {1, limit, room - used, reset, 0}
  end
end
local wait
if room >= 0 and prev > 0 then
  -- Later in this window, as the previous one slides out.
  wait = math.max(1, w - muldiv(room, w, prev) - elapsed)
elseif fixed or cur == 0 then
  wait = w - elapsed
else
  -- In the next window, where this window's count becomes the previous one.
  wait = w - elapsed + math.max(0, w - muldiv(math.max(limit - 1, 0), w, cur))
end
return {0, limit, 0, reset, ceil_s(wait)}
)lua";

// Token bucket: the hash holds {t = tokens, l = time of the last refill, ms};
// no hash is a full bucket. `limit` tokens come back per window.
constexpr std::string_view kBucket = R"lua(
if burst <= 0 then burst = limit end
if limit <= 0 then return {0, burst, 0, ceil_s(w), ceil_s(w)} end
local tokens, last = burst, now
local st = redis.call('HMGET', key, 't', 'l')
if st[1] and st[2] then
  tokens = tonumber(st[1])
  last = tonumber(st[2])
  if now > last then
    local add = muldiv(limit, now - last, w)
    if add >= burst - tokens then
      tokens = burst
      last = now
    elseif add > 0 then
      tokens = tokens + add
      -- Keep the fraction of a token already earned.
      last = last + muldiv(add, w, limit)
    end
  end
end
local full, r = muldiv(burst, w, limit)
if tokens >= 1 then
  tokens = tokens - 1
  redis.call('HSET', key, 't', tokens, 'l', last)
  -- After the time a bucket takes to fill, the hash says nothing an absent one would not.
  redis.call('PEXPIRE', key, full + 2)
  local reset = 0
  if tokens ~= burst then reset = ceil_s(muldiv(burst - tokens, w, limit)) end
  return {1, burst, tokens, reset, 0}
end
local per_token = math.max(1, math.floor(w / limit))
return {0, burst, 0, ceil_s(full), ceil_s(math.max(1, per_token - (now - last)))}
)lua";

std::string build(std::string_view flags, std::string_view body) {
  std::string s;
  s.append(kPrelude).append(flags).append(body);
  return s;
}

std::string decimal(uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

uint64_t reported_limit(const LimitSpec& spec) {
  if (spec.algorithm == Algorithm::kTokenBucket && spec.burst != 0) return spec.burst;
  return spec.limit;
}

}  // namespace

const RedisScript& redis_script(Algorithm a) {
  static const RedisScript sliding(build("local fixed = false\n", kWindow));
  static const RedisScript fixed(build("local fixed = true\n", kWindow));
  static const RedisScript bucket(build("", kBucket));
  switch (a) {
    case Algorithm::kFixedWindow:
      return fixed;
    case Algorithm::kTokenBucket:
      return bucket;
    case Algorithm::kSlidingWindow:
    default:
      return sliding;
  }
}

std::vector<std::string> redis_keys(std::string_view key, const LimitSpec& spec) {
  std::string_view tag = spec.algorithm == Algorithm::kTokenBucket   ? "tb"
                         : spec.algorithm == Algorithm::kFixedWindow ? "fw"
                                                                     : "sw";
  std::string k;
  k.reserve(key.size() + 32);
  k.append("gh:rl:{").append(key).append("}:").append(tag).append(":");
  k.append(decimal(static_cast<uint64_t>(spec.window_ms)));
  return {std::move(k)};
}

std::vector<std::string> redis_args(const LimitSpec& spec) {
  return {decimal(spec.limit), decimal(static_cast<uint64_t>(spec.window_ms)),
          decimal(spec.burst ? spec.burst : spec.limit)};
}

bool decision_from_reply(const RedisReply& r, const LimitSpec& spec, Decision& out) {
  if (!r.ok || r.integers.size() != 5) return false;
  const auto& v = r.integers;
  if (v[0] != 0 && v[0] != 1) return false;
  if (v[1] < 0 || static_cast<uint64_t>(v[1]) != reported_limit(spec)) return false;
  if (v[2] < 0 || v[3] < 0 || v[4] < 0) return false;
  Decision d;
  d.allowed = v[0] == 1;
  d.tracked = true;
  d.limit = static_cast<uint64_t>(v[1]);
  d.remaining = static_cast<uint64_t>(v[2]);
  d.reset_s = v[3];
  d.retry_after_s = v[4];
  out = d;
  return true;
}

}  // namespace gatehouse::ratelimit
