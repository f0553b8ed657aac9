#include "proxy/identity.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <string>

#include "auth/consumers.h"

namespace gatehouse::proxy {
namespace {

auth::Consumer make_consumer(std::string name, std::string plan, std::vector<std::string> groups) {
  auth::Consumer c;
  c.name = std::move(name);
  c.plan = std::move(plan);
  c.groups = groups;
  for (const auto& g : groups) {
    if (!c.groups_joined.empty()) c.groups_joined.push_back(',');
    c.groups_joined += g;
  }
  return c;
}

// HMAC-SHA256 in hex, computed here with OpenSSL directly.
std::string reference_hmac(std::string_view key, std::string_view msg) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", mac[i]);
    hex += buf;
  }
  return hex;
}

TEST(ProxyIdentityUserId, VerifiedPrefersUserIdThenConsumerName) {
  auth::Consumer acme = make_consumer("acme", "", {});
  Identity id;
  id.consumer = &acme;
  EXPECT_EQ(identity_user_id(id), "");  // not verified
  id.verified = true;
  EXPECT_EQ(identity_user_id(id), "acme");
  id.user_id = "user-42";
  EXPECT_EQ(identity_user_id(id), "user-42");
  Identity bare;
  bare.verified = true;
  EXPECT_EQ(identity_user_id(bare), "");
  {  // AnonymousHasNoUserId
    auth::Consumer guest = make_consumer("guest", "", {});
    Identity id;
    id.consumer = &guest;
    id.anonymous = true;
    EXPECT_EQ(identity_user_id(id), "");
  }
}

TEST(ProxyIdentityHeaders, VerifiedConsumerGetsEveryHeader) {
  auth::Consumer acme = make_consumer("acme", "pro", {"partners", "editor"});
  Identity id;
  id.consumer = &acme;
  id.verified = true;
  std::string out;
  append_identity_headers(out, id);
  EXPECT_EQ(out,
            "X-Consumer: acme\r\n"
            "X-Consumer-Tier: pro\r\n"
            "X-User-ID: acme\r\n"
            "X-User-Role: partners,editor\r\n"
            "X-Auth-Verified: true\r\n");
}

TEST(ProxyIdentityHeaders, ClaimValuesOverrideConsumerDefaults) {
  auth::Consumer acme = make_consumer("acme", "", {"partners"});
  Identity id;
  id.consumer = &acme;
  id.verified = true;
  id.user_id = "u-1";
  id.role = "admin";
  id.headers = {{"X-Email", "a@example.com"}, {"X-Tenant", "t1"}};
  std::string out = "GET / HTTP/1.1\r\n";
  append_identity_headers(out, id);
  EXPECT_EQ(out,
            "GET / HTTP/1.1\r\n"
            "X-Consumer: acme\r\n"
            "X-User-ID: u-1\r\n"
            "X-User-Role: admin\r\n"
            "X-Auth-Verified: true\r\n"
            "X-Email: a@example.com\r\n"
            "X-Tenant: t1\r\n");
}

TEST(ProxyIdentityHeaders, TokenWithoutConsumerAndUnknownIdentity) {
  Identity id;
  id.verified = true;
  id.user_id = "sub-9";
  std::string out;
  append_identity_headers(out, id);
  EXPECT_EQ(out, "X-User-ID: sub-9\r\nX-Auth-Verified: true\r\n");
  {  // UnknownIdentityAddsNothing
    Identity id;
    std::string out;
    append_identity_headers(out, id);
    EXPECT_EQ(out, "");
  }
}

TEST(ProxyIdentityHeaders, AnonymousGetsConsumerAndMarkerOnly) {
  auth::Consumer guest = make_consumer("guest", "free", {"public"});
  Identity id;
  id.consumer = &guest;
  id.anonymous = true;
  id.headers = {{"X-Leak", "no"}};
  std::string out;
  append_identity_headers(out, id);
  EXPECT_EQ(out,
            "X-Consumer: guest\r\n"
            "X-Consumer-Tier: free\r\n"
            "X-Anonymous-Consumer: true\r\n");
}

TEST(ProxySignature, BaseIsFiveLinesWithoutTrailingNewline) {
  EXPECT_EQ(signature_base(1700000000, "GET", "/links/1?x=y", "req-1", "acme"),
            "1700000000\nGET\n/links/1?x=y\nreq-1\nacme");
  EXPECT_EQ(signature_base(0, "POST", "/", "r", ""), "0\nPOST\n/\nr\n");
  EXPECT_EQ(signature_base(-5, "", "", "", ""), "-5\n\n\n\n");
}

TEST(ProxySignature, HeaderMatchesIndependentHmac) {
  const std::string secret = "0123456789abcdef0123456789abcdef-signing";
  std::string out;
  append_signature(out, secret, 1700000123, "PUT", "/a/b?c=d", "rid-7", "user-1");
  const std::string expected_mac =
      reference_hmac(secret, "1700000123\nPUT\n/a/b?c=d\nrid-7\nuser-1");
  EXPECT_EQ(out, "X-Gateway-Signature: t=1700000123,v1=" + expected_mac + "\r\n");
}

TEST(ProxySignature, EveryFieldChangesTheMac) {
  const std::string secret(32, 's');
  auto sig = [&](int64_t t, std::string_view m, std::string_view p, std::string_view r,
                 std::string_view u) {
    std::string out;
    append_signature(out, secret, t, m, p, r, u);
    return out.substr(out.find("v1="));
  };
  const std::string base = sig(1, "GET", "/", "r", "u");
  EXPECT_NE(sig(2, "GET", "/", "r", "u"), base);
  EXPECT_NE(sig(1, "HEAD", "/", "r", "u"), base);
  EXPECT_NE(sig(1, "GET", "/x", "r", "u"), base);
  EXPECT_NE(sig(1, "GET", "/", "r2", "u"), base);
  EXPECT_NE(sig(1, "GET", "/", "r", ""), base);
  std::string other;
  append_signature(other, std::string(32, 't'), 1, "GET", "/", "r", "u");
  EXPECT_NE(other.substr(other.find("v1=")), base);
}

TEST(ProxyQueryWithout, RemovesOnlyTheNamedParameter) {
  std::string out = "/p?";
  append_query_without(out, "a=1&api_key=secret&b=2&api_key=again", "api_key");
  EXPECT_EQ(out, "/p?a=1&b=2");
  {  // KeepsSimilarNamesAndOrder
    std::string out = "/p?";
    append_query_without(out, "api_keyx=1&xapi_key=2&api_key&z=api_key", "api_key");
    EXPECT_EQ(out, "/p?api_keyx=1&xapi_key=2&z=api_key");
  }
}

TEST(ProxyQueryWithout, OnlyTheCredentialDropsTheQuestionMark) {
  std::string out = "/p?";
  append_query_without(out, "api_key=secret", "api_key");
  EXPECT_EQ(out, "/p");
  std::string first = "/q?";
  append_query_without(first, "api_key=s&b=2", "api_key");
  EXPECT_EQ(first, "/q?b=2");
  {  // NoMatchKeepsQueryAsWritten
    std::string out = "/p?";
    append_query_without(out, "a=%20b&c=d+e", "api_key");
    EXPECT_EQ(out, "/p?a=%20b&c=d+e");
  }
}

}  // namespace
}  // namespace gatehouse::proxy
