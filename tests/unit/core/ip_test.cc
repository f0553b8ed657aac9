#include "core/ip.h"

#include <gtest/gtest.h>

namespace gatehouse::core {
namespace {

Cidr cidr(const char* text) {
  std::string error;
  auto c = parse_cidr(text, error);
  EXPECT_TRUE(c) << text << ": " << error;
  return c.value_or(Cidr{});
}

TEST(Ip, ParsesV4V6BracketsAndMapped) {
  EXPECT_EQ(to_string(*parse_ip("10.1.2.3")), "10.1.2.3");
  EXPECT_EQ(to_string(*parse_ip("::1")), "::1");
  EXPECT_EQ(to_string(*parse_ip("[2001:db8::1]")), "2001:db8::1");
  auto mapped = parse_ip("::ffff:10.0.0.1");
  ASSERT_TRUE(mapped);
  EXPECT_FALSE(mapped->v6);
  EXPECT_EQ(*mapped, *parse_ip("10.0.0.1"));
  for (const char* bad : {"", "10.0.0", "10.0.0.256", "1.2.3.4:80", "::g", "host", " 1.2.3.4"})
    EXPECT_FALSE(parse_ip(bad)) << bad;
}

TEST(Ip, CidrContainment) {
  EXPECT_TRUE(contains(cidr("10.0.0.0/8"), *parse_ip("10.255.1.2")));
  EXPECT_FALSE(contains(cidr("10.0.0.0/8"), *parse_ip("11.0.0.1")));
  EXPECT_TRUE(contains(cidr("10.1.2.3"), *parse_ip("10.1.2.3")));
  EXPECT_FALSE(contains(cidr("10.1.2.3/32"), *parse_ip("10.1.2.4")));
  EXPECT_TRUE(contains(cidr("2001:db8::/32"), *parse_ip("2001:db8:ffff::1")));
  EXPECT_FALSE(contains(cidr("2001:db8::/32"), *parse_ip("2001:db9::1")));
  EXPECT_TRUE(contains(cidr("0.0.0.0/0"), *parse_ip("8.8.8.8")));
  EXPECT_FALSE(contains(cidr("0.0.0.0/0"), *parse_ip("::1")));  // families never mix
  EXPECT_TRUE(contains(cidr("172.16.0.0/12"), *parse_ip("172.31.255.255")));
  EXPECT_FALSE(contains(cidr("172.16.0.0/12"), *parse_ip("172.32.0.0")));
  EXPECT_TRUE(contains(cidr("10.0.0.0/8"), *parse_ip("::ffff:10.9.9.9")));
}

TEST(Ip, CidrErrors) {
  std::string error;
  EXPECT_FALSE(parse_cidr("10.0.0.1/8", error));
  EXPECT_EQ(error, "'10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)");
  EXPECT_FALSE(parse_cidr("10.0.0.0/33", error));
  EXPECT_EQ(error, "bad prefix length in '10.0.0.0/33'");
  EXPECT_FALSE(parse_cidr("::/129", error));
  EXPECT_FALSE(parse_cidr("10.0.0.0/", error));
  EXPECT_FALSE(parse_cidr("nope/8", error));
  EXPECT_EQ(error, "'nope/8' is not an IP address or CIDR block");
}

}  // namespace
}  // namespace gatehouse::core
