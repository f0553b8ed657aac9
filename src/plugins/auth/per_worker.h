// Per-worker state for plugins: a plugin object is shared by every worker,
// so anything it learns at run time (caches) lives in one slot per worker,
// each on its own cache lines, touched only by that worker's thread.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace gatehouse::plugins::auth {

template <typename T>
class PerWorker {
 public:
  explicit PerWorker(unsigned workers) : slots_(new Slot[workers ? workers : 1]), n_(workers) {}
  T& operator[](unsigned worker) const { return slots_[worker < n_ ? worker : 0].value; }

 private:
  struct alignas(64) Slot {
    T value;
  };
  std::unique_ptr<Slot[]> slots_;
  unsigned n_;
};

// Lets string-keyed maps be searched with a string_view (no copy per lookup).
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// A map that never holds more than `max` entries: when full, an arbitrary
// entry goes (a flood of distinct keys costs the cache, never memory).
template <typename K, typename V,
          typename Hash =
              std::conditional_t<std::is_same_v<K, std::string>, StringHash, std::hash<K>>>
class BoundedMap {
 public:
  explicit BoundedMap(std::size_t max = 4096) : max_(max) {}
  template <typename Key>
  V* find(const Key& key) {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  void put(const K& key, V value) {
    if (map_.size() >= max_ && map_.find(key) == map_.end()) map_.erase(map_.begin());
    map_.insert_or_assign(key, std::move(value));
  }
  void erase(const K& key) { map_.erase(key); }
  std::size_t size() const { return map_.size(); }

 private:
  std::size_t max_;
  std::unordered_map<K, V, Hash, std::equal_to<>> map_;
};

}  // namespace gatehouse::plugins::auth
