#include "auth/consumers.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

namespace gatehouse::auth {
namespace {

config::Consumer consumer(std::string name, std::vector<std::string> keys = {},
                          std::vector<std::string> groups = {}, std::string plan = {}) {
  config::Consumer c;
  c.name = std::move(name);
  c.api_keys = std::move(keys);
  c.groups = std::move(groups);
  c.plan = std::move(plan);
  return c;
}

std::string sha256_key(std::string_view key) {
  const Sha256 d = sha256(key);
  return "sha256:" + to_hex(d.data(), d.size());
}

TEST(ConsumerTableLookup, ByNameKeepsPlanAndGroups) {
  ConsumerTable table({consumer("acme", {}, {"partners", "editor"}, "pro"), consumer("guest")});
  EXPECT_EQ(table.size(), 2u);
  const Consumer* acme = table.by_name("acme");
  ASSERT_NE(acme, nullptr);
  EXPECT_EQ(acme->name, "acme");
  EXPECT_EQ(acme->plan, "pro");
  EXPECT_EQ(acme->groups, (std::vector<std::string>{"partners", "editor"}));
  EXPECT_EQ(acme->groups_joined, "partners,editor");
  const Consumer* guest = table.by_name("guest");
  ASSERT_NE(guest, nullptr);
  EXPECT_EQ(guest->groups_joined, "");
  EXPECT_EQ(guest->plan, "");
  EXPECT_EQ(table.by_name("ACME"), nullptr);
  EXPECT_EQ(table.by_name(""), nullptr);
  {  // GroupsJoinedWithOneGroupHasNoComma
    ConsumerTable table({consumer("a", {}, {"solo"})});
    EXPECT_EQ(table.by_name("a")->groups_joined, "solo");
  }
}

TEST(ConsumerTableLookup, PlainApiKeyFindsItsConsumer) {
  ConsumerTable table(
      {consumer("acme", {"k-acme-123", "k-acme-456"}), consumer("beta", {"k-beta-1"})});
  EXPECT_EQ(table.by_api_key("k-acme-123"), table.by_name("acme"));
  EXPECT_EQ(table.by_api_key("k-acme-456"), table.by_name("acme"));
  EXPECT_EQ(table.by_api_key("k-beta-1"), table.by_name("beta"));
  EXPECT_EQ(table.by_api_key("k-acme-12"), nullptr);
  EXPECT_EQ(table.by_api_key("k-acme-1234"), nullptr);
  EXPECT_EQ(table.by_api_key("K-ACME-123"), nullptr);
  EXPECT_EQ(table.by_api_key(""), nullptr);
}

TEST(ConsumerTableLookup, Sha256KeyMatchesThePlainKeyNotTheDigest) {
  const std::string stored = sha256_key("s3cret-key-value");
  ConsumerTable table({consumer("hashed", {stored})});
  EXPECT_EQ(table.by_api_key("s3cret-key-value"), table.by_name("hashed"));
  // The configured string is not itself a key.
  EXPECT_EQ(table.by_api_key(stored), nullptr);
  EXPECT_EQ(table.by_api_key(stored.substr(7)), nullptr);
  {  // Sha256KeyInUpperCaseHex
    std::string stored = sha256_key("UPPER-case-key");
    for (std::size_t i = 7; i < stored.size(); ++i)
      stored[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(stored[i])));
    ConsumerTable table({consumer("u", {stored})});
    EXPECT_EQ(table.by_api_key("UPPER-case-key"), table.by_name("u"));
  }
}

TEST(ConsumerTableLookup, BadEntriesAndEmptyTable) {
  ConsumerTable table({consumer("x", {"sha256:nothex", "good-key-123"})});
  EXPECT_EQ(table.by_api_key("good-key-123"), table.by_name("x"));
  EXPECT_EQ(table.by_api_key("sha256:nothex"), nullptr);
  EXPECT_EQ(table.by_api_key("nothex"), nullptr);
  {  // EmptyTable
    ConsumerTable table({});
    EXPECT_EQ(table.size(), 0u);
    EXPECT_EQ(table.by_name("a"), nullptr);
    EXPECT_EQ(table.by_api_key("abcdefgh"), nullptr);
    EXPECT_EQ(table.by_username("a"), nullptr);
  }
}

TEST(ConsumerTableLookup, ByUsernameGivesHashAndConsumer) {
  config::Consumer c = consumer("acme");
  c.basic = config::BasicCredential{"acme-user", "$6$salt$hash"};
  ConsumerTable table({c, consumer("nobasic")});
  const BasicEntry* e = table.by_username("acme-user");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->consumer, table.by_name("acme"));
  EXPECT_EQ(e->password_hash, "$6$salt$hash");
  EXPECT_EQ(table.by_username("acme"), nullptr);
  EXPECT_EQ(table.by_username("ACME-USER"), nullptr);
  EXPECT_EQ(table.by_username("nobasic"), nullptr);
}

}  // namespace
}  // namespace gatehouse::auth
