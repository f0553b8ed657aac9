#include "proxy/exchange.h"

#include <sys/mman.h>

#include <new>

namespace gatehouse::proxy {

void* Exchange::operator new(std::size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

void Exchange::operator delete(void* p, std::size_t size) { munmap(p, size); }

}  // namespace gatehouse::proxy
