// Router::match cost against the number of routes. The route table is shaped
// like a real multi-team gateway: per service a templated item route, a
// collection route, a static prefix, spread over a few hosts (exact, wildcard,
// none), plus a default catch-all. Time per match should stay flat from 10 to
// 10000 routes; the path's length, not the table's size, sets the cost.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "router/router.h"

namespace gatehouse::router {
namespace {

class NoHeaders : public HeaderLookup {
 public:
  bool get(std::string_view, std::string_view&) const override { return false; }
};

constexpr int kRoutesPerService = 3;

// `count` routes: services svc0..svcN, each with three routes, on hosts that
// cycle through none, an exact host and a wildcard host; a final catch-all.
std::vector<config::Route> make_table(int count) {
  std::vector<config::Route> routes;
  auto add = [&](config::PathKind kind, std::string path, std::string host,
                 std::vector<std::string> methods) {
    config::Route route;
    route.name = path;
    route.match.path_kind = kind;
    route.match.path = std::move(path);
    route.match.host = std::move(host);
    route.match.methods = std::move(methods);
    route.upstream = "backend";
    routes.push_back(std::move(route));
  };
  const char* hosts[] = {"", "api.example.com", "*.example.com"};
  for (int i = 0; static_cast<int>(routes.size()) + kRoutesPerService < count; ++i) {
    const std::string svc = "/svc" + std::to_string(i);
    const std::string host = hosts[i % 3];
    add(config::PathKind::kTemplate, svc + "/v1/items/{id}", host, {"GET", "PUT"});
    add(config::PathKind::kTemplate, svc + "/v1/items", host, {"GET", "POST"});
    add(config::PathKind::kPrefix, svc + "/static/", host, {});
  }
  while (static_cast<int>(routes.size()) < count) {
    add(config::PathKind::kNone, "", "", {});
  }
  return routes;
}

// The service in the middle of the table, on an exact-host service.
std::string middle_service(int count) {
  int services = count / kRoutesPerService;
  int svc = services / 2;
  svc -= svc % 3 - 1;  // svc % 3 == 1: the "api.example.com" services
  return "/svc" + std::to_string(svc);
}

void run_match(benchmark::State& state, std::string_view host, const std::string& path,
               std::string_view method, MatchResult::Kind expected) {
  const int count = static_cast<int>(state.range(0));
  Router router(make_table(count));
  NoHeaders headers;
  MatchResult result;
  router.match(host, path, method, headers, result);
  if (result.kind != expected) {
    state.SkipWithError("unexpected match result");
    return;
  }
  for (auto _ : state) {
    router.match(host, path, method, headers, result);
    benchmark::DoNotOptimize(result);
  }
  state.counters["routes"] = count;
}

void BM_MatchTemplateParam(benchmark::State& state) {
  const std::string path = middle_service(static_cast<int>(state.range(0))) + "/v1/items/12345";
  run_match(state, "api.example.com", path, "GET", MatchResult::Kind::kFound);
}

void BM_MatchPrefix(benchmark::State& state) {
  const std::string path =
      middle_service(static_cast<int>(state.range(0))) + "/static/js/app.min.js";
  run_match(state, "api.example.com", path, "GET", MatchResult::Kind::kFound);
}

// Host matches only the wildcard bucket, path matches only the catch-all of
// the any-host bucket: walks all three host levels.
void BM_MatchFallThroughToCatchAll(benchmark::State& state) {
  run_match(state, "www.example.com", "/unknown/path/here", "GET", MatchResult::Kind::kFound);
}

// The item route refuses DELETE; the search goes on to the catch-all.
void BM_MatchMethodMismatchFallsThrough(benchmark::State& state) {
  const std::string path = middle_service(static_cast<int>(state.range(0))) + "/v1/items/7";
  run_match(state, "api.example.com", path, "DELETE", MatchResult::Kind::kFound);
}

BENCHMARK(BM_MatchTemplateParam)->Arg(10)->Arg(1000)->Arg(10000);
BENCHMARK(BM_MatchPrefix)->Arg(10)->Arg(1000)->Arg(10000);
BENCHMARK(BM_MatchFallThroughToCatchAll)->Arg(10)->Arg(1000)->Arg(10000);
BENCHMARK(BM_MatchMethodMismatchFallsThrough)->Arg(10)->Arg(1000)->Arg(10000);

}  // namespace
}  // namespace gatehouse::router
