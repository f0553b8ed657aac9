#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http/http1_parser.h"
#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

struct CorsWorld {
  config::Config config;
  std::vector<std::string> errors;

  std::unique_ptr<proxy::Plugin> build(const std::string& yaml) {
    return find_plugin_kind("cors")->create(
        YAML::Load(yaml), PluginEnv{.config = config, .scope = "route:test"},
        [&](const YAML::Node& at, std::string message) {
          errors.push_back(std::to_string(at.Mark().line + 1) + ":" +
                           std::to_string(at.Mark().column + 1) + ": " + message);
        });
  }
  // Builds a config that must be valid.
  std::unique_ptr<proxy::Plugin> valid(const std::string& yaml) {
    auto p = build(yaml);
    EXPECT_TRUE(p) << (errors.empty() ? "" : errors[0]);
    return p;
  }
};

struct CorsRequest {
  std::string raw;
  http::RequestHead head;
  proxy::RequestState state;
  proxy::RequestContext ctx;
  proxy::LocalReply reply;
  bool passed = false;
};

std::unique_ptr<CorsRequest> run(const proxy::Plugin& plugin, const std::string& method,
                                 const std::vector<std::string>& headers) {
  auto r = std::make_unique<CorsRequest>();
  r->raw = method + " /links HTTP/1.1\r\nHost: gw.example\r\n";
  for (const std::string& h : headers) r->raw += h + "\r\n";
  r->raw += "\r\n";
  std::size_t scanned = 0;
  const std::size_t size = http::find_head_end(r->raw.data(), r->raw.size(), scanned);
  http::ParseError err;
  EXPECT_EQ(http::parse_request_head(r->raw.data(), size, r->head, err),
            http::ParseStatus::kComplete)
      << err.detail;
  r->ctx.head = &r->head;
  r->ctx.state = &r->state;
  r->ctx.client_ip = "10.1.2.3";
  r->passed = plugin.on_request(r->ctx, r->reply);
  return r;
}

std::unique_ptr<CorsRequest> preflight(const proxy::Plugin& plugin, const std::string& origin,
                                       const std::string& method,
                                       std::vector<std::string> more = {}) {
  more.insert(more.begin(), {"Origin: " + origin, "Access-Control-Request-Method: " + method});
  return run(plugin, "OPTIONS", more);
}

void expect_refused_preflight(const CorsRequest& r) {
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.reply.status, 403);
  EXPECT_TRUE(r.reply.problem);
  EXPECT_EQ(r.reply.detail, "CORS preflight refused");
  EXPECT_TRUE(r.reply.headers.empty());
  EXPECT_TRUE(r.state.response_headers.empty());
}

const std::string kApp = "{origins: ['https://app.example.com'], methods: [GET, POST]}";
const std::string kFull =
    "{origins: ['https://app.example.com', 'http://localhost:3000'], methods: [GET, POST, "
    "delete], headers: [Authorization, X-Tenant], expose_headers: [X-Request-Id, ETag], "
    "credentials: true, max_age: 1h}";

// ---- config ----

TEST(CorsConfig, ExampleFromTheDocIsValidAndRunsEarly) {
  CorsWorld w;
  auto p = w.valid(
      "{origins: ['https://app.example.com'], methods: [GET, POST], headers: [Authorization],\n"
      " expose_headers: [X-Request-Id], credentials: true, max_age: 600}");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->stage(), proxy::Stage::kEarly);
}

TEST(CorsConfig, NeedsAMapWithOrigins) {
  CorsWorld w;
  EXPECT_FALSE(w.build("[https://a.example]"));
  EXPECT_FALSE(w.build("methods: [GET]\n"));
  ASSERT_EQ(w.errors.size(), 2u);
  EXPECT_EQ(w.errors[0], "1:1: 'cors' needs a map with at least 'origins'");
  EXPECT_EQ(w.errors[1],
            "1:1: 'cors' needs 'origins' (a list of scheme://host[:port], or [\"*\"])");
}

TEST(CorsConfig, OriginsMustBeSchemeHostPortWithoutAPath) {
  CorsWorld w;
  auto p = w.build(
      "origins:\n"
      "  - https://app.example.com/\n"
      "  - app.example.com\n"
      "  - https://app.example.com/x\n"
      "  - 'null'\n"
      "  - https://app.example.com:99999\n"
      "  - https://user@app.example.com\n"
      "  - https://app.example.com:8443\n"
      "  - 'http://[::1]:8080'\n");
  EXPECT_FALSE(p);
  ASSERT_EQ(w.errors.size(), 6u);
  EXPECT_EQ(w.errors[0],
            "2:5: invalid origin 'https://app.example.com/': expected \"*\" or "
            "scheme://host[:port], without a path or a trailing '/'");
  EXPECT_EQ(w.errors[1].substr(0, 37), "3:5: invalid origin 'app.example.com'");
  EXPECT_EQ(w.errors[2].substr(0, 47), "4:5: invalid origin 'https://app.example.com/x'");
  EXPECT_EQ(w.errors[3].substr(0, 26), "5:5: invalid origin 'null'");
  EXPECT_EQ(w.errors[4].substr(0, 51), "6:5: invalid origin 'https://app.example.com:99999'");
  EXPECT_EQ(w.errors[5].substr(0, 50), "7:5: invalid origin 'https://user@app.example.com'");
}

TEST(CorsConfig, OriginsMustBeANonEmptyList) {
  CorsWorld w;
  EXPECT_FALSE(w.build("origins: https://a.example\n"));
  EXPECT_FALSE(w.build("origins: []\n"));
  ASSERT_EQ(w.errors.size(), 2u);
  EXPECT_EQ(w.errors[0], "1:10: 'origins' must be a list of strings");
  EXPECT_EQ(w.errors[1], "1:10: 'origins' must not be empty");
}

TEST(CorsConfig, StarMustBeTheOnlyOrigin) {
  CorsWorld w;
  EXPECT_FALSE(
      w.build("origins:\n"
              "  - https://a.example\n"
              "  - '*'\n"));
  ASSERT_EQ(w.errors.size(), 1u);
  EXPECT_EQ(w.errors[0], "3:5: '*' must be the only entry of 'origins'");
}

TEST(CorsConfig, StarOriginWithCredentialsIsRefused) {
  CorsWorld w;
  auto p = w.build(
      "origins: ['*']\n"
      "credentials: true\n");
  EXPECT_FALSE(p);
  ASSERT_EQ(w.errors.size(), 1u);
  EXPECT_EQ(w.errors[0],
            "2:14: 'credentials: true' cannot be combined with origins [\"*\"]: list the origins");
  EXPECT_TRUE(w.valid("{origins: ['*'], credentials: false}"));
}

TEST(CorsConfig, MethodsAndHeadersMustBeTokens) {
  CorsWorld w;
  auto p = w.build(
      "origins: ['https://a.example']\n"
      "methods: [GET, 'BAD METHOD', '*']\n"
      "headers: [X-Ok, 'X:Bad']\n"
      "expose_headers: ['*']\n");
  EXPECT_FALSE(p);
  ASSERT_EQ(w.errors.size(), 4u);
  EXPECT_EQ(w.errors[0], "2:16: invalid name 'BAD METHOD' in 'methods'");
  EXPECT_EQ(w.errors[1], "2:30: '*' is not supported in 'methods': list the methods");
  EXPECT_EQ(w.errors[2], "3:17: invalid name 'X:Bad' in 'headers'");
  EXPECT_EQ(w.errors[3], "4:18: '*' is not supported in 'expose_headers': list the header names");
}

TEST(CorsConfig, MethodsMustNotBeEmpty) {
  CorsWorld w;
  EXPECT_FALSE(w.build("{origins: ['https://a.example'], methods: []}"));
  ASSERT_EQ(w.errors.size(), 1u);
  EXPECT_EQ(w.errors[0], "1:43: 'methods' must not be empty");
}

TEST(CorsConfig, MaxAgeIsSecondsOrADuration) {
  CorsWorld w;
  const std::string base = "{origins: ['https://a.example'], max_age: ";
  for (const char* ok : {"0", "600", "10m", "1h", "1.5m"})
    EXPECT_TRUE(w.valid(base + ok + "}")) << ok;
  for (const char* bad : {"-1", "ten", "''", "[1]", "10x", "1.5s", "1500ms"})
    EXPECT_FALSE(w.build(base + bad + "}")) << bad;
  ASSERT_EQ(w.errors.size(), 7u);
  EXPECT_EQ(w.errors[0], "1:43: 'max_age' must be a number of seconds (600) or a duration (10m)");
  EXPECT_EQ(w.errors[5], "1:43: 'max_age' must be a whole number of seconds");
  EXPECT_EQ(w.errors[6], "1:43: 'max_age' must be a whole number of seconds");
}

TEST(CorsConfig, CredentialsMustBeABoolAndKeysKnown) {
  CorsWorld w;
  auto p = w.build(
      "origins: ['https://a.example']\n"
      "credentials: yes please\n"
      "max-age: 10\n");
  EXPECT_FALSE(p);
  ASSERT_EQ(w.errors.size(), 2u);
  EXPECT_EQ(w.errors[0], "3:1: unknown key 'max-age' in cors");
  EXPECT_EQ(w.errors[1], "2:14: 'credentials' must be true or false");
}

// ---- preflight ----

TEST(CorsPreflight, AllowedPreflightIsAnsweredWith204AndItsHeaders) {
  CorsWorld w;
  auto p = w.valid(kFull);
  ASSERT_TRUE(p);
  auto r = preflight(*p, "https://app.example.com", "POST",
                     {"Access-Control-Request-Headers: authorization,x-tenant"});
  EXPECT_FALSE(r->passed);
  EXPECT_EQ(r->reply.status, 204);
  EXPECT_FALSE(r->reply.problem);
  EXPECT_EQ(r->reply.headers, (Fields{
                                  {"Access-Control-Allow-Origin", "https://app.example.com"},
                                  {"Access-Control-Allow-Methods", "GET, POST, DELETE"},
                                  {"Access-Control-Allow-Headers", "authorization, x-tenant"},
                                  {"Access-Control-Max-Age", "3600"},
                                  {"Access-Control-Allow-Credentials", "true"},
                                  {"Vary", "Origin"},
                              }));
  // Local reply headers only: nothing for a proxied response.
  EXPECT_TRUE(r->state.response_headers.empty());
  EXPECT_EQ(r->state.log_detail, "cors: preflight answered");
}

TEST(CorsPreflight, DefaultsAreSimpleMethodsAndTenMinutes) {
  CorsWorld w;
  auto p = w.valid("{origins: ['https://app.example.com']}");
  ASSERT_TRUE(p);
  auto r = preflight(*p, "https://app.example.com", "GET");
  EXPECT_EQ(r->reply.status, 204);
  EXPECT_EQ(r->reply.headers, (Fields{
                                  {"Access-Control-Allow-Origin", "https://app.example.com"},
                                  {"Access-Control-Allow-Methods", "GET, HEAD, POST"},
                                  {"Access-Control-Max-Age", "600"},
                                  {"Vary", "Origin"},
                              }));
  expect_refused_preflight(*preflight(*p, "https://app.example.com", "PUT"));
}

TEST(CorsPreflight, OtherOriginIsRefusedWithoutCorsHeaders) {
  CorsWorld w;
  auto p = w.valid(kApp);
  ASSERT_TRUE(p);
  auto r = preflight(*p, "https://evil.example.com", "GET");
  expect_refused_preflight(*r);
  EXPECT_EQ(r->state.log_detail, "cors: origin not allowed");
  expect_refused_preflight(*preflight(*p, "http://app.example.com", "GET"));        // scheme
  expect_refused_preflight(*preflight(*p, "https://app.example.com:8443", "GET"));  // port
  expect_refused_preflight(*preflight(*p, "https://app.example.com.evil", "GET"));
  expect_refused_preflight(*preflight(*p, "null", "GET"));
}

TEST(CorsPreflight, DisallowedMethodIsRefused) {
  CorsWorld w;
  auto p = w.valid(kApp);
  ASSERT_TRUE(p);
  auto r = preflight(*p, "https://app.example.com", "DELETE");
  expect_refused_preflight(*r);
  EXPECT_EQ(r->state.log_detail, "cors: method not allowed");
  expect_refused_preflight(*preflight(*p, "https://app.example.com", "GE T"));
  // Two Access-Control-Request-Method fields are ambiguous.
  expect_refused_preflight(
      *preflight(*p, "https://app.example.com", "GET", {"Access-Control-Request-Method: POST"}));
}

TEST(CorsPreflight, MethodsAreUpperCasedAndComparedCaseInsensitively) {
  CorsWorld w;
  auto p = w.valid("{origins: ['https://app.example.com'], methods: [get, Patch, PATCH]}");
  ASSERT_TRUE(p);
  auto r = preflight(*p, "https://app.example.com", "patch");
  EXPECT_EQ(r->reply.status, 204);
  ASSERT_GE(r->reply.headers.size(), 2u);
  EXPECT_EQ(r->reply.headers[1],
            (std::pair<std::string, std::string>{"Access-Control-Allow-Methods", "GET, PATCH"}));
}

TEST(CorsPreflight, DisallowedHeaderIsRefused) {
  CorsWorld w;
  auto p = w.valid(kFull);
  ASSERT_TRUE(p);
  auto r = preflight(*p, "https://app.example.com", "GET",
                     {"Access-Control-Request-Headers: authorization, x-debug"});
  expect_refused_preflight(*r);
  EXPECT_EQ(r->state.log_detail, "cors: header 'x-debug' not allowed");
  expect_refused_preflight(*preflight(*p, "https://app.example.com", "GET",
                                      {"Access-Control-Request-Headers: authorization, a b"}));
}

TEST(CorsPreflight, RequestedHeadersAreACaseInsensitiveCommaListOverSeveralFields) {
  CorsWorld w;
  auto p = w.valid(kFull);
  ASSERT_TRUE(p);
  auto r = preflight(*p, "https://app.example.com", "GET",
                     {"Access-Control-Request-Headers: AUTHORIZATION ,, \t",
                      "access-control-request-headers: X-TENANT"});
  EXPECT_EQ(r->reply.status, 204);
  bool found = false;
  for (const auto& [name, value] : r->reply.headers) {
    if (name == "Access-Control-Allow-Headers") {
      EXPECT_EQ(value, "AUTHORIZATION, X-TENANT");
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(CorsPreflight, NoRequestedHeadersMeansNoAllowHeaders) {
  CorsWorld w;
  auto p = w.valid(kFull);
  ASSERT_TRUE(p);
  auto r = preflight(*p, "https://app.example.com", "GET", {"Access-Control-Request-Headers: "});
  EXPECT_EQ(r->reply.status, 204);
  for (const auto& h : r->reply.headers) EXPECT_NE(h.first, "Access-Control-Allow-Headers");
}

TEST(CorsPreflight, StarOriginAnswersStar) {
  CorsWorld w;
  auto p = w.valid("{origins: ['*'], methods: [PUT]}");
  ASSERT_TRUE(p);
  auto r = preflight(*p, "https://anything.example", "PUT");
  EXPECT_EQ(r->reply.status, 204);
  EXPECT_EQ(r->reply.headers, (Fields{
                                  {"Access-Control-Allow-Origin", "*"},
                                  {"Access-Control-Allow-Methods", "PUT"},
                                  {"Access-Control-Max-Age", "600"},
                                  {"Vary", "Origin"},
                              }));
  // Even "*" needs an origin that is one.
  expect_refused_preflight(*preflight(*p, "null", "PUT"));
  expect_refused_preflight(*preflight(*p, "https://anything.example", "GET"));
}

TEST(CorsPreflight, DefaultPortsAndCaseDoNotMatter) {
  CorsWorld w;
  auto p = w.valid(
      "{origins: ['HTTPS://App.Example.com:443', 'http://localhost:80', "
      "'http://[::1]:8080']}");
  ASSERT_TRUE(p);
  EXPECT_EQ(preflight(*p, "https://app.example.com", "GET")->reply.status, 204);
  EXPECT_EQ(preflight(*p, "https://app.example.com:443", "GET")->reply.status, 204);
  EXPECT_EQ(preflight(*p, "http://localhost", "GET")->reply.status, 204);
  EXPECT_EQ(preflight(*p, "http://[::1]:8080", "GET")->reply.status, 204);
  expect_refused_preflight(*preflight(*p, "http://[::1]", "GET"));
  expect_refused_preflight(*preflight(*p, "http://localhost:3000", "GET"));
  // The answer echoes the origin as the browser sent it.
  auto r = preflight(*p, "https://app.example.com", "GET");
  EXPECT_EQ(r->reply.headers[0].second, "https://app.example.com");
}

TEST(CorsPreflight, SeveralOriginFieldsAreRefused) {
  CorsWorld w;
  auto p = w.valid(kApp);
  ASSERT_TRUE(p);
  expect_refused_preflight(
      *preflight(*p, "https://app.example.com", "GET", {"Origin: https://app.example.com"}));
}

TEST(CorsPreflight, OptionsWithoutRequestMethodIsAnActualRequest) {
  CorsWorld w;
  auto p = w.valid(kApp);
  ASSERT_TRUE(p);
  auto r = run(*p, "OPTIONS", {"Origin: https://app.example.com"});
  EXPECT_TRUE(r->passed);
  EXPECT_EQ(
      r->state.response_headers,
      (Fields{{"Access-Control-Allow-Origin", "https://app.example.com"}, {"Vary", "Origin"}}));
  // Without Origin it is no CORS request at all (the answer still varies on it).
  auto plain = run(*p, "OPTIONS", {"Access-Control-Request-Method: GET"});
  EXPECT_TRUE(plain->passed);
  EXPECT_EQ(plain->state.response_headers, (Fields{{"Vary", "Origin"}}));
}

// ---- actual requests ----

TEST(CorsActual, AllowedOriginGetsResponseHeaders) {
  CorsWorld w;
  auto p = w.valid(kFull);
  ASSERT_TRUE(p);
  auto r = run(*p, "POST", {"Origin: http://localhost:3000", "Content-Length: 0"});
  EXPECT_TRUE(r->passed);
  EXPECT_EQ(r->reply.status, 0);
  EXPECT_EQ(r->state.response_headers,
            (Fields{{"Access-Control-Allow-Origin", "http://localhost:3000"},
                    {"Vary", "Origin"},
                    {"Access-Control-Allow-Credentials", "true"},
                    {"Access-Control-Expose-Headers", "X-Request-Id, ETag"}}));
}

TEST(CorsActual, WithoutCredentialsOrExposeHeadersOnlyOriginAndVary) {
  CorsWorld w;
  auto p = w.valid(kApp);
  ASSERT_TRUE(p);
  auto r = run(*p, "GET", {"Origin: https://app.example.com"});
  EXPECT_TRUE(r->passed);
  EXPECT_EQ(
      r->state.response_headers,
      (Fields{{"Access-Control-Allow-Origin", "https://app.example.com"}, {"Vary", "Origin"}}));
}

// With a list of origins every answer depends on Origin: those without CORS
// headers say so too, or a shared cache could hand one to an allowed origin.
TEST(CorsActual, DisallowedOriginIsProxiedWithoutCorsHeaders) {
  CorsWorld w;
  auto p = w.valid(kFull);
  ASSERT_TRUE(p);
  for (const char* origin : {"https://evil.example", "null", "https://app.example.com/"}) {
    auto r = run(*p, "GET", {std::string("Origin: ") + origin});
    EXPECT_TRUE(r->passed) << origin;
    EXPECT_EQ(r->state.response_headers, (Fields{{"Vary", "Origin"}})) << origin;
    EXPECT_EQ(r->reply.status, 0);
  }
  auto twice =
      run(*p, "GET", {"Origin: https://app.example.com", "Origin: https://app.example.com"});
  EXPECT_TRUE(twice->passed);
  EXPECT_EQ(twice->state.response_headers, (Fields{{"Vary", "Origin"}}));
}

TEST(CorsActual, RequestWithoutOriginIsLeftAlone) {
  CorsWorld w;
  auto p = w.valid(kFull);
  ASSERT_TRUE(p);
  auto r = run(*p, "GET", {});
  EXPECT_TRUE(r->passed);
  EXPECT_EQ(r->state.response_headers, (Fields{{"Vary", "Origin"}}));
  EXPECT_TRUE(r->state.log_detail.empty());
}

TEST(CorsActual, StarOriginAnswersStarForAnyOrigin) {
  CorsWorld w;
  auto p = w.valid("{origins: ['*'], expose_headers: [X-Request-Id]}");
  ASSERT_TRUE(p);
  auto r = run(*p, "DELETE", {"Origin: https://whoever.example:8443"});
  EXPECT_TRUE(r->passed);
  EXPECT_EQ(r->state.response_headers, (Fields{{"Access-Control-Allow-Origin", "*"},
                                               {"Vary", "Origin"},
                                               {"Access-Control-Expose-Headers", "X-Request-Id"}}));
}

TEST(CorsActual, StarOriginAnswersWithoutOriginDoNotVary) {
  CorsWorld w;
  auto p = w.valid("{origins: ['*']}");
  ASSERT_TRUE(p);
  auto r = run(*p, "GET", {});
  EXPECT_TRUE(r->passed);
  EXPECT_TRUE(r->state.response_headers.empty());
}

TEST(CorsActual, KeepsHeadersAddedBeforeIt) {
  CorsWorld w;
  auto p = w.valid(kApp);
  ASSERT_TRUE(p);
  auto r = std::make_unique<CorsRequest>();
  r->raw = "GET / HTTP/1.1\r\nHost: gw\r\nOrigin: https://app.example.com\r\n\r\n";
  std::size_t scanned = 0;
  const std::size_t size = http::find_head_end(r->raw.data(), r->raw.size(), scanned);
  http::ParseError err;
  ASSERT_EQ(http::parse_request_head(r->raw.data(), size, r->head, err),
            http::ParseStatus::kComplete);
  r->ctx.head = &r->head;
  r->ctx.state = &r->state;
  r->state.response_headers.emplace_back("RateLimit-Limit", "10");
  EXPECT_TRUE(p->on_request(r->ctx, r->reply));
  ASSERT_EQ(r->state.response_headers.size(), 3u);
  EXPECT_EQ(r->state.response_headers[0].first, "RateLimit-Limit");
}

}  // namespace
}  // namespace gatehouse::plugins
