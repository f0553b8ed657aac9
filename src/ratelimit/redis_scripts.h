// The rate-limit algorithms as Redis Lua scripts, for limits shared by every
// gateway instance. Each request costs one EVALSHA (one round trip) and the
// scripts implement exactly the semantics of the local store's apply_hit()
// (local_store.cc), with Redis's clock (TIME) so that every instance agrees
// on the windows.
//
//   keys:  {"gh:rl:{<key>}:<sw|fw|tb>:<window_ms>"}  one hash per limit; the
//          hash tag keeps anything derived from the key in the same slot
//   args:  {limit, window_ms, burst}  (burst: the bucket's capacity, limit
//          when 0; the window scripts ignore it). A fourth argument, for
//          tests only, replaces Redis's clock with that time in ms.
//   reply: {allowed (0/1), limit, remaining, reset_s, retry_after_s}, the
//          Decision fields with the local store's meanings.
//
// Every write sets PEXPIRE: two windows for the window algorithms (the
// current one, then its turn as "previous"), the full-refill time for the
// token bucket (an absent bucket is a full one), so idle keys vanish while
// long windows (30-day quotas) survive gateway restarts.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ratelimit/local_store.h"
#include "ratelimit/redis_client.h"

namespace gatehouse::ratelimit {

const RedisScript& redis_script(Algorithm a);
std::vector<std::string> redis_keys(std::string_view key, const LimitSpec& spec);
std::vector<std::string> redis_args(const LimitSpec& spec);

// Fills `out` from a script's reply; false when the reply is a failure or
// malformed (then `out` is untouched).
bool decision_from_reply(const RedisReply& r, const LimitSpec& spec, Decision& out);

}  // namespace gatehouse::ratelimit
