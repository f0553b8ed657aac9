// With SSL_MODE_RELEASE_BUFFERS a TLS connection allocates its ~17 KiB
// record buffers when it reads or writes and frees them when it goes idle,
// so an idle connection costs no buffer memory. Those sizes are above the
// 16 KiB mmap threshold main() sets for I/O buffers, so every request paid
// an mmap and a munmap for each (perf: TLS keep-alive at twice nginx's CPU
// per request). OpenSSL's allocations go through here instead: blocks of
// the record-buffer size class are kept per thread (bounded) and reused,
// everything else is plain malloc. OpenSSL passes no size to free, so each
// block carries its size in a 16-byte header.
#include "tls/memory.h"

#include <openssl/crypto.h>

#include <cstdlib>
#include <cstring>

namespace gatehouse::tls {

namespace {

constexpr std::size_t kHeader = 16;
constexpr std::size_t kClassMin = 16 * 1024;
constexpr std::size_t kClass = 24 * 1024;  // record buffers fit: 16 KiB + header + overhead
constexpr std::size_t kMaxCached = 64;     // per thread: 1.5 MiB at most

// Trivially destructible on purpose: OpenSSL may free memory during thread
// or process teardown, after a cache with a destructor would be gone.
// release_thread_cache() empties it when a thread is done with TLS.
thread_local void* cached[kMaxCached];
thread_local std::size_t cached_count = 0;

bool in_class(std::size_t n) { return n > kClassMin && n <= kClass; }

void* with_header(void* block, std::size_t n) {
  std::memcpy(block, &n, sizeof n);
  return static_cast<char*>(block) + kHeader;
}

std::size_t size_of(void* p) {
  std::size_t n;
  std::memcpy(&n, static_cast<char*>(p) - kHeader, sizeof n);
  return n;
}

void* allocate(std::size_t n, const char*, int) {
  if (in_class(n)) {
    if (cached_count > 0) return with_header(cached[--cached_count], n);
    void* b = std::malloc(kHeader + kClass);
    return b == nullptr ? nullptr : with_header(b, n);
  }
  void* b = std::malloc(kHeader + n);
  return b == nullptr ? nullptr : with_header(b, n);
}

void release(void* p, const char*, int) {
  if (p == nullptr) return;
  std::size_t n = size_of(p);
  void* block = static_cast<char*>(p) - kHeader;
  if (in_class(n) && cached_count < kMaxCached) {
    cached[cached_count++] = block;
    return;
  }
  std::free(block);
}

void* reallocate(void* p, std::size_t n, const char* file, int line) {
  if (p == nullptr) return allocate(n, file, line);
  if (n == 0) {
    release(p, file, line);
    return nullptr;
  }
  std::size_t old = size_of(p);
  if (in_class(old)) {
    if (n <= kClass && in_class(n)) {
      std::memcpy(static_cast<char*>(p) - kHeader, &n, sizeof n);
      return p;
    }
    void* q = allocate(n, file, line);
    if (q == nullptr) return nullptr;
    std::memcpy(q, p, old < n ? old : n);
    release(p, file, line);
    return q;
  }
  if (in_class(n)) {
    void* q = allocate(n, file, line);
    if (q == nullptr) return nullptr;
    std::memcpy(q, p, old < n ? old : n);
    release(p, file, line);
    return q;
  }
  void* b = std::realloc(static_cast<char*>(p) - kHeader, kHeader + n);
  return b == nullptr ? nullptr : with_header(b, n);
}

}  // namespace

void install_allocator() { CRYPTO_set_mem_functions(allocate, reallocate, release); }

void release_thread_cache() {
  while (cached_count > 0) std::free(cached[--cached_count]);
}

}  // namespace gatehouse::tls
