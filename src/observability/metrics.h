// Prometheus metrics. Each worker owns a WorkerMetrics and is its only writer;
// the admin thread sums all workers on scrape. Counters are atomics written
// with relaxed load+store by their single owner: a plain `mov` on x86, no
// locked instruction and no shared cache line on the request path.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gatehouse::observability {

class Counter {
 public:
  void add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Latency histogram bucket bounds in microseconds.
inline constexpr uint64_t kLatencyBucketsUs[] = {500,     1000,    2500,    5000,    10000,
                                                 25000,   50000,   100000,  250000,  500000,
                                                 1000000, 2500000, 5000000, 10000000};
inline constexpr std::size_t kLatencyBuckets = std::size(kLatencyBucketsUs);

class WorkerMetrics {
 public:
  WorkerMetrics(std::size_t routes, std::size_t upstreams)
      : route_slots_(routes + 1),
        requests_(new Counter[(routes + 1) * 5]),
        connect_errors_(new Counter[upstreams ? upstreams : 1]) {}

  // route == -1: no route matched.
  void count_request(int route, int status, uint64_t latency_us) {
    std::size_t slot = route < 0 ? route_slots_ - 1 : static_cast<std::size_t>(route);
    int cls = status / 100 - 1;
    if (cls < 0 || cls > 4) cls = 4;
    requests_[slot * 5 + static_cast<std::size_t>(cls)].add();
    std::size_t b = 0;
    while (b < kLatencyBuckets && latency_us > kLatencyBucketsUs[b]) ++b;
    latency_buckets_[b].add();
    latency_sum_us_.add(latency_us);
  }
  void count_connect_error(std::size_t upstream) { connect_errors_[upstream].add(); }
  void count_rejected(int status) {
    if (status >= 400 && status < 600) rejected_[status - 400].add();
  }
  Counter& open_connections() { return open_connections_; }
  void count_tls_handshake_failure() { tls_handshake_failures_.add(); }

 private:
  friend std::string render_metrics(const std::vector<const WorkerMetrics*>& workers,
                                    const std::vector<std::string>& route_names,
                                    const std::vector<std::string>& upstream_names);
  std::size_t route_slots_;
  std::unique_ptr<Counter[]> requests_;
  std::unique_ptr<Counter[]> connect_errors_;
  Counter latency_buckets_[kLatencyBuckets + 1];
  Counter latency_sum_us_;
  Counter open_connections_;
  Counter tls_handshake_failures_;
  Counter rejected_[200];
};

// Prometheus text exposition format 0.0.4 of the sum over workers.
std::string render_metrics(const std::vector<const WorkerMetrics*>& workers,
                           const std::vector<std::string>& route_names,
                           const std::vector<std::string>& upstream_names);

}  // namespace gatehouse::observability
