// Reads the YAML config into the model of config.h and validates it. Problems
// are collected, not thrown, so that one `gatehouse validate` run lists them
// all; the checks that span routes run once every route has been read.
#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <string_view>

#include "auth/crypto.h"
#include "config/address.h"
#include "config/config.h"
#include "config/duration.h"
#include "core/ip.h"
#include "http/http1_parser.h"
#include "plugins/registry.h"
#include "ratelimit/local_store.h"
#include "ratelimit/redis_client.h"
#include "router/router.h"
#include "tls/server_context.h"

namespace gatehouse::config {
namespace {

constexpr int64_t kMaxWorkers = 1024;
// Keeps the sum of an upstream's weights far from overflowing a 32-bit
// counter in the balancers, with room for tens of thousands of targets.
constexpr int64_t kMaxWeight = 65535;
constexpr int64_t kUnbounded = std::numeric_limits<int64_t>::max();

Mark mark_of(const YAML::Mark& mark) {
  if (mark.is_null()) return {};
  return {mark.line + 1, mark.column + 1};
}

Mark mark_of(const YAML::Node& node) { return mark_of(node.Mark()); }

// yaml-cpp places an empty value at the start of the next line; its key is
// where the reader looks.
Mark value_mark(const YAML::Node& key, const YAML::Node& value) {
  return value.IsNull() ? mark_of(key) : mark_of(value);
}

bool comes_before(Mark a, Mark b) { return std::pair(a.line, a.col) < std::pair(b.line, b.col); }

std::string in_quotes(std::string_view text) { return "'" + std::string(text) + "'"; }

using http::is_token;

// A CR or LF in a configured header value would let the config inject headers.
bool has_control_chars(std::string_view text) { return !http::is_field_value(text); }

std::string to_lower(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

std::string to_upper(std::string text) {
  for (char& c : text) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return text;
}

// "*.example.com" matches any subdomain; everything else is one exact name.
bool is_host_pattern(std::string_view host) {
  if (host.starts_with("*.")) host.remove_prefix(2);
  return is_host_name(host);
}

using ParamNames = std::set<std::string, std::less<>>;

// Parameter names captured by a valid path template: "{id}" and "{*rest}"
// segments both capture their name.
ParamNames template_params(std::string_view path) {
  ParamNames params;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = std::min(path.find('/', start), path.size());
    std::string_view segment = path.substr(start, slash - start);
    if (segment.size() >= 2 && segment.front() == '{' && segment.back() == '}') {
      segment = segment.substr(1, segment.size() - 2);
      if (segment.starts_with('*')) segment.remove_prefix(1);
      params.emplace(segment);
    }
    start = slash + 1;
  }
  return params;
}

// The router hands a regex route's named groups to the rewrite as parameters.
ParamNames regex_params(const re2::RE2& regex) {
  ParamNames params;
  for (const auto& [name, group] : regex.NamedCapturingGroups()) params.insert(name);
  return params;
}

// What a match captures for the rewrite; nullopt when its path is invalid, so
// that a bad path is not reported a second time through the rewrite.
std::optional<ParamNames> captured_params(const RouteMatch& match) {
  switch (match.path_kind) {
    case PathKind::kTemplate:
      if (!router::Router::check_template(match.path).empty()) return std::nullopt;
      return template_params(match.path);
    case PathKind::kRegex: {
      const re2::RE2 regex(match.path, re2::RE2::Quiet);
      if (!regex.ok()) return std::nullopt;
      return regex_params(regex);
    }
    case PathKind::kNone:
    case PathKind::kPrefix:
      return ParamNames{};
  }
  return std::nullopt;
}

std::string uncaptured_message(std::string_view name, const RouteMatch& match) {
  const std::string uses = "'rewrite' uses {" + std::string(name) + "}, ";
  switch (match.path_kind) {
    case PathKind::kTemplate:
      return uses + "which path " + in_quotes(match.path) + " does not capture";
    case PathKind::kRegex:
      return uses + "which is not a named group of path_regex " + in_quotes(match.path);
    case PathKind::kNone:
    case PathKind::kPrefix:
      break;
  }
  return uses + "but only a 'path' template or a 'path_regex' captures parameters";
}

bool is_wildcard_host(std::string_view host) { return host == "0.0.0.0" || host == "::"; }

// Both would bind the same socket, and with SO_REUSEPORT the kernel would
// split connections between them instead of failing.
bool listeners_overlap(const Address& a, const Address& b) {
  if (a.port != b.port) return false;
  return a.host == b.host || is_wildcard_host(a.host) || is_wildcard_host(b.host);
}

std::string route_label(const Route& route) {
  return route.name.empty() ? "route" : "route " + in_quotes(route.name);
}

// A key of a map and its (non-null) value.
struct Field {
  std::string name;
  YAML::Node key;
  YAML::Node value;

  Mark mark() const { return mark_of(value); }
  Mark key_mark() const { return mark_of(key); }
  std::string label() const { return in_quotes(name); }
};

using Fields = std::map<std::string, Field, std::less<>>;

const Field* find(const Fields& fields, std::string_view name) {
  const auto it = fields.find(name);
  return it == fields.end() ? nullptr : &it->second;
}

enum class Zero { kAllowed, kRejected };

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) { config_.file = file_; }

  LoadResult load(const std::string& text);

 private:
  // Where a route's values sit, for the checks across routes.
  struct RouteSource {
    Mark name;
    Mark upstream;
    bool valid = false;  // no problem of its own: safe to hand to the router
  };

  void report(Mark mark, std::string message);

  // The entries of `map` whose keys are in `allowed`; reports unknown and
  // duplicate keys. A null value counts as absent, as YAML readers expect.
  Fields fields(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                std::string_view where);
  bool expect_map(const Field& field);
  bool expect_list(const Field& field);

  std::optional<std::string> read_string(const YAML::Node& node, std::string_view label);
  std::optional<int64_t> read_integer(const YAML::Node& node, std::string_view label, int64_t min,
                                      int64_t max);
  std::optional<Millis> read_duration(const Field& field, Zero zero);
  std::optional<Address> read_address(const YAML::Node& node, std::string_view label);
  std::vector<std::pair<std::string, std::string>> read_headers(const Field& field);

  void load_root(const YAML::Node& root);
  void load_access_log(const Field& field);
  void load_limits(const Field& field);
  void load_admin(const Field& field);
  void load_listeners(const Field& field);
  std::optional<ListenerTls> load_listener_tls(const Field& field);
  std::string resolve_path(const std::string& path) const;
  void check_listeners();

  void load_upstreams(const Field& field);
  Upstream load_upstream(const YAML::Node& key, const YAML::Node& value);
  void load_targets(const Field* field, Upstream& upstream);
  std::optional<Target> load_target(const YAML::Node& node);
  void load_balancing(const Fields& fields, Upstream& upstream);
  bool load_hash_on(const Field& field, Upstream& upstream);
  void load_timeouts(const Field& field, Upstream& upstream);
  void load_upstream_tls(const Field& field, Upstream& upstream);

  void load_routes(const Field& field);
  void load_route(const YAML::Node& node);
  void load_route_action(const Fields& fields, Route& route, RouteSource& source);
  RouteMatch load_match(const Field* field, Mark route_mark);
  void load_methods(const Field& field, RouteMatch& match);
  void load_path(const Fields& fields, RouteMatch& match);
  void check_path(const Field& field, const RouteMatch& match);
  void load_host(const Field& field, RouteMatch& match);
  std::optional<DirectResponse> load_respond(const Field& field);
  void load_rewrite(const Field& field, Route& route);
  std::vector<PluginEntry> load_plugins(const Field& field);
  void check_plugin_combination(const Route& route, const Field& field);
  void allow_preflight(Route& route);

  void load_consumers(const Field& field);
  void load_consumer(const YAML::Node& node, std::set<std::string, std::less<>>& names,
                     std::map<auth::Sha256, Mark>& keys, std::set<std::string, std::less<>>& users);
  void load_upstream_signing(const Field& field);
  void load_redis(const Field& field);
  void load_trusted_proxies(const Field& field);
  void load_plans(const Field& field);
  std::optional<std::vector<std::string>> read_string_list(const Field& field);

  void check_admin_listen();
  void check_route_names();
  void check_upstream_names();
  void check_shadowing();

  std::string file_;
  Config config_;
  std::vector<ConfigError> errors_;
  std::vector<RouteSource> route_sources_;  // parallel to config_.routes
};

void Loader::report(Mark mark, std::string message) {
  errors_.push_back({file_, mark, std::move(message)});
}

Fields Loader::fields(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                      std::string_view where) {
  Fields result;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      report(mark_of(key), "keys " + std::string(where) + " must be strings");
      continue;
    }
    const std::string& name = key.Scalar();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      report(mark_of(key), "unknown key " + in_quotes(name) + " " + std::string(where));
      continue;
    }
    if (const Field* first = find(result, name)) {
      report(mark_of(key), "duplicate key " + in_quotes(name) + " " + std::string(where) +
                               " (first on line " + std::to_string(first->key_mark().line) + ")");
      continue;
    }
    result.emplace(name, Field{name, key, it->second});
  }
  std::erase_if(result, [](const auto& entry) { return entry.second.value.IsNull(); });
  return result;
}

bool Loader::expect_map(const Field& field) {
  if (field.value.IsMap()) return true;
  report(field.mark(), field.label() + " must be a map");
  return false;
}

bool Loader::expect_list(const Field& field) {
  if (field.value.IsSequence()) return true;
  report(field.mark(), field.label() + " must be a list");
  return false;
}

std::optional<std::string> Loader::read_string(const YAML::Node& node, std::string_view label) {
  if (node.IsScalar()) return node.Scalar();
  report(mark_of(node), std::string(label) + " must be a string");
  return std::nullopt;
}

std::optional<int64_t> Loader::read_integer(const YAML::Node& node, std::string_view label,
                                            int64_t min, int64_t max) {
  const std::string text = node.IsScalar() ? node.Scalar() : std::string();
  const char* end = text.data() + text.size();
  int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  const bool too_big = ec == std::errc::result_out_of_range;
  if (text.empty() || ptr != end || (ec != std::errc() && !too_big)) {
    report(mark_of(node), std::string(label) + " must be an integer");
    return std::nullopt;
  }
  if (too_big || value < min || value > max) {
    report(mark_of(node),
           std::string(label) + (max == kUnbounded ? " must be a positive integer"
                                                   : " must be between " + std::to_string(min) +
                                                         " and " + std::to_string(max)));
    return std::nullopt;
  }
  return value;
}

std::optional<Millis> Loader::read_duration(const Field& field, Zero zero) {
  const std::optional<std::string> text = read_string(field.value, field.label());
  if (!text) return std::nullopt;
  std::string error;
  const std::optional<Millis> duration = parse_duration(*text, error);
  if (!duration) {
    report(field.mark(), "invalid " + field.label() + ": " + error);
    return std::nullopt;
  }
  if (zero == Zero::kRejected && duration->count() == 0) {
    report(field.mark(), field.label() + " must be greater than 0");
    return std::nullopt;
  }
  return duration;
}

std::optional<Address> Loader::read_address(const YAML::Node& node, std::string_view label) {
  const std::optional<std::string> text = read_string(node, label);
  if (!text) return std::nullopt;
  std::string error;
  std::optional<Address> address = parse_address(*text, error);
  if (!address) {
    report(mark_of(node), "invalid " + std::string(label) + ": " + error);
    return std::nullopt;
  }
  address->mark = mark_of(node);
  return address;
}

std::vector<std::pair<std::string, std::string>> Loader::read_headers(const Field& field) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!expect_map(field)) return headers;
  for (auto it = field.value.begin(); it != field.value.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const std::string name = key.IsScalar() ? key.Scalar() : std::string();
    if (!is_token(name)) {
      report(mark_of(key), "invalid header name " + in_quotes(name));
    } else if (!value.IsScalar()) {
      report(value_mark(key, value), "header " + in_quotes(name) + " must have a string value");
    } else if (has_control_chars(value.Scalar())) {
      report(mark_of(value), "header " + in_quotes(name) + " has a control character in its value");
    } else {
      headers.emplace_back(name, value.Scalar());
    }
  }
  return headers;
}

LoadResult Loader::load(const std::string& text) {
  try {
    load_root(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    report(mark_of(e.mark), "invalid YAML: " + e.msg);
  } catch (const std::exception& e) {
    report({}, std::string("cannot load config: ") + e.what());
  }
  std::stable_sort(errors_.begin(), errors_.end(), [](const ConfigError& a, const ConfigError& b) {
    return comes_before(a.mark, b.mark);
  });
  LoadResult result;
  if (errors_.empty()) {
    result.config = std::move(config_);
  } else {
    result.errors = std::move(errors_);
  }
  return result;
}

void Loader::load_root(const YAML::Node& root) {
  if (root.IsNull()) return;  // an empty file: every default
  if (!root.IsMap()) {
    report(mark_of(root), "the config must be a map of keys such as 'listen' and 'routes'");
    return;
  }
  const Fields f = fields(root,
                          {"listen", "workers", "access_log", "shutdown_timeout", "limits", "admin",
                           "upstreams", "routes", "consumers", "upstream_signing", "redis",
                           "trusted_proxies", "plans", "global_plugins", "listeners"},
                          "at top level");
  const Field* listen = find(f, "listen");
  if (listen) {
    if (auto address = read_address(listen->value, listen->label())) config_.listen = *address;
  }
  if (listen || !find(f, "listeners")) {
    config_.listeners.push_back(Listener{config_.listen, std::nullopt, config_.listen.mark});
  }
  if (const Field* listeners = find(f, "listeners")) load_listeners(*listeners);
  if (const Field* workers = find(f, "workers")) {
    const auto count = read_integer(workers->value, workers->label(), 1, kMaxWorkers);
    if (count) config_.workers = static_cast<unsigned>(*count);
  }
  if (const Field* access_log = find(f, "access_log")) load_access_log(*access_log);
  if (const Field* shutdown = find(f, "shutdown_timeout")) {
    // Zero is meaningful here: close every connection at once.
    if (auto timeout = read_duration(*shutdown, Zero::kAllowed))
      config_.shutdown_timeout = *timeout;
  }
  if (const Field* limits = find(f, "limits")) load_limits(*limits);
  if (const Field* admin = find(f, "admin")) load_admin(*admin);
  if (const Field* upstreams = find(f, "upstreams")) load_upstreams(*upstreams);
  // What plugins look at first: consumers (key_auth's `anonymous`), plans
  // (rate_limit's `use_plan`), redis (rate_limit's `store: redis`).
  if (const Field* redis = find(f, "redis")) load_redis(*redis);
  if (const Field* proxies = find(f, "trusted_proxies")) load_trusted_proxies(*proxies);
  if (const Field* plans = find(f, "plans")) load_plans(*plans);
  if (const Field* consumers = find(f, "consumers")) load_consumers(*consumers);
  if (const Field* global = find(f, "global_plugins")) {
    config_.global_plugins = load_plugins(*global);
    check_plugin_combination(Route{}, *global);
  }
  if (const Field* signing = find(f, "upstream_signing")) load_upstream_signing(*signing);
  if (const Field* routes = find(f, "routes")) load_routes(*routes);
  check_listeners();
  check_admin_listen();
  check_route_names();
  check_upstream_names();
  check_shadowing();
}

void Loader::load_access_log(const Field& field) {
  const std::optional<std::string> text = read_string(field.value, field.label());
  if (!text) return;
  if (*text == "stdout") {
    config_.access_log = AccessLogKind::kStdout;
  } else if (*text == "off") {
    config_.access_log = AccessLogKind::kOff;
  } else if (text->empty()) {
    report(field.mark(), "'access_log' must be stdout, off or a file path");
  } else {
    config_.access_log = AccessLogKind::kFile;
    config_.access_log_path = *text;
  }
}

void Loader::load_limits(const Field& field) {
  if (!expect_map(field)) return;
  const Fields f = fields(field.value,
                          {"max_header_bytes", "max_body_bytes", "header_timeout", "idle_timeout",
                           "max_connections_per_ip"},
                          "in limits");
  Limits& limits = config_.limits;
  if (const Field* per_ip = find(f, "max_connections_per_ip")) {
    if (auto n = read_integer(per_ip->value, per_ip->label(), 1, 1'000'000)) {
      limits.max_connections_per_ip = static_cast<uint64_t>(*n);
    }
  }
  if (const Field* header = find(f, "max_header_bytes")) {
    if (auto bytes = read_integer(header->value, header->label(), 1, kUnbounded)) {
      limits.max_header_bytes = static_cast<uint64_t>(*bytes);
    }
  }
  if (const Field* body = find(f, "max_body_bytes")) {
    if (auto bytes = read_integer(body->value, body->label(), 1, kUnbounded)) {
      limits.max_body_bytes = static_cast<uint64_t>(*bytes);
    }
  }
  if (const Field* header_timeout = find(f, "header_timeout")) {
    if (auto timeout = read_duration(*header_timeout, Zero::kRejected)) {
      limits.header_timeout = *timeout;
    }
  }
  if (const Field* idle_timeout = find(f, "idle_timeout")) {
    if (auto timeout = read_duration(*idle_timeout, Zero::kRejected))
      limits.idle_timeout = *timeout;
  }
}

void Loader::load_admin(const Field& field) {
  if (!expect_map(field)) return;
  const Fields f = fields(field.value, {"listen"}, "in admin");
  if (const Field* listen = find(f, "listen")) {
    config_.admin.listen = read_address(listen->value, listen->label());
  }
}

std::string Loader::resolve_path(const std::string& path) const {
  if (path.empty() || path[0] == '/') return path;
  const std::filesystem::path dir = std::filesystem::path(file_).parent_path();
  return dir.empty() ? path : (dir / path).string();
}

void Loader::load_upstream_tls(const Field& field, Upstream& upstream) {
  if (!expect_map(field)) return;
  const Fields f = fields(field.value, {"ca", "cert", "key", "server_name", "verify"},
                          "in upstream " + in_quotes(upstream.name) + " 'tls'");
  UpstreamTls tls;
  tls.mark = field.mark();
  bool ok = true;
  auto path = [&](const char* name, std::string& out) -> const Field* {
    const Field* v = find(f, name);
    if (v == nullptr) return nullptr;
    if (std::optional<std::string> text = read_string(v->value, v->label())) {
      out = resolve_path(*text);
    } else {
      ok = false;
    }
    return v;
  };
  const Field* ca = path("ca", tls.ca);
  const Field* cert = path("cert", tls.cert);
  const Field* key = path("key", tls.key);
  if (ca && !tls.ca.empty()) {
    const std::string why = tls::check_ca_file(tls.ca);
    if (!why.empty()) {
      report(ca->mark(), why);
      ok = false;
    }
  }
  if ((cert == nullptr) != (key == nullptr)) {
    report(field.mark(), "'cert' and 'key' go together (the client certificate for mTLS)");
    ok = false;
  } else if (cert && !tls.cert.empty()) {
    const std::string why = tls::check_certificate_pair(tls.cert, tls.key);
    if (!why.empty()) {
      report(why.compare(0, tls.key.size(), tls.key) == 0 ? key->mark() : cert->mark(), why);
      ok = false;
    }
  }
  if (const Field* name = find(f, "server_name")) {
    if (std::optional<std::string> text = read_string(name->value, name->label())) {
      tls.server_name = *text;
    } else {
      ok = false;
    }
  }
  if (const Field* verify = find(f, "verify")) {
    const std::string text = verify->value.IsScalar() ? verify->value.Scalar() : "";
    if (text == "true" || text == "false") {
      tls.verify = text == "true";
    } else {
      report(verify->mark(), "'verify' must be true or false");
      ok = false;
    }
  }
  if (ok) upstream.tls = std::move(tls);
}

void Loader::load_listeners(const Field& field) {
  if (!expect_list(field)) return;
  for (const YAML::Node& node : field.value) {
    if (!node.IsMap()) {
      report(mark_of(node), "a listener must be a map {listen, tls}");
      continue;
    }
    const Fields f = fields(node, {"listen", "tls"}, "in a listener");
    const Field* listen = find(f, "listen");
    if (listen == nullptr) {
      report(mark_of(node), "a listener needs 'listen'");
      continue;
    }
    Listener l;
    l.mark = mark_of(node);
    std::optional<Address> address = read_address(listen->value, listen->label());
    if (!address) continue;
    l.address = *address;
    if (const Field* tls = find(f, "tls")) {
      l.tls = load_listener_tls(*tls);
      if (!l.tls) continue;
    }
    config_.listeners.push_back(std::move(l));
  }
}

std::optional<ListenerTls> Loader::load_listener_tls(const Field& field) {
  if (!expect_map(field)) return std::nullopt;
  const Fields f =
      fields(field.value, {"certificates", "min_version", "client_ca", "client_auth"}, "in 'tls'");
  ListenerTls tls;
  tls.mark = field.mark();
  bool ok = true;
  const Field* certs = find(f, "certificates");
  if (certs == nullptr) {
    report(field.mark(), "'tls' needs 'certificates': a list of {cert, key}");
    return std::nullopt;
  }
  if (!expect_list(*certs)) return std::nullopt;
  if (certs->value.size() == 0) {
    report(certs->mark(), "'certificates' needs at least one {cert, key}");
    return std::nullopt;
  }
  for (const YAML::Node& node : certs->value) {
    if (!node.IsMap()) {
      report(mark_of(node), "a certificate must be a map {cert, key}");
      ok = false;
      continue;
    }
    const Fields cf = fields(node, {"cert", "key"}, "in a certificate");
    const Field* cert = find(cf, "cert");
    const Field* key = find(cf, "key");
    if (cert == nullptr || key == nullptr) {
      report(mark_of(node), "a certificate needs both 'cert' and 'key' (PEM files)");
      ok = false;
      continue;
    }
    std::optional<std::string> cert_path = read_string(cert->value, cert->label());
    std::optional<std::string> key_path = read_string(key->value, key->label());
    if (!cert_path || !key_path) {
      ok = false;
      continue;
    }
    TlsCertificate c{resolve_path(*cert_path), resolve_path(*key_path), mark_of(node)};
    const std::string why = tls::check_certificate_pair(c.cert, c.key);
    if (!why.empty()) {
      // Point at the file the problem is in.
      const bool key_problem = why.compare(0, c.key.size(), c.key) == 0;
      report(key_problem ? key->mark() : cert->mark(), why);
      ok = false;
      continue;
    }
    tls.certificates.push_back(std::move(c));
  }
  if (const Field* v = find(f, "min_version")) {
    const std::optional<std::string> text = read_string(v->value, v->label());
    if (text && (*text == "1.2" || *text == "1.3")) {
      tls.min_version = *text == "1.2" ? 12 : 13;
    } else if (text) {
      report(v->mark(),
             "'min_version' must be \"1.2\" or \"1.3\" (TLS 1.0 and 1.1 are never offered)");
      ok = false;
    }
  }
  const Field* ca = find(f, "client_ca");
  if (ca) {
    if (std::optional<std::string> path = read_string(ca->value, ca->label())) {
      tls.client_ca = resolve_path(*path);
      const std::string why = tls::check_ca_file(tls.client_ca);
      if (!why.empty()) {
        report(ca->mark(), why);
        ok = false;
      }
      tls.client_auth = ClientAuth::kOptional;
    }
  }
  if (const Field* auth = find(f, "client_auth")) {
    const std::optional<std::string> text = read_string(auth->value, auth->label());
    if (text && *text != "optional" && *text != "required") {
      report(auth->mark(), "'client_auth' must be optional or required");
      ok = false;
    } else if (text && ca == nullptr) {
      report(auth->mark(),
             "'client_auth' needs 'client_ca': the CA bundle client certificates must chain to");
      ok = false;
    } else if (text) {
      tls.client_auth = *text == "required" ? ClientAuth::kRequired : ClientAuth::kOptional;
    }
  }
  if (!ok) return std::nullopt;
  return tls;
}

void Loader::check_listeners() {
  for (std::size_t i = 0; i < config_.listeners.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      const Address& a = config_.listeners[i].address;
      const Address& b = config_.listeners[j].address;
      if (a.port == b.port && listeners_overlap(a, b)) {
        report(config_.listeners[i].mark, "listener " + a.to_string() + " overlaps listener " +
                                              b.to_string() + " (line " +
                                              std::to_string(config_.listeners[j].mark.line) + ")");
      }
    }
  }
}

void Loader::load_upstreams(const Field& field) {
  if (!field.value.IsMap()) {
    report(field.mark(), "'upstreams' must be a map of upstream names to upstreams");
    return;
  }
  std::map<std::string, Mark> seen;
  for (auto it = field.value.begin(); it != field.value.end(); ++it) {
    const YAML::Node key = it->first;
    const std::string name = key.IsScalar() ? key.Scalar() : std::string();
    if (name.empty()) {
      report(mark_of(key), "an upstream name must be a non-empty string");
      continue;
    }
    const auto [first, inserted] = seen.emplace(name, mark_of(key));
    if (!inserted) {
      report(mark_of(key), "duplicate upstream " + in_quotes(name) + " (first on line " +
                               std::to_string(first->second.line) + ")");
      continue;
    }
    config_.upstreams.push_back(load_upstream(key, it->second));
  }
}

Upstream Loader::load_upstream(const YAML::Node& key, const YAML::Node& value) {
  Upstream upstream;
  upstream.name = key.Scalar();
  upstream.mark = mark_of(key);
  if (!value.IsMap() && !value.IsNull()) {
    report(mark_of(value), "upstream " + in_quotes(upstream.name) + " must be a map");
    return upstream;
  }
  const Fields f =
      value.IsNull()
          ? Fields{}
          : fields(value, {"targets", "balance", "hash_on", "timeouts", "protocol", "tls"},
                   "in upstream " + in_quotes(upstream.name));
  load_targets(find(f, "targets"), upstream);
  load_balancing(f, upstream);
  if (const Field* timeouts = find(f, "timeouts")) load_timeouts(*timeouts, upstream);
  if (const Field* protocol = find(f, "protocol")) {
    const std::optional<std::string> text = read_string(protocol->value, protocol->label());
    if (text && *text == "http1") {
      upstream.protocol = UpstreamProtocol::kHttp1;
    } else if (text && *text == "h2c") {
      upstream.protocol = UpstreamProtocol::kH2c;
    } else if (text && *text == "h2") {
      upstream.protocol = UpstreamProtocol::kH2;
    } else if (text) {
      report(protocol->mark(), "'protocol' must be http1, h2c or h2");
    }
  }
  if (const Field* tls = find(f, "tls")) load_upstream_tls(*tls, upstream);
  if (upstream.protocol == UpstreamProtocol::kH2 && !find(f, "tls")) {
    report(find(f, "protocol")->mark(),
           "protocol h2 is HTTP/2 over TLS: it needs 'tls' (h2c is cleartext)");
  }
  if (upstream.protocol == UpstreamProtocol::kH2c && find(f, "tls")) {
    report(find(f, "protocol")->mark(), "protocol h2c is cleartext HTTP/2: use h2 with 'tls'");
  }
  return upstream;
}

void Loader::load_targets(const Field* field, Upstream& upstream) {
  const std::string missing = "upstream " + in_quotes(upstream.name) + " needs at least one target";
  if (field == nullptr) {
    report(upstream.mark, missing);
    return;
  }
  if (!expect_list(*field)) return;
  if (field->value.size() == 0) {
    report(field->mark(), missing);
    return;
  }
  for (const YAML::Node& item : field->value) {
    if (std::optional<Target> target = load_target(item)) upstream.targets.push_back(*target);
  }
}

std::optional<Target> Loader::load_target(const YAML::Node& node) {
  Target target;
  target.mark = mark_of(node);
  if (node.IsScalar()) {
    std::optional<Address> address = read_address(node, "target");
    if (!address) return std::nullopt;
    target.address = *address;
    return target;
  }
  if (!node.IsMap()) {
    report(target.mark, "a target must be an address or a map {address, weight}");
    return std::nullopt;
  }
  const Fields f = fields(node, {"address", "weight"}, "in target");
  const Field* address_field = find(f, "address");
  std::optional<Address> address;
  if (address_field == nullptr) {
    report(target.mark, "target needs an 'address'");
  } else {
    address = read_address(address_field->value, address_field->label());
  }
  std::optional<int64_t> weight = 1;
  if (const Field* weight_field = find(f, "weight")) {
    weight = read_integer(weight_field->value, weight_field->label(), 1, kMaxWeight);
  }
  if (!address || !weight) return std::nullopt;
  target.address = *address;
  target.weight = static_cast<uint32_t>(*weight);
  return target;
}

void Loader::load_balancing(const Fields& fields, Upstream& upstream) {
  constexpr std::array<std::pair<std::string_view, Balance>, 4> kBalances = {{
      {"round_robin", Balance::kRoundRobin},
      {"least_request", Balance::kLeastRequest},
      {"consistent_hash", Balance::kConsistentHash},
      {"random", Balance::kRandom},
  }};
  bool balance_known = true;
  const Field* balance = find(fields, "balance");
  if (balance != nullptr) {
    const std::optional<std::string> text = read_string(balance->value, balance->label());
    const auto it = std::find_if(kBalances.begin(), kBalances.end(),
                                 [&](const auto& entry) { return text && entry.first == *text; });
    balance_known = it != kBalances.end();
    if (balance_known) {
      upstream.balance = it->second;
    } else if (text) {
      report(balance->mark(),
             "'balance' must be one of round_robin, least_request, consistent_hash, random");
    }
  }
  const Field* hash_on = find(fields, "hash_on");
  const bool hash_on_valid = hash_on != nullptr && load_hash_on(*hash_on, upstream);
  if (!balance_known) return;  // whether hash_on belongs depends on the balance
  const bool consistent = upstream.balance == Balance::kConsistentHash;
  if (consistent && hash_on == nullptr) {
    report(balance->mark(),
           "consistent_hash needs 'hash_on' (header:NAME, cookie:NAME, ip or path)");
  } else if (!consistent && hash_on_valid) {
    report(hash_on->key_mark(), "'hash_on' applies only to 'balance: consistent_hash'");
  }
}

bool Loader::load_hash_on(const Field& field, Upstream& upstream) {
  const std::optional<std::string> text = read_string(field.value, field.label());
  if (!text) return false;
  const std::string_view value = *text;
  if (value == "ip" || value == "path") {
    upstream.hash_on = value == "ip" ? HashOn::kIp : HashOn::kPath;
    return true;
  }
  const bool header = value.starts_with("header:");
  const bool cookie = value.starts_with("cookie:");
  const std::string_view name = value.substr(value.find(':') + 1);
  if ((!header && !cookie) || !is_token(name)) {
    report(field.mark(), "'hash_on' must be header:NAME, cookie:NAME, ip or path");
    return false;
  }
  upstream.hash_on = header ? HashOn::kHeader : HashOn::kCookie;
  // Header names are matched lower-case; cookie names are case-sensitive.
  upstream.hash_key = header ? to_lower(std::string(name)) : std::string(name);
  return true;
}

void Loader::load_timeouts(const Field& field, Upstream& upstream) {
  if (!expect_map(field)) return;
  const Fields f = fields(field.value, {"connect", "read"}, "in timeouts");
  if (const Field* connect = find(f, "connect")) {
    if (auto timeout = read_duration(*connect, Zero::kRejected)) {
      upstream.connect_timeout = *timeout;
    }
  }
  if (const Field* read = find(f, "read")) {
    if (auto timeout = read_duration(*read, Zero::kRejected)) upstream.read_timeout = *timeout;
  }
}

void Loader::load_routes(const Field& field) {
  if (!expect_list(field)) return;
  for (const YAML::Node& node : field.value) load_route(node);
}

void Loader::load_route(const YAML::Node& node) {
  const std::size_t errors_before = errors_.size();
  Route route;
  RouteSource source;
  route.mark = mark_of(node);
  if (!node.IsMap()) {
    report(route.mark, "a route must be a map");
  } else {
    const Fields f =
        fields(node, {"name", "match", "upstream", "rewrite", "respond", "plugins"}, "in route");
    const Field* name = find(f, "name");
    if (name == nullptr) {
      report(route.mark, "route needs a 'name'");
    } else {
      route.name = read_string(name->value, name->label()).value_or("");
      source.name = name->mark();
      if (name->value.IsScalar() && route.name.empty()) {
        report(source.name, "'name' must not be empty");
      }
    }
    route.match = load_match(find(f, "match"), route.mark);
    load_route_action(f, route, source);
    if (const Field* plugins = find(f, "plugins")) {
      route.plugins = load_plugins(*plugins);
      check_plugin_combination(route, *plugins);
    }
    allow_preflight(route);
  }
  source.valid = errors_.size() == errors_before;
  config_.routes.push_back(std::move(route));
  route_sources_.push_back(source);
}

// What the route does: proxy to an upstream (optionally rewriting the path)
// or answer directly.
void Loader::load_route_action(const Fields& fields, Route& route, RouteSource& source) {
  const Field* upstream = find(fields, "upstream");
  const Field* respond = find(fields, "respond");
  if (upstream == nullptr && respond == nullptr) {
    report(route.mark, route_label(route) + " needs 'upstream' or 'respond'");
  } else if (upstream != nullptr && respond != nullptr) {
    const Field* later =
        comes_before(upstream->key_mark(), respond->key_mark()) ? respond : upstream;
    report(later->key_mark(), route_label(route) + " has both 'upstream' and 'respond'");
  }
  if (upstream != nullptr) {
    route.upstream = read_string(upstream->value, upstream->label()).value_or("");
    source.upstream = upstream->mark();
  }
  if (respond != nullptr) route.respond = load_respond(*respond);
  if (const Field* rewrite = find(fields, "rewrite")) {
    if (respond != nullptr && upstream == nullptr) {
      report(rewrite->key_mark(), "'rewrite' needs an 'upstream': a direct response has no path");
    }
    load_rewrite(*rewrite, route);
  }
}

RouteMatch Loader::load_match(const Field* field, Mark route_mark) {
  RouteMatch match;
  match.mark = field ? field->mark() : route_mark;
  if (field == nullptr || !expect_map(*field)) return match;
  const Fields f =
      fields(field->value, {"methods", "path", "path_prefix", "path_regex", "host", "headers"},
             "in match");
  if (const Field* methods = find(f, "methods")) load_methods(*methods, match);
  load_path(f, match);
  if (const Field* host = find(f, "host")) load_host(*host, match);
  if (const Field* headers = find(f, "headers")) {
    match.headers = read_headers(*headers);
    for (auto& header : match.headers) header.first = to_lower(std::move(header.first));
  }
  return match;
}

void Loader::load_methods(const Field& field, RouteMatch& match) {
  if (!expect_list(field)) return;
  if (field.value.size() == 0) {
    report(field.mark(), "'methods' must not be empty (leave it out to match every method)");
    return;
  }
  for (const YAML::Node& item : field.value) {
    const std::string method = item.IsScalar() ? item.Scalar() : std::string();
    if (!is_token(method)) {
      report(mark_of(item), "invalid HTTP method " + in_quotes(method));
      continue;
    }
    match.methods.push_back(to_upper(method));
  }
}

void Loader::load_path(const Fields& fields, RouteMatch& match) {
  std::vector<std::pair<const Field*, PathKind>> given;
  for (const auto& [key, kind] :
       {std::pair{"path", PathKind::kTemplate}, std::pair{"path_prefix", PathKind::kPrefix},
        std::pair{"path_regex", PathKind::kRegex}}) {
    if (const Field* field = find(fields, key)) given.emplace_back(field, kind);
  }
  if (given.empty()) return;
  std::sort(given.begin(), given.end(), [](const auto& a, const auto& b) {
    return comes_before(a.first->key_mark(), b.first->key_mark());
  });
  for (std::size_t i = 1; i < given.size(); ++i) {
    report(given[i].first->key_mark(),
           "only one of 'path', 'path_prefix' and 'path_regex' may be set");
  }
  const Field& field = *given.front().first;
  const std::optional<std::string> text = read_string(field.value, field.label());
  if (!text) return;
  match.path_kind = given.front().second;
  match.path = *text;
  check_path(field, match);
}

void Loader::check_path(const Field& field, const RouteMatch& match) {
  const std::string invalid = "invalid " + field.label() + ": ";
  if (match.path_kind == PathKind::kRegex) {
    const re2::RE2 regex(match.path, re2::RE2::Quiet);
    if (!regex.ok()) {
      report(field.mark(), invalid + regex.error());
    } else if (regex.NamedCapturingGroups().size() > router::kMaxParams) {
      report(field.mark(),
             invalid + "more than " + std::to_string(router::kMaxParams) + " named groups");
    }
    return;
  }
  if (!match.path.starts_with('/')) {
    report(field.mark(), invalid + "must start with '/'");
    return;
  }
  if (match.path_kind == PathKind::kTemplate) {
    const std::string error = router::Router::check_template(match.path);
    if (!error.empty()) report(field.mark(), invalid + error);
  }
}

void Loader::load_host(const Field& field, RouteMatch& match) {
  const std::optional<std::string> host = read_string(field.value, field.label());
  if (!host) return;
  match.host = to_lower(*host);
  if (!is_host_pattern(match.host)) {
    report(field.mark(),
           "invalid 'host': expected a host name such as api.example.com or *.example.com");
  }
}

std::optional<DirectResponse> Loader::load_respond(const Field& field) {
  if (!expect_map(field)) return std::nullopt;
  const Fields f = fields(field.value, {"status", "body", "headers"}, "in respond");
  DirectResponse response;
  if (const Field* status = find(f, "status")) {
    response.status = static_cast<int>(
        read_integer(status->value, status->label(), 100, 599).value_or(response.status));
  }
  if (const Field* body = find(f, "body")) {
    response.body = read_string(body->value, body->label()).value_or("");
  }
  if (const Field* headers = find(f, "headers")) response.headers = read_headers(*headers);
  return response;
}

void Loader::load_rewrite(const Field& field, Route& route) {
  const std::optional<std::string> text = read_string(field.value, field.label());
  if (!text) return;
  route.rewrite = *text;
  if (!text->starts_with('/')) {
    report(field.mark(), "invalid 'rewrite': must start with '/'");
    return;
  }
  const std::optional<ParamNames> captured = captured_params(route.match);
  if (!captured) return;
  for (std::size_t open = text->find('{'); open != std::string::npos;
       open = text->find('{', open + 1)) {
    const std::size_t close = text->find('}', open);
    if (close == std::string::npos) {
      report(field.mark(), "invalid 'rewrite': unclosed '{'");
      return;
    }
    const std::string name = text->substr(open + 1, close - open - 1);
    if (!captured->contains(name)) report(field.mark(), uncaptured_message(name, route.match));
  }
}

std::vector<PluginEntry> Loader::load_plugins(const Field& field) {
  std::vector<PluginEntry> plugins;
  if (!expect_list(field)) return plugins;
  for (const YAML::Node& item : field.value) {
    if (!item.IsMap() || item.size() != 1) {
      report(mark_of(item), "a plugin must be a map with one key, its kind: {KIND: {...}}");
      continue;
    }
    const auto entry = item.begin();
    const YAML::Node kind = entry->first;
    const std::string name = kind.IsScalar() ? kind.Scalar() : std::string();
    const plugins::PluginKind* plugin_kind = plugins::find_plugin_kind(name);
    if (plugin_kind == nullptr) {
      report(mark_of(kind), "unknown plugin " + in_quotes(name));
      continue;
    }
    // The plugin validates its own config here, so that its problems carry
    // their file positions; the snapshot builds it again from the text.
    std::size_t before = errors_.size();
    plugins::PluginEnv env{config_};
    plugin_kind->create(entry->second, env, [this](const YAML::Node& at, std::string message) {
      report(mark_of(at), std::move(message));
    });
    if (errors_.size() != before) continue;
    plugins.push_back({name, YAML::Dump(entry->second), mark_of(item)});
  }
  return plugins;
}

// A CORS preflight is an OPTIONS request: a route with `cors` (its own or
// global) that lists its methods takes OPTIONS too, or the router would
// answer the preflight 405 before the plugin sees it (docs/protection.md).
void Loader::allow_preflight(Route& route) {
  if (route.match.methods.empty()) return;
  auto is_cors = [](const PluginEntry& p) { return p.kind == "cors"; };
  if (std::none_of(route.plugins.begin(), route.plugins.end(), is_cors) &&
      std::none_of(config_.global_plugins.begin(), config_.global_plugins.end(), is_cors)) {
    return;
  }
  auto& m = route.match.methods;
  if (std::find(m.begin(), m.end(), "OPTIONS") == m.end()) m.push_back("OPTIONS");
}

// An `acl` decides on who the caller is: without an auth plugin on the route
// there is never anyone to decide on.
void Loader::check_plugin_combination(const Route& route, const Field& field) {
  // Every listed kind counts, valid or not: an auth plugin with a config
  // error is reported once, not again through the acl that depends on it.
  bool authenticates = false;
  for (const PluginEntry& g : config_.global_plugins) {
    const plugins::PluginKind* kind = plugins::find_plugin_kind(g.kind);
    if (kind != nullptr && kind->authenticates) authenticates = true;
  }
  for (const YAML::Node& item : field.value) {
    if (!item.IsMap() || item.size() != 1 || !item.begin()->first.IsScalar()) continue;
    const plugins::PluginKind* kind = plugins::find_plugin_kind(item.begin()->first.Scalar());
    if (kind != nullptr && kind->authenticates) authenticates = true;
  }
  if (authenticates) return;
  for (const PluginEntry& p : route.plugins) {
    if (p.kind == "acl") {
      report(p.mark, route_label(route) +
                         " has an 'acl' but no auth plugin (key_auth, basic_auth, jwt, "
                         "oauth2_introspection) to identify the caller");
    }
  }
}

std::optional<std::vector<std::string>> Loader::read_string_list(const Field& field) {
  if (!expect_list(field)) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (const YAML::Node& item : field.value) {
    if (auto text = read_string(item, "each entry of " + field.label())) {
      out.push_back(*text);
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

void Loader::load_consumers(const Field& field) {
  if (!expect_list(field)) return;
  std::set<std::string, std::less<>> names;
  std::map<auth::Sha256, Mark> keys;
  std::set<std::string, std::less<>> users;
  for (const YAML::Node& node : field.value) load_consumer(node, names, keys, users);
}

void Loader::load_consumer(const YAML::Node& node, std::set<std::string, std::less<>>& names,
                           std::map<auth::Sha256, Mark>& keys,
                           std::set<std::string, std::less<>>& users) {
  Consumer c;
  c.mark = mark_of(node);
  if (!node.IsMap()) {
    report(c.mark, "a consumer must be a map");
    return;
  }
  const Fields f =
      fields(node, {"name", "plan", "groups", "api_keys", "basic_auth"}, "in consumer");
  const Field* name = find(f, "name");
  if (name == nullptr) {
    report(c.mark, "consumer needs a 'name'");
    return;
  }
  c.name = read_string(name->value, name->label()).value_or("");
  if (c.name.empty() || !http::is_field_value(c.name)) {
    if (name->value.IsScalar()) report(name->mark(), "'name' must be a non-empty printable string");
    return;
  }
  if (!names.insert(c.name).second) {
    report(name->mark(), "duplicate consumer " + in_quotes(c.name));
    return;
  }
  if (const Field* plan = find(f, "plan")) {
    c.plan = read_string(plan->value, plan->label()).value_or("");
    if (!c.plan.empty() && !http::is_field_value(c.plan))
      report(plan->mark(), "'plan' has a control character");
  }
  if (const Field* groups = find(f, "groups")) {
    if (auto list = read_string_list(*groups)) {
      for (std::size_t i = 0; i < list->size(); ++i) {
        const std::string& g = (*list)[i];
        if (g.empty() || !is_token(g)) {
          report(mark_of(groups->value[i]), "group " + in_quotes(g) + " must be a token");
        }
      }
      c.groups = std::move(*list);
    }
  }
  if (const Field* api_keys = find(f, "api_keys")) {
    if (auto list = read_string_list(*api_keys)) {
      for (std::size_t i = 0; i < list->size(); ++i) {
        const std::string& key = (*list)[i];
        const Mark at = mark_of(api_keys->value[i]);
        std::optional<auth::Sha256> digest;
        if (key.starts_with("sha256:")) {
          digest = auth::parse_sha256_hex(std::string_view(key).substr(7));
          if (!digest) {
            report(at, "an api key 'sha256:...' needs 64 hex digits");
            continue;
          }
        } else if (key.size() < 8 || !http::is_field_value(key) ||
                   key.find(' ') != std::string::npos) {
          report(at, "an api key must be at least 8 printable characters without spaces");
          continue;
        } else {
          digest = auth::sha256(key);
        }
        auto [it, inserted] = keys.emplace(*digest, at);
        if (!inserted) {
          report(at, "duplicate api key (first on line " + std::to_string(it->second.line) + ")");
          continue;
        }
        c.api_keys.push_back(key);
      }
    }
  }
  if (const Field* basic = find(f, "basic_auth")) {
    if (expect_map(*basic)) {
      const Fields b = fields(basic->value, {"username", "password_hash"}, "in basic_auth");
      const Field* user = find(b, "username");
      const Field* hash = find(b, "password_hash");
      if (user == nullptr || hash == nullptr) {
        report(basic->mark(), "'basic_auth' needs 'username' and 'password_hash'");
      } else {
        BasicCredential cred;
        cred.username = read_string(user->value, user->label()).value_or("");
        cred.password_hash = read_string(hash->value, hash->label()).value_or("");
        if (cred.username.empty() || cred.username.find(':') != std::string::npos ||
            !http::is_field_value(cred.username)) {
          report(user->mark(), "'username' must be non-empty, printable and without ':'");
        } else if (!users.insert(cred.username).second) {
          report(user->mark(), "duplicate basic_auth username " + in_quotes(cred.username));
        } else if (!auth::crypt_hash_supported(cred.password_hash)) {
          report(hash->mark(),
                 "'password_hash' must be a crypt(3) hash: yescrypt ($y$), bcrypt ($2b$) or "
                 "sha512-crypt ($6$)");
        } else {
          c.basic = std::move(cred);
        }
      }
    }
  }
  config_.consumers.push_back(std::move(c));
}

void Loader::load_redis(const Field& field) {
  if (!expect_map(field)) return;
  const Fields f = fields(field.value, {"url", "timeout"}, "in redis");
  RedisSettings redis;
  redis.mark = field.mark();
  const Field* url = find(f, "url");
  if (url == nullptr) {
    report(field.mark(), "'redis' needs a 'url' such as redis://127.0.0.1:6379/0");
    return;
  }
  redis.url = read_string(url->value, url->label()).value_or("");
  std::string error;
  if (url->value.IsScalar() && !ratelimit::parse_redis_url(redis.url, error)) {
    report(url->mark(), "invalid 'url': " + error);
    return;
  }
  if (const Field* timeout = find(f, "timeout")) {
    auto t = read_duration(*timeout, Zero::kRejected);
    if (!t) return;
    redis.timeout = *t;
  }
  config_.redis = std::move(redis);
}

void Loader::load_trusted_proxies(const Field& field) {
  if (!expect_list(field)) return;
  for (const YAML::Node& item : field.value) {
    auto text = read_string(item, "each entry of 'trusted_proxies'");
    if (!text) continue;
    std::string error;
    if (!core::parse_cidr(*text, error)) {
      report(mark_of(item), error);
      continue;
    }
    config_.trusted_proxies.push_back(*text);
  }
}

void Loader::load_plans(const Field& field) {
  if (!expect_map(field)) return;
  for (auto it = field.value.begin(); it != field.value.end(); ++it) {
    Plan plan;
    plan.name = it->first.IsScalar() ? it->first.Scalar() : std::string();
    plan.mark = mark_of(it->first);
    if (plan.name.empty() || !is_token(plan.name)) {
      report(plan.mark, "a plan name must be a token such as 'free' or 'pro'");
      continue;
    }
    const Field entry{plan.name, it->first, it->second};
    if (!it->second.IsNull()) {
      if (!expect_map(entry)) continue;
      const Fields f = fields(it->second, {"rate_limit"}, "in plan");
      if (const Field* rl = find(f, "rate_limit")) {
        if (!expect_map(*rl)) continue;
        const Fields r = fields(rl->value, {"limit", "window"}, "in a plan's rate_limit");
        const Field* limit = find(r, "limit");
        const Field* window = find(r, "window");
        if (limit == nullptr || window == nullptr) {
          report(rl->mark(), "a plan's 'rate_limit' needs 'limit' and 'window'");
          continue;
        }
        auto n = read_integer(limit->value, limit->label(), 1, ratelimit::kMaxLimit);
        auto w = read_duration(*window, Zero::kRejected);
        if (!n || !w) continue;
        if (w->count() < 1000 || w->count() > 30LL * 24 * 3600 * 1000) {
          report(window->mark(), "'window' must be between 1s and 30d");
          continue;
        }
        plan.limit = static_cast<uint64_t>(*n);
        plan.window = *w;
      }
    }
    config_.plans.push_back(std::move(plan));
  }
}

void Loader::load_upstream_signing(const Field& field) {
  if (!expect_map(field)) return;
  const Fields f = fields(field.value, {"secret_env"}, "in upstream_signing");
  const Field* env = find(f, "secret_env");
  if (env == nullptr) {
    report(field.mark(), "'upstream_signing' needs 'secret_env'");
    return;
  }
  const std::string name = read_string(env->value, env->label()).value_or("");
  const char* value = name.empty() ? nullptr : std::getenv(name.c_str());
  if (value == nullptr) {
    report(env->mark(), "environment variable " + in_quotes(name) + " is not set");
    return;
  }
  if (std::strlen(value) < 32) {
    report(env->mark(), "the secret in " + in_quotes(name) + " must be at least 32 bytes");
    return;
  }
  config_.upstream_signing = UpstreamSigning{value, env->mark()};
}

void Loader::check_admin_listen() {
  const std::optional<Address>& admin = config_.admin.listen;
  if (!admin) return;
  for (const Listener& l : config_.listeners) {
    if (!listeners_overlap(*admin, l.address)) continue;
    report(admin->mark,
           "admin 'listen' " + admin->to_string() + " overlaps 'listen' " + l.address.to_string());
  }
}

void Loader::check_route_names() {
  std::map<std::string, Mark, std::less<>> first_mark;
  for (std::size_t i = 0; i < config_.routes.size(); ++i) {
    const std::string& name = config_.routes[i].name;
    if (name.empty()) continue;
    const auto [first, inserted] = first_mark.emplace(name, route_sources_[i].name);
    if (!inserted) {
      report(route_sources_[i].name, "duplicate route name " + in_quotes(name) +
                                         " (first on line " + std::to_string(first->second.line) +
                                         ")");
    }
  }
}

void Loader::check_upstream_names() {
  std::set<std::string, std::less<>> names;
  for (const Upstream& upstream : config_.upstreams) names.insert(upstream.name);
  for (std::size_t i = 0; i < config_.routes.size(); ++i) {
    const Route& route = config_.routes[i];
    if (route.upstream.empty() || names.contains(route.upstream)) continue;
    report(route_sources_[i].upstream,
           route_label(route) + " names unknown upstream " + in_quotes(route.upstream));
  }
}

// Only routes without problems of their own go to the router, which may
// assume well-formed input; indexes are mapped back to the file's order.
void Loader::check_shadowing() {
  std::vector<Route> candidates;
  for (std::size_t i = 0; i < config_.routes.size(); ++i) {
    if (route_sources_[i].valid) candidates.push_back(config_.routes[i]);
  }
  for (const auto& [shadowed, shadowing] : router::Router::find_shadowed(candidates)) {
    report(candidates[shadowed].mark, route_label(candidates[shadowed]) +
                                          " is unreachable: shadowed by earlier route " +
                                          in_quotes(candidates[shadowing].name));
  }
}

}  // namespace

std::string ConfigError::to_string() const {
  return file + ":" + std::to_string(mark.line) + ":" + std::to_string(mark.col) + ": " + message;
}

LoadResult load_config_text(const std::string& text, const std::string& file) {
  return Loader(file).load(text);
}

LoadResult load_config_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return {std::nullopt, {{path, {}, "cannot read config: is a directory"}}};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return {std::nullopt, {{path, {}, std::string("cannot read config: ") + std::strerror(errno)}}};
  }
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return {std::nullopt, {{path, {}, "cannot read config: read error"}}};
  return load_config_text(text, path);
}

}  // namespace gatehouse::config
