#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "auth/consumers.h"
#include "auth/jwks.h"
#include "http/http1_parser.h"
#include "plugins/auth/authenticator.h"
#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins {
namespace {

namespace ga = gatehouse::auth;

// Consumers, the tables built from them, and the plugins built against them.
struct KeyWorld {
  config::Config config;
  std::unique_ptr<ga::ConsumerTable> table;
  ga::JwksRegistry jwks;
  std::vector<std::string> errors;

  KeyWorld() {
    config::Consumer acme;
    acme.name = "acme";
    acme.plan = "pro";
    acme.groups = {"partners"};
    const ga::Sha256 d = ga::sha256("hashed-key-0001");
    acme.api_keys = {"k-acme-123", "sha256:" + ga::to_hex(d.data(), d.size())};
    config::Consumer beta;
    beta.name = "beta";
    beta.api_keys = {"k-beta-456"};
    config::Consumer guest;
    guest.name = "guest";
    config.consumers = {acme, beta, guest};
    table = std::make_unique<ga::ConsumerTable>(config.consumers);
  }

  std::unique_ptr<proxy::Plugin> build(const std::string& yaml) {
    PluginEnv env{config, table.get(), &jwks, 1};
    return find_plugin_kind("key_auth")
        ->create(YAML::Load(yaml), env, [&](const YAML::Node& at, std::string message) {
          errors.push_back(std::to_string(at.Mark().line + 1) + ":" +
                           std::to_string(at.Mark().column + 1) + ": " + message);
        });
  }
};

struct KeyRequest {
  std::string raw;
  http::RequestHead head;
  proxy::RequestState state;
  proxy::RequestContext ctx;
  proxy::LocalReply reply;
};

std::unique_ptr<KeyRequest> key_request(const std::string& target,
                                        const std::vector<std::string>& headers = {}) {
  auto r = std::make_unique<KeyRequest>();
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

bool run(const proxy::Plugin& p, KeyRequest& r) { return p.on_request(r.ctx, r.reply); }

const auth::Authenticator& as_auth(const proxy::Plugin& p) {
  return dynamic_cast<const auth::Authenticator&>(p);
}

TEST(KeyAuthPlugin, KnownKeysIdentifyTheConsumer) {
  KeyWorld w;
  auto p = w.build("{}");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->stage(), proxy::Stage::kAuthn);
  auto r = key_request("/p", {"X-API-Key: k-acme-123"});
  EXPECT_TRUE(run(*p, *r));
  EXPECT_EQ(r->state.identity.consumer, w.table->by_name("acme"));
  EXPECT_TRUE(r->state.identity.verified);
  EXPECT_FALSE(r->state.identity.anonymous);
  EXPECT_EQ(r->reply.status, 0);
  {  // NullConfigUsesDefaults
    KeyWorld w;
    auto p = w.build("~");
    ASSERT_TRUE(p);
    auto r = key_request("/p?api_key=k-beta-456");
    EXPECT_TRUE(run(*p, *r));
    EXPECT_EQ(r->state.identity.consumer, w.table->by_name("beta"));
  }
  {  // HeaderNameIsCaseInsensitive
    KeyWorld w;
    auto p = w.build("{}");
    auto r = key_request("/p", {"x-api-key: k-beta-456"});
    EXPECT_TRUE(run(*p, *r));
    EXPECT_EQ(r->state.identity.consumer, w.table->by_name("beta"));
  }
  {  // Sha256ConfiguredKeyMatches
    KeyWorld w;
    auto p = w.build("{}");
    auto r = key_request("/p", {"X-API-Key: hashed-key-0001"});
    EXPECT_TRUE(run(*p, *r));
    EXPECT_EQ(r->state.identity.consumer, w.table->by_name("acme"));
  }
}

TEST(KeyAuthPlugin, UnknownKeyIs401WithApiKeyChallenge) {
  KeyWorld w;
  auto p = w.build("{}");
  auto r = key_request("/p", {"X-API-Key: k-acme-124"});
  EXPECT_FALSE(run(*p, *r));
  EXPECT_EQ(r->reply.status, 401);
  EXPECT_EQ(r->reply.detail, "invalid credentials");
  ASSERT_EQ(r->reply.headers.size(), 1u);
  EXPECT_EQ(r->reply.headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(r->reply.headers[0].second, "APIKey realm=\"gatehouse\"");
  EXPECT_EQ(r->state.log_detail, "key_auth: unknown api key");
  EXPECT_FALSE(r->state.identity.known());
  EXPECT_EQ(as_auth(*p).challenge(), "APIKey realm=\"gatehouse\"");
}

TEST(KeyAuthPlugin, TwoOrEmptyKeyHeadersAreRefused) {
  KeyWorld w;
  auto p = w.build("{}");
  auto r = key_request("/p", {"X-API-Key: k-acme-123", "X-API-Key: k-acme-123"});
  EXPECT_FALSE(run(*p, *r));
  EXPECT_EQ(r->reply.status, 401);
  EXPECT_EQ(r->state.identity.consumer, nullptr);
  {  // EmptyHeaderValueIsRefused
    KeyWorld w;
    auto p = w.build("{}");
    auto r = key_request("/p", {"X-API-Key: "});
    EXPECT_FALSE(run(*p, *r));
    EXPECT_EQ(r->reply.status, 401);
  }
}

TEST(KeyAuthPlugin, QueryKeyIdentifiesAndIsMarkedHidden) {
  KeyWorld w;
  auto p = w.build("{}");
  auto r = key_request("/p?a=1&api_key=k-acme-123&b=2");
  EXPECT_TRUE(run(*p, *r));
  EXPECT_EQ(r->state.identity.consumer, w.table->by_name("acme"));
  EXPECT_EQ(r->state.hidden_query_param, "api_key");
}

TEST(KeyAuthPlugin, QueryKeyIsPercentDecoded) {
  KeyWorld w;
  auto p = w.build("{}");
  auto r = key_request("/p?api_key=k%2Dacme%2d123");
  EXPECT_TRUE(run(*p, *r));
  EXPECT_EQ(r->state.identity.consumer, w.table->by_name("acme"));
  // (Malformed escapes such as "%zz" never get here: the request parser
  // refuses them.)
  for (const char* bad : {"/p?api_key=k%2Dacme%2D124", "/p?api_key=k+acme-123",
                          "/p?api_key=", "/p?api_key", "/p?API_KEY=k-acme-123"}) {
    auto b = key_request(bad);
    EXPECT_FALSE(run(*p, *b)) << bad;
    EXPECT_EQ(b->reply.status, 401) << bad;
  }
}

TEST(KeyAuthPlugin, HeaderWinsOverQuery) {
  KeyWorld w;
  auto p = w.build("{}");
  auto r = key_request("/p?api_key=k-beta-456", {"X-API-Key: k-acme-123"});
  EXPECT_TRUE(run(*p, *r));
  EXPECT_EQ(r->state.identity.consumer, w.table->by_name("acme"));
}

TEST(KeyAuthPlugin, CustomHeaderAndQueryNames) {
  KeyWorld w;
  auto p = w.build("{header: X-Key, query: key}");
  ASSERT_TRUE(p);
  auto by_header = key_request("/p", {"X-Key: k-beta-456"});
  EXPECT_TRUE(run(*p, *by_header));
  auto by_query = key_request("/p?key=k-beta-456");
  EXPECT_TRUE(run(*p, *by_query));
  EXPECT_EQ(by_query->state.hidden_query_param, "key");
  auto old_header = key_request("/p", {"X-API-Key: k-beta-456"});
  EXPECT_EQ(as_auth(*p).presented(old_header->ctx), auth::Presence::kNone);
  auto old_query = key_request("/p?api_key=k-beta-456");
  EXPECT_EQ(as_auth(*p).presented(old_query->ctx), auth::Presence::kNone);
}

TEST(KeyAuthPlugin, EmptyHeaderNameMeansQueryOnly) {
  KeyWorld w;
  auto p = w.build("{header: ''}");
  ASSERT_TRUE(p);
  auto r = key_request("/p", {"X-API-Key: k-acme-123"});
  EXPECT_EQ(as_auth(*p).presented(r->ctx), auth::Presence::kNone);
  proxy::HeaderEdits edits;
  p->on_upstream_request(r->ctx, edits);
  EXPECT_TRUE(edits.remove.empty());
}

TEST(KeyAuthPlugin, PresentedByHeaderOrQuery) {
  KeyWorld w;
  auto p = w.build("{}");
  const auto& a = as_auth(*p);
  EXPECT_EQ(a.presented(key_request("/p", {"X-API-Key: anything"})->ctx), auth::Presence::kStrong);
  EXPECT_EQ(a.presented(key_request("/p?x=1&api_key=zz")->ctx), auth::Presence::kStrong);
  EXPECT_EQ(a.presented(key_request("/p?x=1")->ctx), auth::Presence::kNone);
  EXPECT_EQ(a.presented(key_request("/p", {"Authorization: Basic YTpi"})->ctx),
            auth::Presence::kNone);
}

TEST(KeyAuthPlugin, HideCredentialsDefaultsOnAndCanBeTurnedOff) {
  KeyWorld w;
  auto p = w.build("{header: X-Key}");
  auto r = key_request("/p", {"X-Key: k-acme-123"});
  proxy::HeaderEdits edits;
  p->on_upstream_request(r->ctx, edits);
  EXPECT_TRUE(edits.drops("x-key"));
  EXPECT_TRUE(edits.set.empty());
  {  // HideCredentialsFalseKeepsThem
    KeyWorld w;
    auto p = w.build("{hide_credentials: false}");
    ASSERT_TRUE(p);
    auto r = key_request("/p?api_key=k-acme-123");
    EXPECT_TRUE(run(*p, *r));
    EXPECT_EQ(r->state.hidden_query_param, "");
    proxy::HeaderEdits edits;
    p->on_upstream_request(r->ctx, edits);
    EXPECT_TRUE(edits.empty());
  }
}

TEST(KeyAuthPlugin, ConfigErrorsAndAnonymous) {
  KeyWorld w;
  EXPECT_FALSE(w.build("{anonymous: ghost}"));
  EXPECT_FALSE(w.build("{header: 'X Key'}"));
  EXPECT_FALSE(w.build("{hide_credentials: yes}"));
  EXPECT_FALSE(w.build("{header: '', query: ''}"));
  EXPECT_FALSE(w.build("{headr: X-Key}"));
  EXPECT_FALSE(w.build("[X-Key]"));
  EXPECT_EQ(w.errors, (std::vector<std::string>{
                          "1:13: 'anonymous' names unknown consumer 'ghost'",
                          "1:10: 'header' must be a header name",
                          "1:20: 'hide_credentials' must be true or false",
                          "1:1: 'key_auth' needs a 'header' or a 'query' to read the key from",
                          "1:2: unknown key 'headr' in key_auth",
                          "1:1: 'key_auth' needs a map (or {})",
                      }));
  {  // AnonymousResolvesToTheConsumer
    KeyWorld w;
    auto p = w.build("{anonymous: guest}");
    ASSERT_TRUE(p);
    EXPECT_EQ(as_auth(*p).anonymous(), w.table->by_name("guest"));
    auto none = w.build("{}");
    EXPECT_EQ(as_auth(*none).anonymous(), nullptr);
  }
}

}  // namespace
}  // namespace gatehouse::plugins
