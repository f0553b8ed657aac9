#include "core/clock.h"

#include <cstdio>
#include <cstring>

namespace gatehouse::core {

void WallClock::refresh(time_t sec) {
  cached_sec_ = sec;
  tm t;
  gmtime_r(&sec, &t);
  strftime(http_date_, sizeof http_date_, "%a, %d %b %Y %H:%M:%S GMT", &t);
  strftime(rfc3339_prefix_, sizeof rfc3339_prefix_, "%Y-%m-%dT%H:%M:%S", &t);
}

std::string_view WallClock::http_date() {
  time_t now = time(nullptr);
  if (now != cached_sec_) refresh(now);
  return std::string_view(http_date_, 29);
}

std::string_view WallClock::rfc3339_ms(char (&out)[24]) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != cached_sec_) refresh(ts.tv_sec);
  std::memcpy(out, rfc3339_prefix_, 19);
  int ms = static_cast<int>(ts.tv_nsec / 1'000'000);
  out[19] = '.';
  out[20] = static_cast<char>('0' + ms / 100);
  out[21] = static_cast<char>('0' + ms / 10 % 10);
  out[22] = static_cast<char>('0' + ms % 10);
  out[23] = 'Z';
  return std::string_view(out, 24);
}

}  // namespace gatehouse::core
