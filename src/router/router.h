// Route lookup: picks the route for (host, path, method, headers) from a
// compiled, immutable structure built once per config snapshot. Lookup cost
// grows with the path's length, not with the number of routes.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace gatehouse::router {

// Request headers as the router sees them. `name` is lower-case.
class HeaderLookup {
 public:
  virtual ~HeaderLookup() = default;
  // The value of the first header with this name, or nullptr-data view if absent.
  virtual bool get(std::string_view lower_name, std::string_view& value) const = 0;
};

struct Param {
  std::string_view name;   // points into the Router (lives as long as it)
  std::string_view value;  // points into the path passed to match()
};

inline constexpr std::size_t kMaxParams = 16;

struct MatchResult {
  enum class Kind { kFound, kNotFound, kMethodNotAllowed };
  Kind kind = Kind::kNotFound;
  uint32_t route_index = 0;  // index in the config's route list (kFound)
  std::array<Param, kMaxParams> params{};
  std::size_t param_count = 0;
  // kMethodNotAllowed: the methods accepted on this path, "GET, HEAD" (sorted, unique).
  std::string allow;
};

class Router {
 public:
  // `routes` in file order; a route's index is its position.
  explicit Router(const std::vector<config::Route>& routes);
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // `host`: lower-case, without port (may be empty). `path`: already
  // normalized, without the query. `method`: as sent (upper-case token).
  void match(std::string_view host, std::string_view path, std::string_view method,
             const HeaderLookup& headers, MatchResult& out) const;

  // Config validation: pairs (shadowed, shadowing) of route indexes where the
  // shadowed route can never be chosen because an earlier route with
  // identical or broader conditions and equal path always wins over it.
  static std::vector<std::pair<std::size_t, std::size_t>> find_shadowed(
      const std::vector<config::Route>& routes);

  // Path template syntax check for config validation; empty string when valid,
  // else a message ("unclosed '{' in path template").
  static std::string check_template(std::string_view path_template);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gatehouse::router
