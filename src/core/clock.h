// Time for the hot path: monotonic readings for latencies and deadlines, and
// wall-clock strings (HTTP Date, RFC 3339) formatted once per second per
// worker instead of once per request.
#pragma once

#include <cstdint>
#include <ctime>
#include <string_view>

namespace gatehouse::core {

inline int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

inline int64_t monotonic_ms() { return monotonic_ns() / 1'000'000; }

// For deadlines and back-off windows, where a few milliseconds do not matter:
// CLOCK_MONOTONIC_COARSE is a plain memory read in the vDSO, while the precise
// clock cost ~10% of the gateway's user time per request (perf, see
// bench/NOTES.md). Never mix its readings with monotonic_ns() ones.
inline int64_t coarse_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

class WallClock {
 public:
  // "Mon, 23 Nov 2026 10:43:52 GMT"
  std::string_view http_date();
  // Unix seconds from the coarse realtime clock (a vDSO memory read).
  static int64_t unix_seconds() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return ts.tv_sec;
  }
  // "2026-11-23T10:43:52.123Z" into out[24]; returns the view.
  std::string_view rfc3339_ms(char (&out)[24]);

 private:
  void refresh(time_t sec);
  time_t cached_sec_ = -1;
  char http_date_[30] = {};
  char rfc3339_prefix_[20] = {};  // "2026-11-23T10:43:52"
};

}  // namespace gatehouse::core
