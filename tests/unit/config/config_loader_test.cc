#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace gatehouse::config {
namespace {

using ::testing::ElementsAre;
using ::testing::StartsWith;

constexpr const char* kFile = "gw.yaml";

// Every problem of `text`, as `gatehouse validate` prints them.
std::vector<std::string> errors_of(const std::string& text) {
  const LoadResult result = load_config_text(text, kFile);
  EXPECT_FALSE(result.config.has_value());
  std::vector<std::string> lines;
  for (const ConfigError& error : result.errors) lines.push_back(error.to_string());
  return lines;
}

Config load_ok(const std::string& text) {
  LoadResult result = load_config_text(text, kFile);
  for (const ConfigError& error : result.errors) ADD_FAILURE() << error.to_string();
  return result.config.value_or(Config{});
}

// A valid upstream that route tests can point at.
constexpr const char* kUpstreams =
    "upstreams:\n"
    "  links:\n"
    "    targets: [127.0.0.1:9001]\n";

TEST(ConfigLoader, LoadsEveryKeyOfTheContract) {
  const Config config = load_ok(R"(
listen: 127.0.0.1:8080
workers: 2
access_log: stdout
shutdown_timeout: 10s
limits: {max_header_bytes: 16384, max_body_bytes: 10485760, header_timeout: 10s, idle_timeout: 60s}
admin: {listen: 127.0.0.1:9901}
upstreams:
  links:
    targets: ["127.0.0.1:9001", {address: "127.0.0.1:9002", weight: 3}]
    balance: consistent_hash
    hash_on: header:X-User-ID
    timeouts: {connect: 1s, read: 30s}
routes:
  - name: get-link
    match:
      methods: [get, HEAD]
      path: /links/{id}
      host: API.example.com
      headers: {X-Canary: "1"}
    upstream: links
    rewrite: /internal/links/{id}
    plugins: []
  - name: ping
    match: {path: /ping}
    respond: {status: 200, body: pong, headers: {content-type: text/plain}}
)");
  EXPECT_EQ(config.file, kFile);
  EXPECT_EQ(config.listen.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(config.workers, 2u);
  EXPECT_EQ(config.access_log, AccessLogKind::kStdout);
  EXPECT_EQ(config.shutdown_timeout, Millis(10'000));
  EXPECT_EQ(config.limits.max_header_bytes, 16384u);
  EXPECT_EQ(config.limits.max_body_bytes, 10485760u);
  EXPECT_EQ(config.limits.header_timeout, Millis(10'000));
  EXPECT_EQ(config.limits.idle_timeout, Millis(60'000));
  ASSERT_TRUE(config.admin.listen.has_value());
  EXPECT_EQ(config.admin.listen->to_string(), "127.0.0.1:9901");

  ASSERT_EQ(config.upstreams.size(), 1u);
  const Upstream& links = config.upstreams[0];
  EXPECT_EQ(links.name, "links");
  EXPECT_EQ(links.mark.line, 9);
  ASSERT_EQ(links.targets.size(), 2u);
  EXPECT_EQ(links.targets[0].address.to_string(), "127.0.0.1:9001");
  EXPECT_EQ(links.targets[0].weight, 1u);
  EXPECT_EQ(links.targets[1].address.to_string(), "127.0.0.1:9002");
  EXPECT_EQ(links.targets[1].weight, 3u);
  EXPECT_EQ(links.balance, Balance::kConsistentHash);
  EXPECT_EQ(links.hash_on, HashOn::kHeader);
  EXPECT_EQ(links.hash_key, "x-user-id");
  EXPECT_EQ(links.connect_timeout, Millis(1000));
  EXPECT_EQ(links.read_timeout, Millis(30'000));

  ASSERT_EQ(config.routes.size(), 2u);
  const Route& get_link = config.routes[0];
  EXPECT_EQ(get_link.name, "get-link");
  EXPECT_EQ(get_link.mark.line, 15);
  EXPECT_EQ(get_link.mark.col, 5);
  EXPECT_THAT(get_link.match.methods, ElementsAre("GET", "HEAD"));
  EXPECT_EQ(get_link.match.path_kind, PathKind::kTemplate);
  EXPECT_EQ(get_link.match.path, "/links/{id}");
  EXPECT_EQ(get_link.match.host, "api.example.com");
  EXPECT_THAT(get_link.match.headers,
              ElementsAre(std::pair<std::string, std::string>("x-canary", "1")));
  EXPECT_EQ(get_link.upstream, "links");
  EXPECT_EQ(get_link.rewrite, "/internal/links/{id}");
  EXPECT_FALSE(get_link.respond.has_value());
  EXPECT_TRUE(get_link.plugins.empty());

  const Route& ping = config.routes[1];
  EXPECT_EQ(ping.upstream, "");
  ASSERT_TRUE(ping.respond.has_value());
  EXPECT_EQ(ping.respond->status, 200);
  EXPECT_EQ(ping.respond->body, "pong");
  EXPECT_THAT(ping.respond->headers,
              ElementsAre(std::pair<std::string, std::string>("content-type", "text/plain")));
}

TEST(ConfigLoader, EmptyFileGivesDefaults) {
  const Config config = load_ok("");
  EXPECT_EQ(config.listen.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(config.workers, 0u);
  EXPECT_EQ(config.access_log, AccessLogKind::kStdout);
  EXPECT_FALSE(config.limits.max_body_bytes.has_value());
  EXPECT_FALSE(config.admin.listen.has_value());
}

TEST(ConfigLoader, EmptyValueCountsAsAbsent) {
  EXPECT_FALSE(load_ok("limits:\n  max_body_bytes:\n").limits.max_body_bytes.has_value());
}

TEST(ConfigLoader, AccessLogOffOrFilePath) {
  EXPECT_EQ(load_ok("access_log: off").access_log, AccessLogKind::kOff);
  const Config config = load_ok("access_log: /var/log/gatehouse.log");
  EXPECT_EQ(config.access_log, AccessLogKind::kFile);
  EXPECT_EQ(config.access_log_path, "/var/log/gatehouse.log");
}

TEST(ConfigLoader, RejectsEmptyAccessLog) {
  EXPECT_THAT(errors_of("access_log: ''"),
              ElementsAre("gw.yaml:1:13: 'access_log' must be stdout, off or a file path"));
}

TEST(ConfigLoader, ParsesIpv6Listen) {
  const Config config = load_ok("listen: '[::1]:8080'");
  EXPECT_EQ(config.listen.host, "::1");
  EXPECT_EQ(config.listen.to_string(), "[::1]:8080");
  EXPECT_EQ(config.listen.mark.line, 1);
  EXPECT_EQ(config.listen.mark.col, 9);
}

TEST(ConfigLoader, AllowsZeroShutdownTimeout) {
  EXPECT_EQ(load_ok("shutdown_timeout: 0s").shutdown_timeout, Millis(0));
}

TEST(ConfigLoader, ReportsYamlSyntaxErrorAtItsPosition) {
  // yaml-cpp notices the unclosed list where the next key makes it impossible.
  EXPECT_THAT(errors_of("listen: 127.0.0.1:8080\nroutes: [a, b\nworkers: 2\n"),
              ElementsAre("gw.yaml:3:8: invalid YAML: end of sequence flow not found"));
}

TEST(ConfigLoader, RejectsTopLevelThatIsNotAMap) {
  EXPECT_THAT(errors_of("- a\n- b\n"),
              ElementsAre("gw.yaml:1:1: the config must be a map of keys such as 'listen' and "
                          "'routes'"));
}

TEST(ConfigLoader, ReportsUnknownTopLevelKeyAtTheKey) {
  EXPECT_THAT(errors_of("workers: 2\nlisten_on: 127.0.0.1:80\n"),
              ElementsAre("gw.yaml:2:1: unknown key 'listen_on' at top level"));
}

TEST(ConfigLoader, ReportsUnknownKeyInRouteAtTheKey) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n"
                                                  "  - name: a\n"
                                                  "    upstream: links\n"
                                                  "    foo: 1\n"),
              ElementsAre("gw.yaml:7:5: unknown key 'foo' in route"));
}

TEST(ConfigLoader, ReportsUnknownKeyInNestedMaps) {
  EXPECT_THAT(errors_of("limits: {max_headers: 1}\n"
                        "admin: {port: 1}\n"
                        "upstreams:\n"
                        "  links:\n"
                        "    target: [127.0.0.1:9001]\n"),
              ElementsAre("gw.yaml:1:10: unknown key 'max_headers' in limits",
                          "gw.yaml:2:9: unknown key 'port' in admin",
                          "gw.yaml:4:3: upstream 'links' needs at least one target",
                          "gw.yaml:5:5: unknown key 'target' in upstream 'links'"));
}

TEST(ConfigLoader, ReportsDuplicateKeyAtTheSecond) {
  EXPECT_THAT(errors_of("workers: 2\nworkers: 3\n"),
              ElementsAre("gw.yaml:2:1: duplicate key 'workers' at top level (first on line 1)"));
}

TEST(ConfigLoader, RejectsWorkersThatAreNotAnInteger) {
  EXPECT_THAT(errors_of("workers: two"), ElementsAre("gw.yaml:1:10: 'workers' must be an integer"));
  EXPECT_THAT(errors_of("workers: 1.5"), ElementsAre("gw.yaml:1:10: 'workers' must be an integer"));
  EXPECT_THAT(errors_of("workers: [1]"), ElementsAre("gw.yaml:1:10: 'workers' must be an integer"));
}

TEST(ConfigLoader, RejectsWorkersOutOfRange) {
  EXPECT_THAT(errors_of("workers: 0"),
              ElementsAre("gw.yaml:1:10: 'workers' must be between 1 and 1024"));
  EXPECT_THAT(errors_of("workers: 1025"),
              ElementsAre("gw.yaml:1:10: 'workers' must be between 1 and 1024"));
  EXPECT_EQ(load_ok("workers: 1024").workers, 1024u);
}

TEST(ConfigLoader, RejectsLimitsThatAreNotPositiveIntegers) {
  EXPECT_THAT(errors_of("limits:\n"
                        "  max_header_bytes: 0\n"
                        "  max_body_bytes: -1\n"),
              ElementsAre("gw.yaml:2:21: 'max_header_bytes' must be a positive integer",
                          "gw.yaml:3:19: 'max_body_bytes' must be a positive integer"));
  EXPECT_THAT(errors_of("limits: {max_body_bytes: 10MB}"),
              ElementsAre("gw.yaml:1:26: 'max_body_bytes' must be an integer"));
  EXPECT_THAT(errors_of("limits: {max_body_bytes: 99999999999999999999}"),
              ElementsAre("gw.yaml:1:26: 'max_body_bytes' must be a positive integer"));
}

TEST(ConfigLoader, RejectsLimitsThatAreNotAMap) {
  EXPECT_THAT(errors_of("limits: 5"), ElementsAre("gw.yaml:1:9: 'limits' must be a map"));
}

TEST(ConfigLoader, RejectsDurationWithoutUnit) {
  EXPECT_THAT(errors_of("shutdown_timeout: 10"),
              ElementsAre("gw.yaml:1:19: invalid 'shutdown_timeout': duration needs a unit (ms, "
                          "s, m, h, d)"));
}

TEST(ConfigLoader, RejectsBadDurationsInLimitsAndTimeouts) {
  EXPECT_THAT(errors_of("limits: {idle_timeout: 1w, header_timeout: 0s}\n"
                        "upstreams:\n"
                        "  links:\n"
                        "    targets: [127.0.0.1:9001]\n"
                        "    timeouts: {connect: soon}\n"),
              ElementsAre("gw.yaml:1:24: invalid 'idle_timeout': unknown duration unit 'w' (use "
                          "ms, s, m, h, d)",
                          "gw.yaml:1:44: 'header_timeout' must be greater than 0",
                          "gw.yaml:5:25: invalid 'connect': expected a number and a unit, such as "
                          "250ms, 10s, 1.5m or 1h"));
}

TEST(ConfigLoader, RejectsBadListenAddress) {
  EXPECT_THAT(errors_of("listen: 127.0.0.1:99999"),
              ElementsAre("gw.yaml:1:9: invalid 'listen': port must be a number from 1 to 65535"));
  EXPECT_THAT(errors_of("admin:\n  listen: localhost\n"),
              ElementsAre("gw.yaml:2:11: invalid 'listen': missing port: expected host:port"));
}

TEST(ConfigLoader, RejectsAdminListenThatOverlapsListen) {
  EXPECT_THAT(errors_of("listen: 0.0.0.0:8080\nadmin: {listen: 127.0.0.1:8080}\n"),
              ElementsAre("gw.yaml:2:17: admin 'listen' 127.0.0.1:8080 overlaps 'listen' "
                          "0.0.0.0:8080"));
}

TEST(ConfigLoader, RejectsBadTargetAddress) {
  EXPECT_THAT(errors_of("upstreams:\n"
                        "  links:\n"
                        "    targets: [127.0.0.1, {address: '::1:80'}]\n"),
              ElementsAre("gw.yaml:3:15: invalid target: missing port: expected host:port",
                          "gw.yaml:3:36: invalid 'address': IPv6 addresses need brackets, as in "
                          "[::1]:8080"));
}

TEST(ConfigLoader, RejectsTargetsThatAreNotAList) {
  EXPECT_THAT(errors_of("upstreams:\n  links:\n    targets: 127.0.0.1:9001\n"),
              ElementsAre("gw.yaml:3:14: 'targets' must be a list"));
}

TEST(ConfigLoader, RejectsEmptyTargets) {
  EXPECT_THAT(errors_of("upstreams:\n  links:\n    targets: []\n"),
              ElementsAre("gw.yaml:3:14: upstream 'links' needs at least one target"));
  EXPECT_THAT(errors_of("upstreams:\n  links:\n"),
              ElementsAre("gw.yaml:2:3: upstream 'links' needs at least one target"));
}

TEST(ConfigLoader, RejectsTargetWithoutAddress) {
  EXPECT_THAT(errors_of("upstreams:\n  links:\n    targets: [{weight: 2}]\n"),
              ElementsAre("gw.yaml:3:15: target needs an 'address'"));
}

TEST(ConfigLoader, RejectsWeightBelowOneOrNotAnInteger) {
  EXPECT_THAT(errors_of("upstreams:\n"
                        "  links:\n"
                        "    targets:\n"
                        "      - {address: 127.0.0.1:9001, weight: 0}\n"
                        "      - {address: 127.0.0.1:9002, weight: 1.5}\n"),
              ElementsAre("gw.yaml:4:43: 'weight' must be between 1 and 65535",
                          "gw.yaml:5:43: 'weight' must be an integer"));
}

TEST(ConfigLoader, RejectsUnknownBalance) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "    balance: fastest\n"),
              ElementsAre("gw.yaml:4:14: 'balance' must be one of round_robin, least_request, "
                          "consistent_hash, random"));
}

TEST(ConfigLoader, ParsesEachHashOnForm) {
  const std::string base = std::string(kUpstreams) + "    balance: consistent_hash\n";
  const Upstream cookie = load_ok(base + "    hash_on: cookie:Session\n").upstreams[0];
  EXPECT_EQ(cookie.hash_on, HashOn::kCookie);
  EXPECT_EQ(cookie.hash_key, "Session");
  EXPECT_EQ(load_ok(base + "    hash_on: ip\n").upstreams[0].hash_on, HashOn::kIp);
  EXPECT_EQ(load_ok(base + "    hash_on: path\n").upstreams[0].hash_on, HashOn::kPath);
}

TEST(ConfigLoader, RejectsMalformedHashOn) {
  const std::string base = std::string(kUpstreams) + "    balance: consistent_hash\n";
  for (const char* value : {"header:", "user", "header:X User", "cookie"}) {
    EXPECT_THAT(errors_of(base + "    hash_on: '" + value + "'\n"),
                ElementsAre("gw.yaml:5:14: 'hash_on' must be header:NAME, cookie:NAME, ip or path"))
        << value;
  }
}

TEST(ConfigLoader, RejectsHashOnWithoutConsistentHash) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "    hash_on: ip\n"),
              ElementsAre("gw.yaml:4:5: 'hash_on' applies only to 'balance: consistent_hash'"));
}

TEST(ConfigLoader, RequiresHashOnForConsistentHash) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "    balance: consistent_hash\n"),
              ElementsAre("gw.yaml:4:14: consistent_hash needs 'hash_on' (header:NAME, "
                          "cookie:NAME, ip or path)"));
}

TEST(ConfigLoader, ReportsDuplicateUpstreamAtTheSecond) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "  links:\n    targets: [127.0.0.1:9002]\n"),
              ElementsAre("gw.yaml:4:3: duplicate upstream 'links' (first on line 2)"));
}

TEST(ConfigLoader, RequiresRouteName) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n  - upstream: links\n"),
              ElementsAre("gw.yaml:5:5: route needs a 'name'"));
}

TEST(ConfigLoader, RejectsEmptyRouteName) {
  EXPECT_THAT(errors_of("routes:\n  - {name: '', respond: {}}\n"),
              ElementsAre("gw.yaml:2:12: 'name' must not be empty"));
}

TEST(ConfigLoader, RequiresUpstreamOrRespond) {
  EXPECT_THAT(errors_of("routes:\n  - name: a\n    match: {path: /a}\n"),
              ElementsAre("gw.yaml:2:5: route 'a' needs 'upstream' or 'respond'"));
}

TEST(ConfigLoader, RejectsBothUpstreamAndRespond) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n"
                                                  "  - name: a\n"
                                                  "    upstream: links\n"
                                                  "    respond: {status: 204}\n"),
              ElementsAre("gw.yaml:7:5: route 'a' has both 'upstream' and 'respond'"));
}

TEST(ConfigLoader, RejectsRouteNamingUnknownUpstreamAtTheValue) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n"
                                                  "  - name: x\n"
                                                  "    upstream: y\n"),
              ElementsAre("gw.yaml:6:15: route 'x' names unknown upstream 'y'"));
}

TEST(ConfigLoader, RejectsDuplicateRouteNameAtTheSecond) {
  EXPECT_THAT(
      errors_of(std::string(kUpstreams) + "routes:\n"
                                          "  - {name: a, match: {path: /a}, upstream: links}\n"
                                          "  - {name: a, match: {path: /b}, upstream: links}\n"),
      ElementsAre("gw.yaml:6:12: duplicate route name 'a' (first on line 5)"));
}

TEST(ConfigLoader, RejectsInvalidRegexWithRe2Message) {
  const std::vector<std::string> errors = errors_of(std::string(kUpstreams) +
                                                    "routes:\n"
                                                    "  - name: a\n"
                                                    "    match: {path_regex: '^/(a'}\n"
                                                    "    upstream: links\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "gw.yaml:6:25: invalid 'path_regex': missing ): ^/(a");
}

TEST(ConfigLoader, RejectsInvalidPathTemplate) {
  const std::vector<std::string> errors = errors_of(std::string(kUpstreams) +
                                                    "routes:\n"
                                                    "  - name: a\n"
                                                    "    match: {path: '/links/{id'}\n"
                                                    "    upstream: links\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], StartsWith("gw.yaml:6:19: invalid 'path': "));
}

TEST(ConfigLoader, RejectsPathThatDoesNotStartWithSlash) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n"
                                                  "  - name: a\n"
                                                  "    match: {path_prefix: api/}\n"
                                                  "    upstream: links\n"),
              ElementsAre("gw.yaml:6:26: invalid 'path_prefix': must start with '/'"));
}

TEST(ConfigLoader, RejectsMoreThanOnePathKind) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n"
                                                  "  - name: a\n"
                                                  "    match:\n"
                                                  "      path_prefix: /a/\n"
                                                  "      path: /a/{id}\n"
                                                  "    upstream: links\n"),
              ElementsAre("gw.yaml:8:7: only one of 'path', 'path_prefix' and 'path_regex' may be "
                          "set"));
}

TEST(ConfigLoader, RejectsRewriteUsingParamTheTemplateDoesNotCapture) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n"
                                                  "  - name: a\n"
                                                  "    match: {path: '/links/{id}'}\n"
                                                  "    upstream: links\n"
                                                  "    rewrite: /internal/{link}\n"),
              ElementsAre("gw.yaml:8:14: 'rewrite' uses {link}, which path '/links/{id}' does "
                          "not capture"));
}

TEST(ConfigLoader, RewriteMayUseCatchAllAndRegexGroups) {
  const Config config = load_ok(std::string(kUpstreams) +
                                "routes:\n"
                                "  - {name: a, match: {path: '/api/{*rest}'}, upstream: links,\n"
                                "     rewrite: '/{rest}'}\n"
                                "  - {name: b, match: {path_regex: '^/u/(?P<id>[0-9]+)$'},\n"
                                "     upstream: links, rewrite: '/users/{id}'}\n");
  EXPECT_EQ(config.routes[0].rewrite, "/{rest}");
  EXPECT_EQ(config.routes[1].match.path_kind, PathKind::kRegex);
}

TEST(ConfigLoader, RejectsRewriteParamsOnPrefixRoutes) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n"
                                                  "  - name: a\n"
                                                  "    match: {path_prefix: /a/}\n"
                                                  "    upstream: links\n"
                                                  "    rewrite: /b/{x}\n"),
              ElementsAre("gw.yaml:8:14: 'rewrite' uses {x}, but only a 'path' template or a "
                          "'path_regex' captures parameters"));
}

TEST(ConfigLoader, RejectsRewriteOnDirectResponse) {
  EXPECT_THAT(errors_of("routes:\n"
                        "  - name: a\n"
                        "    respond: {status: 204}\n"
                        "    rewrite: /b\n"),
              ElementsAre("gw.yaml:4:5: 'rewrite' needs an 'upstream': a direct response has no "
                          "path"));
}

TEST(ConfigLoader, RejectsRouteShadowedByAnEarlierOne) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n"
                                                  "  - name: a\n"
                                                  "    match: {path: /links}\n"
                                                  "    upstream: links\n"
                                                  "  - name: b\n"
                                                  "    match: {path: /links, methods: [GET]}\n"
                                                  "    upstream: links\n"),
              ElementsAre("gw.yaml:8:5: route 'b' is unreachable: shadowed by earlier route 'a'"));
}

TEST(ConfigLoader, RejectsRespondStatusOutOfRange) {
  EXPECT_THAT(errors_of("routes:\n"
                        "  - name: a\n"
                        "    respond: {status: 600}\n"),
              ElementsAre("gw.yaml:3:23: 'status' must be between 100 and 599"));
  EXPECT_THAT(errors_of("routes:\n  - {name: a, respond: {status: 99}}\n"),
              ElementsAre("gw.yaml:2:33: 'status' must be between 100 and 599"));
}

TEST(ConfigLoader, RejectsHeaderValueWithLineBreak) {
  EXPECT_THAT(errors_of("routes:\n"
                        "  - name: a\n"
                        "    respond: {headers: {x-a: \"1\\r\\nx-b: 2\"}}\n"),
              ElementsAre("gw.yaml:3:30: header 'x-a' has a control character in its value"));
}

TEST(ConfigLoader, RejectsInvalidHeaderName) {
  EXPECT_THAT(errors_of("routes:\n"
                        "  - name: a\n"
                        "    match: {headers: {'x canary': '1'}}\n"
                        "    respond: {}\n"),
              ElementsAre("gw.yaml:3:23: invalid header name 'x canary'"));
}

TEST(ConfigLoader, RejectsMethodThatIsNotAToken) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n"
                                                  "  - name: a\n"
                                                  "    match: {methods: [GET, 'PO ST']}\n"
                                                  "    upstream: links\n"),
              ElementsAre("gw.yaml:6:28: invalid HTTP method 'PO ST'"));
}

TEST(ConfigLoader, RejectsMethodsThatAreNotAList) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n"
                                                  "  - name: a\n"
                                                  "    match: {methods: GET}\n"
                                                  "    upstream: links\n"),
              ElementsAre("gw.yaml:6:22: 'methods' must be a list"));
}

TEST(ConfigLoader, RejectsInvalidHost) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n"
                                                  "  - name: a\n"
                                                  "    match: {host: 'api.*.com'}\n"
                                                  "    upstream: links\n"),
              ElementsAre("gw.yaml:6:19: invalid 'host': expected a host name such as "
                          "api.example.com or *.example.com"));
}

TEST(ConfigLoader, AcceptsWildcardHost) {
  const Config config = load_ok(std::string(kUpstreams) +
                                "routes:\n"
                                "  - {name: a, match: {host: '*.Example.com'}, upstream: links}\n");
  EXPECT_EQ(config.routes[0].match.host, "*.example.com");
}

TEST(ConfigLoader, RejectsUnknownPluginAtItsKind) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n"
                                                  "  - name: a\n"
                                                  "    upstream: links\n"
                                                  "    plugins:\n"
                                                  "      - teleport: {per_second: 5}\n"),
              ElementsAre("gw.yaml:8:9: unknown plugin 'teleport'"));
}

TEST(ConfigLoader, RejectsPluginEntryWithMoreThanOneKey) {
  EXPECT_THAT(errors_of(std::string(kUpstreams) + "routes:\n"
                                                  "  - name: a\n"
                                                  "    upstream: links\n"
                                                  "    plugins: [{a: 1, b: 2}]\n"),
              ElementsAre("gw.yaml:7:15: a plugin must be a map with one key, its kind: "
                          "{KIND: {...}}"));
}

TEST(ConfigLoader, ReportsEveryProblemInFileOrder) {
  EXPECT_THAT(errors_of("workers: 0\n"
                        "upstreams:\n"
                        "  links:\n"
                        "    targets: [127.0.0.1:0]\n"
                        "routes:\n"
                        "  - name: a\n"
                        "    upstream: nowhere\n"
                        "    extra: true\n"
                        "shutdown_timeout: 5\n"),
              ElementsAre("gw.yaml:1:10: 'workers' must be between 1 and 1024",
                          "gw.yaml:4:15: invalid target: port must be a number from 1 to 65535",
                          "gw.yaml:7:15: route 'a' names unknown upstream 'nowhere'",
                          "gw.yaml:8:5: unknown key 'extra' in route",
                          "gw.yaml:9:19: invalid 'shutdown_timeout': duration needs a unit (ms, s, "
                          "m, h, d)"));
}

TEST(ConfigLoader, ErrorFormatsAsFileLineColumnMessage) {
  const ConfigError error{"a.yaml", {3, 7}, "boom"};
  EXPECT_EQ(error.to_string(), "a.yaml:3:7: boom");
}

TEST(ConfigLoader, ReportsFileThatCannotBeRead) {
  const LoadResult result = load_config_file("/nonexistent/gw.yaml");
  EXPECT_FALSE(result.config.has_value());
  EXPECT_THAT(result.errors.at(0).to_string(),
              "/nonexistent/gw.yaml:0:0: cannot read config: No such file or directory");
}

TEST(ConfigLoader, LoadsQuickstartExample) {
  const LoadResult result = load_config_file(GATEHOUSE_SOURCE_DIR "/examples/quickstart.yaml");
  for (const ConfigError& error : result.errors) ADD_FAILURE() << error.to_string();
  ASSERT_TRUE(result.config.has_value());
  EXPECT_EQ(result.config->listen.to_string(), "127.0.0.1:8080");
  ASSERT_TRUE(result.config->admin.listen.has_value());
  EXPECT_EQ(result.config->admin.listen->to_string(), "127.0.0.1:9901");
  EXPECT_EQ(result.config->routes.size(), 3u);
}

}  // namespace
}  // namespace gatehouse::config
