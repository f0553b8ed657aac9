// The path half of routing for one host bucket: a trie of path segments
// holding template and prefix routes. It knows nothing of methods, headers or
// hosts; it walks the path and offers route slots to a visitor, most specific
// first, and the visitor says whether the route's other conditions hold.
//
// Order of the walk at a node reached after k path segments (a node sits on a
// segment boundary: the path there either ends or continues with '/'):
//   path continues:  literal child > param child > partial groups, longest
//                    literal first > open routes
//   path ends here:  terminal routes > open routes
// A depth-first walk in that order visits matches in the order of the
// segment-by-segment precedence rule (see router.cc), so the first match the
// visitor accepts is the most specific acceptable one. Each node is visited at
// most once per walk (its depth fixes where in the path it reads), so the
// cost is bounded by the path's length and the trie's shape, not by the
// number of routes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "router/router.h"

namespace gatehouse::router {

// Lets hash maps keyed by std::string be searched with a std::string_view,
// without building a string on the request path.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

template <class Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

// The `{name}` segments read along one walk, in path order.
struct Captures {
  std::array<std::string_view, kMaxParams> values{};
  std::size_t count = 0;
};

class RouteTrie {
 public:
  using Slot = uint32_t;  // what the visitor gets back: the route's index

  RouteTrie();

  // `path_template` must be valid (Router::check_template) and start with '/'.
  void add_template(std::string_view path_template, Slot slot);
  // `prefix` must start with '/'. Matches every path that starts with it.
  void add_prefix(std::string_view prefix, Slot slot);
  // Sorts and indexes what the adds built; call once, before find().
  void finish();

  bool empty() const { return empty_; }

  // Calls `visit(slot, captures, rest)` for each route whose path matches,
  // most specific first, until it returns true; returns whether one did.
  // `rest` is what a trailing `{*name}` would capture at that point (the path
  // after the '/' that follows the last consumed segment); it is meaningful
  // only for routes that end in `{*name}`. `path` must start with '/'.
  template <class Visit>
  bool find(std::string_view path, Visit&& visit) const {
    Captures captures;
    return walk(0, 0, path, captures, visit);
  }

 private:
  static constexpr uint32_t kNoNode = UINT32_MAX;
  // Above this many entries a node's literal children and partial groups get a
  // hash index; below it a linear scan over a few short strings is cheaper.
  static constexpr std::size_t kLinearScanMax = 8;

  // Routes whose path goes on into the next segment with a fixed literal
  // (`rest`) and then anything: a prefix ending mid-segment ("/api" at the
  // root has rest "api"), or a trailing `{*name}` (rest "").
  struct PartialGroup {
    std::string rest;
    std::vector<Slot> slots;  // file order
  };

  struct Node {
    std::vector<std::pair<std::string, uint32_t>> literals;
    std::unique_ptr<StringMap<uint32_t>> literal_index;  // when many literals
    uint32_t param_child = kNoNode;
    std::vector<Slot> terminal;                          // templates ending exactly here
    std::vector<PartialGroup> partials;                  // after finish(): longest rest first
    std::unique_ptr<StringMap<uint32_t>> partial_index;  // rest -> partials index
    std::vector<std::size_t> partial_lengths;            // distinct rest sizes, longest first
    std::vector<Slot> open;                              // prefixes ending exactly on this boundary
  };

  uint32_t literal_child(const Node& node, std::string_view segment) const;
  uint32_t add_literal_child(uint32_t node_id, std::string_view segment);
  uint32_t add_param_child(uint32_t node_id);
  PartialGroup& partial_group(uint32_t node_id, std::string_view rest);
  void finish_partials(Node& node);

  template <class Visit>
  bool walk(uint32_t node_id, std::size_t pos, std::string_view path, Captures& captures,
            Visit& visit) const {
    const Node& node = nodes_[node_id];
    if (pos == path.size()) {
      if (visit_slots(node.terminal, captures, {}, visit)) return true;
      return visit_slots(node.open, captures, {}, visit);
    }
    // path[pos] == '/': read the next segment.
    const std::size_t begin = pos + 1;
    std::size_t end = path.find('/', begin);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view segment = path.substr(begin, end - begin);

    if (uint32_t child = literal_child(node, segment);
        child != kNoNode && walk(child, end, path, captures, visit)) {
      return true;
    }
    if (node.param_child != kNoNode && !segment.empty() && captures.count < kMaxParams) {
      captures.values[captures.count++] = segment;
      if (walk(node.param_child, end, path, captures, visit)) return true;
      --captures.count;
    }
    if (visit_partials(node, segment, path.substr(begin), captures, visit)) return true;
    return visit_slots(node.open, captures, {}, visit);
  }

  template <class Visit>
  bool visit_partials(const Node& node, std::string_view segment, std::string_view rest,
                      const Captures& captures, Visit& visit) const {
    if (!node.partial_index) {
      for (const PartialGroup& group : node.partials) {
        if (segment.starts_with(group.rest) && visit_slots(group.slots, captures, rest, visit)) {
          return true;
        }
      }
      return false;
    }
    for (std::size_t length : node.partial_lengths) {
      if (length > segment.size()) continue;
      auto it = node.partial_index->find(segment.substr(0, length));
      if (it != node.partial_index->end() &&
          visit_slots(node.partials[it->second].slots, captures, rest, visit)) {
        return true;
      }
    }
    return false;
  }

  template <class Visit>
  static bool visit_slots(const std::vector<Slot>& slots, const Captures& captures,
                          std::string_view rest, Visit& visit) {
    for (Slot slot : slots) {
      if (visit(slot, captures, rest)) return true;
    }
    return false;
  }

  std::vector<Node> nodes_;  // nodes_[0] is the root ("" before the first '/')
  bool empty_ = true;
};

}  // namespace gatehouse::router
