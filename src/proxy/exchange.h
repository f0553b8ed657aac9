// The per-request working set of a session: the parsed head, the route
// match and the scratch strings heads are built in. Taken from the worker's
// pool when a request starts and given back when it ends, so an idle
// keep-alive connection holds none of it (DESIGN.md: idle connections hold
// no buffers), while warm capacities are reused without allocating.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "http/http1_parser.h"
#include "proxy/plugin.h"
#include "router/router.h"

namespace gatehouse::proxy {

struct Exchange {
  // Exchanges come from mmap, not the heap: a burst of concurrent requests
  // grows the pool, and when it shrinks the pages go back to the kernel
  // instead of fragmenting the heap under the sessions that stay idle.
  static void* operator new(std::size_t size);
  static void operator delete(void* p, std::size_t size);

  http::RequestHead head;
  http::ResponseHead response;
  router::MatchResult match;
  std::string normalized_path;
  std::string upstream_path;
  std::string out_head;
  std::string method;
  std::string raw_path;
  HeaderEdits edits;
  RequestState state;
  char request_id[128];
  std::size_t request_id_len = 0;
};

class ExchangePool {
 public:
  std::unique_ptr<Exchange> take() {
    if (free_.empty()) return std::make_unique<Exchange>();
    std::unique_ptr<Exchange> e = std::move(free_.back());
    free_.pop_back();
    return e;
  }
  void give_back(std::unique_ptr<Exchange> e) {
    if (!e) return;
    e->state.end();  // whatever the request held (a concurrency slot) is released now
    // Drop oversized scratch (one huge header must not pin memory forever).
    if (e->out_head.capacity() > 65536 || free_.size() >= kMaxFree) return;
    e->head.reset();
    free_.push_back(std::move(e));
  }

  void shrink(std::size_t keep) {
    if (free_.size() > keep) free_.resize(keep);
  }

 private:
  static constexpr std::size_t kMaxFree = 1024;
  std::vector<std::unique_ptr<Exchange>> free_;
};

}  // namespace gatehouse::proxy
