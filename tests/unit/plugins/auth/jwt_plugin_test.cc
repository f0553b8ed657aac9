#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "auth/consumers.h"
#include "auth/jwks.h"
#include "auth/jwt.h"
#include "http/http1_parser.h"
#include "plugins/auth/authenticator.h"
#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins {
namespace {

namespace ga = gatehouse::auth;
using nlohmann::json;

const std::string kSecret = "jwt-unit-secret-0123456789abcdef!!";  // 34 bytes
const std::string kSecret64(64, 'z');

// HS256/384/512 token over `header` and `claims`, signed here with OpenSSL.
std::string mint_hmac(const std::string& secret, const json& header, const json& claims,
                      const EVP_MD* md = EVP_sha256()) {
  const std::string input =
      ga::base64url_encode(header.dump()) + "." + ga::base64url_encode(claims.dump());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + ga::base64url_encode(std::string(reinterpret_cast<char*>(mac), len));
}

std::string hs256(const json& claims) {
  return mint_hmac(kSecret, {{"alg", "HS256"}, {"typ", "JWT"}}, claims);
}

struct EdKey {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  ~EdKey() { EVP_PKEY_free(pkey); }
  std::string public_pem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, pkey);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return pem;
  }
  std::string sign(const json& header, const json& claims) const {
    const std::string input =
        ga::base64url_encode(header.dump()) + "." + ga::base64url_encode(claims.dump());
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    unsigned char sig[64];
    std::size_t len = sizeof sig;
    EXPECT_EQ(EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, pkey), 1);
    EXPECT_EQ(EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(input.data()),
                             input.size()),
              1);
    EVP_MD_CTX_free(ctx);
    return input + "." + ga::base64url_encode(std::string(reinterpret_cast<char*>(sig), len));
  }
};

struct JwtWorld {
  config::Config config;
  std::unique_ptr<ga::ConsumerTable> table;
  ga::JwksRegistry jwks;
  std::vector<std::string> errors;
  int64_t now = std::time(nullptr);

  JwtWorld() {
    setenv("GH_UNIT_JWT_SECRET", kSecret.c_str(), 1);
    setenv("GH_UNIT_JWT_SECRET64", kSecret64.c_str(), 1);
    config::Consumer acme;
    acme.name = "acme";
    acme.groups = {"partners"};
    config::Consumer guest;
    guest.name = "guest";
    config.consumers = {acme, guest};
    table = std::make_unique<ga::ConsumerTable>(config.consumers);
  }

  std::unique_ptr<proxy::Plugin> build(const std::string& yaml) {
    PluginEnv env{config, table.get(), &jwks, 1};
    return find_plugin_kind("jwt")->create(
        YAML::Load(yaml), env, [&](const YAML::Node& at, std::string message) {
          errors.push_back(std::to_string(at.Mark().line + 1) + ":" +
                           std::to_string(at.Mark().column + 1) + ": " + message);
        });
  }
};

struct JwtRequest {
  std::string raw;
  http::RequestHead head;
  proxy::RequestState state;
  proxy::RequestContext ctx;
  proxy::LocalReply reply;
};

std::unique_ptr<JwtRequest> jwt_request(const std::vector<std::string>& headers, int64_t now) {
  auto r = std::make_unique<JwtRequest>();
  r->raw = "GET /p HTTP/1.1\r\nHost: gw.example\r\n";
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
  r->ctx.unix_s = now;
  return r;
}

std::unique_ptr<JwtRequest> bearer(const std::string& token, int64_t now) {
  return jwt_request({"Authorization: Bearer " + token}, now);
}

bool run(const proxy::Plugin& p, JwtRequest& r) { return p.on_request(r.ctx, r.reply); }

void expect_invalid(const JwtRequest& r, const std::string& log) {
  EXPECT_EQ(r.reply.status, 401);
  EXPECT_EQ(r.reply.detail, "invalid token");
  ASSERT_EQ(r.reply.headers.size(), 1u);
  EXPECT_EQ(r.reply.headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(r.reply.headers[0].second, "Bearer realm=\"gatehouse\", error=\"invalid_token\"");
  EXPECT_EQ(r.state.log_detail, log);
  EXPECT_FALSE(r.state.identity.known());
}

TEST(JwtPluginHmac, ValidTokenGivesTheSubject) {
  JwtWorld w;
  auto p = w.build("{secret_env: GH_UNIT_JWT_SECRET}");
  ASSERT_TRUE(p) << (w.errors.empty() ? "" : w.errors[0]);
  EXPECT_EQ(p->stage(), proxy::Stage::kAuthn);
  auto r = bearer(hs256({{"sub", "user-1"}, {"exp", w.now + 600}}), w.now);
  EXPECT_TRUE(run(*p, *r)) << r->state.log_detail;
  const proxy::Identity& id = r->state.identity;
  EXPECT_TRUE(id.verified);
  EXPECT_FALSE(id.anonymous);
  EXPECT_EQ(id.consumer, nullptr);
  EXPECT_EQ(id.user_id, "user-1");
  EXPECT_EQ(r->reply.status, 0);
}

TEST(JwtPluginHmac, ClaimsToHeadersRolesAndStripping) {
  JwtWorld w;
  auto p = w.build(
      "{secret_env: GH_UNIT_JWT_SECRET, roles_claim: roles,"
      " claims_to_headers: {X-User-Role: role, X-Tenant: tenant, X-Admin: admin}}");
  ASSERT_TRUE(p);
  auto r = bearer(hs256({{"sub", "u"},
                         {"role", "editor"},
                         {"tenant", "t-1"},
                         {"admin", false},
                         {"roles", {"partners", "beta"}}}),
                  w.now);
  EXPECT_TRUE(run(*p, *r)) << r->state.log_detail;
  const proxy::Identity& id = r->state.identity;
  EXPECT_EQ(id.user_id, "u");
  EXPECT_EQ(id.role, "editor");
  EXPECT_EQ(id.roles, (std::vector<std::string>{"partners", "beta"}));
  EXPECT_EQ(id.headers, (std::vector<std::pair<std::string, std::string>>{{"X-Tenant", "t-1"},
                                                                          {"X-Admin", "false"}}));
  proxy::HeaderEdits edits;
  p->on_upstream_request(r->ctx, edits);
  EXPECT_TRUE(edits.drops("x-user-role"));
  EXPECT_TRUE(edits.drops("x-tenant"));
  EXPECT_TRUE(edits.drops("x-admin"));
  EXPECT_FALSE(edits.drops("authorization"));  // passed on unless hide_credentials
  {                                            // HideCredentialsDropsAuthorization
    JwtWorld w;
    auto p = w.build("{secret_env: GH_UNIT_JWT_SECRET, hide_credentials: true}");
    ASSERT_TRUE(p);
    proxy::HeaderEdits edits;
    p->on_upstream_request(proxy::RequestContext{}, edits);
    EXPECT_TRUE(edits.drops("Authorization"));
  }
}

TEST(JwtPluginHmac, UnusableMappedClaimIsRefused) {
  JwtWorld w;
  auto p = w.build("{secret_env: GH_UNIT_JWT_SECRET, claims_to_headers: {X-Tenant: tenant}}");
  auto r = bearer(hs256({{"sub", "u"}, {"tenant", "t\r\nX-Admin: 1"}}), w.now);
  EXPECT_FALSE(run(*p, *r));
  expect_invalid(*r, "jwt: unusable claim value");
}

TEST(JwtPluginHmac, ConsumerClaimNamesAConsumer) {
  JwtWorld w;
  auto p = w.build("{secret_env: GH_UNIT_JWT_SECRET, consumer_claim: client}");
  ASSERT_TRUE(p);
  auto r = bearer(hs256({{"sub", "u-1"}, {"client", "acme"}}), w.now);
  EXPECT_TRUE(run(*p, *r)) << r->state.log_detail;
  EXPECT_EQ(r->state.identity.consumer, w.table->by_name("acme"));
  EXPECT_EQ(r->state.identity.user_id, "u-1");
  auto unknown = bearer(hs256({{"sub", "u-1"}, {"client", "nobody"}}), w.now);
  EXPECT_FALSE(run(*p, *unknown));
  expect_invalid(*unknown, "jwt: no such consumer");
  auto missing = bearer(hs256({{"sub", "u-1"}}), w.now);
  EXPECT_FALSE(run(*p, *missing));
  expect_invalid(*missing, "jwt: no such consumer");
}

TEST(JwtPluginHmac, ExpiredAndSkew) {
  JwtWorld w;
  auto strict = w.build("{secret_env: GH_UNIT_JWT_SECRET, clock_skew: 0s}");
  auto lenient = w.build("{secret_env: GH_UNIT_JWT_SECRET}");  // 30 s
  ASSERT_TRUE(strict && lenient);
  const std::string token = hs256({{"sub", "u"}, {"exp", w.now - 10}});
  auto a = bearer(token, w.now);
  EXPECT_FALSE(run(*strict, *a));
  expect_invalid(*a, "jwt: expired");
  auto b = bearer(token, w.now);
  EXPECT_TRUE(run(*lenient, *b));
  auto c = bearer(hs256({{"sub", "u"}, {"nbf", w.now + 60}}), w.now);
  EXPECT_FALSE(run(*lenient, *c));
  expect_invalid(*c, "jwt: not_yet_valid");
}

TEST(JwtPluginHmac, CachedTokenStillExpiresOnTime) {
  JwtWorld w;
  auto p = w.build("{secret_env: GH_UNIT_JWT_SECRET, clock_skew: 0s}");
  const std::string token = hs256({{"sub", "u"}, {"exp", w.now + 10}});
  auto first = bearer(token, w.now);
  EXPECT_TRUE(run(*p, *first));
  auto cached = bearer(token, w.now + 9);
  EXPECT_TRUE(run(*p, *cached));
  EXPECT_EQ(cached->state.identity.user_id, "u");
  auto late = bearer(token, w.now + 10);
  EXPECT_FALSE(run(*p, *late));
  expect_invalid(*late, "jwt: expired");
}

TEST(JwtPluginHmac, FarFutureExpiryIsCachedLikeAnyOther) {
  // A verified token is trusted from the per-worker cache for up to 300 s.
  // nbf is 20 s ahead (inside the 30 s skew); a replay 20 s earlier is only
  // accepted from the cache, which tells whether the token was cached.
  // Known bug (kept failing on purpose): src/plugins/auth/jwt_plugin.cc
  // computes the horizon as static_cast<int64_t>(exp->get<double>()) + skew;
  // for exp >= 2^63 the cast is undefined (INT64_MIN on x86), the horizon
  // goes negative, and such tokens are never cached.
  JwtWorld w;
  auto p = w.build("{secret_env: GH_UNIT_JWT_SECRET}");
  for (json exp : {json(w.now + 3600), json(INT64_MAX), json(1e19)}) {
    const std::string token = hs256({{"sub", "u"}, {"nbf", w.now + 20}, {"exp", exp}});
    auto first = bearer(token, w.now);
    ASSERT_TRUE(run(*p, *first)) << exp << " " << first->state.log_detail;
    auto replay = bearer(token, w.now - 20);
    EXPECT_TRUE(run(*p, *replay)) << "exp " << exp.dump()
                                  << " was not cached: " << replay->state.log_detail;
  }
}

TEST(JwtPluginHmac, BadSignatureAndAlgorithms) {
  JwtWorld w;
  auto p = w.build("{secret_env: GH_UNIT_JWT_SECRET64}");  // HS256 only by default
  ASSERT_TRUE(p);
  const json claims = {{"sub", "u"}};
  auto wrong_key = bearer(mint_hmac(kSecret, {{"alg", "HS256"}}, claims), w.now);
  EXPECT_FALSE(run(*p, *wrong_key));
  expect_invalid(*wrong_key, "jwt: bad_signature");
  auto hs512 = bearer(mint_hmac(kSecret64, {{"alg", "HS512"}}, claims, EVP_sha512()), w.now);
  EXPECT_FALSE(run(*p, *hs512));
  expect_invalid(*hs512, "jwt: bad_algorithm");
  const std::string none =
      ga::base64url_encode(R"({"alg":"none"})") + "." + ga::base64url_encode(claims.dump()) + ".";
  auto r_none = bearer(none, w.now);
  EXPECT_FALSE(run(*p, *r_none));
  EXPECT_EQ(r_none->reply.status, 401);
  auto good = bearer(mint_hmac(kSecret64, {{"alg", "HS256"}}, claims), w.now);
  EXPECT_TRUE(run(*p, *good)) << good->state.log_detail;
  {  // PinnedHs512
    JwtWorld w;
    auto p = w.build("{secret_env: GH_UNIT_JWT_SECRET64, algorithms: [HS512]}");
    ASSERT_TRUE(p);
    const json claims = {{"sub", "u"}};
    auto ok = bearer(mint_hmac(kSecret64, {{"alg", "HS512"}}, claims, EVP_sha512()), w.now);
    EXPECT_TRUE(run(*p, *ok)) << ok->state.log_detail;
    auto hs256_token = bearer(mint_hmac(kSecret64, {{"alg", "HS256"}}, claims), w.now);
    EXPECT_FALSE(run(*p, *hs256_token));
    expect_invalid(*hs256_token, "jwt: bad_algorithm");
  }
}

TEST(JwtPluginHmac, IssuerAndAudience) {
  JwtWorld w;
  auto p = w.build(
      "{secret_env: GH_UNIT_JWT_SECRET, issuer: https://auth.example.com, audience: links-api}");
  ASSERT_TRUE(p);
  auto ok =
      bearer(hs256({{"iss", "https://auth.example.com"}, {"aud", {"other", "links-api"}}}), w.now);
  EXPECT_TRUE(run(*p, *ok)) << ok->state.log_detail;
  auto iss = bearer(hs256({{"iss", "https://evil.example.com"}, {"aud", "links-api"}}), w.now);
  EXPECT_FALSE(run(*p, *iss));
  expect_invalid(*iss, "jwt: bad_issuer");
  auto aud = bearer(hs256({{"iss", "https://auth.example.com"}, {"aud", "links"}}), w.now);
  EXPECT_FALSE(run(*p, *aud));
  expect_invalid(*aud, "jwt: bad_audience");
}

TEST(JwtPluginHmac, RequiredScopesGive403) {
  JwtWorld w;
  auto p = w.build("{secret_env: GH_UNIT_JWT_SECRET, required_scopes: [links:read, links:write]}");
  ASSERT_TRUE(p);
  auto ok = bearer(hs256({{"scope", "links:write links:read"}}), w.now);
  EXPECT_TRUE(run(*p, *ok));
  for (int i = 0; i < 2; ++i) {  // the second answer comes from the cache
    auto missing = bearer(hs256({{"scope", "links:read"}}), w.now);
    EXPECT_FALSE(run(*p, *missing));
    EXPECT_EQ(missing->reply.status, 403);
    EXPECT_EQ(missing->reply.detail, "insufficient scope");
    ASSERT_EQ(missing->reply.headers.size(), 1u);
    EXPECT_EQ(missing->reply.headers[0].second,
              "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", "
              "scope=\"links:read links:write\"");
    EXPECT_FALSE(missing->state.identity.verified);
  }
}

TEST(JwtPluginHmac, MalformedAndOversizedTokens) {
  JwtWorld w;
  auto p = w.build("{secret_env: GH_UNIT_JWT_SECRET}");
  auto opaque = bearer("opaque-token", w.now);
  EXPECT_FALSE(run(*p, *opaque));
  expect_invalid(*opaque, "jwt: malformed");
  auto empty = jwt_request({"Authorization: Bearer"}, w.now);
  EXPECT_FALSE(run(*p, *empty));
  expect_invalid(*empty, "jwt: malformed");
  const std::string ok = hs256({{"sub", "u"}});
  auto twice = jwt_request({"Authorization: Bearer " + ok, "Authorization: Bearer " + ok}, w.now);
  EXPECT_FALSE(run(*p, *twice));
  expect_invalid(*twice, "jwt: malformed");
  auto big = bearer(hs256({{"sub", "u"}, {"pad", std::string(7000, 'x')}}), w.now);
  EXPECT_FALSE(run(*p, *big));
  expect_invalid(*big, "jwt: too_large");
}

TEST(JwtPluginHmac, PresentedStrongForJwsWeakForOtherBearer) {
  JwtWorld w;
  auto p = w.build("{secret_env: GH_UNIT_JWT_SECRET}");
  const auto& a = dynamic_cast<const auth::Authenticator&>(*p);
  EXPECT_EQ(a.presented(bearer("aa.bb.cc", w.now)->ctx), auth::Presence::kStrong);
  EXPECT_EQ(a.presented(jwt_request({"Authorization: bearer aa.bb.cc"}, w.now)->ctx),
            auth::Presence::kStrong);
  EXPECT_EQ(a.presented(bearer("opaque", w.now)->ctx), auth::Presence::kWeak);
  EXPECT_EQ(a.presented(bearer("a.b.c.d", w.now)->ctx), auth::Presence::kWeak);
  EXPECT_EQ(a.presented(jwt_request({"Authorization: Basic YTpi"}, w.now)->ctx),
            auth::Presence::kNone);
  EXPECT_EQ(a.challenge(), "Bearer realm=\"gatehouse\"");
}

TEST(JwtPluginJwks, NoKeysFetchedYetIs503) {
  JwtWorld w;
  auto p = w.build("{jwks_url: 'http://127.0.0.1:9/jwks.json', algorithms: [RS256]}");
  ASSERT_TRUE(p);
  json header = {{"alg", "RS256"}, {"kid", "k1"}};
  const std::string token = ga::base64url_encode(header.dump()) + "." +
                            ga::base64url_encode(R"({"sub":"u"})") + "." +
                            ga::base64url_encode("sig");
  auto r = bearer(token, w.now);
  EXPECT_FALSE(run(*p, *r));
  EXPECT_EQ(r->reply.status, 503);
  EXPECT_EQ(r->reply.detail, "authentication keys unavailable");
  EXPECT_TRUE(r->reply.headers.empty());
  EXPECT_EQ(r->state.log_detail, "jwt: no JWKS fetched yet from http://127.0.0.1:9/jwks.json");
  auto garbage = bearer("not.a.token", w.now);
  EXPECT_FALSE(run(*p, *garbage));
  EXPECT_EQ(garbage->reply.status, 401);
}

class JwtPluginPem : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gatehouse-jwt-plugin-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "k1.pem") << key_.public_pem();
    std::ofstream(dir_ / "bad.pem")
        << "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  EdKey key_;
  EdKey other_;
};

TEST_F(JwtPluginPem, StaticEd25519KeyVerifies) {
  JwtWorld w;
  auto p = w.build("{keys: [{kid: k1, pem_file: '" + (dir_ / "k1.pem").string() +
                   "'}], algorithms: [EdDSA]}");
  ASSERT_TRUE(p) << (w.errors.empty() ? "" : w.errors[0]);
  const json claims = {{"sub", "ed-user"}};
  auto ok = bearer(key_.sign({{"alg", "EdDSA"}, {"kid", "k1"}}, claims), w.now);
  EXPECT_TRUE(run(*p, *ok)) << ok->state.log_detail;
  EXPECT_EQ(ok->state.identity.user_id, "ed-user");
  auto no_kid = bearer(key_.sign({{"alg", "EdDSA"}}, claims), w.now);
  EXPECT_TRUE(run(*p, *no_kid)) << no_kid->state.log_detail;
  auto unknown = bearer(key_.sign({{"alg", "EdDSA"}, {"kid", "k2"}}, claims), w.now);
  EXPECT_FALSE(run(*p, *unknown));
  expect_invalid(*unknown, "jwt: unknown_key");
  auto forged = bearer(other_.sign({{"alg", "EdDSA"}, {"kid", "k1"}}, claims), w.now);
  EXPECT_FALSE(run(*p, *forged));
  expect_invalid(*forged, "jwt: bad_signature");
  // Key confusion: an HMAC token keyed with the public key's PEM text.
  auto confused =
      bearer(mint_hmac(key_.public_pem(), {{"alg", "HS256"}, {"kid", "k1"}}, claims), w.now);
  EXPECT_FALSE(run(*p, *confused));
  expect_invalid(*confused, "jwt: bad_algorithm");
  {  // RelativePemFileIsReadNextToTheConfig
    JwtWorld w;
    w.config.file = (dir_ / "gw.yaml").string();
    auto p = w.build("{keys: [{kid: k1, pem_file: k1.pem}], algorithms: [EdDSA]}");
    ASSERT_TRUE(p) << (w.errors.empty() ? "" : w.errors[0]);
    auto ok = bearer(key_.sign({{"alg", "EdDSA"}, {"kid", "k1"}}, {{"sub", "x"}}), w.now);
    EXPECT_TRUE(run(*p, *ok)) << ok->state.log_detail;
  }
}

TEST_F(JwtPluginPem, UnreadableOrUnusableKeyFiles) {
  JwtWorld w;
  w.config.file = (dir_ / "gw.yaml").string();
  EXPECT_FALSE(w.build("{keys: [{kid: k1, pem_file: missing.pem}], algorithms: [EdDSA]}"));
  ASSERT_EQ(w.errors.size(), 1u);
  EXPECT_EQ(w.errors[0], "1:29: cannot read 'missing.pem'");
  w.errors.clear();
  EXPECT_FALSE(w.build("{keys: [{kid: k1, pem_file: bad.pem}], algorithms: [EdDSA]}"));
  ASSERT_EQ(w.errors.size(), 1u);
  EXPECT_EQ(w.errors[0].rfind("1:29: unusable key in 'bad.pem': ", 0), 0u) << w.errors[0];
  w.errors.clear();
  EXPECT_FALSE(w.build("{keys: [], algorithms: [EdDSA]}"));
  ASSERT_EQ(w.errors.size(), 1u);
  EXPECT_EQ(w.errors[0], "1:8: 'keys' must be a list of {kid, pem_file}");
}

TEST(JwtPluginConfig, KeySourceRules) {
  JwtWorld w;
  setenv("GH_UNIT_JWT_SHORT", "short", 1);
  EXPECT_FALSE(w.build("{issuer: x}"));
  EXPECT_FALSE(w.build("{secret_env: GH_UNIT_JWT_SHORT}"));
  EXPECT_FALSE(w.build("{secret_env: GH_UNIT_JWT_SECRET, jwks_url: 'http://127.0.0.1:9/'}"));
  EXPECT_FALSE(w.build("{jwks_url: 'http://127.0.0.1:9/', algorithms: [HS256]}"));
  EXPECT_FALSE(w.build("{secret_env: GH_UNIT_JWT_SECRET, algorithms: [HS384]}"));
  EXPECT_FALSE(w.build("{discovery: true}"));
  EXPECT_FALSE(w.build("{secret_env: GH_UNIT_JWT_SECRET, algorithms: [none]}"));
  EXPECT_FALSE(w.build("{secret_env: GH_UNIT_JWT_SECRET, required_scopes: ['a b']}"));
  EXPECT_FALSE(w.build("{secret_env: GH_UNIT_JWT_SECRET, anonymous: ghost}"));
  unsetenv("GH_UNIT_JWT_SHORT");
  EXPECT_EQ(w.errors,
            (std::vector<std::string>{
                "1:1: 'jwt' needs a key source: jwks_url, discovery: true, keys or secret_env",
                "1:14: the HMAC secret in 'GH_UNIT_JWT_SHORT' must be at least 32 bytes",
                "1:34: 'jwt' takes exactly one key source (jwks_url, discovery, keys, secret_env)",
                "1:48: algorithm 'HS256' needs 'secret_env' (an HMAC key)",
                "1:47: algorithm 'HS384' needs a secret of at least 48 bytes",
                "1:2: 'discovery: true' needs the 'issuer' whose discovery document to read",
                "1:47: unsupported algorithm 'none' (RS256/384/512, PS256/384/512, ES256/384, "
                "EdDSA, HS256/384/512)",
                "1:52: a scope must be printable ASCII without spaces or quotes",
                "1:45: 'anonymous' names unknown consumer 'ghost'",
            }));
  {  // AnonymousResolves
    JwtWorld w;
    auto p = w.build("{secret_env: GH_UNIT_JWT_SECRET, anonymous: guest}");
    ASSERT_TRUE(p);
    EXPECT_EQ(dynamic_cast<const auth::Authenticator&>(*p).anonymous(), w.table->by_name("guest"));
  }
}

}  // namespace
}  // namespace gatehouse::plugins
