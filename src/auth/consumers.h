// The configured consumers, compiled for lookup by credential. API keys are
// found by their SHA-256 (so the table holds no key in the clear when the
// config gives "sha256:..." and the lookup time does not depend on how much
// of a guess matches), then confirmed with a constant-time compare.
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/crypto.h"
#include "config/config.h"

namespace gatehouse::auth {

struct Consumer {
  std::string name;
  std::string plan;
  std::vector<std::string> groups;
  std::string groups_joined;  // "a,b": X-User-Role when no claim gives one
};

struct BasicEntry {
  const Consumer* consumer = nullptr;
  std::string password_hash;
};

class ConsumerTable {
 public:
  explicit ConsumerTable(const std::vector<config::Consumer>& consumers);

  const Consumer* by_name(std::string_view name) const;
  const Consumer* by_api_key(std::string_view key) const;
  const BasicEntry* by_username(std::string_view username) const;
  std::size_t size() const { return consumers_.size(); }

 private:
  struct DigestHash {
    std::size_t operator()(const Sha256& d) const {
      std::size_t h;
      std::memcpy(&h, d.data(), sizeof h);  // already uniformly distributed
      return h;
    }
  };
  std::vector<std::unique_ptr<Consumer>> consumers_;
  std::unordered_map<std::string, const Consumer*> by_name_;
  std::unordered_map<Sha256, const Consumer*, DigestHash> by_key_;
  std::unordered_map<std::string, BasicEntry> by_username_;
};

}  // namespace gatehouse::auth
