#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <vector>

#include "http/http1_parser.h"
#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins {
namespace {

struct IpWorld {
  config::Config config;
  std::vector<std::string> errors;

  std::unique_ptr<proxy::Plugin> build(const std::string& yaml) {
    return find_plugin_kind("ip_restriction")
        ->create(YAML::Load(yaml), PluginEnv{.config = config, .scope = "route:test"},
                 [&](const YAML::Node& at, std::string message) {
                   errors.push_back(std::to_string(at.Mark().line + 1) + ":" +
                                    std::to_string(at.Mark().column + 1) + ": " + message);
                 });
  }
};

struct IpRequest {
  std::string raw = "GET /links HTTP/1.1\r\nHost: gw.example\r\n\r\n";
  http::RequestHead head;
  proxy::RequestState state;
  proxy::RequestContext ctx;
  proxy::LocalReply reply;
};

std::unique_ptr<IpRequest> from(std::string_view client_ip) {
  auto r = std::make_unique<IpRequest>();
  std::size_t scanned = 0;
  const std::size_t size = http::find_head_end(r->raw.data(), r->raw.size(), scanned);
  http::ParseError err;
  EXPECT_EQ(http::parse_request_head(r->raw.data(), size, r->head, err),
            http::ParseStatus::kComplete);
  r->ctx.head = &r->head;
  r->ctx.state = &r->state;
  r->ctx.client_ip = client_ip;
  return r;
}

// Whether `plugin` lets `client_ip` through; a refusal must be the
// documented 403.
bool passes(const proxy::Plugin& plugin, std::string_view client_ip) {
  auto r = from(client_ip);
  const bool pass = plugin.on_request(r->ctx, r->reply);
  if (!pass) {
    EXPECT_EQ(r->reply.status, 403);
    EXPECT_EQ(r->reply.detail, "client address not allowed");
    EXPECT_TRUE(r->reply.problem);
    EXPECT_TRUE(r->state.response_headers.empty());
  }
  return pass;
}

TEST(IpRestriction, IsRegisteredAndRunsEarly) {
  IpWorld w;
  auto p = w.build("{allow: [10.0.0.0/8]}");
  ASSERT_TRUE(p) << (w.errors.empty() ? "" : w.errors[0]);
  EXPECT_EQ(p->stage(), proxy::Stage::kEarly);
}

TEST(IpRestriction, AllowListLetsOnlyItsBlocksThrough) {
  IpWorld w;
  auto p = w.build("{allow: [10.0.0.0/8, 192.168.1.0/24]}");
  ASSERT_TRUE(p);
  EXPECT_TRUE(passes(*p, "10.1.2.3"));
  EXPECT_TRUE(passes(*p, "10.255.255.255"));
  EXPECT_TRUE(passes(*p, "192.168.1.77"));
  EXPECT_FALSE(passes(*p, "11.0.0.1"));
  EXPECT_FALSE(passes(*p, "192.168.2.1"));
}

TEST(IpRestriction, RefusalSaysWhyInTheLogOnly) {
  IpWorld w;
  auto p = w.build("{allow: [10.0.0.0/8], deny: [10.9.0.0/16]}");
  ASSERT_TRUE(p);
  auto outside = from("172.16.0.1");
  EXPECT_FALSE(p->on_request(outside->ctx, outside->reply));
  EXPECT_EQ(outside->state.log_detail, "ip_restriction: client address not in allow list");
  auto denied = from("10.9.1.1");
  EXPECT_FALSE(p->on_request(denied->ctx, denied->reply));
  EXPECT_EQ(denied->state.log_detail, "ip_restriction: client address in deny list");
  EXPECT_EQ(denied->reply.detail, "client address not allowed");
}

TEST(IpRestriction, DenyWinsOverAllow) {
  IpWorld w;
  auto p = w.build("{allow: [10.0.0.0/8], deny: [10.1.2.3/32]}");
  ASSERT_TRUE(p);
  EXPECT_FALSE(passes(*p, "10.1.2.3"));
  EXPECT_TRUE(passes(*p, "10.1.2.4"));
  EXPECT_TRUE(passes(*p, "10.1.2.2"));
}

TEST(IpRestriction, DenyListAloneLetsEveryoneElseThrough) {
  IpWorld w;
  auto p = w.build("{deny: [203.0.113.0/24, '2001:db8:bad::/48']}");
  ASSERT_TRUE(p);
  EXPECT_FALSE(passes(*p, "203.0.113.9"));
  EXPECT_FALSE(passes(*p, "2001:db8:bad::1"));
  EXPECT_TRUE(passes(*p, "203.0.114.9"));
  EXPECT_TRUE(passes(*p, "2001:db8:beef::1"));
  EXPECT_TRUE(passes(*p, "::1"));
}

TEST(IpRestriction, BareAddressIsASingleHost) {
  IpWorld w;
  auto p = w.build("{deny: [10.1.2.3, '::1']}");
  ASSERT_TRUE(p);
  EXPECT_FALSE(passes(*p, "10.1.2.3"));
  EXPECT_TRUE(passes(*p, "10.1.2.30"));
  EXPECT_FALSE(passes(*p, "::1"));
  EXPECT_TRUE(passes(*p, "::2"));
}

TEST(IpRestriction, Ipv6Blocks) {
  IpWorld w;
  auto p = w.build("{allow: ['2001:db8::/32', 'fd00::/8']}");
  ASSERT_TRUE(p);
  EXPECT_TRUE(passes(*p, "2001:db8::1"));
  EXPECT_TRUE(passes(*p, "2001:db8:ffff:ffff::1"));
  EXPECT_TRUE(passes(*p, "fd12:3456::1"));
  EXPECT_FALSE(passes(*p, "2001:db9::1"));
  EXPECT_FALSE(passes(*p, "10.1.2.3"));  // an IPv4 client is in no IPv6 block
}

TEST(IpRestriction, Ipv4BlocksNeverMatchIpv6Clients) {
  IpWorld w;
  auto p = w.build("{allow: [0.0.0.0/0]}");
  ASSERT_TRUE(p);
  EXPECT_TRUE(passes(*p, "198.51.100.1"));
  EXPECT_FALSE(passes(*p, "::1"));
  EXPECT_FALSE(passes(*p, "2001:db8::1"));
}

TEST(IpRestriction, MappedAddressCountsAsItsIpv4Address) {
  IpWorld w;
  auto p = w.build("{allow: [10.0.0.0/8], deny: [10.1.2.3/32]}");
  ASSERT_TRUE(p);
  EXPECT_FALSE(passes(*p, "::ffff:10.1.2.3"));
  EXPECT_TRUE(passes(*p, "::ffff:10.1.2.4"));
  EXPECT_FALSE(passes(*p, "::ffff:11.1.2.4"));
}

TEST(IpRestriction, MappedAddressInConfigCountsAsIpv4) {
  IpWorld w;
  auto p = w.build("{deny: ['::ffff:10.1.2.3']}");
  ASSERT_TRUE(p);
  EXPECT_FALSE(passes(*p, "10.1.2.3"));
  EXPECT_TRUE(passes(*p, "10.1.2.4"));
}

TEST(IpRestriction, BracketedAndZonedIpv6Clients) {
  IpWorld w;
  auto p = w.build("{allow: ['fe80::/10', '::1']}");
  ASSERT_TRUE(p);
  EXPECT_TRUE(passes(*p, "[::1]"));
  EXPECT_TRUE(passes(*p, "fe80::1%eth0"));
  EXPECT_TRUE(passes(*p, "[fe80::1%2]"));
  EXPECT_FALSE(passes(*p, "[::2]"));
}

TEST(IpRestriction, UnreadableClientAddressIsRefused) {
  IpWorld w;
  auto p = w.build("{deny: [192.0.2.0/24]}");
  ASSERT_TRUE(p);
  EXPECT_FALSE(passes(*p, ""));
  EXPECT_FALSE(passes(*p, "not-an-ip"));
  EXPECT_FALSE(passes(*p, "10.1.2.3:4567"));
  auto r = from("999.1.1.1");
  EXPECT_FALSE(p->on_request(r->ctx, r->reply));
  EXPECT_EQ(r->state.log_detail, "ip_restriction: client address unreadable");
}

TEST(IpRestriction, ReportsBadEntriesEachAtItsLine) {
  IpWorld w;
  auto p = w.build(
      "allow:\n"
      "  - 10.0.0.1/8\n"
      "  - 10.0.0.0/33\n"
      "deny:\n"
      "  - example.com\n"
      "  - {a: 1}\n");
  EXPECT_FALSE(p);
  ASSERT_EQ(w.errors.size(), 4u);
  EXPECT_EQ(w.errors[0], "2:5: 'allow': '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)");
  EXPECT_EQ(w.errors[1], "3:5: 'allow': bad prefix length in '10.0.0.0/33'");
  EXPECT_EQ(w.errors[2], "5:5: 'deny': 'example.com' is not an IP address or CIDR block");
  EXPECT_EQ(w.errors[3], "6:5: 'deny': entries must be IP addresses or CIDR blocks");
}

TEST(IpRestriction, ReportsListsThatAreNotListsOrEmpty) {
  IpWorld w;
  auto p = w.build(
      "allow: 10.0.0.0/8\n"
      "deny: []\n");
  EXPECT_FALSE(p);
  ASSERT_EQ(w.errors.size(), 2u);
  EXPECT_EQ(w.errors[0], "1:8: 'allow' must be a list of IP addresses or CIDR blocks");
  EXPECT_EQ(w.errors[1], "2:7: 'deny' must not be empty");
}

TEST(IpRestriction, NeedsAllowOrDeny) {
  IpWorld w;
  EXPECT_FALSE(w.build("{}"));
  EXPECT_FALSE(w.build("[10.0.0.0/8]"));
  EXPECT_FALSE(w.build("~"));
  ASSERT_EQ(w.errors.size(), 3u);
  EXPECT_EQ(w.errors[0], "1:1: 'ip_restriction' needs a map with 'allow' and/or 'deny'");
  EXPECT_EQ(w.errors[1], "1:1: 'ip_restriction' needs a map with 'allow' and/or 'deny'");
}

TEST(IpRestriction, ReportsUnknownKeys) {
  IpWorld w;
  auto p = w.build(
      "allow: [10.0.0.0/8]\n"
      "allwo: [10.0.0.0/8]\n");
  EXPECT_FALSE(p);
  ASSERT_EQ(w.errors.size(), 1u);
  EXPECT_EQ(w.errors[0], "2:1: unknown key 'allwo' in ip_restriction");
}

}  // namespace
}  // namespace gatehouse::plugins
