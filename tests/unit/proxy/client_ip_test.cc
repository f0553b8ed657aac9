#include "proxy/client_ip.h"

#include <gtest/gtest.h>

#include <string>

namespace gatehouse::proxy {
namespace {

struct Req {
  std::string raw;
  http::RequestHead head;
  explicit Req(std::string headers) : raw("GET / HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n") {
    http::ParseError err;
    EXPECT_EQ(http::parse_request_head(raw.data(), raw.size(), head, err),
              http::ParseStatus::kComplete);
  }
};

std::vector<core::Cidr> blocks(std::initializer_list<const char*> texts) {
  std::vector<core::Cidr> out;
  std::string error;
  for (const char* t : texts) out.push_back(*core::parse_cidr(t, error));
  return out;
}

std::string resolve(const char* peer, const std::string& headers,
                    const std::vector<core::Cidr>& trusted) {
  Req r(headers);
  return core::to_string(resolve_client_ip(*core::parse_ip(peer), r.head, trusted));
}

TEST(ClientIp, UntrustedPeerIgnoresForwardedFor) {
  auto trusted = blocks({"10.0.0.0/8"});
  EXPECT_EQ(resolve("192.0.2.1", "X-Forwarded-For: 1.2.3.4\r\n", trusted), "192.0.2.1");
  EXPECT_EQ(resolve("192.0.2.1", "X-Forwarded-For: 1.2.3.4\r\n", {}), "192.0.2.1");
}

TEST(ClientIp, TrustedHopsAreWalkedFromTheRight) {
  auto trusted = blocks({"10.0.0.0/8", "::1/128"});
  EXPECT_EQ(resolve("10.0.0.1", "X-Forwarded-For: 1.2.3.4\r\n", trusted), "1.2.3.4");
  // A client cannot insert itself to the left of a real hop.
  EXPECT_EQ(resolve("10.0.0.1", "X-Forwarded-For: 6.6.6.6, 1.2.3.4, 10.9.9.9\r\n", trusted),
            "1.2.3.4");
  EXPECT_EQ(resolve("::1", "X-Forwarded-For: 2001:db8::5\r\n", trusted), "2001:db8::5");
  // Several fields: the last is the closest hop.
  EXPECT_EQ(
      resolve("10.0.0.1", "X-Forwarded-For: 5.5.5.5\r\nX-Forwarded-For: 10.1.1.1\r\n", trusted),
      "5.5.5.5");
  // Every hop trusted: the left-most.
  EXPECT_EQ(resolve("10.0.0.1", "X-Forwarded-For: 10.2.2.2, 10.3.3.3\r\n", trusted), "10.2.2.2");
  // No header: the peer.
  EXPECT_EQ(resolve("10.0.0.1", "", trusted), "10.0.0.1");
}

TEST(ClientIp, GarbageStopsAtTheLastGoodHop) {
  auto trusted = blocks({"10.0.0.0/8"});
  EXPECT_EQ(resolve("10.0.0.1", "X-Forwarded-For: 1.2.3.4, junk\r\n", trusted), "10.0.0.1");
  EXPECT_EQ(resolve("10.0.0.1", "X-Forwarded-For: junk, 10.4.4.4\r\n", trusted), "10.4.4.4");
}

}  // namespace
}  // namespace gatehouse::proxy
