#include "router/router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace gatehouse::router {
namespace {

using config::PathKind;
using Kind = MatchResult::Kind;

class Headers : public HeaderLookup {
 public:
  Headers() = default;
  Headers(std::initializer_list<std::pair<std::string, std::string>> headers) : headers_(headers) {}
  bool get(std::string_view lower_name, std::string_view& value) const override {
    for (const auto& [name, v] : headers_) {
      if (name == lower_name) {
        value = v;
        return true;
      }
    }
    return false;
  }

 private:
  std::vector<std::pair<std::string, std::string>> headers_;
};

struct RouteSpec {
  PathKind kind = PathKind::kNone;
  std::string path;
  std::vector<std::string> methods = {};
  std::string host = "";
  std::vector<std::pair<std::string, std::string>> headers = {};
};

config::Route make_route(const RouteSpec& spec) {
  config::Route route;
  route.name = spec.path.empty() ? "any" : spec.path;
  route.match.path_kind = spec.kind;
  route.match.path = spec.path;
  route.match.methods = spec.methods;
  route.match.host = spec.host;
  route.match.headers = spec.headers;
  route.upstream = "backend";
  return route;
}

std::vector<config::Route> make_routes(const std::vector<RouteSpec>& specs) {
  std::vector<config::Route> routes;
  for (const RouteSpec& spec : specs) routes.push_back(make_route(spec));
  return routes;
}

RouteSpec tmpl(std::string path, std::vector<std::string> methods = {}) {
  return {PathKind::kTemplate, std::move(path), std::move(methods)};
}
RouteSpec prefix(std::string path, std::vector<std::string> methods = {}) {
  return {PathKind::kPrefix, std::move(path), std::move(methods)};
}
RouteSpec regex(std::string path, std::vector<std::string> methods = {}) {
  return {PathKind::kRegex, std::move(path), std::move(methods)};
}
RouteSpec any_path(std::vector<std::string> methods = {}) {
  return {PathKind::kNone, "", std::move(methods)};
}
RouteSpec on_host(RouteSpec spec, std::string host) {
  spec.host = std::move(host);
  return spec;
}

MatchResult match(const Router& router, std::string_view path, std::string_view method = "GET",
                  std::string_view host = "", const HeaderLookup& headers = Headers{}) {
  MatchResult result;
  router.match(host, path, method, headers, result);
  return result;
}

// The route index when found, -1 for 404, -2 for 405.
int chosen(const Router& router, std::string_view path, std::string_view method = "GET",
           std::string_view host = "", const HeaderLookup& headers = Headers{}) {
  MatchResult result = match(router, path, method, host, headers);
  if (result.kind == Kind::kNotFound) return -1;
  if (result.kind == Kind::kMethodNotAllowed) return -2;
  return static_cast<int>(result.route_index);
}

std::map<std::string, std::string> params_of(const MatchResult& result) {
  std::map<std::string, std::string> params;
  for (std::size_t i = 0; i < result.param_count; ++i) {
    params[std::string(result.params[i].name)] = std::string(result.params[i].value);
  }
  return params;
}

// ---- templates ----

TEST(RouterTemplate, LiteralTemplateMatchesExactPath) {
  Router router(make_routes({tmpl("/health")}));
  EXPECT_EQ(chosen(router, "/health"), 0);
  EXPECT_EQ(chosen(router, "/health/"), -1);
  EXPECT_EQ(chosen(router, "/healthz"), -1);
  EXPECT_EQ(chosen(router, "/"), -1);
}

TEST(RouterTemplate, RootTemplateMatchesOnlyRoot) {
  Router router(make_routes({tmpl("/")}));
  EXPECT_EQ(chosen(router, "/"), 0);
  EXPECT_EQ(chosen(router, "/x"), -1);
}

TEST(RouterTemplate, ParamMatchesExactlyOneNonEmptySegment) {
  Router router(make_routes({tmpl("/links/{id}")}));
  EXPECT_EQ(chosen(router, "/links/42"), 0);
  EXPECT_EQ(chosen(router, "/links/42/x"), -1);
  EXPECT_EQ(chosen(router, "/links/"), -1);
  EXPECT_EQ(chosen(router, "/links"), -1);
}

TEST(RouterTemplate, ParamsAreViewsIntoThePath) {
  Router router(make_routes({tmpl("/users/{user}/posts/{post}")}));
  const std::string path = "/users/ada/posts/7";
  MatchResult result = match(router, path);
  ASSERT_EQ(result.kind, Kind::kFound);
  ASSERT_EQ(result.param_count, 2u);
  EXPECT_EQ(result.params[0].name, "user");
  EXPECT_EQ(result.params[0].value, "ada");
  EXPECT_EQ(result.params[0].value.data(), path.data() + 7);
  EXPECT_EQ(result.params[1].name, "post");
  EXPECT_EQ(result.params[1].value, "7");
}

TEST(RouterTemplate, ParamNamesComeFromTheChosenRoute) {
  Router router(make_routes({tmpl("/a/{x}/one"), tmpl("/a/{y}/two")}));
  EXPECT_EQ(params_of(match(router, "/a/1/one")), (std::map<std::string, std::string>{{"x", "1"}}));
  EXPECT_EQ(params_of(match(router, "/a/1/two")), (std::map<std::string, std::string>{{"y", "1"}}));
}

TEST(RouterTemplate, CatchAllCapturesTheRestIncludingSlashes) {
  Router router(make_routes({tmpl("/files/{*path}")}));
  EXPECT_EQ(params_of(match(router, "/files/a/b.txt")),
            (std::map<std::string, std::string>{{"path", "a/b.txt"}}));
  EXPECT_EQ(params_of(match(router, "/files/")),
            (std::map<std::string, std::string>{{"path", ""}}));
  EXPECT_EQ(chosen(router, "/files"), -1);
  EXPECT_EQ(chosen(router, "/filesx"), -1);
}

TEST(RouterTemplate, ParamsBeforeCatchAllAreKept) {
  Router router(make_routes({tmpl("/t/{tenant}/{*rest}")}));
  EXPECT_EQ(params_of(match(router, "/t/acme/x/y")),
            (std::map<std::string, std::string>{{"tenant", "acme"}, {"rest", "x/y"}}));
}

TEST(RouterTemplate, RootCatchAllMatchesEveryPath) {
  Router router(make_routes({tmpl("/{*all}")}));
  EXPECT_EQ(params_of(match(router, "/")), (std::map<std::string, std::string>{{"all", ""}}));
  EXPECT_EQ(params_of(match(router, "/a/b")), (std::map<std::string, std::string>{{"all", "a/b"}}));
}

// ---- precedence ----

TEST(RouterPrecedence, LiteralBeatsParam) {
  Router router(make_routes({tmpl("/links/{id}"), tmpl("/links/new")}));
  EXPECT_EQ(chosen(router, "/links/new"), 1);
  EXPECT_EQ(chosen(router, "/links/42"), 0);
}

TEST(RouterPrecedence, ParamBeatsCatchAll) {
  Router router(make_routes({tmpl("/links/{*rest}"), tmpl("/links/{id}")}));
  EXPECT_EQ(chosen(router, "/links/42"), 1);
  EXPECT_EQ(chosen(router, "/links/42/x"), 0);
}

TEST(RouterPrecedence, EarlierSegmentDecidesFirst) {
  // Literal in segment 1 beats param in segment 1, whatever follows.
  Router router(make_routes({tmpl("/{tenant}/items/new"), tmpl("/api/{*rest}")}));
  EXPECT_EQ(chosen(router, "/api/items/new"), 1);
  EXPECT_EQ(chosen(router, "/web/items/new"), 0);
}

TEST(RouterPrecedence, BacktracksFromLiteralToParam) {
  Router router(make_routes({tmpl("/a/b/c"), tmpl("/a/{x}/d")}));
  EXPECT_EQ(chosen(router, "/a/b/c"), 0);
  EXPECT_EQ(chosen(router, "/a/b/d"), 1);
  EXPECT_EQ(params_of(match(router, "/a/b/d")), (std::map<std::string, std::string>{{"x", "b"}}));
}

TEST(RouterPrecedence, BacktracksToCatchAllAndDropsParamsOfFailedBranches) {
  Router router(make_routes({tmpl("/a/{x}/d"), tmpl("/a/{*rest}")}));
  MatchResult result = match(router, "/a/b/e");
  ASSERT_EQ(result.kind, Kind::kFound);
  EXPECT_EQ(result.route_index, 1u);
  EXPECT_EQ(params_of(result), (std::map<std::string, std::string>{{"rest", "b/e"}}));
}

TEST(RouterPrecedence, TiesGoToFileOrder) {
  Router router(make_routes({tmpl("/items/{a}"), tmpl("/items/{b}"), prefix("/x"), prefix("/x")}));
  EXPECT_EQ(chosen(router, "/items/1"), 0);
  EXPECT_EQ(chosen(router, "/xyz"), 2);
}

TEST(RouterPrecedence, TemplateBeatsPrefixOnTheSamePath) {
  Router router(make_routes({prefix("/api"), tmpl("/api")}));
  EXPECT_EQ(chosen(router, "/api"), 1);
  EXPECT_EQ(chosen(router, "/api/x"), 0);
}

TEST(RouterPrecedence, LongerPrefixWins) {
  Router router(make_routes({prefix("/a"), prefix("/api"), prefix("/api/v1")}));
  EXPECT_EQ(chosen(router, "/api/v1/x"), 2);
  EXPECT_EQ(chosen(router, "/api/v2"), 1);
  EXPECT_EQ(chosen(router, "/apix"), 1);
  EXPECT_EQ(chosen(router, "/ab"), 0);
}

TEST(RouterPrecedence, ParamBeatsPrefixInTheSameSegment) {
  Router router(make_routes({prefix("/api"), tmpl("/{page}")}));
  EXPECT_EQ(chosen(router, "/apix"), 1);   // "api" is only part of the segment
  EXPECT_EQ(chosen(router, "/api/x"), 0);  // "api" is the whole first segment
}

TEST(RouterPrecedence, PrefixOnWholeSegmentCountsAsLiteral) {
  Router router(make_routes({tmpl("/{tenant}/x"), prefix("/api")}));
  EXPECT_EQ(chosen(router, "/api/x"), 1);
  EXPECT_EQ(chosen(router, "/web/x"), 0);
}

TEST(RouterPrecedence, CatchAllTemplateBeatsShorterPrefix) {
  // "/files/" is a longer literal than "/files".
  Router router(make_routes({prefix("/files"), tmpl("/files/{*path}")}));
  EXPECT_EQ(chosen(router, "/files/a"), 1);
  EXPECT_EQ(chosen(router, "/files"), 0);
}

// ---- prefixes and no path condition ----

TEST(RouterPrefix, PrefixMatchesMidSegment) {
  Router router(make_routes({prefix("/api")}));
  EXPECT_EQ(chosen(router, "/api"), 0);
  EXPECT_EQ(chosen(router, "/api/x"), 0);
  EXPECT_EQ(chosen(router, "/apix"), 0);
  EXPECT_EQ(chosen(router, "/apix/y"), 0);
  EXPECT_EQ(chosen(router, "/ap"), -1);
  EXPECT_EQ(chosen(router, "/x/api"), -1);
}

TEST(RouterPrefix, PrefixEndingInSlashNeedsTheSlash) {
  Router router(make_routes({prefix("/api/")}));
  EXPECT_EQ(chosen(router, "/api/"), 0);
  EXPECT_EQ(chosen(router, "/api/x/y"), 0);
  EXPECT_EQ(chosen(router, "/api//x"), 0);
  EXPECT_EQ(chosen(router, "/api"), -1);
  EXPECT_EQ(chosen(router, "/apix"), -1);
}

TEST(RouterPrefix, DeepPrefixMatchesMidSegment) {
  Router router(make_routes({prefix("/v1/us"), tmpl("/v1/{x}")}));
  EXPECT_EQ(chosen(router, "/v1/users/3"), 0);
  EXPECT_EQ(chosen(router, "/v1/users"), 1);  // param beats a partial literal
  EXPECT_EQ(chosen(router, "/v1/u"), 1);
}

TEST(RouterPrefix, ManyPrefixesOnOneNodeStillMatchMidSegment) {
  std::vector<RouteSpec> specs;
  for (int i = 0; i < 100; ++i) specs.push_back(prefix("/svc" + std::to_string(i)));
  Router router(make_routes(specs));
  EXPECT_EQ(chosen(router, "/svc42"), 42);
  EXPECT_EQ(chosen(router, "/svc42/x"), 42);
  EXPECT_EQ(chosen(router, "/svc42x"), 42);
  EXPECT_EQ(chosen(router, "/svc7x"), 7);
  EXPECT_EQ(chosen(router, "/svc420"), 42);
  EXPECT_EQ(chosen(router, "/sv"), -1);
}

TEST(RouterPrefix, NoPathConditionMatchesEveryPath) {
  Router router(make_routes({any_path()}));
  EXPECT_EQ(chosen(router, "/"), 0);
  EXPECT_EQ(chosen(router, "/a/b/c"), 0);
  EXPECT_EQ(chosen(router, "*", "OPTIONS"), 0);
  EXPECT_EQ(chosen(router, ""), 0);
}

TEST(RouterPrefix, NoPathConditionIsTheLastResort) {
  Router router(make_routes({any_path(), prefix("/api"), tmpl("/{x}")}));
  EXPECT_EQ(chosen(router, "/api/x"), 1);
  EXPECT_EQ(chosen(router, "/other"), 2);
  EXPECT_EQ(chosen(router, "/other/deeper"), 0);
}

TEST(RouterPrefix, RootPrefixAndNoPathConditionTieByFileOrder) {
  Router router(make_routes({prefix("/"), any_path()}));
  EXPECT_EQ(chosen(router, "/x"), 0);
  Router reversed(make_routes({any_path(), prefix("/")}));
  EXPECT_EQ(chosen(reversed, "/x"), 0);
}

// ---- hosts ----

TEST(RouterHost, ExactHostBeatsWildcard) {
  Router router(
      make_routes({on_host(tmpl("/x"), "*.example.com"), on_host(tmpl("/x"), "api.example.com")}));
  EXPECT_EQ(chosen(router, "/x", "GET", "api.example.com"), 1);
  EXPECT_EQ(chosen(router, "/x", "GET", "www.example.com"), 0);
}

TEST(RouterHost, WildcardBeatsNoHostCondition) {
  Router router(make_routes({tmpl("/x"), on_host(tmpl("/x"), "*.example.com")}));
  EXPECT_EQ(chosen(router, "/x", "GET", "a.example.com"), 1);
  EXPECT_EQ(chosen(router, "/x", "GET", "other.org"), 0);
  EXPECT_EQ(chosen(router, "/x", "GET", ""), 0);
}

TEST(RouterHost, HostBeatsPathSpecificity) {
  Router router(make_routes({tmpl("/users/me"), on_host(prefix("/"), "api.example.com")}));
  EXPECT_EQ(chosen(router, "/users/me", "GET", "api.example.com"), 1);
  EXPECT_EQ(chosen(router, "/users/me", "GET", "www.example.com"), 0);
}

TEST(RouterHost, FallsBackToLessSpecificHostWhenPathMisses) {
  Router router(make_routes({on_host(tmpl("/a"), "api.example.com"), tmpl("/b")}));
  EXPECT_EQ(chosen(router, "/b", "GET", "api.example.com"), 1);
}

TEST(RouterHost, WildcardNeedsAtLeastOneMoreLabel) {
  Router router(make_routes({on_host(any_path(), "*.example.com")}));
  EXPECT_EQ(chosen(router, "/", "GET", "a.example.com"), 0);
  EXPECT_EQ(chosen(router, "/", "GET", "a.b.example.com"), 0);
  EXPECT_EQ(chosen(router, "/", "GET", "example.com"), -1);
  EXPECT_EQ(chosen(router, "/", "GET", ".example.com"), -1);
  EXPECT_EQ(chosen(router, "/", "GET", "badexample.com"), -1);
}

TEST(RouterHost, LongerWildcardSuffixWins) {
  Router router(make_routes(
      {on_host(any_path(), "*.example.com"), on_host(any_path(), "*.api.example.com")}));
  EXPECT_EQ(chosen(router, "/", "GET", "v1.api.example.com"), 1);
  EXPECT_EQ(chosen(router, "/", "GET", "api.example.com"), 0);
}

TEST(RouterHost, HostConditionIsCaseInsensitive) {
  Router router(
      make_routes({on_host(any_path(), "API.Example.COM"), on_host(tmpl("/w"), "*.Example.com")}));
  EXPECT_EQ(chosen(router, "/", "GET", "api.example.com"), 0);
  EXPECT_EQ(chosen(router, "/w", "GET", "www.example.com"), 1);
}

TEST(RouterHost, ExactHostDoesNotMatchOtherHosts) {
  Router router(make_routes({on_host(any_path(), "api.example.com")}));
  EXPECT_EQ(chosen(router, "/", "GET", "www.example.com"), -1);
  EXPECT_EQ(chosen(router, "/", "GET", ""), -1);
}

// ---- methods and headers ----

TEST(RouterConditions, MethodMismatchFallsThroughToLessSpecificRoute) {
  Router router(make_routes({tmpl("/items/{id}", {"GET"}), prefix("/items")}));
  EXPECT_EQ(chosen(router, "/items/1", "GET"), 0);
  EXPECT_EQ(chosen(router, "/items/1", "DELETE"), 1);
}

TEST(RouterConditions, MethodIsComparedExactly) {
  Router router(make_routes({tmpl("/x", {"GET"})}));
  EXPECT_EQ(chosen(router, "/x", "get"), -2);
}

TEST(RouterConditions, MethodNotAllowedListsAllow) {
  Router router(
      make_routes({tmpl("/items/{id}", {"GET", "PUT"}), tmpl("/items/{key}", {"DELETE", "GET"}),
                   tmpl("/items/{id}/x", {"POST"}), tmpl("/other", {"PATCH"})}));
  MatchResult result = match(router, "/items/3", "POST");
  EXPECT_EQ(result.kind, Kind::kMethodNotAllowed);
  EXPECT_EQ(result.allow, "DELETE, GET, PUT");
}

TEST(RouterConditions, MethodNotAllowedGathersAcrossHostsAndKinds) {
  Router router(make_routes({on_host(tmpl("/x", {"GET"}), "api.example.com"),
                             on_host(prefix("/x", {"PUT"}), "*.example.com"), regex("/x", {"POST"}),
                             regex("/y", {"PATCH"})}));
  MatchResult result = match(router, "/x", "DELETE", "api.example.com");
  EXPECT_EQ(result.kind, Kind::kMethodNotAllowed);
  EXPECT_EQ(result.allow, "GET, POST, PUT");
}

TEST(RouterConditions, NotFoundWhenNoPathMatches) {
  Router router(make_routes({tmpl("/a", {"GET"})}));
  MatchResult result = match(router, "/b", "POST");
  EXPECT_EQ(result.kind, Kind::kNotFound);
  EXPECT_TRUE(result.allow.empty());
}

TEST(RouterConditions, HeadersMustAllMatchExactly) {
  Router router(
      make_routes({{PathKind::kPrefix, "/", {}, "", {{"x-version", "2"}, {"x-beta", "1"}}}}));
  EXPECT_EQ(chosen(router, "/", "GET", "", Headers{{"x-version", "2"}, {"x-beta", "1"}}), 0);
  EXPECT_EQ(chosen(router, "/", "GET", "", Headers{{"x-version", "2"}}), -1);
  EXPECT_EQ(chosen(router, "/", "GET", "", Headers{{"x-version", "20"}, {"x-beta", "1"}}), -1);
}

TEST(RouterConditions, HeaderMismatchFallsThroughToNextRoute) {
  Router router(
      make_routes({{PathKind::kTemplate, "/x", {}, "", {{"x-canary", "1"}}}, tmpl("/x")}));
  EXPECT_EQ(chosen(router, "/x", "GET", "", Headers{{"x-canary", "1"}}), 0);
  EXPECT_EQ(chosen(router, "/x"), 1);
}

TEST(RouterConditions, MethodNotAllowedOnlyCountsRoutesWhoseHeadersMatch) {
  Router router(make_routes(
      {{PathKind::kTemplate, "/x", {"GET"}, "", {{"x-canary", "1"}}}, tmpl("/x", {"PUT"})}));
  EXPECT_EQ(match(router, "/x", "POST").allow, "PUT");
  EXPECT_EQ(match(router, "/x", "POST", "", Headers{{"x-canary", "1"}}).allow, "GET, PUT");
}

// ---- regex ----

TEST(RouterRegex, RegexNamedCapturesBecomeParams) {
  Router router(make_routes({regex(R"(/v(?P<version>\d+)/(\w+)/(?P<id>\d+))")}));
  const std::string path = "/v2/users/17";
  MatchResult result = match(router, path);
  ASSERT_EQ(result.kind, Kind::kFound);
  ASSERT_EQ(result.param_count, 2u);
  EXPECT_EQ(result.params[0].name, "version");  // in group order
  EXPECT_EQ(result.params[0].value, "2");
  EXPECT_EQ(result.params[1].name, "id");
  EXPECT_EQ(result.params[1].value, "17");
  EXPECT_EQ(result.params[1].value.data(), path.data() + 10);
}

TEST(RouterRegex, RegexMustMatchTheWholePath) {
  Router router(make_routes({regex(R"(/a/\d+)")}));
  EXPECT_EQ(chosen(router, "/a/12"), 0);
  EXPECT_EQ(chosen(router, "/a/12/x"), -1);
  EXPECT_EQ(chosen(router, "/x/a/12"), -1);
}

TEST(RouterRegex, TrieRoutesBeatRegexRoutes) {
  Router router(make_routes({regex("/a/.*"), tmpl("/a/{*rest}")}));
  EXPECT_EQ(chosen(router, "/a/b"), 1);
}

TEST(RouterRegex, RegexBeatsMatchEverythingFallback) {
  Router router(make_routes({any_path(), prefix("/"), tmpl("/{*all}"), regex("/v[0-9]+/.*")}));
  EXPECT_EQ(chosen(router, "/v1/x"), 3);
  EXPECT_EQ(chosen(router, "/x"), 0);
}

TEST(RouterRegex, RegexOnExactHostBeatsTemplateWithoutHost) {
  Router router(make_routes({tmpl("/a/b"), on_host(regex("/a/.*"), "api.example.com")}));
  EXPECT_EQ(chosen(router, "/a/b", "GET", "api.example.com"), 1);
  EXPECT_EQ(chosen(router, "/a/b", "GET", "www.example.com"), 0);
}

TEST(RouterRegex, RegexRoutesTieByFileOrder) {
  Router router(make_routes({regex("/a.*"), regex("/ab.*")}));
  EXPECT_EQ(chosen(router, "/abc"), 0);
}

TEST(RouterRegex, UnmatchedOptionalGroupIsEmpty) {
  Router router(make_routes({regex(R"(/f(?P<ext>\.\w+)?)")}));
  MatchResult result = match(router, "/f");
  ASSERT_EQ(result.kind, Kind::kFound);
  ASSERT_EQ(result.param_count, 1u);
  EXPECT_EQ(result.params[0].value, "");
}

// ---- construction ----

TEST(RouterBuild, InvalidTemplateThrows) {
  EXPECT_THROW(Router(make_routes({tmpl("/a/{id")})), std::invalid_argument);
}

TEST(RouterBuild, InvalidRegexThrows) {
  EXPECT_THROW(Router(make_routes({regex("/a/(")})), std::invalid_argument);
}

TEST(RouterBuild, MovedRouterKeepsParamNamesValid) {
  Router original(make_routes({tmpl("/u/{user}")}));
  Router router(std::move(original));
  MatchResult result = match(router, "/u/ada");
  ASSERT_EQ(result.param_count, 1u);
  EXPECT_EQ(result.params[0].name, "user");
}

TEST(RouterBuild, EmptyRouterFindsNothing) {
  Router router(std::vector<config::Route>{});
  EXPECT_EQ(chosen(router, "/"), -1);
}

TEST(RouterBuild, MatchResultIsResetBetweenCalls) {
  Router router(make_routes({tmpl("/u/{user}", {"GET"})}));
  MatchResult result;
  router.match("", "/u/1", "POST", Headers{}, result);
  EXPECT_EQ(result.kind, Kind::kMethodNotAllowed);
  router.match("", "/u/1", "GET", Headers{}, result);
  EXPECT_EQ(result.kind, Kind::kFound);
  EXPECT_TRUE(result.allow.empty());
  router.match("", "/nope", "GET", Headers{}, result);
  EXPECT_EQ(result.kind, Kind::kNotFound);
  EXPECT_EQ(result.param_count, 0u);
}

TEST(RouterScale, ThousandsOfRoutes) {
  std::vector<RouteSpec> specs;
  for (int i = 0; i < 5000; ++i) {
    const std::string svc = "/svc" + std::to_string(i);
    specs.push_back(tmpl(svc + "/v1/items/{id}", {"GET"}));
    specs.push_back(prefix(svc + "/static"));
  }
  Router router(make_routes(specs));
  for (int i = 0; i < 5000; i += 7) {
    const std::string svc = "/svc" + std::to_string(i);
    const std::string path = svc + "/v1/items/9";  // params point into it
    MatchResult result = match(router, path);
    ASSERT_EQ(result.kind, Kind::kFound);
    EXPECT_EQ(result.route_index, static_cast<uint32_t>(2 * i));
    EXPECT_EQ(params_of(result), (std::map<std::string, std::string>{{"id", "9"}}));
    EXPECT_EQ(chosen(router, svc + "/staticfile.css"), 2 * i + 1);
    EXPECT_EQ(match(router, svc + "/v1/items/9", "POST").allow, "GET");
  }
  EXPECT_EQ(chosen(router, "/svc5000/v1/items/9"), -1);
}

// ---- randomized cross-check against a brute-force reference ----
//
// The reference scores every route on its own, straight from the precedence
// rule written at the top of router.cc, and picks the best; the Router must
// agree with it on every request.

std::vector<std::string> split_segments(std::string_view text) {  // text after the first '/'
  std::vector<std::string> segments;
  while (true) {
    std::size_t slash = text.find('/');
    segments.emplace_back(text.substr(0, slash));
    if (slash == std::string_view::npos) return segments;
    text.remove_prefix(slash + 1);
  }
}

// One step of a path rank; smaller is more specific.
// 0 literal, 1 param, 2 + (100 - n) partial literal of n chars, 200 open, 201 terminal-at-end
// (terminal < open at the end: the end step is compared as 0 terminal, 200 open).
using Rank = std::vector<int>;
constexpr int kLiteral = 0, kParam = 1, kTerminal = 0, kOpen = 200;
int partial_rank(std::size_t literal_length) { return 2 + 100 - static_cast<int>(literal_length); }

std::optional<Rank> template_rank(const std::string& path_template,
                                  const std::vector<std::string>& path,
                                  std::map<std::string, std::string>& params,
                                  const std::string& raw_path) {
  std::vector<std::string> parts = split_segments(std::string_view(path_template).substr(1));
  Rank rank;
  std::size_t offset = 1;  // position in raw_path after the leading '/'
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (part.starts_with("{*")) {
      if (i >= path.size()) return std::nullopt;
      params[part.substr(2, part.size() - 3)] = raw_path.substr(offset);
      rank.push_back(partial_rank(0));
      return rank;
    }
    if (i >= path.size()) return std::nullopt;
    if (part.starts_with('{')) {
      if (path[i].empty()) return std::nullopt;
      params[part.substr(1, part.size() - 2)] = path[i];
      rank.push_back(kParam);
    } else {
      if (part != path[i]) return std::nullopt;
      rank.push_back(kLiteral);
    }
    offset += path[i].size() + 1;
  }
  if (parts.size() != path.size()) return std::nullopt;
  rank.push_back(kTerminal);
  return rank;
}

std::optional<Rank> prefix_rank(const std::string& prefix, const std::vector<std::string>& path,
                                const std::string& raw_path) {
  if (!raw_path.starts_with(prefix)) return std::nullopt;
  std::vector<std::string> parts = split_segments(std::string_view(prefix).substr(1));
  Rank rank(parts.size() - 1, kLiteral);
  const std::string& last = parts.back();
  rank.push_back(path[parts.size() - 1] == last ? kLiteral : partial_rank(last.size()));
  if (path[parts.size() - 1] == last) rank.push_back(kOpen);
  return rank;
}

struct Candidate {
  std::tuple<int, int, int, Rank, std::size_t> key;  // host class, wildcard, group, rank, index
  std::map<std::string, std::string> params;
};

struct Expected {
  int chosen = -1;
  std::map<std::string, std::string> params;
  std::string allow;
};

Expected reference_match(const std::vector<RouteSpec>& routes, const std::string& host,
                         const std::string& raw_path, const std::string& method,
                         const Headers& headers) {
  std::vector<std::string> path = split_segments(std::string_view(raw_path).substr(1));
  std::optional<Candidate> best;
  std::vector<std::string> allowed;
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const RouteSpec& route = routes[i];
    int host_class = 2, wildcard = 0;
    if (!route.host.empty()) {
      if (route.host.starts_with("*.")) {
        const std::string suffix = route.host.substr(1);
        if (!(host.size() > suffix.size() && host.ends_with(suffix))) continue;
        host_class = 1;
        wildcard = -static_cast<int>(suffix.size());
      } else {
        if (host != route.host) continue;
        host_class = 0;
      }
    }
    bool headers_ok = std::all_of(route.headers.begin(), route.headers.end(), [&](const auto& h) {
      std::string_view value;
      return headers.get(h.first, value) && value == h.second;
    });
    if (!headers_ok) continue;
    std::map<std::string, std::string> params;
    std::optional<Rank> rank;
    int group = 0;
    const bool fallback = route.kind == PathKind::kNone ||
                          (route.kind == PathKind::kPrefix && route.path == "/") ||
                          (route.kind == PathKind::kTemplate && route.path.starts_with("/{*"));
    if (fallback) {
      group = 2;
      rank = template_rank(route.kind == PathKind::kTemplate ? route.path : "/{*x}", path, params,
                           raw_path);
      if (route.kind != PathKind::kTemplate) params.clear();
      if (rank) rank = Rank{};
    } else if (route.kind == PathKind::kTemplate) {
      rank = template_rank(route.path, path, params, raw_path);
    } else if (route.kind == PathKind::kPrefix) {
      rank = prefix_rank(route.path, path, raw_path);
    }
    if (!rank) continue;
    bool method_ok = route.methods.empty() || std::find(route.methods.begin(), route.methods.end(),
                                                        method) != route.methods.end();
    if (!method_ok) {
      allowed.insert(allowed.end(), route.methods.begin(), route.methods.end());
      continue;
    }
    Candidate candidate{{host_class, wildcard, group, *rank, i}, params};
    if (!best || candidate.key < best->key) best = candidate;
  }
  Expected expected;
  if (best) {
    expected.chosen = static_cast<int>(std::get<4>(best->key));
    expected.params = best->params;
  } else if (!allowed.empty()) {
    expected.chosen = -2;
    std::sort(allowed.begin(), allowed.end());
    allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
    for (const std::string& m : allowed) expected.allow += (expected.allow.empty() ? "" : ", ") + m;
  }
  return expected;
}

TEST(RouterReference, AgreesWithBruteForceOnRandomRoutes) {
  std::mt19937 rng(12345);
  auto pick = [&](const std::vector<std::string>& options) {
    return options[std::uniform_int_distribution<std::size_t>(0, options.size() - 1)(rng)];
  };
  auto chance = [&](int percent) {
    return std::uniform_int_distribution<int>(0, 99)(rng) < percent;
  };
  // Enough distinct literals that some nodes outgrow the linear scan.
  const std::vector<std::string> literals = {"a", "b", "ab", "abc", "",  "c", "d",
                                             "e", "f", "g",  "h",   "i", "j"};
  const std::vector<std::string> hosts = {"", "", "", "x.com", "y.x.com", "*.x.com", "*.y.x.com"};
  const std::vector<std::string> request_hosts = {"", "x.com", "y.x.com", "z.y.x.com", "q.x.com"};

  for (int round = 0; round < 600; ++round) {
    std::vector<RouteSpec> routes;
    const int route_count = std::uniform_int_distribution<int>(1, round % 3 == 0 ? 60 : 12)(rng);
    for (int r = 0; r < route_count; ++r) {
      RouteSpec spec;
      const int kind = std::uniform_int_distribution<int>(0, 9)(rng);
      const int depth = std::uniform_int_distribution<int>(1, 3)(rng);
      if (kind == 0) {
        spec.kind = PathKind::kNone;
      } else if (kind <= 3) {
        spec.kind = PathKind::kPrefix;
        for (int d = 0; d < depth; ++d) spec.path += "/" + pick(literals);
      } else {
        spec.kind = PathKind::kTemplate;
        for (int d = 0; d < depth; ++d) {
          spec.path += "/";
          spec.path += chance(35) ? "{p" + std::to_string(d) + "}" : pick(literals);
        }
        if (chance(25)) spec.path += "/{*rest}";
      }
      if (chance(30)) spec.methods = {pick({"GET", "POST", "PUT"})};
      if (chance(10)) spec.methods.push_back("DELETE");
      spec.host = pick(hosts);
      if (chance(10)) spec.headers = {{"x-h", pick({"1", "2"})}};
      routes.push_back(spec);
    }
    Router router(make_routes(routes));
    for (int q = 0; q < 60; ++q) {
      std::string path;
      const int depth = std::uniform_int_distribution<int>(1, 4)(rng);
      for (int d = 0; d < depth; ++d) {
        path += '/';
        path += pick({"a", "b", "ab", "abc", "abcd", "", "zz", "c", "d", "e", "f", "jk"});
      }
      const std::string host = pick(request_hosts);
      const std::string method = pick({"GET", "POST", "PUT", "DELETE"});
      const Headers headers = chance(50) ? Headers{{"x-h", pick({"1", "2"})}} : Headers{};
      const Expected expected = reference_match(routes, host, path, method, headers);
      const MatchResult result = match(router, path, method, host, headers);
      std::string context = "round " + std::to_string(round) + " path '" + path + "' host '" +
                            host + "' method " + method + "; routes:";
      for (const RouteSpec& spec : routes) {
        context += " [" + std::to_string(static_cast<int>(spec.kind)) + " '" + spec.path +
                   "' host '" + spec.host + "' methods " + std::to_string(spec.methods.size()) +
                   " headers " + std::to_string(spec.headers.size()) + "]";
      }
      const int actual = result.kind == Kind::kFound      ? static_cast<int>(result.route_index)
                         : result.kind == Kind::kNotFound ? -1
                                                          : -2;
      ASSERT_EQ(actual, expected.chosen) << context;
      if (actual >= 0) {
        ASSERT_EQ(params_of(result), expected.params) << context;
      }
      if (actual == -2) {
        ASSERT_EQ(result.allow, expected.allow) << context;
      }
    }
  }
}

// ---- find_shadowed ----

using Pairs = std::vector<std::pair<std::size_t, std::size_t>>;

TEST(RouterShadowed, IdenticalLaterRouteIsShadowed) {
  EXPECT_EQ(Router::find_shadowed(make_routes({tmpl("/a"), tmpl("/b"), tmpl("/a")})),
            (Pairs{{2, 0}}));
}

TEST(RouterShadowed, ParamNamesDoNotMatterForShadowing) {
  EXPECT_EQ(
      Router::find_shadowed(make_routes({tmpl("/u/{id}/{*rest}"), tmpl("/u/{user}/{*path}")})),
      (Pairs{{1, 0}}));
  EXPECT_TRUE(
      Router::find_shadowed(make_routes({tmpl("/u/{id}/{*rest}"), tmpl("/u/{id}/x")})).empty());
}

TEST(RouterShadowed, BroaderMethodsShadowNarrower) {
  EXPECT_EQ(Router::find_shadowed(make_routes({tmpl("/a", {"GET", "POST"}), tmpl("/a", {"POST"})})),
            (Pairs{{1, 0}}));
  EXPECT_EQ(Router::find_shadowed(make_routes({tmpl("/a"), tmpl("/a", {"POST"})})),
            (Pairs{{1, 0}}));
  EXPECT_TRUE(
      Router::find_shadowed(make_routes({tmpl("/a", {"GET"}), tmpl("/a", {"POST"})})).empty());
  EXPECT_TRUE(Router::find_shadowed(make_routes({tmpl("/a", {"GET"}), tmpl("/a")})).empty());
}

TEST(RouterShadowed, EarlierRouteNeedingMoreHeadersDoesNotShadow) {
  RouteSpec with_header{PathKind::kPrefix, "/a", {}, "", {{"x-beta", "1"}}};
  RouteSpec with_two{PathKind::kPrefix, "/a", {}, "", {{"x-beta", "1"}, {"x-v", "2"}}};
  EXPECT_TRUE(Router::find_shadowed(make_routes({with_header, prefix("/a")})).empty());
  EXPECT_EQ(Router::find_shadowed(make_routes({prefix("/a"), with_header})), (Pairs{{1, 0}}));
  EXPECT_EQ(Router::find_shadowed(make_routes({with_header, with_two})), (Pairs{{1, 0}}));
}

TEST(RouterShadowed, DifferentHostOrPathKindIsNotShadowed) {
  EXPECT_TRUE(
      Router::find_shadowed(make_routes({on_host(prefix("/a"), "x.com"), prefix("/a")})).empty());
  EXPECT_TRUE(Router::find_shadowed(make_routes({prefix("/a"), tmpl("/a")})).empty());
  EXPECT_TRUE(Router::find_shadowed(make_routes({prefix("/a"), prefix("/a/")})).empty());
  EXPECT_EQ(Router::find_shadowed(
                make_routes({on_host(any_path(), "X.com"), on_host(any_path(), "x.com")})),
            (Pairs{{1, 0}}));
}

TEST(RouterShadowed, ReportsTheFirstShadowingRoute) {
  EXPECT_EQ(Router::find_shadowed(make_routes({regex("/a.*"), regex("/a.*"), regex("/a.*")})),
            (Pairs{{1, 0}, {2, 0}}));
}

// ---- check_template ----

TEST(RouterCheckTemplate, AcceptsValidTemplates) {
  for (const char* valid : {"/", "/a/b", "/links/{id}", "/a/{_x1}/{*rest}", "/{*all}", "/a/"}) {
    EXPECT_EQ(Router::check_template(valid), "") << valid;
  }
}

TEST(RouterCheckTemplate, MustStartWithSlash) {
  EXPECT_EQ(Router::check_template("a/b"), "path template must start with '/'");
  EXPECT_EQ(Router::check_template(""), "path template must start with '/'");
}

TEST(RouterCheckTemplate, RejectsUnclosedBrace) {
  EXPECT_EQ(Router::check_template("/a/{id"), "unclosed '{' in path template");
  EXPECT_EQ(Router::check_template("/a/{id/x}"), "unclosed '{' in path template");
}

TEST(RouterCheckTemplate, RejectsUnmatchedCloseBrace) {
  EXPECT_EQ(Router::check_template("/a/id}"), "unmatched '}' in path template");
}

TEST(RouterCheckTemplate, RejectsBadParamNames) {
  EXPECT_NE(Router::check_template("/a/{1x}").find("invalid parameter name '1x'"),
            std::string::npos);
  EXPECT_NE(Router::check_template("/a/{}").find("invalid parameter name ''"), std::string::npos);
  EXPECT_NE(Router::check_template("/a/{x-y}").find("invalid parameter name 'x-y'"),
            std::string::npos);
  EXPECT_NE(Router::check_template("/a/{*}").find("invalid parameter name ''"), std::string::npos);
}

TEST(RouterCheckTemplate, RejectsDuplicateParamNames) {
  EXPECT_EQ(Router::check_template("/{id}/x/{id}"),
            "duplicate parameter name 'id' in path template");
  EXPECT_EQ(Router::check_template("/{id}/{*id}"),
            "duplicate parameter name 'id' in path template");
}

TEST(RouterCheckTemplate, CatchAllOnlyLast) {
  EXPECT_EQ(Router::check_template("/{*rest}/x"), "'{*rest}' must be the last segment");
  EXPECT_EQ(Router::check_template("/{*rest}/"), "'{*rest}' must be the last segment");
}

TEST(RouterCheckTemplate, ParamMustBeWholeSegment) {
  EXPECT_EQ(Router::check_template("/file{id}.json"),
            "'{...}' must be a whole path segment, not 'file{id}.json'");
  EXPECT_EQ(Router::check_template("/{a}{b}"),
            "'{...}' must be a whole path segment, not '{a}{b}'");
}

TEST(RouterCheckTemplate, RejectsMoreParamsThanMatchResultHolds) {
  std::string path;
  for (std::size_t i = 0; i <= kMaxParams; ++i) path += "/{p" + std::to_string(i) + "}";
  EXPECT_EQ(Router::check_template(path), "more than 16 parameters in path template");
}

}  // namespace
}  // namespace gatehouse::router
