// The configuration model: plain structs parsed from YAML, each value keeping
// the source position it came from so that validation can report
// `FILE:LINE:COL: message`. Compilation into a runtime Snapshot happens in
// snapshot.h; nothing here is used on the request path.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gatehouse::config {

using Millis = std::chrono::milliseconds;

// 1-based line and column of a YAML node; {0,0} when the value was defaulted.
struct Mark {
  int line = 0;
  int col = 0;
};

// One problem found in a config file.
struct ConfigError {
  std::string file;
  Mark mark;
  std::string message;
  // "FILE:LINE:COL: message"
  std::string to_string() const;
};

// host:port; host is an IPv4/IPv6 literal or a name ("localhost").
// IPv6 is written "[::1]:8080".
struct Address {
  std::string host;
  uint16_t port = 0;
  Mark mark;
  std::string to_string() const;  // "127.0.0.1:8080", "[::1]:8080"
};

struct Limits {
  uint64_t max_connections_per_ip = 0;  // 0: no limit
  uint64_t max_header_bytes = 16384;
  std::optional<uint64_t> max_body_bytes;  // unset: no limit, bodies stream
  Millis header_timeout{10000};
  Millis idle_timeout{60000};
};

enum class Balance { kRoundRobin, kLeastRequest, kConsistentHash, kRandom };

enum class HashOn { kNone, kHeader, kCookie, kIp, kPath };

struct Target {
  Address address;
  uint32_t weight = 1;  // >= 1
  Mark mark;
};

enum class UpstreamProtocol { kHttp1, kH2c, kH2 };

// TLS to an upstream's targets (docs/tls.md).
struct UpstreamTls {
  std::string ca;    // empty: the system trust store
  std::string cert;  // optional client certificate: mTLS to the backend
  std::string key;
  std::string server_name;  // SNI and the name checked; empty: the target's host
  bool verify = true;
  Mark mark;
};

struct Upstream {
  std::string name;
  std::vector<Target> targets;  // at least one
  Balance balance = Balance::kRoundRobin;
  HashOn hash_on = HashOn::kNone;
  std::string hash_key;  // kHeader: header name, lower-case; kCookie: cookie name as written
  Millis connect_timeout{1000};
  Millis read_timeout{30000};
  UpstreamProtocol protocol = UpstreamProtocol::kHttp1;
  std::optional<UpstreamTls> tls;
  Mark mark;
};

enum class PathKind { kNone, kTemplate, kPrefix, kRegex };

struct RouteMatch {
  std::vector<std::string> methods;      // upper-case; empty: any
  PathKind path_kind = PathKind::kNone;  // kNone: match every path (like prefix "/")
  std::string path;                      // template, prefix or RE2 pattern
  std::string host;                      // empty: any; "*.example.com" allowed
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case name, exact value
  Mark mark;
};

struct DirectResponse {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// A plugin entry on a route: its kind and its raw YAML (kept as a string of
// YAML so that plugins parse their own config when the snapshot is built).
struct PluginEntry {
  std::string kind;
  std::string yaml;
  Mark mark;
};

struct Route {
  std::string name;
  RouteMatch match;
  std::string upstream;                   // empty when `respond` is set
  std::optional<std::string> rewrite;     // may use {param}s of the path template
  std::optional<DirectResponse> respond;  // direct response instead of proxying
  std::vector<PluginEntry> plugins;
  Mark mark;
};

// A known caller and its credentials (docs/auth.md).
struct BasicCredential {
  std::string username;
  std::string password_hash;  // crypt(3) string
};

struct Consumer {
  std::string name;
  std::string plan;  // empty: none
  std::vector<std::string> groups;
  std::vector<std::string> api_keys;  // as written: plain, or "sha256:<hex>"
  std::optional<BasicCredential> basic;
  Mark mark;
};

// Signs every proxied request so services can check it came through us.
struct UpstreamSigning {
  std::string secret;  // read from the environment variable at load time
  Mark mark;
};

// The Redis shared by every redis-backed feature.
struct RedisSettings {
  std::string url;
  Millis timeout{50};
  Mark mark;
};

// A consumer plan: limits that follow the caller (rate_limit `use_plan`).
struct Plan {
  std::string name;
  uint64_t limit = 0;  // 0: the plan sets no rate limit
  Millis window{0};
  Mark mark;
};

// A listener's TLS settings (docs/tls.md). Paths are resolved against the
// config file's directory at load time.
enum class ClientAuth { kNone, kOptional, kRequired };

struct TlsCertificate {
  std::string cert;
  std::string key;
  Mark mark;
};

struct ListenerTls {
  std::vector<TlsCertificate> certificates;  // at least one; the first serves unknown names
  int min_version = 12;                      // 12: TLS 1.2, 13: TLS 1.3
  std::string client_ca;                     // empty: no client certificates asked for
  ClientAuth client_auth = ClientAuth::kNone;
  Mark mark;
};

struct Listener {
  Address address;
  std::optional<ListenerTls> tls;  // unset: plain (HTTP/1.1)
  Mark mark;
};

struct Admin {
  std::optional<Address> listen;
};

enum class AccessLogKind { kStdout, kOff, kFile };

struct Config {
  std::string file;  // path it was loaded from
  Address listen{"127.0.0.1", 8080, {}};
  // Every listener: `listen` (when given, or when `listeners` is not) first.
  std::vector<Listener> listeners;
  unsigned workers = 0;  // 0: number of cores
  AccessLogKind access_log = AccessLogKind::kStdout;
  std::string access_log_path;  // kFile only
  Millis shutdown_timeout{10000};
  Limits limits;
  Admin admin;
  std::vector<Upstream> upstreams;
  std::vector<Route> routes;
  std::vector<Consumer> consumers;
  std::optional<UpstreamSigning> upstream_signing;
  std::optional<RedisSettings> redis;
  std::vector<std::string> trusted_proxies;  // CIDR blocks, validated
  std::vector<Plan> plans;
  // Applied to every route; a route's own entry of the same kind wins.
  std::vector<PluginEntry> global_plugins;
};

// Result of loading: a config, or every problem found (never both).
struct LoadResult {
  std::optional<Config> config;
  std::vector<ConfigError> errors;
};

// Parses and validates a file. Never throws.
LoadResult load_config_file(const std::string& path);
// Same, from text (the `file` name is used in messages).
LoadResult load_config_text(const std::string& text, const std::string& file);

}  // namespace gatehouse::config
