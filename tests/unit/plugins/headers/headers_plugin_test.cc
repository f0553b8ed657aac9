#include "plugins/headers/headers_plugin.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gatehouse::plugins::headers {
namespace {

struct Built {
  std::unique_ptr<proxy::Plugin> plugin;
  std::vector<std::string> errors;
};

Built build(const std::string& yaml) {
  Built b;
  static const config::Config kConfig;
  b.plugin =
      create(YAML::Load(yaml), PluginEnv{kConfig}, [&](const YAML::Node& at, std::string message) {
        b.errors.push_back(std::to_string(at.Mark().line + 1) + ":" + message);
      });
  return b;
}

TEST(HeadersPlugin, RunsInTheTransformStage) {
  Built b = build("{request: {set: {X-A: '1'}}}");
  ASSERT_TRUE(b.plugin);
  EXPECT_EQ(b.plugin->stage(), proxy::Stage::kTransform);
}

TEST(HeadersPlugin, AddsRequestEditsOnUpstreamRequest) {
  Built b = build("{request: {set: {X-A: '1'}, remove: [X-B]}}");
  ASSERT_TRUE(b.plugin);
  proxy::HeaderEdits edits;
  b.plugin->on_upstream_request(proxy::RequestContext{}, edits);
  ASSERT_EQ(edits.set.size(), 1u);
  EXPECT_EQ(edits.set[0].first, "X-A");
  EXPECT_EQ(edits.set[0].second, "1");
  EXPECT_TRUE(edits.drops("x-b"));
  EXPECT_TRUE(edits.drops("X-a"));
  EXPECT_FALSE(edits.drops("x-c"));
}

TEST(HeadersPlugin, AddsResponseEditsOnResponseHeaders) {
  Built b = build("{response: {set: {X-Frame-Options: DENY}, remove: [Server]}}");
  ASSERT_TRUE(b.plugin);
  proxy::HeaderEdits edits;
  b.plugin->on_response_headers(proxy::RequestContext{}, 200, edits);
  EXPECT_TRUE(edits.drops("server"));
  ASSERT_EQ(edits.set.size(), 1u);
  EXPECT_EQ(edits.set[0].second, "DENY");
}

TEST(HeadersPlugin, RefusesFramingHeaders) {
  Built b = build("{request: {set: {Content-Length: '5'}}}");
  EXPECT_FALSE(b.plugin);
  ASSERT_EQ(b.errors.size(), 1u);
  EXPECT_NE(b.errors[0].find("cannot set header 'Content-Length'"), std::string::npos);
}

TEST(HeadersPlugin, RefusesControlCharactersInValues) {
  Built b = build("{request: {set: {X-A: \"a\\r\\nX-Injected: 1\"}}}");
  EXPECT_FALSE(b.plugin);
  ASSERT_EQ(b.errors.size(), 1u);
}

TEST(HeadersPlugin, ReportsUnknownKeysAtTheirLine) {
  Built b = build("request: {set: {X-A: '1'}}\nbogus: 1\n");
  EXPECT_FALSE(b.plugin);
  ASSERT_EQ(b.errors.size(), 1u);
  EXPECT_EQ(b.errors[0], "2:unknown key 'bogus' in headers plugin");
}

}  // namespace
}  // namespace gatehouse::plugins::headers
