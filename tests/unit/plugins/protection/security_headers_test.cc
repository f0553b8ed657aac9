#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http/http1_parser.h"
#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

const Fields kDefaults = {
    {"Strict-Transport-Security", "max-age=31536000; includeSubDomains"},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
};

struct SecWorld {
  config::Config config;
  std::vector<std::string> errors;

  std::unique_ptr<proxy::Plugin> build(const std::string& yaml,
                                       const std::string& kind = "security_headers") {
    return find_plugin_kind(kind)->create(
        YAML::Load(yaml), PluginEnv{.config = config, .scope = "route:test"},
        [&](const YAML::Node& at, std::string message) {
          errors.push_back(std::to_string(at.Mark().line + 1) + ":" +
                           std::to_string(at.Mark().column + 1) + ": " + message);
        });
  }
};

struct SecRequest {
  std::string raw = "GET /links HTTP/1.1\r\nHost: gw.example\r\n\r\n";
  http::RequestHead head;
  proxy::RequestState state;
  proxy::RequestContext ctx;
  proxy::LocalReply reply;

  SecRequest() {
    std::size_t scanned = 0;
    const std::size_t size = http::find_head_end(raw.data(), raw.size(), scanned);
    http::ParseError err;
    EXPECT_EQ(http::parse_request_head(raw.data(), size, head, err), http::ParseStatus::kComplete);
    ctx.head = &head;
    ctx.state = &state;
    ctx.client_ip = "10.1.2.3";
  }
};

// What the plugin adds for a local reply: the response_headers of on_request.
Fields local_fields(const proxy::Plugin& plugin) {
  SecRequest r;
  EXPECT_TRUE(plugin.on_request(r.ctx, r.reply));
  return r.state.response_headers;
}

// What a proxied response head gets, as session_forward.cc builds it: the
// response phases in reverse stage order, then response_headers appended to
// edits.set. `plugins` are in stage order.
proxy::HeaderEdits proxied_edits(const std::vector<const proxy::Plugin*>& plugins, SecRequest& r) {
  for (const proxy::Plugin* p : plugins) EXPECT_TRUE(p->on_request(r.ctx, r.reply));
  proxy::HeaderEdits edits;
  proxy::RequestContext response_ctx = r.ctx;
  response_ctx.head = nullptr;
  for (auto it = plugins.rbegin(); it != plugins.rend(); ++it)
    (*it)->on_response_headers(response_ctx, 200, edits);
  for (const auto& h : r.state.response_headers) edits.set.push_back(h);
  return edits;
}

int count(const Fields& fields, std::string_view name) {
  int n = 0;
  for (const auto& f : fields) n += http::iequals(f.first, name) ? 1 : 0;
  return n;
}

TEST(SecurityHeaders, RunsEarlySoLaterRefusalsCarryTheFields) {
  SecWorld w;
  auto p = w.build("{}");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->stage(), proxy::Stage::kEarly);
}

TEST(SecurityHeaders, DefaultsFromEmptyOrNullConfig) {
  SecWorld w;
  for (const char* yaml : {"{}", "~", ""}) {
    auto p = w.build(yaml);
    ASSERT_TRUE(p) << yaml;
    EXPECT_EQ(local_fields(*p), kDefaults) << yaml;
  }
  EXPECT_TRUE(w.errors.empty());
}

TEST(SecurityHeaders, EachFieldCanBeOverridden) {
  SecWorld w;
  auto p = w.build(
      "{hsts: 'max-age=600', frame_options: SAMEORIGIN, referrer_policy: same-origin,\n"
      " content_type_options: nosniff}");
  ASSERT_TRUE(p);
  EXPECT_EQ(local_fields(*p), (Fields{
                                  {"Strict-Transport-Security", "max-age=600"},
                                  {"X-Content-Type-Options", "nosniff"},
                                  {"X-Frame-Options", "SAMEORIGIN"},
                                  {"Referrer-Policy", "same-origin"},
                              }));
}

TEST(SecurityHeaders, FalseDropsAFieldAndTrueKeepsTheDefault) {
  SecWorld w;
  auto p = w.build("{hsts: false, referrer_policy: false, frame_options: true}");
  ASSERT_TRUE(p);
  EXPECT_EQ(local_fields(*p), (Fields{
                                  {"X-Content-Type-Options", "nosniff"},
                                  {"X-Frame-Options", "DENY"},
                              }));
  auto none = w.build(
      "{hsts: false, referrer_policy: false, frame_options: false, content_type_options: "
      "false}");
  ASSERT_TRUE(none);
  EXPECT_TRUE(local_fields(*none).empty());
}

TEST(SecurityHeaders, KeepsFieldsOtherPluginsAddedBefore) {
  SecWorld w;
  auto p = w.build("{}");
  ASSERT_TRUE(p);
  SecRequest r;
  r.state.response_headers.emplace_back("Access-Control-Allow-Origin", "*");
  EXPECT_TRUE(p->on_request(r.ctx, r.reply));
  ASSERT_EQ(r.state.response_headers.size(), 5u);
  EXPECT_EQ(r.state.response_headers[0].first, "Access-Control-Allow-Origin");
}

TEST(SecurityHeaders, ProxiedResponseGetsEachFieldExactlyOnce) {
  SecWorld w;
  auto p = w.build("{}");
  ASSERT_TRUE(p);
  SecRequest r;
  proxy::HeaderEdits edits = proxied_edits({p.get()}, r);
  EXPECT_EQ(edits.set, kDefaults);
  // `set` replaces the upstream's own fields of these names.
  EXPECT_TRUE(edits.drops("x-frame-options"));
  EXPECT_TRUE(edits.drops("strict-transport-security"));
  EXPECT_FALSE(edits.drops("server"));
}

TEST(SecurityHeaders, DroppedFieldLeavesTheUpstreamsAlone) {
  SecWorld w;
  auto p = w.build("{frame_options: false}");
  ASSERT_TRUE(p);
  SecRequest r;
  proxy::HeaderEdits edits = proxied_edits({p.get()}, r);
  EXPECT_FALSE(edits.drops("x-frame-options"));
  EXPECT_EQ(edits.set.size(), 3u);
}

TEST(SecurityHeaders, AHeadersPluginOnTheRouteWinsAndNothingIsWrittenTwice) {
  SecWorld w;
  auto sec = w.build("{}");
  auto headers = w.build(
      "{response: {set: {x-frame-options: SAMEORIGIN, X-Extra: '1'}, remove: "
      "[Referrer-Policy]}}",
      "headers");
  ASSERT_TRUE(sec);
  ASSERT_TRUE(headers);
  SecRequest r;
  // Stage order: security_headers (early) before headers (transform).
  proxy::HeaderEdits edits = proxied_edits({sec.get(), headers.get()}, r);
  EXPECT_EQ(count(edits.set, "X-Frame-Options"), 1);
  EXPECT_EQ(count(edits.set, "Referrer-Policy"), 0);
  EXPECT_EQ(count(edits.set, "Strict-Transport-Security"), 1);
  EXPECT_EQ(count(edits.set, "X-Content-Type-Options"), 1);
  EXPECT_EQ(count(edits.set, "X-Extra"), 1);
  for (const auto& [name, value] : edits.set) {
    if (http::iequals(name, "x-frame-options")) {
      EXPECT_EQ(value, "SAMEORIGIN");
    }
  }
  EXPECT_TRUE(edits.drops("referrer-policy"));
}

TEST(SecurityHeaders, ValuesMustBeFieldValues) {
  SecWorld w;
  auto p = w.build(
      "hsts: \"max-age=1\\r\\nSet-Cookie: a=b\"\n"
      "frame_options: ''\n"
      "referrer_policy: [no-referrer]\n"
      "content_type_options: ~\n");
  EXPECT_FALSE(p);
  ASSERT_EQ(w.errors.size(), 4u);
  EXPECT_EQ(w.errors[0],
            "1:7: 'hsts' must be a non-empty header value without control characters, or false");
  EXPECT_EQ(w.errors[1].substr(0, 22), "4:23: 'content_type_op");
  EXPECT_EQ(w.errors[2].substr(0, 23), "2:16: 'frame_options' m");
  EXPECT_EQ(w.errors[3].substr(0, 25), "3:18: 'referrer_policy' m");
}

TEST(SecurityHeaders, ReportsUnknownKeysAndNonMaps) {
  SecWorld w;
  EXPECT_FALSE(w.build("hsts: max-age=1\nx_frame_options: DENY\n"));
  EXPECT_FALSE(w.build("[hsts]"));
  ASSERT_EQ(w.errors.size(), 2u);
  EXPECT_EQ(w.errors[0], "2:1: unknown key 'x_frame_options' in security_headers");
  EXPECT_EQ(w.errors[1], "1:1: 'security_headers' needs a map (or {})");
}

TEST(SecurityHeaders, AllThreeProtectionKindsAreRegistered) {
  for (const char* name : {"ip_restriction", "cors", "security_headers"}) {
    const PluginKind* kind = find_plugin_kind(name);
    ASSERT_NE(kind, nullptr) << name;
    EXPECT_EQ(kind->name, name);
    EXPECT_FALSE(kind->authenticates) << name;
  }
}

}  // namespace
}  // namespace gatehouse::plugins
