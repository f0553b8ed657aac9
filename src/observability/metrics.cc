#include "observability/metrics.h"

#include <cstdio>

namespace gatehouse::observability {
namespace {

void append_label_value(std::string& out, const std::string& v) {
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
}

void append_seconds(std::string& out, uint64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(us) / 1e6);
  out.append(buf);
}

}  // namespace

std::string render_metrics(const std::vector<const WorkerMetrics*>& workers,
                           const std::vector<std::string>& route_names,
                           const std::vector<std::string>& upstream_names) {
  static constexpr const char* kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  std::string out;
  out.reserve(4096);
  out.append("# HELP gatehouse_requests_total Requests by route and status class.\n");
  out.append("# TYPE gatehouse_requests_total counter\n");
  std::size_t slots = route_names.size() + 1;
  for (std::size_t r = 0; r < slots; ++r) {
    for (std::size_t c = 0; c < 5; ++c) {
      uint64_t sum = 0;
      for (const WorkerMetrics* w : workers) sum += w->requests_[r * 5 + c].get();
      if (sum == 0 && c != 1) continue;
      out.append("gatehouse_requests_total{route=\"");
      if (r < route_names.size()) append_label_value(out, route_names[r]);
      out.append("\",status_class=\"").append(kClasses[c]).append("\"} ");
      out.append(std::to_string(sum)).push_back('\n');
    }
  }
  out.append(
      "# HELP gatehouse_request_duration_seconds Request latency, first byte in to last byte "
      "out.\n");
  out.append("# TYPE gatehouse_request_duration_seconds histogram\n");
  uint64_t cumulative = 0;
  for (std::size_t b = 0; b <= kLatencyBuckets; ++b) {
    for (const WorkerMetrics* w : workers) cumulative += w->latency_buckets_[b].get();
    out.append("gatehouse_request_duration_seconds_bucket{le=\"");
    if (b < kLatencyBuckets) {
      append_seconds(out, kLatencyBucketsUs[b]);
    } else {
      out.append("+Inf");
    }
    out.append("\"} ").append(std::to_string(cumulative)).push_back('\n');
  }
  uint64_t sum_us = 0;
  for (const WorkerMetrics* w : workers) sum_us += w->latency_sum_us_.get();
  out.append("gatehouse_request_duration_seconds_sum ");
  append_seconds(out, sum_us);
  out.append("\ngatehouse_request_duration_seconds_count ").append(std::to_string(cumulative));
  out.append(
      "\n# HELP gatehouse_upstream_connect_errors_total Failed connection attempts to upstream "
      "targets.\n");
  out.append("# TYPE gatehouse_upstream_connect_errors_total counter\n");
  for (std::size_t u = 0; u < upstream_names.size(); ++u) {
    uint64_t sum = 0;
    for (const WorkerMetrics* w : workers) sum += w->connect_errors_[u].get();
    out.append("gatehouse_upstream_connect_errors_total{upstream=\"");
    append_label_value(out, upstream_names[u]);
    out.append("\"} ").append(std::to_string(sum)).push_back('\n');
  }
  out.append("# HELP gatehouse_open_connections Open client connections.\n");
  out.append("# TYPE gatehouse_open_connections gauge\n");
  uint64_t open = 0;
  for (const WorkerMetrics* w : workers) open += w->open_connections_.get();
  out.append("gatehouse_open_connections ")
      .append(std::to_string(static_cast<int64_t>(open)))
      .push_back('\n');
  uint64_t tls_failures = 0;
  for (const WorkerMetrics* w : workers) tls_failures += w->tls_handshake_failures_.get();
  out.append(
      "# HELP gatehouse_tls_handshake_failures_total TLS handshakes that failed or timed out.\n"
      "# TYPE gatehouse_tls_handshake_failures_total "
      "counter\ngatehouse_tls_handshake_failures_total ");
  out.append(std::to_string(tls_failures)).push_back('\n');
  out.append(
      "# HELP gatehouse_rejected_requests_total Requests refused by the gateway itself, by "
      "status.\n");
  out.append("# TYPE gatehouse_rejected_requests_total counter\n");
  for (int s = 0; s < 200; ++s) {
    uint64_t sum = 0;
    for (const WorkerMetrics* w : workers) sum += w->rejected_[s].get();
    if (sum == 0) continue;
    out.append("gatehouse_rejected_requests_total{status=\"").append(std::to_string(400 + s));
    out.append("\"} ").append(std::to_string(sum)).push_back('\n');
  }
  return out;
}

}  // namespace gatehouse::observability
