#include "config/address.h"

#include <gtest/gtest.h>

namespace gatehouse::config {
namespace {

Address parse_ok(std::string_view text) {
  std::string error;
  const auto address = parse_address(text, error);
  EXPECT_TRUE(address.has_value()) << text << ": " << error;
  return address.value_or(Address{});
}

std::string parse_error(std::string_view text) {
  std::string error;
  EXPECT_FALSE(parse_address(text, error).has_value()) << text;
  return error;
}

TEST(Address, ParsesIpv4AndPort) {
  const Address address = parse_ok("127.0.0.1:8080");
  EXPECT_EQ(address.host, "127.0.0.1");
  EXPECT_EQ(address.port, 8080);
}

TEST(Address, ParsesHostName) {
  const Address address = parse_ok("localhost:9001");
  EXPECT_EQ(address.host, "localhost");
  EXPECT_EQ(address.port, 9001);
  EXPECT_EQ(parse_ok("api-1.internal.example.com:443").host, "api-1.internal.example.com");
}

TEST(Address, ParsesBracketedIpv6WithoutBrackets) {
  const Address address = parse_ok("[::1]:8080");
  EXPECT_EQ(address.host, "::1");
  EXPECT_EQ(address.port, 8080);
}

TEST(Address, AcceptsPortBounds) {
  EXPECT_EQ(parse_ok("0.0.0.0:1").port, 1);
  EXPECT_EQ(parse_ok("0.0.0.0:65535").port, 65535);
}

TEST(Address, RejectsPortOutOfRange) {
  EXPECT_EQ(parse_error("127.0.0.1:0"), "port must be a number from 1 to 65535");
  EXPECT_EQ(parse_error("127.0.0.1:65536"), "port must be a number from 1 to 65535");
  EXPECT_EQ(parse_error("127.0.0.1:http"), "port must be a number from 1 to 65535");
  EXPECT_EQ(parse_error("127.0.0.1:"), "port must be a number from 1 to 65535");
  EXPECT_EQ(parse_error("127.0.0.1:+80"), "port must be a number from 1 to 65535");
}

TEST(Address, RejectsMissingPort) {
  EXPECT_EQ(parse_error("127.0.0.1"), "missing port: expected host:port");
  EXPECT_EQ(parse_error("[::1]"), "missing port: expected [IPv6]:port");
}

TEST(Address, RejectsMissingHost) {
  EXPECT_EQ(parse_error(":8080"), "missing host: expected host:port");
}

TEST(Address, RejectsEmptyText) { EXPECT_EQ(parse_error(""), "address is empty"); }

TEST(Address, RejectsUnbracketedIpv6) {
  EXPECT_EQ(parse_error("::1:8080"), "IPv6 addresses need brackets, as in [::1]:8080");
}

TEST(Address, RejectsInvalidIpv6) {
  EXPECT_EQ(parse_error("[::g]:80"), "invalid IPv6 address '::g'");
  EXPECT_EQ(parse_error("[::1:80"), "missing ']' after IPv6 address");
}

TEST(Address, RejectsInvalidHost) {
  EXPECT_EQ(parse_error("256.0.0.1:80"), "invalid host '256.0.0.1'");
  EXPECT_EQ(parse_error("bad_host:80"), "invalid host 'bad_host'");
  EXPECT_EQ(parse_error("-a.example.com:80"), "invalid host '-a.example.com'");
  EXPECT_EQ(parse_error("a..b:80"), "invalid host 'a..b'");
}

TEST(Address, FormatsIpv4AndIpv6) {
  EXPECT_EQ((Address{"127.0.0.1", 8080, {}}).to_string(), "127.0.0.1:8080");
  EXPECT_EQ((Address{"::1", 8080, {}}).to_string(), "[::1]:8080");
}

TEST(Address, HostNameRulesFollowRfc1123) {
  EXPECT_TRUE(is_host_name("example.com"));
  EXPECT_TRUE(is_host_name("3com.net"));
  EXPECT_FALSE(is_host_name("example.com."));
  EXPECT_FALSE(is_host_name(std::string(64, 'a') + ".com"));
  EXPECT_FALSE(is_host_name(""));
}

}  // namespace
}  // namespace gatehouse::config
