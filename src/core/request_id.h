// Request ids: 32 lower-case hex characters, unique across workers and
// restarts: a random 64-bit prefix drawn at process start, the worker's
// number and a per-worker counter. No syscall or lock per id.
#pragma once

#include <cstdint>
#include <string_view>

namespace gatehouse::core {

class RequestIdGenerator {
 public:
  RequestIdGenerator(uint64_t process_prefix, unsigned worker)
      : prefix_(process_prefix), counter_(uint64_t{worker & 0xff} << 56) {}
  // Writes 32 characters at out and returns the view.
  std::string_view next(char* out) {
    write_hex(out, prefix_);
    write_hex(out + 16, ++counter_);
    return std::string_view(out, 32);
  }
  // 64 random bits for the process prefix (getrandom).
  static uint64_t random_prefix();

 private:
  static void write_hex(char* out, uint64_t v) {
    constexpr char kHex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) {
      out[i] = kHex[v & 0xf];
      v >>= 4;
    }
  }
  uint64_t prefix_;
  uint64_t counter_;
};

}  // namespace gatehouse::core
