#include "core/request_id.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace gatehouse::core {
namespace {

TEST(RequestIdGenerator, GeneratesThirtyTwoLowerCaseHexCharacters) {
  RequestIdGenerator gen(0x0123456789abcdefull, 3);
  char buf[32];
  std::string id(gen.next(buf));
  ASSERT_EQ(id.size(), 32u);
  for (char c : id) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
  EXPECT_EQ(id.substr(0, 16), "0123456789abcdef");
}

TEST(RequestIdGenerator, IdsDifferAcrossWorkersWithTheSamePrefix) {
  RequestIdGenerator a(42, 0), b(42, 1);
  std::set<std::string> seen;
  char buf[32];
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(seen.insert(std::string(a.next(buf))).second);
    EXPECT_TRUE(seen.insert(std::string(b.next(buf))).second);
  }
}

TEST(RequestIdGenerator, RandomPrefixesDifferBetweenProcesses) {
  // Stand-in for restarts: two draws from getrandom are (overwhelmingly) distinct.
  EXPECT_NE(RequestIdGenerator::random_prefix(), RequestIdGenerator::random_prefix());
}

}  // namespace
}  // namespace gatehouse::core
