#include <crypt.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "auth/consumers.h"
#include "auth/crypto.h"
#include "auth/jwks.h"
#include "http/http1_parser.h"
#include "plugins/auth/authenticator.h"
#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins {
namespace {

namespace ga = gatehouse::auth;

std::string crypt_hash(const char* prefix, const std::string& password) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  EXPECT_NE(crypt_gensalt_rn(prefix, 0, nullptr, 0, setting, sizeof setting), nullptr) << prefix;
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* out = crypt_r(password.c_str(), setting, data.get());
  EXPECT_TRUE(out != nullptr && out[0] != '*') << prefix;
  return out;
}

struct BasicWorld {
  config::Config config;
  std::unique_ptr<ga::ConsumerTable> table;
  ga::JwksRegistry jwks;
  std::vector<std::string> errors;

  BasicWorld() {
    auto add = [&](std::string name, std::string user, const char* prefix, std::string pw) {
      config::Consumer c;
      c.name = std::move(name);
      if (!user.empty()) c.basic = config::BasicCredential{user, crypt_hash(prefix, pw)};
      config.consumers.push_back(std::move(c));
    };
    add("acme", "acme-user", "$6$", "s3cret:with:colons");
    add("yes", "yes-user", "$y$", "yes-pw");
    add("bee", "bee-user", "$2b$", "bee-pw");
    add("guest", "", nullptr, "");
    table = std::make_unique<ga::ConsumerTable>(config.consumers);
  }

  std::unique_ptr<proxy::Plugin> build(const std::string& yaml) {
    PluginEnv env{config, table.get(), &jwks, 2};
    return find_plugin_kind("basic_auth")
        ->create(YAML::Load(yaml), env, [&](const YAML::Node& at, std::string message) {
          errors.push_back(std::to_string(at.Mark().line + 1) + ":" +
                           std::to_string(at.Mark().column + 1) + ": " + message);
        });
  }
};

struct BasicRequest {
  std::string raw;
  http::RequestHead head;
  proxy::RequestState state;
  proxy::RequestContext ctx;
  proxy::LocalReply reply;
};

std::unique_ptr<BasicRequest> basic_request(const std::vector<std::string>& headers,
                                            unsigned worker = 0) {
  auto r = std::make_unique<BasicRequest>();
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
  r->ctx.worker = worker;
  r->ctx.unix_s = std::time(nullptr);
  return r;
}

std::string basic(const std::string& user_pass, const char* scheme = "Basic") {
  return std::string("Authorization: ") + scheme + " " + ga::base64_encode(user_pass);
}

constexpr const char* kChallenge = "Basic realm=\"gatehouse\", charset=\"UTF-8\"";

void expect_refused(const BasicRequest& r, const char* log) {
  EXPECT_EQ(r.reply.status, 401);
  EXPECT_EQ(r.reply.detail, "invalid credentials");
  ASSERT_EQ(r.reply.headers.size(), 1u);
  EXPECT_EQ(r.reply.headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(r.reply.headers[0].second, kChallenge);
  EXPECT_EQ(r.state.log_detail, log);
  EXPECT_FALSE(r.state.identity.known());
}

TEST(BasicAuthPlugin, RightPasswordIdentifies) {
  BasicWorld w;
  auto p = w.build("{}");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->stage(), proxy::Stage::kAuthn);
  auto r = basic_request({basic("acme-user:s3cret:with:colons")});
  EXPECT_TRUE(p->on_request(r->ctx, r->reply));
  EXPECT_EQ(r->state.identity.consumer, w.table->by_name("acme"));
  EXPECT_TRUE(r->state.identity.verified);
  EXPECT_EQ(r->reply.status, 0);
}

TEST(BasicAuthPlugin, YescryptAndBcryptHashes) {
  BasicWorld w;
  auto p = w.build("{}");
  auto y = basic_request({basic("yes-user:yes-pw")});
  EXPECT_TRUE(p->on_request(y->ctx, y->reply));
  EXPECT_EQ(y->state.identity.consumer, w.table->by_name("yes"));
  auto b = basic_request({basic("bee-user:bee-pw")});
  EXPECT_TRUE(p->on_request(b->ctx, b->reply));
  EXPECT_EQ(b->state.identity.consumer, w.table->by_name("bee"));
  auto wrong = basic_request({basic("bee-user:yes-pw")});
  EXPECT_FALSE(p->on_request(wrong->ctx, wrong->reply));
  expect_refused(*wrong, "basic_auth: wrong username or password");
}

TEST(BasicAuthPlugin, WrongPasswordAndUnknownUserLookAlike) {
  BasicWorld w;
  auto p = w.build("{}");
  auto wrong = basic_request({basic("acme-user:s3cret")});
  EXPECT_FALSE(p->on_request(wrong->ctx, wrong->reply));
  expect_refused(*wrong, "basic_auth: wrong username or password");
  auto unknown = basic_request({basic("nobody:s3cret:with:colons")});
  EXPECT_FALSE(p->on_request(unknown->ctx, unknown->reply));
  expect_refused(*unknown, "basic_auth: wrong username or password");
  auto empty = basic_request({basic("acme-user:")});
  EXPECT_FALSE(p->on_request(empty->ctx, empty->reply));
  expect_refused(*empty, "basic_auth: wrong username or password");
  {  // ConsumerNameIsNotTheUsername
    BasicWorld w;
    auto p = w.build("{}");
    auto r = basic_request({basic("acme:s3cret:with:colons")});
    EXPECT_FALSE(p->on_request(r->ctx, r->reply));
    EXPECT_EQ(r->reply.status, 401);
  }
}

TEST(BasicAuthPlugin, MalformedCredentials) {
  BasicWorld w;
  auto p = w.build("{}");
  for (const std::string& h :
       {std::string("Authorization: Basic not*base64"), basic("no-colon-here"),
        std::string("Authorization: Basic YWNtZS11c2Vy"),  // "acme-user": no colon
        std::string("Authorization: Basic YQ"), std::string("Authorization: Bearer a.b.c")}) {
    auto r = basic_request({h});
    EXPECT_FALSE(p->on_request(r->ctx, r->reply)) << h;
    expect_refused(*r, "basic_auth: malformed credentials");
  }
  {  // TwoAuthorizationFieldsAreRefused
    BasicWorld w;
    auto p = w.build("{}");
    auto r = basic_request(
        {basic("acme-user:s3cret:with:colons"), basic("acme-user:s3cret:with:colons")});
    EXPECT_FALSE(p->on_request(r->ctx, r->reply));
    expect_refused(*r, "basic_auth: malformed credentials");
  }
}

TEST(BasicAuthPlugin, SchemeIsCaseInsensitiveAndSpacesTolerated) {
  BasicWorld w;
  auto p = w.build("{}");
  for (const char* scheme : {"basic", "BASIC", "bAsIc"}) {
    auto r = basic_request({basic("yes-user:yes-pw", scheme)});
    EXPECT_TRUE(p->on_request(r->ctx, r->reply)) << scheme;
  }
  auto spaced =
      basic_request({"Authorization: Basic   " + ga::base64_encode("yes-user:yes-pw") + "  "});
  EXPECT_TRUE(p->on_request(spaced->ctx, spaced->reply));
}

TEST(BasicAuthPlugin, RemembersASuccessPerWorkerAndStillRefusesWrongOnes) {
  BasicWorld w;
  auto p = w.build("{}");
  for (unsigned worker : {0u, 0u, 1u, 1u}) {
    auto r = basic_request({basic("acme-user:s3cret:with:colons")}, worker);
    EXPECT_TRUE(p->on_request(r->ctx, r->reply)) << worker;
    EXPECT_EQ(r->state.identity.consumer, w.table->by_name("acme"));
    auto bad = basic_request({basic("acme-user:s3cret:with:colonz")}, worker);
    EXPECT_FALSE(p->on_request(bad->ctx, bad->reply)) << worker;
  }
}

TEST(BasicAuthPlugin, PresentedOnlyByBasicScheme) {
  BasicWorld w;
  auto p = w.build("{}");
  const auto& a = dynamic_cast<const auth::Authenticator&>(*p);
  EXPECT_EQ(a.presented(basic_request({basic("x:y")})->ctx), auth::Presence::kStrong);
  EXPECT_EQ(a.presented(basic_request({"Authorization: basic eDp5"})->ctx),
            auth::Presence::kStrong);
  EXPECT_EQ(a.presented(basic_request({"Authorization: Bearer abc"})->ctx), auth::Presence::kNone);
  EXPECT_EQ(a.presented(basic_request({"Authorization: Basicx eDp5"})->ctx), auth::Presence::kNone);
  EXPECT_EQ(a.presented(basic_request({})->ctx), auth::Presence::kNone);
  EXPECT_EQ(a.challenge(), kChallenge);
}

TEST(BasicAuthPlugin, CustomRealmInChallenge) {
  BasicWorld w;
  auto p = w.build("{realm: partner api}");
  ASSERT_TRUE(p);
  auto r = basic_request({basic("acme-user:nope")});
  EXPECT_FALSE(p->on_request(r->ctx, r->reply));
  ASSERT_EQ(r->reply.headers.size(), 1u);
  EXPECT_EQ(r->reply.headers[0].second, "Basic realm=\"partner api\", charset=\"UTF-8\"");
}

TEST(BasicAuthPlugin, HidesAuthorizationUnlessTold) {
  BasicWorld w;
  auto r = basic_request({});
  proxy::HeaderEdits hidden;
  w.build("{}")->on_upstream_request(r->ctx, hidden);
  EXPECT_TRUE(hidden.drops("authorization"));
  proxy::HeaderEdits kept;
  w.build("{hide_credentials: false}")->on_upstream_request(r->ctx, kept);
  EXPECT_TRUE(kept.empty());
}

TEST(BasicAuthPlugin, ConfigErrors) {
  BasicWorld w;
  EXPECT_FALSE(w.build("{realm: 'a\"b'}"));
  EXPECT_FALSE(w.build("{realm: 'a\\b'}"));
  EXPECT_FALSE(w.build("{realm: ''}"));
  EXPECT_FALSE(w.build("{anonymous: ghost}"));
  EXPECT_FALSE(w.build("{user: x}"));
  EXPECT_FALSE(w.build("realm"));
  EXPECT_EQ(w.errors, (std::vector<std::string>{
                          "1:9: 'realm' must be printable, without quotes or backslashes",
                          "1:9: 'realm' must be printable, without quotes or backslashes",
                          "1:9: 'realm' must be a non-empty string",
                          "1:13: 'anonymous' names unknown consumer 'ghost'",
                          "1:2: unknown key 'user' in basic_auth",
                          "1:1: 'basic_auth' needs a map (or {})",
                      }));
  {  // AnonymousConsumer
    BasicWorld w;
    auto p = w.build("{anonymous: guest}");
    ASSERT_TRUE(p);
    EXPECT_EQ(dynamic_cast<const auth::Authenticator&>(*p).anonymous(), w.table->by_name("guest"));
  }
}

}  // namespace
}  // namespace gatehouse::plugins
