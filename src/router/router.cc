// Route precedence, as implemented here. Among the routes whose conditions
// all hold (host, path, headers, method), the chosen one is the first by:
//
// 1. Host: a route for the exact host beats one for a wildcard host, which
//    beats one with no host condition. Between wildcards the longer suffix
//    wins ("*.api.example.com" over "*.example.com"). Host is compared before
//    anything else, so a regex route on "api.example.com" beats a literal
//    template route with no host condition.
// 2. Within one host: trie routes (templates and prefixes), then regex routes,
//    then match-everything routes (no path condition, prefix "/" or "",
//    template "/{*name}"). Regexes are opaque, so they rank below every route
//    whose path says something about the path, but above the catch-all
//    fallback that most configs end with, which would otherwise make every
//    regex route dead.
// 3. Among trie routes, path specificity, compared on the request path's
//    segments left to right. What a route does with one segment:
//      literal segment > {param} > the segment starts with a literal the
//      route ends on (prefix mid-segment, or "" for a trailing {*name}),
//      longer literal first > the route ends just before the segment
//      (a prefix ending on a segment boundary).
//    When the path has no more segments: a template that ends there beats a
//    prefix that ends there. A prefix segment that equals the path's whole
//    segment counts as literal: prefix "/api" is literal "api" for "/api/x"
//    but a mid-segment prefix for "/apix".
// 4. File order: the lower index wins among routes that tie on all of that
//    (same host, same path shape), and among regex routes and among
//    match-everything routes of one host.
//
// A route that matches host, path and headers but not the method is skipped;
// if no route matches at all and some were skipped for the method only, the
// answer is 405 with the union of those routes' methods.
#include "router/router.h"

#include <re2/re2.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

#include "router/route_trie.h"

namespace gatehouse::router {

namespace {

std::string to_lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

// The host condition as matched: lower-case, "" for none; "*" alone means none.
std::string normalized_host(std::string_view host) {
  std::string lower = to_lower(host);
  if (lower == "*") lower.clear();
  return lower;
}

bool is_param_name(std::string_view name) {
  auto is_alpha = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  if (name.empty() || !is_alpha(name[0])) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [&](char c) { return is_alpha(c) || is_digit(c); });
}

// "/a/{id}/{*rest}" -> "/a/{}/{*}": what a template matches, without names.
std::string template_shape(std::string_view path_template) {
  std::string shape;
  for (std::size_t i = 0; i < path_template.size(); ++i) {
    shape += path_template[i];
    if (path_template[i] != '{') continue;
    std::size_t close = path_template.find('}', i);
    if (close == std::string_view::npos) return std::string(path_template);
    if (i + 1 < close && path_template[i + 1] == '*') shape += '*';
    shape += '}';
    i = close;
  }
  return shape;
}

// What a route needs besides its path, plus what its path match reports.
struct CompiledRoute {
  uint32_t index = 0;
  std::vector<std::string> methods;                          // empty: any
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case name, value
  std::vector<std::string> param_names;  // templates: {name}s then {*name}; regex: named groups
  bool ends_in_rest = false;             // template ends in {*name}
  std::unique_ptr<RE2> regex;
  std::vector<int> regex_groups;  // capture group of each param name
  int regex_submatches = 0;       // 1 + highest group in regex_groups; 0: none
};

// A route that matches every path that starts with `prefix` and ranks below
// all trie and regex routes of its host (see precedence rule 2).
struct Fallback {
  uint32_t slot = 0;
  std::string prefix;
};

struct Bucket {
  RouteTrie trie;
  std::vector<uint32_t> regexes;    // file order
  std::vector<Fallback> fallbacks;  // file order
};

// One lookup's state, shared by the two passes of match().
struct Lookup {
  std::string_view path;
  std::string_view method;
  const HeaderLookup& headers;
  MatchResult& out;
  bool collecting_allow = false;  // second pass: gather methods for a 405
  bool method_rejected = false;   // first pass skipped a route for its method
  std::vector<std::string_view> allowed;
};

// Submatches for a regex route on the stack; more groups than this is rare
// enough to take an allocation.
constexpr int kInlineSubmatches = 2 * static_cast<int>(kMaxParams) + 1;

}  // namespace

struct Router::Impl {
  std::vector<CompiledRoute> routes;
  StringMap<Bucket> exact_hosts;
  StringMap<Bucket> wildcard_hosts;  // key: the suffix with its dot, ".example.com"
  Bucket any_host;

  explicit Impl(const std::vector<config::Route>& config_routes);

  Bucket& bucket_for(const std::string& host);
  void add_path(Bucket& bucket, const config::Route& route, CompiledRoute& compiled);
  void compile_regex(const config::Route& route, CompiledRoute& compiled);

  template <class Visit>
  bool for_each_bucket(std::string_view host, Visit&& visit) const;
  bool find_in(const Bucket& bucket, Lookup& lookup) const;
  bool find_regex(const CompiledRoute& route, Lookup& lookup) const;
  bool offer(const CompiledRoute& route, Lookup& lookup, const Captures& captures,
             std::string_view rest) const;
  static bool headers_match(const CompiledRoute& route, const HeaderLookup& headers);
  static bool accepts_method(const CompiledRoute& route, std::string_view method);
  static void collect_methods(const CompiledRoute& route, Lookup& lookup);
};

Router::Impl::Impl(const std::vector<config::Route>& config_routes) {
  routes.resize(config_routes.size());
  for (std::size_t i = 0; i < config_routes.size(); ++i) {
    const config::Route& route = config_routes[i];
    CompiledRoute& compiled = routes[i];
    compiled.index = static_cast<uint32_t>(i);
    compiled.methods = route.match.methods;
    compiled.headers = route.match.headers;
    add_path(bucket_for(normalized_host(route.match.host)), route, compiled);
  }
  auto finish = [](Bucket& bucket) { bucket.trie.finish(); };
  for (auto& [host, bucket] : exact_hosts) finish(bucket);
  for (auto& [suffix, bucket] : wildcard_hosts) finish(bucket);
  finish(any_host);
}

Router::Router(const std::vector<config::Route>& routes) : impl_(std::make_unique<Impl>(routes)) {}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

Bucket& Router::Impl::bucket_for(const std::string& host) {
  if (host.empty()) return any_host;
  if (host.starts_with("*.")) return wildcard_hosts[host.substr(1)];
  return exact_hosts[host];
}

void Router::Impl::add_path(Bucket& bucket, const config::Route& route, CompiledRoute& compiled) {
  const std::string& path = route.match.path;
  const uint32_t slot = compiled.index;
  switch (route.match.path_kind) {
    case config::PathKind::kNone:
      bucket.fallbacks.push_back({slot, ""});
      return;
    case config::PathKind::kPrefix:
      if (path.empty() || path == "/" || !path.starts_with('/')) {
        bucket.fallbacks.push_back({slot, path});
      } else {
        bucket.trie.add_prefix(path, slot);
      }
      return;
    case config::PathKind::kTemplate: {
      if (std::string problem = check_template(path); !problem.empty()) {
        throw std::invalid_argument("route '" + route.name + "': " + problem);
      }
      for (std::size_t open = path.find('{'); open != std::string::npos;
           open = path.find('{', open + 1)) {
        std::string_view name(path.data() + open + 1, path.find('}', open) - open - 1);
        compiled.ends_in_rest = name.starts_with('*');  // valid: only the last one
        if (compiled.ends_in_rest) name.remove_prefix(1);
        compiled.param_names.emplace_back(name);
      }
      if (path.starts_with("/{*")) {
        bucket.fallbacks.push_back({slot, "/"});
      } else {
        bucket.trie.add_template(path, slot);
      }
      return;
    }
    case config::PathKind::kRegex:
      compile_regex(route, compiled);
      bucket.regexes.push_back(slot);
      return;
  }
}

void Router::Impl::compile_regex(const config::Route& route, CompiledRoute& compiled) {
  RE2::Options options;
  options.set_log_errors(false);
  compiled.regex = std::make_unique<RE2>(route.match.path, options);
  if (!compiled.regex->ok()) {
    throw std::invalid_argument("route '" + route.name +
                                "': invalid regex: " + compiled.regex->error());
  }
  // NamedCapturingGroups is ordered by name; report params in group order.
  std::vector<std::pair<int, std::string>> groups;
  for (const auto& [name, group] : compiled.regex->NamedCapturingGroups()) {
    groups.emplace_back(group, name);
  }
  std::sort(groups.begin(), groups.end());
  if (groups.size() > kMaxParams) {
    throw std::invalid_argument("route '" + route.name + "': more than " +
                                std::to_string(kMaxParams) + " named groups in regex");
  }
  for (auto& [group, name] : groups) {
    compiled.param_names.push_back(std::move(name));
    compiled.regex_groups.push_back(group);
    compiled.regex_submatches = std::max(compiled.regex_submatches, group + 1);
  }
}

// Buckets in host precedence order: exact, wildcards longest suffix first, any.
template <class Visit>
bool Router::Impl::for_each_bucket(std::string_view host, Visit&& visit) const {
  if (!host.empty() && !exact_hosts.empty()) {
    if (auto it = exact_hosts.find(host); it != exact_hosts.end() && visit(it->second)) return true;
  }
  if (!host.empty() && !wildcard_hosts.empty()) {
    // Starting at 1: the wildcard needs at least one more label before it.
    for (std::size_t dot = host.find('.', 1); dot != std::string_view::npos;
         dot = host.find('.', dot + 1)) {
      auto it = wildcard_hosts.find(host.substr(dot));
      if (it != wildcard_hosts.end() && visit(it->second)) return true;
    }
  }
  return visit(any_host);
}

bool Router::Impl::find_in(const Bucket& bucket, Lookup& lookup) const {
  if (!bucket.trie.empty() && lookup.path.starts_with('/')) {
    auto visit = [&](uint32_t slot, const Captures& captures, std::string_view rest) {
      return offer(routes[slot], lookup, captures, rest);
    };
    if (bucket.trie.find(lookup.path, visit)) return true;
  }
  for (uint32_t slot : bucket.regexes) {
    if (find_regex(routes[slot], lookup)) return true;
  }
  const Captures no_captures;
  for (const Fallback& fallback : bucket.fallbacks) {
    if (lookup.path.starts_with(fallback.prefix) &&
        offer(routes[fallback.slot], lookup, no_captures,
              lookup.path.substr(fallback.prefix.size()))) {
      return true;
    }
  }
  return false;
}

bool Router::Impl::offer(const CompiledRoute& route, Lookup& lookup, const Captures& captures,
                         std::string_view rest) const {
  if (lookup.collecting_allow) {
    if (headers_match(route, lookup.headers)) collect_methods(route, lookup);
    return false;
  }
  if (!accepts_method(route, lookup.method)) {
    lookup.method_rejected = true;
    return false;
  }
  if (!headers_match(route, lookup.headers)) return false;

  MatchResult& out = lookup.out;
  out.kind = MatchResult::Kind::kFound;
  out.route_index = route.index;
  const std::size_t named = route.param_names.size() - (route.ends_in_rest ? 1 : 0);
  std::size_t count = 0;
  for (; count < named && count < captures.count; ++count) {
    out.params[count] = Param{route.param_names[count], captures.values[count]};
  }
  if (route.ends_in_rest && count < kMaxParams) {
    out.params[count++] = Param{route.param_names.back(), rest};
  }
  out.param_count = count;
  return true;
}

bool Router::Impl::find_regex(const CompiledRoute& route, Lookup& lookup) const {
  if (lookup.collecting_allow) {
    if (headers_match(route, lookup.headers) && RE2::FullMatch(lookup.path, *route.regex)) {
      collect_methods(route, lookup);
    }
    return false;
  }
  if (!accepts_method(route, lookup.method)) {
    // Whether the path would match is left to the second pass, which runs
    // only when nothing at all is found.
    lookup.method_rejected = true;
    return false;
  }
  if (!headers_match(route, lookup.headers)) return false;

  const re2::StringPiece text(lookup.path.data(), lookup.path.size());
  std::array<re2::StringPiece, kInlineSubmatches> inline_submatches;
  std::vector<re2::StringPiece> heap_submatches;
  re2::StringPiece* submatches = inline_submatches.data();
  if (route.regex_submatches > kInlineSubmatches) {
    heap_submatches.resize(route.regex_submatches);
    submatches = heap_submatches.data();
  }
  if (!route.regex->Match(text, 0, text.size(), RE2::ANCHOR_BOTH, submatches,
                          route.regex_submatches)) {
    return false;
  }
  MatchResult& out = lookup.out;
  out.kind = MatchResult::Kind::kFound;
  out.route_index = route.index;
  for (std::size_t i = 0; i < route.param_names.size(); ++i) {
    const re2::StringPiece& value = submatches[route.regex_groups[i]];
    out.params[i] = Param{route.param_names[i], std::string_view(value.data(), value.size())};
  }
  out.param_count = route.param_names.size();
  return true;
}

bool Router::Impl::headers_match(const CompiledRoute& route, const HeaderLookup& headers) {
  for (const auto& [name, expected] : route.headers) {
    std::string_view value;
    if (!headers.get(name, value) || value != expected) return false;
  }
  return true;
}

bool Router::Impl::accepts_method(const CompiledRoute& route, std::string_view method) {
  if (route.methods.empty()) return true;
  return std::find(route.methods.begin(), route.methods.end(), method) != route.methods.end();
}

void Router::Impl::collect_methods(const CompiledRoute& route, Lookup& lookup) {
  lookup.allowed.insert(lookup.allowed.end(), route.methods.begin(), route.methods.end());
}

void Router::match(std::string_view host, std::string_view path, std::string_view method,
                   const HeaderLookup& headers, MatchResult& out) const {
  out.kind = MatchResult::Kind::kNotFound;
  out.route_index = 0;
  out.param_count = 0;
  out.allow.clear();

  Lookup lookup{path, method, headers, out};
  auto find_in = [&](const Bucket& bucket) { return impl_->find_in(bucket, lookup); };
  if (impl_->for_each_bucket(host, find_in)) return;
  if (!lookup.method_rejected) return;

  // Slow path, 405 or 404 only: every route that matches all but the method.
  lookup.collecting_allow = true;
  impl_->for_each_bucket(host, find_in);
  if (lookup.allowed.empty()) return;
  std::sort(lookup.allowed.begin(), lookup.allowed.end());
  lookup.allowed.erase(std::unique(lookup.allowed.begin(), lookup.allowed.end()),
                       lookup.allowed.end());
  for (std::string_view allowed : lookup.allowed) {
    if (!out.allow.empty()) out.allow += ", ";
    out.allow += allowed;
  }
  out.kind = MatchResult::Kind::kMethodNotAllowed;
}

std::vector<std::pair<std::size_t, std::size_t>> Router::find_shadowed(
    const std::vector<config::Route>& routes) {
  // Only routes with the same host and the same path condition can shadow one
  // another; group them so that thousands of distinct routes cost a hash each.
  auto key_of = [](const config::RouteMatch& match) {
    std::string key = normalized_host(match.host);
    key += '\n';
    key += static_cast<char>('0' + static_cast<int>(match.path_kind));
    key += '\n';
    switch (match.path_kind) {
      case config::PathKind::kNone:
        break;
      case config::PathKind::kTemplate:
        key += template_shape(match.path);
        break;
      case config::PathKind::kPrefix:
      case config::PathKind::kRegex:
        key += match.path;
        break;
    }
    return key;
  };
  auto covers_methods = [](const config::RouteMatch& earlier, const config::RouteMatch& later) {
    if (earlier.methods.empty()) return true;
    if (later.methods.empty()) return false;
    return std::all_of(later.methods.begin(), later.methods.end(), [&](const std::string& m) {
      return std::find(earlier.methods.begin(), earlier.methods.end(), m) != earlier.methods.end();
    });
  };
  auto needs_no_more_headers = [](const config::RouteMatch& earlier,
                                  const config::RouteMatch& later) {
    return std::all_of(earlier.headers.begin(), earlier.headers.end(), [&](const auto& header) {
      return std::find(later.headers.begin(), later.headers.end(), header) != later.headers.end();
    });
  };

  std::unordered_map<std::string, std::vector<std::size_t>> groups;
  std::vector<std::pair<std::size_t, std::size_t>> shadowed;
  for (std::size_t later = 0; later < routes.size(); ++later) {
    std::vector<std::size_t>& earlier_routes = groups[key_of(routes[later].match)];
    for (std::size_t earlier : earlier_routes) {
      if (covers_methods(routes[earlier].match, routes[later].match) &&
          needs_no_more_headers(routes[earlier].match, routes[later].match)) {
        shadowed.emplace_back(later, earlier);
        break;  // one shadowing route (the first) is enough to report
      }
    }
    earlier_routes.push_back(later);
  }
  return shadowed;
}

std::string Router::check_template(std::string_view path_template) {
  if (!path_template.starts_with('/')) return "path template must start with '/'";
  std::vector<std::string_view> names;
  std::string_view rest = path_template.substr(1);
  while (true) {
    const std::size_t slash = rest.find('/');
    const bool last = slash == std::string_view::npos;
    const std::string_view segment = last ? rest : rest.substr(0, slash);
    const std::size_t open = segment.find('{');
    const std::size_t close = segment.find('}');
    if (open != std::string_view::npos || close != std::string_view::npos) {
      if (open != std::string_view::npos && close == std::string_view::npos) {
        return "unclosed '{' in path template";
      }
      if (open == std::string_view::npos || close < open) return "unmatched '}' in path template";
      if (open != 0 || close != segment.size() - 1) {
        return "'{...}' must be a whole path segment, not '" + std::string(segment) + "'";
      }
      std::string_view name = segment.substr(1, segment.size() - 2);
      const bool catch_all = name.starts_with('*');
      if (catch_all) name.remove_prefix(1);
      if (!is_param_name(name)) {
        return "invalid parameter name '" + std::string(name) +
               "' in path template (want [A-Za-z_][A-Za-z0-9_]*)";
      }
      if (catch_all && !last) return "'{*" + std::string(name) + "}' must be the last segment";
      if (std::find(names.begin(), names.end(), name) != names.end()) {
        return "duplicate parameter name '" + std::string(name) + "' in path template";
      }
      names.push_back(name);
      if (names.size() > kMaxParams) {
        return "more than " + std::to_string(kMaxParams) + " parameters in path template";
      }
    }
    if (last) return "";
    rest.remove_prefix(slash + 1);
  }
}

}  // namespace gatehouse::router
