#include "core/request_id.h"

#include <sys/random.h>

#include <chrono>

namespace gatehouse::core {

uint64_t RequestIdGenerator::random_prefix() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
    // getrandom cannot fail for 8 bytes after boot; keep ids unique anyway.
    v = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  }
  return v;
}

}  // namespace gatehouse::core
