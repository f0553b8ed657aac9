#include "auth/consumers.h"

#include <openssl/crypto.h>

namespace gatehouse::auth {

ConsumerTable::ConsumerTable(const std::vector<config::Consumer>& consumers) {
  for (const config::Consumer& c : consumers) {
    auto consumer = std::make_unique<Consumer>();
    consumer->name = c.name;
    consumer->plan = c.plan;
    consumer->groups = c.groups;
    for (const std::string& g : c.groups) {
      if (!consumer->groups_joined.empty()) consumer->groups_joined.push_back(',');
      consumer->groups_joined.append(g);
    }
    const Consumer* p = consumer.get();
    by_name_.emplace(c.name, p);
    for (const std::string& key : c.api_keys) {
      std::optional<Sha256> digest = key.starts_with("sha256:")
                                         ? parse_sha256_hex(std::string_view(key).substr(7))
                                         : std::optional<Sha256>(sha256(key));
      if (digest) by_key_.emplace(*digest, p);
    }
    if (c.basic) by_username_.emplace(c.basic->username, BasicEntry{p, c.basic->password_hash});
    consumers_.push_back(std::move(consumer));
  }
}

const Consumer* ConsumerTable::by_name(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : it->second;
}

const Consumer* ConsumerTable::by_api_key(std::string_view key) const {
  const Sha256 digest = sha256(key);
  auto it = by_key_.find(digest);
  if (it == by_key_.end()) return nullptr;
  // The bucket walk compared digests with memcmp; confirm in constant time.
  if (CRYPTO_memcmp(it->first.data(), digest.data(), digest.size()) != 0) return nullptr;
  return it->second;
}

const BasicEntry* ConsumerTable::by_username(std::string_view username) const {
  auto it = by_username_.find(std::string(username));
  return it == by_username_.end() ? nullptr : &it->second;
}

}  // namespace gatehouse::auth
