#include "plugins/auth/claims.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gatehouse::plugins::auth {
namespace {

using nlohmann::json;
using Strings = std::vector<std::string>;
using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(AuthClaimText, ShapesOfClaims) {
  const json claims = json::parse(R"({
    "s": "alice", "i": 42, "neg": -7, "f": 1.5, "t": true, "fl": false,
    "arr": ["a", "b", "c"], "empty_arr": [], "mixed": ["a", 1], "obj": {"a": 1}, "nul": null
  })");
  EXPECT_EQ(claim_text(claims, "s"), "alice");
  EXPECT_EQ(claim_text(claims, "i"), "42");
  EXPECT_EQ(claim_text(claims, "neg"), "-7");
  EXPECT_EQ(claim_text(claims, "f"), "1.5");
  EXPECT_EQ(claim_text(claims, "t"), "true");
  EXPECT_EQ(claim_text(claims, "fl"), "false");
  EXPECT_EQ(claim_text(claims, "arr"), "a,b,c");
  EXPECT_EQ(claim_text(claims, "empty_arr"), "");
  EXPECT_EQ(claim_text(claims, "mixed"), std::nullopt);
  EXPECT_EQ(claim_text(claims, "obj"), std::nullopt);
  EXPECT_EQ(claim_text(claims, "nul"), std::nullopt);
  EXPECT_EQ(claim_text(claims, "absent"), std::nullopt);
  {  // RefusesValuesThatWouldInjectHeaders
    const json claims = {{"crlf", "a\r\nX-Admin: 1"},
                         {"lf", "a\nb"},
                         {"nul", std::string("a\0b", 3)},
                         {"arr", json::array({"ok", "bad\r\n"})},
                         {"tab", "a\tb"}};
    EXPECT_EQ(claim_text(claims, "crlf"), std::nullopt);
    EXPECT_EQ(claim_text(claims, "lf"), std::nullopt);
    EXPECT_EQ(claim_text(claims, "nul"), std::nullopt);
    EXPECT_EQ(claim_text(claims, "arr"), std::nullopt);
    EXPECT_EQ(claim_text(claims, "tab"), "a\tb");
  }
}

TEST(AuthTokenScopes, FromScopeAndScp) {
  EXPECT_EQ(token_scopes(json::parse(R"({"scope": "links:read  links:write "})")),
            (Strings{"links:read", "links:write"}));
  EXPECT_EQ(token_scopes(json::parse(R"({"scp": ["a", 3, "b"]})")), (Strings{"a", "b"}));
  EXPECT_EQ(token_scopes(json::parse(R"({"scp": "x y"})")), (Strings{"x", "y"}));
  EXPECT_EQ(token_scopes(json::parse(R"({"scope": "a", "scp": ["b"]})")), (Strings{"a", "b"}));
  EXPECT_EQ(token_scopes(json::parse(R"({"scope": 5, "other": "c"})")), Strings{});
  EXPECT_EQ(token_scopes(json::parse(R"({})")), Strings{});
}

TEST(AuthIdentityFromClaims, SubjectByDefault) {
  ClaimMapping mapping;
  TokenIdentity id;
  ASSERT_TRUE(identity_from_claims(json::parse(R"({"sub": "u-1", "username": "al"})"), mapping,
                                   {"sub", "username"}, id));
  EXPECT_EQ(id.user_id, "u-1");
  EXPECT_TRUE(id.scope_ok);
  EXPECT_EQ(id.role, "");
  EXPECT_TRUE(id.headers.empty());
  TokenIdentity fallback;
  ASSERT_TRUE(identity_from_claims(json::parse(R"({"username": "al"})"), mapping,
                                   {"sub", "username"}, fallback));
  EXPECT_EQ(fallback.user_id, "al");
  TokenIdentity none;
  ASSERT_TRUE(identity_from_claims(json::parse(R"({"x": 1})"), mapping, {"sub"}, none));
  EXPECT_EQ(none.user_id, "");
}

TEST(AuthIdentityFromClaims, MappedHeaders) {
  ClaimMapping mapping;
  mapping.to_headers = {{"x-user-id", "uid"},
                        {"X-User-Role", "role"},
                        {"X-Email", "email"},
                        {"X-Groups", "groups"},
                        {"X-Missing", "nope"}};
  TokenIdentity id;
  ASSERT_TRUE(identity_from_claims(
      json::parse(
          R"({"sub": "s", "uid": 7, "role": "admin", "email": "a@x", "groups": ["g1", "g2"]})"),
      mapping, {"sub"}, id));
  EXPECT_EQ(id.user_id, "7");
  EXPECT_EQ(id.role, "admin");
  EXPECT_EQ(id.headers, (Pairs{{"X-Email", "a@x"}, {"X-Groups", "g1,g2"}}));
  {  // AbsentMappedUserFallsBackToSubject
    ClaimMapping mapping;
    mapping.to_headers = {{"X-User-ID", "email"}};
    TokenIdentity id;
    ASSERT_TRUE(identity_from_claims(json::parse(R"({"sub": "s-9"})"), mapping, {"sub"}, id));
    EXPECT_EQ(id.user_id, "s-9");
  }
}

TEST(AuthIdentityFromClaims, UnusableValuesRefuseTheToken) {
  ClaimMapping mapping;
  mapping.to_headers = {{"X-Email", "email"}};
  TokenIdentity a;
  EXPECT_FALSE(identity_from_claims(json::parse(R"({"email": {"x": 1}})"), mapping, {"sub"}, a));
  TokenIdentity b;
  EXPECT_FALSE(
      identity_from_claims(json::parse(R"({"email": "a\r\nX-Admin: 1"})"), mapping, {"sub"}, b));
  TokenIdentity c;
  EXPECT_FALSE(
      identity_from_claims(json::parse(R"({"sub": ["a", 1]})"), ClaimMapping{}, {"sub"}, c));
}

TEST(AuthIdentityFromClaims, RolesFromStringOrArray) {
  ClaimMapping mapping;
  mapping.roles_claim = "roles";
  TokenIdentity s;
  ASSERT_TRUE(identity_from_claims(json::parse(R"({"roles": " admin  editor "})"), mapping, {}, s));
  EXPECT_EQ(s.roles, (Strings{"admin", "editor"}));
  TokenIdentity a;
  ASSERT_TRUE(identity_from_claims(json::parse(R"({"roles": ["x", 1, "y"]})"), mapping, {}, a));
  EXPECT_EQ(a.roles, (Strings{"x", "y"}));
  TokenIdentity none;
  ASSERT_TRUE(identity_from_claims(json::parse(R"({"role": "x"})"), mapping, {}, none));
  EXPECT_TRUE(none.roles.empty());
}

TEST(AuthIdentityFromClaims, RequiredScopes) {
  ClaimMapping mapping;
  mapping.required_scopes = {"links:read", "links:write"};
  TokenIdentity ok;
  ASSERT_TRUE(identity_from_claims(json::parse(R"({"scope": "links:write other links:read"})"),
                                   mapping, {"sub"}, ok));
  EXPECT_TRUE(ok.scope_ok);
  TokenIdentity partial;
  ASSERT_TRUE(
      identity_from_claims(json::parse(R"({"scope": "links:read"})"), mapping, {"sub"}, partial));
  EXPECT_FALSE(partial.scope_ok);
  TokenIdentity prefix;
  ASSERT_TRUE(identity_from_claims(json::parse(R"({"scp": ["links:readx", "links:write"]})"),
                                   mapping, {"sub"}, prefix));
  EXPECT_FALSE(prefix.scope_ok);
}

TEST(AuthClaimsApply, CopiesIntoTheRequestIdentity) {
  TokenIdentity from;
  from.user_id = "u";
  from.role = "r";
  from.roles = {"a"};
  from.headers = {{"X-A", "1"}};
  proxy::Identity to;
  to.anonymous = false;
  apply(from, to);
  EXPECT_TRUE(to.verified);
  EXPECT_EQ(to.consumer, nullptr);
  EXPECT_EQ(to.user_id, "u");
  EXPECT_EQ(to.role, "r");
  EXPECT_EQ(to.roles, (Strings{"a"}));
  EXPECT_EQ(to.headers, (Pairs{{"X-A", "1"}}));
}

TEST(AuthClaimsApply, RefuseScopeChallenge) {
  proxy::LocalReply reply;
  refuse_scope(reply, {"links:read", "links:write"});
  EXPECT_EQ(reply.status, 403);
  EXPECT_EQ(reply.detail, "insufficient scope");
  ASSERT_EQ(reply.headers.size(), 1u);
  EXPECT_EQ(reply.headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(reply.headers[0].second,
            "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", "
            "scope=\"links:read links:write\"");
}

}  // namespace
}  // namespace gatehouse::plugins::auth
