// `cors`: answers CORS preflights at the gateway and marks responses to
// allowed origins (docs/protection.md, "cors"; Fetch standard, "CORS protocol").
//
//   - cors: {origins: ["https://app.example.com"], methods: [GET, POST],
//            headers: [Authorization], expose_headers: [X-Request-Id],
//            credentials: true, max_age: 600}
//
// Runs in the early stage: a browser sends a preflight without credentials,
// so it must be answered before any auth plugin refuses it.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "config/duration.h"
#include "core/ip.h"
#include "plugins/protection/common.h"
#include "plugins/protection/protection.h"

namespace gatehouse::plugins::protection {
namespace {

constexpr int64_t kDefaultMaxAge = 600;

// scheme://host[:port], as an Origin header carries it (RFC 6454 6.1).
struct Origin {
  std::string_view scheme;
  std::string_view host;  // a name, an IPv4 address or a bracketed IPv6 address
  int port = 0;           // 0: the scheme's default
};

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Splits `text` into an Origin; nullopt unless it is exactly
// scheme://host[:port] (no userinfo, path, query or fragment, not "null").
// The views point into `text`. A scheme's default port is dropped, so
// "https://a.example:443" and "https://a.example" are the same origin.
std::optional<Origin> parse_origin(std::string_view text) {
  Origin o;
  std::size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  o.scheme = text.substr(0, sep);
  if (!is_alpha(o.scheme[0])) return std::nullopt;
  for (char c : o.scheme)
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return std::nullopt;
  std::string_view rest = text.substr(sep + 3);
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    std::size_t close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    std::optional<core::IpAddr> ip = core::parse_ip(rest.substr(1, close - 1));
    if (!ip || !ip->v6) return std::nullopt;
    o.host = rest.substr(0, close + 1);
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else {
    std::size_t colon = rest.find(':');
    o.host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    }
    if (o.host.empty() || o.host.front() == '.' || o.host.front() == '-') return std::nullopt;
    for (char c : o.host)
      if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_') return std::nullopt;
  }
  if (!port.empty()) {
    if (port.size() > 5) return std::nullopt;
    for (char c : port)
      if (!is_digit(c)) return std::nullopt;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), o.port);
    if (ec != std::errc() || o.port < 1 || o.port > 65535) return std::nullopt;
  }
  if ((o.port == 443 && http::iequals(o.scheme, "https")) ||
      (o.port == 80 && http::iequals(o.scheme, "http"))) {
    o.port = 0;
  }
  return o;
}

// An allowed origin, lower-cased.
struct AllowedOrigin {
  std::string scheme;
  std::string host;
  int port = 0;
  bool matches(const Origin& o) const {
    return o.port == port && http::iequals(o.scheme, scheme) && http::iequals(o.host, host);
  }
};

struct CorsConfig {
  bool any_origin = false;
  std::vector<AllowedOrigin> origins;
  std::vector<std::string> methods;  // upper-case
  std::vector<std::string> headers;  // compared case-insensitively
  std::string allow_methods;         // "GET, POST"
  std::string expose_headers;        // "X-Request-Id, ETag"; empty: none
  std::string max_age = std::to_string(kDefaultMaxAge);
  bool credentials = false;
};

class Cors : public proxy::Plugin {
 public:
  explicit Cors(CorsConfig config) : c_(std::move(config)) {}

  proxy::Stage stage() const override { return proxy::Stage::kEarly; }

  bool on_request(const proxy::RequestContext& ctx, proxy::LocalReply& reply) const override {
    const http::RequestHead& head = *ctx.head;
    int origins = 0;
    const std::string_view origin = find_header(head, "origin", &origins);
    if (origins != 0 && head.method == "OPTIONS") {
      int methods = 0;
      const std::string_view method = find_header(head, "access-control-request-method", &methods);
      if (methods > 0)
        return preflight(ctx, origins == 1 ? origin : std::string_view(), methods, trim_ows(method),
                         reply);
    }
    if (origins != 1 || !allowed(origin)) {
      // Not a CORS request (no Origin) or not an allowed one: proxied as
      // usual, without CORS headers; but with a list of origins the answer
      // depends on Origin, so a cache must not serve it to an allowed origin
      // (Fetch standard, CORS protocol and HTTP caches).
      if (!c_.any_origin) ctx.state->response_headers.emplace_back("Vary", "Origin");
      return true;
    }
    auto& out = ctx.state->response_headers;
    out.emplace_back("Access-Control-Allow-Origin", c_.any_origin ? "*" : std::string(origin));
    out.emplace_back("Vary", "Origin");
    if (c_.credentials) out.emplace_back("Access-Control-Allow-Credentials", "true");
    if (!c_.expose_headers.empty())
      out.emplace_back("Access-Control-Expose-Headers", c_.expose_headers);
    return true;
  }

 private:
  bool allowed(std::string_view origin) const {
    std::optional<Origin> o = parse_origin(origin);
    if (!o) return false;
    if (c_.any_origin) return true;
    for (const AllowedOrigin& a : c_.origins)
      if (a.matches(*o)) return true;
    return false;
  }

  bool method_allowed(std::string_view method) const {
    for (const std::string& m : c_.methods)
      if (http::iequals(m, method)) return true;
    return false;
  }

  bool header_allowed(std::string_view name) const {
    for (const std::string& h : c_.headers)
      if (http::iequals(h, name)) return true;
    return false;
  }

  static bool refuse(const proxy::RequestContext& ctx, proxy::LocalReply& reply,
                     std::string log_detail) {
    reply.status = 403;
    reply.detail = "CORS preflight refused";
    reply.problem = true;
    ctx.state->log_detail = std::move(log_detail);
    return false;
  }

  // An OPTIONS with Origin and Access-Control-Request-Method: answered here,
  // never proxied. `origin` is empty when the request has several.
  bool preflight(const proxy::RequestContext& ctx, std::string_view origin, int method_fields,
                 std::string_view method, proxy::LocalReply& reply) const {
    if (origin.empty() || !allowed(origin)) return refuse(ctx, reply, "cors: origin not allowed");
    if (method_fields != 1 || !http::is_token(method) || !method_allowed(method))
      return refuse(ctx, reply, "cors: method not allowed");
    // Access-Control-Request-Headers: a comma list, possibly over several
    // fields; every requested header must be allowed.
    std::string requested;
    const http::RequestHead& head = *ctx.head;
    for (std::size_t i = 0; i < head.header_count; ++i) {
      const http::Header& h = head.headers[i];
      if (!http::iequals(h.name, "access-control-request-headers")) continue;
      std::string_view list = h.value;
      while (!list.empty()) {
        const std::size_t comma = list.find(',');
        const std::string_view item = trim_ows(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
        if (item.empty()) continue;
        if (!http::is_token(item)) return refuse(ctx, reply, "cors: malformed request headers");
        if (!header_allowed(item))
          return refuse(ctx, reply, "cors: header '" + std::string(item) + "' not allowed");
        if (!requested.empty()) requested.append(", ");
        requested.append(item);
      }
    }
    reply.status = 204;
    reply.problem = false;
    reply.detail.clear();
    auto& out = reply.headers;
    out.emplace_back("Access-Control-Allow-Origin", c_.any_origin ? "*" : std::string(origin));
    out.emplace_back("Access-Control-Allow-Methods", c_.allow_methods);
    if (!requested.empty()) out.emplace_back("Access-Control-Allow-Headers", std::move(requested));
    out.emplace_back("Access-Control-Max-Age", c_.max_age);
    if (c_.credentials) out.emplace_back("Access-Control-Allow-Credentials", "true");
    out.emplace_back("Vary", "Origin");
    ctx.state->log_detail = "cors: preflight answered";
    return false;
  }

  CorsConfig c_;
};

// ---- config ----

bool read_origins(const YAML::Node& node, const Report& report, CorsConfig& c) {
  std::optional<std::vector<std::string>> list = read_strings(node, "'origins'", report);
  if (!list) return false;
  if (list->empty()) {
    report(node, "'origins' must not be empty");
    return false;
  }
  bool ok = true;
  std::size_t i = 0;
  for (const YAML::Node& item : node) {
    const std::string& text = (*list)[i++];
    if (text == "*") {
      if (list->size() != 1) {
        report(item, "'*' must be the only entry of 'origins'");
        ok = false;
      }
      c.any_origin = true;
      continue;
    }
    std::optional<Origin> o = parse_origin(text);
    if (!o) {
      report(item, "invalid origin '" + text +
                       "': expected \"*\" or scheme://host[:port], without a path or a "
                       "trailing '/'");
      ok = false;
      continue;
    }
    c.origins.push_back({to_lower(o->scheme), to_lower(o->host), o->port});
  }
  return ok;
}

// A list of tokens (header names or methods); "*" is refused, since it means
// "any" to a browser only for requests without credentials.
bool read_tokens(const YAML::Node& node, std::string_view label, std::string_view what,
                 const Report& report, std::vector<std::string>& out) {
  const std::string quoted = "'" + std::string(label) + "'";
  std::optional<std::vector<std::string>> list = read_strings(node, quoted, report);
  if (!list) return false;
  bool ok = true;
  std::size_t i = 0;
  for (const YAML::Node& item : node) {
    const std::string& text = (*list)[i++];
    if (text == "*") {
      report(item, "'*' is not supported in " + quoted + ": list the " + std::string(what));
      ok = false;
    } else if (!http::is_token(text)) {
      report(item, "invalid name '" + text + "' in " + quoted);
      ok = false;
    } else {
      out.push_back(text);
    }
  }
  return ok;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out.append(", ");
    out.append(s);
  }
  return out;
}

// Seconds ("600") or a duration ("10m") of whole seconds.
std::optional<int64_t> read_max_age(const YAML::Node& node, const Report& report) {
  constexpr std::string_view kExpected =
      "'max_age' must be a number of seconds (600) or a duration (10m)";
  const std::string text = node.IsScalar() ? node.Scalar() : std::string();
  if (!text.empty() && text.size() <= 9 &&
      std::all_of(text.begin(), text.end(), [](char ch) { return is_digit(ch); })) {
    return std::stoll(text);
  }
  std::string error;
  std::optional<std::chrono::milliseconds> d =
      text.empty() ? std::nullopt : config::parse_duration(text, error);
  if (!d) {
    report(node, std::string(kExpected));
    return std::nullopt;
  }
  if (d->count() % 1000 != 0) {
    report(node, "'max_age' must be a whole number of seconds");
    return std::nullopt;
  }
  return d->count() / 1000;
}

}  // namespace

std::unique_ptr<proxy::Plugin> create_cors(const YAML::Node& config, const PluginEnv&,
                                           const Report& report) {
  if (!config.IsMap()) {
    report(config, "'cors' needs a map with at least 'origins'");
    return nullptr;
  }
  bool ok = only_keys(config,
                      {"origins", "methods", "headers", "expose_headers", "credentials", "max_age"},
                      "cors", report);
  CorsConfig c;
  bool origins_given = false;
  bool methods_given = false;
  YAML::Node credentials_at;
  for (const auto& kv : config) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    const YAML::Node& v = kv.second;
    if (key == "origins") {
      origins_given = true;
      ok = read_origins(v, report, c) && ok;
    } else if (key == "methods") {
      methods_given = true;
      std::vector<std::string> methods;
      if (read_tokens(v, "methods", "methods", report, methods)) {
        if (methods.empty()) {
          report(v, "'methods' must not be empty");
          ok = false;
        }
        for (const std::string& m : methods) {
          std::string upper = to_upper(m);
          if (std::find(c.methods.begin(), c.methods.end(), upper) == c.methods.end())
            c.methods.push_back(std::move(upper));
        }
      } else {
        ok = false;
      }
    } else if (key == "headers") {
      ok = read_tokens(v, "headers", "header names", report, c.headers) && ok;
    } else if (key == "expose_headers") {
      std::vector<std::string> expose;
      ok = read_tokens(v, "expose_headers", "header names", report, expose) && ok;
      c.expose_headers = join(expose);
    } else if (key == "credentials") {
      std::optional<bool> b = read_bool(v, "'credentials'", report);
      if (b) {
        c.credentials = *b;
        if (*b) credentials_at = v;
      }
      ok = b.has_value() && ok;
    } else if (key == "max_age") {
      std::optional<int64_t> seconds = read_max_age(v, report);
      if (seconds) c.max_age = std::to_string(*seconds);
      ok = seconds.has_value() && ok;
    }
  }
  if (!origins_given) {
    report(config, "'cors' needs 'origins' (a list of scheme://host[:port], or [\"*\"])");
    ok = false;
  }
  if (c.any_origin && c.credentials) {
    report(credentials_at,
           "'credentials: true' cannot be combined with origins [\"*\"]: list the origins");
    ok = false;
  }
  if (!methods_given) c.methods = {"GET", "HEAD", "POST"};
  c.allow_methods = join(c.methods);
  if (!ok) return nullptr;
  return std::make_unique<Cors>(std::move(c));
}

}  // namespace gatehouse::plugins::protection
