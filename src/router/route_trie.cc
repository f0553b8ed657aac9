#include "router/route_trie.h"

#include <algorithm>

namespace gatehouse::router {

namespace {

// Splits "a/b/c" into its segments one at a time; "" is one empty segment.
class SegmentReader {
 public:
  explicit SegmentReader(std::string_view text) : text_(text) {}
  bool done() const { return done_; }
  // The next segment; `last` tells whether it is the final one.
  std::string_view next(bool& last) {
    std::size_t slash = text_.find('/');
    last = slash == std::string_view::npos;
    std::string_view segment = last ? text_ : text_.substr(0, slash);
    if (last) {
      done_ = true;
    } else {
      text_.remove_prefix(slash + 1);
    }
    return segment;
  }

 private:
  std::string_view text_;
  bool done_ = false;
};

}  // namespace

RouteTrie::RouteTrie() { nodes_.emplace_back(); }

uint32_t RouteTrie::literal_child(const Node& node, std::string_view segment) const {
  if (node.literal_index) {
    auto it = node.literal_index->find(segment);
    return it == node.literal_index->end() ? kNoNode : it->second;
  }
  for (const auto& [literal, child] : node.literals) {
    if (literal == segment) return child;
  }
  return kNoNode;
}

uint32_t RouteTrie::add_literal_child(uint32_t node_id, std::string_view segment) {
  if (uint32_t child = literal_child(nodes_[node_id], segment); child != kNoNode) return child;
  const auto child = static_cast<uint32_t>(nodes_.size());
  nodes_.emplace_back();  // may move nodes_: index, don't hold references
  Node& node = nodes_[node_id];
  node.literals.emplace_back(std::string(segment), child);
  if (node.literal_index) {
    node.literal_index->emplace(std::string(segment), child);
  } else if (node.literals.size() > kLinearScanMax) {
    node.literal_index = std::make_unique<StringMap<uint32_t>>();
    for (const auto& [literal, id] : node.literals) node.literal_index->emplace(literal, id);
  }
  return child;
}

uint32_t RouteTrie::add_param_child(uint32_t node_id) {
  if (nodes_[node_id].param_child == kNoNode) {
    const auto child = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
    nodes_[node_id].param_child = child;
  }
  return nodes_[node_id].param_child;
}

RouteTrie::PartialGroup& RouteTrie::partial_group(uint32_t node_id, std::string_view rest) {
  Node& node = nodes_[node_id];
  if (node.partial_index) {
    auto it = node.partial_index->find(rest);
    if (it != node.partial_index->end()) return node.partials[it->second];
  } else {
    for (PartialGroup& group : node.partials) {
      if (group.rest == rest) return group;
    }
  }
  node.partials.push_back(PartialGroup{std::string(rest), {}});
  if (node.partial_index) {
    node.partial_index->emplace(std::string(rest), node.partials.size() - 1);
  } else if (node.partials.size() > kLinearScanMax) {
    node.partial_index = std::make_unique<StringMap<uint32_t>>();
    for (std::size_t i = 0; i < node.partials.size(); ++i) {
      node.partial_index->emplace(node.partials[i].rest, static_cast<uint32_t>(i));
    }
  }
  return node.partials.back();
}

void RouteTrie::add_template(std::string_view path_template, Slot slot) {
  empty_ = false;
  uint32_t node_id = 0;
  SegmentReader reader(path_template.substr(1));
  while (!reader.done()) {
    bool last = false;
    std::string_view segment = reader.next(last);
    if (segment.starts_with("{*")) {  // valid templates have it last only
      partial_group(node_id, "").slots.push_back(slot);
      return;
    }
    node_id =
        segment.starts_with('{') ? add_param_child(node_id) : add_literal_child(node_id, segment);
  }
  nodes_[node_id].terminal.push_back(slot);
}

// A prefix "/c1/c2/r" matches a path that continues after "/c1/c2" with a
// segment starting with "r". If that segment is exactly "r", the path walks
// the literal child "r" and meets the route in that child's open list, so
// the prefix ranks as if "r" were a literal segment; if the segment is longer
// ("/c1/c2/rx"), it meets the route in the partial group "r" of "/c1/c2".
void RouteTrie::add_prefix(std::string_view prefix, Slot slot) {
  empty_ = false;
  uint32_t node_id = 0;
  SegmentReader reader(prefix.substr(1));
  while (!reader.done()) {
    bool last = false;
    std::string_view segment = reader.next(last);
    if (last) {
      partial_group(node_id, segment).slots.push_back(slot);
      nodes_[add_literal_child(node_id, segment)].open.push_back(slot);
      return;
    }
    node_id = add_literal_child(node_id, segment);
  }
}

void RouteTrie::finish_partials(Node& node) {
  if (node.partials.empty()) return;
  // Longer literal rest is more specific. Stable: equal rests do not occur
  // (one group per rest), so the order among equal lengths is irrelevant.
  std::stable_sort(
      node.partials.begin(), node.partials.end(),
      [](const PartialGroup& a, const PartialGroup& b) { return a.rest.size() > b.rest.size(); });
  node.partial_lengths.clear();
  for (const PartialGroup& group : node.partials) {
    if (node.partial_lengths.empty() || node.partial_lengths.back() != group.rest.size()) {
      node.partial_lengths.push_back(group.rest.size());
    }
  }
  if (node.partial_index) {
    node.partial_index->clear();
    for (std::size_t i = 0; i < node.partials.size(); ++i) {
      node.partial_index->emplace(node.partials[i].rest, static_cast<uint32_t>(i));
    }
  }
}

void RouteTrie::finish() {
  for (Node& node : nodes_) finish_partials(node);
}

}  // namespace gatehouse::router
