#include "observability/metrics.h"

#include <gtest/gtest.h>

#include "observability/json_escape.h"

namespace gatehouse::observability {
namespace {

TEST(Metrics, SumsRequestsOverWorkersByRouteAndStatusClass) {
  WorkerMetrics a(2, 1), b(2, 1);
  a.count_request(0, 200, 100);
  b.count_request(0, 204, 100);
  b.count_request(1, 503, 100);
  a.count_request(-1, 404, 100);
  std::string text = render_metrics({&a, &b}, {"r0", "r1"}, {"up"});
  EXPECT_NE(text.find("gatehouse_requests_total{route=\"r0\",status_class=\"2xx\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("gatehouse_requests_total{route=\"r1\",status_class=\"5xx\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("gatehouse_requests_total{route=\"\",status_class=\"4xx\"} 1\n"),
            std::string::npos);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  WorkerMetrics w(1, 1);
  w.count_request(0, 200, 400);       // 0.4 ms
  w.count_request(0, 200, 3000);      // 3 ms
  w.count_request(0, 200, 20000000);  // 20 s: only +Inf
  std::string text = render_metrics({&w}, {"r"}, {"up"});
  EXPECT_NE(text.find("gatehouse_request_duration_seconds_bucket{le=\"0.000500\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("gatehouse_request_duration_seconds_bucket{le=\"0.005000\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("gatehouse_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("gatehouse_request_duration_seconds_count 3"), std::string::npos);
}

TEST(Metrics, CountsConnectErrorsAndRejectionsAndOpenConnections) {
  WorkerMetrics w(1, 2);
  w.count_connect_error(1);
  w.count_rejected(431);
  w.open_connections().add();
  w.open_connections().add();
  w.open_connections().sub();
  std::string text = render_metrics({&w}, {"r"}, {"a", "b"});
  EXPECT_NE(text.find("gatehouse_upstream_connect_errors_total{upstream=\"b\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("gatehouse_rejected_requests_total{status=\"431\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("gatehouse_open_connections 1\n"), std::string::npos);
}

TEST(JsonEscape, EscapesQuotesControlAndNonAsciiBytes) {
  std::string out;
  append_json_string(out, std::string_view("a\"b\\c\n\x01\xff", 8));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\u000a\\u0001\\u00ff\"");
}

}  // namespace
}  // namespace gatehouse::observability
