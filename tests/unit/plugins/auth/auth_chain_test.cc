// plugins::assemble: a route's auth plugins run as one chain that picks the
// plugin by the credential presented (docs/auth.md, "Which plugin checks a
// request").
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "auth/consumers.h"
#include "auth/crypto.h"
#include "auth/jwks.h"
#include "auth/jwt.h"
#include "http/http1_parser.h"
#include "plugins/auth/authenticator.h"
#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins {
namespace {

namespace ga = gatehouse::auth;

const std::string kChainSecret = "chain-unit-secret-0123456789abcdef";

struct ChainWorld {
  config::Config config;
  std::unique_ptr<ga::ConsumerTable> table;
  ga::JwksRegistry jwks;
  std::vector<std::unique_ptr<proxy::Plugin>> plugins;

  ChainWorld() {
    setenv("GH_UNIT_CHAIN_SECRET", kChainSecret.c_str(), 1);
    setenv("GH_UNIT_CHAIN_CLIENT", "client-secret", 1);
    config::Consumer acme;
    acme.name = "acme";
    acme.api_keys = {"k-acme-123"};
    config::Consumer guest;
    guest.name = "guest";
    config::Consumer visitor;
    visitor.name = "visitor";
    config.consumers = {acme, guest, visitor};
    table = std::make_unique<ga::ConsumerTable>(config.consumers);
  }

  // Builds and appends one plugin.
  proxy::Plugin* add(const char* kind, const std::string& yaml) {
    PluginEnv env{config, table.get(), &jwks, 1};
    std::string problem;
    auto p = find_plugin_kind(kind)->create(YAML::Load(yaml), env,
                                            [&](const YAML::Node&, std::string m) { problem = m; });
    EXPECT_TRUE(p) << kind << ": " << problem;
    plugins.push_back(std::move(p));
    return plugins.back().get();
  }

  // The single plugin left after assemble (the chain).
  const proxy::Plugin& chain() {
    assemble(plugins);
    EXPECT_EQ(plugins.size(), 1u);
    return *plugins.front();
  }
};

struct ChainRequest {
  std::string raw;
  http::RequestHead head;
  proxy::RequestState state;
  proxy::RequestContext ctx;
  proxy::LocalReply reply;
};

std::unique_ptr<ChainRequest> chain_request(const std::string& target,
                                            const std::vector<std::string>& headers = {}) {
  auto r = std::make_unique<ChainRequest>();
  r->raw = "GET " + target + " HTTP/1.1\r\nHost: gw.example\r\n";
  for (const std::string& h : headers) r->raw += h + "\r\n";
  r->raw += "\r\n";
  std::size_t scanned = 0;
  const std::size_t size = http::find_head_end(r->raw.data(), r->raw.size(), scanned);
  http::ParseError err;
  EXPECT_EQ(http::parse_request_head(r->raw.data(), size, r->head, err),
            http::ParseStatus::kComplete)
      << err.detail;
  r->ctx.head = &r->head;
  r->ctx.state = &r->state;
  r->ctx.worker = 0;
  r->ctx.unix_s = std::time(nullptr);
  return r;
}

std::string chain_token(const nlohmann::json& claims) {
  const std::string input =
      ga::base64url_encode(R"({"alg":"HS256"})") + "." + ga::base64url_encode(claims.dump());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kChainSecret.data(), static_cast<int>(kChainSecret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + ga::base64url_encode(std::string(reinterpret_cast<char*>(mac), len));
}

std::vector<std::string> challenges(const proxy::LocalReply& reply) {
  std::vector<std::string> out;
  for (const auto& [name, value] : reply.headers) {
    EXPECT_EQ(name, "WWW-Authenticate");
    out.push_back(value);
  }
  return out;
}

TEST(AuthChainAssemble, ReplacesAuthPluginsByOneChainAtTheFirst) {
  ChainWorld w;
  proxy::Plugin* headers = w.add("headers", "{request: {set: {X-A: '1'}}}");
  proxy::Plugin* key = w.add("key_auth", "{}");
  proxy::Plugin* acl = w.add("acl", "{allow: [x]}");
  w.add("basic_auth", "{}");
  assemble(w.plugins);
  ASSERT_EQ(w.plugins.size(), 3u);
  EXPECT_EQ(w.plugins[0].get(), headers);
  EXPECT_NE(w.plugins[1].get(), key);
  EXPECT_EQ(w.plugins[1]->stage(), proxy::Stage::kAuthn);
  EXPECT_EQ(dynamic_cast<auth::Authenticator*>(w.plugins[1].get()), nullptr);
  EXPECT_EQ(w.plugins[2].get(), acl);
}

TEST(AuthChainAssemble, LeavesRoutesWithoutAuthAlone) {
  ChainWorld w;
  proxy::Plugin* headers = w.add("headers", "{request: {set: {X-A: '1'}}}");
  proxy::Plugin* acl = w.add("acl", "{deny: [x]}");
  assemble(w.plugins);
  ASSERT_EQ(w.plugins.size(), 2u);
  EXPECT_EQ(w.plugins[0].get(), headers);
  EXPECT_EQ(w.plugins[1].get(), acl);
  std::vector<std::unique_ptr<proxy::Plugin>> empty;
  assemble(empty);
  EXPECT_TRUE(empty.empty());
}

TEST(AuthChainPick, NoCredentialIs401WithEveryChallenge) {
  ChainWorld w;
  w.add("key_auth", "{}");
  w.add("basic_auth", "{realm: partners}");
  w.add("jwt", "{secret_env: GH_UNIT_CHAIN_SECRET}");
  const proxy::Plugin& chain = w.chain();
  auto r = chain_request("/p");
  EXPECT_FALSE(chain.on_request(r->ctx, r->reply));
  EXPECT_EQ(r->reply.status, 401);
  EXPECT_EQ(r->reply.detail, "missing credentials");
  EXPECT_EQ(challenges(r->reply),
            (std::vector<std::string>{"APIKey realm=\"gatehouse\"",
                                      "Basic realm=\"partners\", charset=\"UTF-8\"",
                                      "Bearer realm=\"gatehouse\""}));
  EXPECT_EQ(r->state.log_detail, "no credential presented");
  EXPECT_FALSE(r->state.identity.known());
}

TEST(AuthChainPick, UnrecognisedSchemeCountsAsNoCredential) {
  ChainWorld w;
  w.add("basic_auth", "{}");
  const proxy::Plugin& chain = w.chain();
  auto r = chain_request("/p", {"Authorization: Digest username=\"x\""});
  EXPECT_FALSE(chain.on_request(r->ctx, r->reply));
  EXPECT_EQ(r->reply.status, 401);
  EXPECT_EQ(r->reply.detail, "missing credentials");
  EXPECT_EQ(challenges(r->reply),
            (std::vector<std::string>{"Basic realm=\"gatehouse\", charset=\"UTF-8\""}));
}

TEST(AuthChainPick, FirstAnonymousConsumerIsUsed) {
  ChainWorld w;
  w.add("key_auth", "{}");
  w.add("basic_auth", "{anonymous: guest}");
  w.add("jwt", "{secret_env: GH_UNIT_CHAIN_SECRET, anonymous: visitor}");
  const proxy::Plugin& chain = w.chain();
  auto r = chain_request("/p");
  EXPECT_TRUE(chain.on_request(r->ctx, r->reply));
  EXPECT_EQ(r->reply.status, 0);
  EXPECT_TRUE(r->state.identity.anonymous);
  EXPECT_FALSE(r->state.identity.verified);
  EXPECT_EQ(r->state.identity.consumer, w.table->by_name("guest"));
  {  // SingleMemberAnonymous
    ChainWorld w;
    w.add("key_auth", "{anonymous: visitor}");
    const proxy::Plugin& chain = w.chain();
    auto r = chain_request("/p?other=1");
    EXPECT_TRUE(chain.on_request(r->ctx, r->reply));
    EXPECT_TRUE(r->state.identity.anonymous);
    EXPECT_EQ(r->state.identity.consumer, w.table->by_name("visitor"));
  }
}

TEST(AuthChainPick, BadCredentialNeverFallsBackToAnonymous) {
  ChainWorld w;
  w.add("key_auth", "{anonymous: guest}");
  w.add("jwt", "{secret_env: GH_UNIT_CHAIN_SECRET}");
  const proxy::Plugin& chain = w.chain();
  auto bad_key = chain_request("/p", {"X-API-Key: wrong-key-000"});
  EXPECT_FALSE(chain.on_request(bad_key->ctx, bad_key->reply));
  EXPECT_EQ(bad_key->reply.status, 401);
  EXPECT_EQ(bad_key->reply.detail, "invalid credentials");
  EXPECT_EQ(challenges(bad_key->reply), (std::vector<std::string>{"APIKey realm=\"gatehouse\""}));
  EXPECT_FALSE(bad_key->state.identity.anonymous);
  auto bad_token = chain_request("/p", {"Authorization: Bearer aa.bb.cc"});
  EXPECT_FALSE(chain.on_request(bad_token->ctx, bad_token->reply));
  EXPECT_EQ(bad_token->reply.status, 401);
  EXPECT_EQ(bad_token->reply.detail, "invalid token");
  EXPECT_FALSE(bad_token->state.identity.anonymous);
}

TEST(AuthChainPick, CredentialPicksThePlugin) {
  ChainWorld w;
  w.add("key_auth", "{}");
  w.add("jwt", "{secret_env: GH_UNIT_CHAIN_SECRET}");
  const proxy::Plugin& chain = w.chain();
  auto key = chain_request("/p?api_key=k-acme-123");
  EXPECT_TRUE(chain.on_request(key->ctx, key->reply));
  EXPECT_EQ(key->state.identity.consumer, w.table->by_name("acme"));
  EXPECT_EQ(key->state.identity.user_id, "");
  auto token = chain_request("/p", {"Authorization: BEARER " + chain_token({{"sub", "tok-user"}})});
  EXPECT_TRUE(chain.on_request(token->ctx, token->reply)) << token->state.log_detail;
  EXPECT_EQ(token->state.identity.user_id, "tok-user");
  EXPECT_EQ(token->state.identity.consumer, nullptr);
  // An opaque Bearer token still goes to jwt when it is the only bearer plugin.
  auto opaque = chain_request("/p", {"Authorization: Bearer opaque"});
  EXPECT_FALSE(chain.on_request(opaque->ctx, opaque->reply));
  EXPECT_EQ(opaque->reply.detail, "invalid token");
  EXPECT_EQ(opaque->state.log_detail, "jwt: malformed");
}

TEST(AuthChainPick, BearerShapeChoosesBetweenJwtAndIntrospection) {
  ChainWorld w;
  w.add("oauth2_introspection",
        "{url: 'http://127.0.0.1:9/introspect', client_id: gw, "
        "client_secret_env: GH_UNIT_CHAIN_CLIENT}");
  w.add("jwt", "{secret_env: GH_UNIT_CHAIN_SECRET}");
  const proxy::Plugin& chain = w.chain();
  EXPECT_TRUE(chain.async_request());
  // A JWS goes to jwt although introspection is listed first.
  auto jws = chain_request("/p", {"Authorization: Bearer " + chain_token({{"sub", "s"}})});
  EXPECT_TRUE(chain.on_request(jws->ctx, jws->reply)) << jws->state.log_detail;
  EXPECT_EQ(jws->state.identity.user_id, "s");
  // An opaque token goes to introspection, whose synchronous phase is never
  // meant to run (it answers 500): that tells which plugin was picked.
  auto opaque = chain_request("/p", {"Authorization: Bearer opaque-123"});
  EXPECT_FALSE(chain.on_request(opaque->ctx, opaque->reply));
  EXPECT_EQ(opaque->reply.status, 500);
  {  // SyncChainIsNotAsync
    ChainWorld w;
    w.add("key_auth", "{}");
    w.add("basic_auth", "{}");
    EXPECT_FALSE(w.chain().async_request());
  }
}

TEST(AuthChainPick, DuplicateChallengesAreSentOnce) {
  ChainWorld w;
  w.add("key_auth", "{header: X-Key-A, query: ''}");
  w.add("key_auth", "{header: X-Key-B, query: ''}");
  const proxy::Plugin& chain = w.chain();
  auto r = chain_request("/p");
  EXPECT_FALSE(chain.on_request(r->ctx, r->reply));
  EXPECT_EQ(challenges(r->reply), (std::vector<std::string>{"APIKey realm=\"gatehouse\""}));
  auto b = chain_request("/p", {"X-Key-B: k-acme-123"});
  EXPECT_TRUE(chain.on_request(b->ctx, b->reply));
  EXPECT_EQ(b->state.identity.consumer, w.table->by_name("acme"));
}

TEST(AuthChainPick, UpstreamEditsComeFromEveryMember) {
  ChainWorld w;
  w.add("key_auth", "{header: X-Key}");
  w.add("jwt", "{secret_env: GH_UNIT_CHAIN_SECRET, claims_to_headers: {X-Tenant: tenant}}");
  const proxy::Plugin& chain = w.chain();
  auto r = chain_request("/p");
  proxy::HeaderEdits edits;
  chain.on_upstream_request(r->ctx, edits);
  EXPECT_TRUE(edits.drops("x-key"));
  EXPECT_TRUE(edits.drops("x-tenant"));
  EXPECT_FALSE(edits.drops("authorization"));
}

}  // namespace
}  // namespace gatehouse::plugins
