#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <vector>

#include "auth/consumers.h"
#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins {
namespace {

namespace ga = gatehouse::auth;

struct AclWorld {
  config::Config config;
  std::vector<std::string> errors;
  ga::Consumer partner{"acme", "pro", {"partners", "editor"}, "partners,editor"};
  ga::Consumer outsider{"beta", "", {"public"}, "public"};
  ga::Consumer loner{"solo", "", {}, ""};

  std::unique_ptr<proxy::Plugin> build(const std::string& yaml) {
    PluginEnv env{config};
    return find_plugin_kind("acl")->create(
        YAML::Load(yaml), env, [&](const YAML::Node& at, std::string message) {
          errors.push_back(std::to_string(at.Mark().line + 1) + ":" +
                           std::to_string(at.Mark().column + 1) + ": " + message);
        });
  }
};

// Runs the acl for an identity; returns whether the request may go on.
struct AclOutcome {
  bool allowed;
  proxy::LocalReply reply;
  std::string log;
};

AclOutcome check(const proxy::Plugin& acl, const proxy::Identity& id) {
  proxy::RequestState state;
  state.identity = id;
  proxy::RequestContext ctx;
  ctx.state = &state;
  AclOutcome out;
  out.allowed = acl.on_request(ctx, out.reply);
  out.log = state.log_detail;
  return out;
}

proxy::Identity verified(const ga::Consumer* c, std::vector<std::string> roles = {}) {
  proxy::Identity id;
  id.consumer = c;
  id.verified = true;
  id.roles = std::move(roles);
  return id;
}

TEST(AclPlugin, AllowListAdmitsMembersOnly) {
  AclWorld w;
  auto acl = w.build("{allow: [partners, admins]}");
  EXPECT_TRUE(check(*acl, verified(&w.partner)).allowed);
  AclOutcome refused = check(*acl, verified(&w.outsider));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.reply.status, 403);
  EXPECT_EQ(refused.reply.detail, "access denied");
  EXPECT_TRUE(refused.reply.headers.empty());
  EXPECT_EQ(refused.log, "acl: not in an allowed group");
  EXPECT_FALSE(check(*acl, verified(&w.loner)).allowed);
  {  // RunsInTheAuthzStage
    AclWorld w;
    auto acl = w.build("{allow: [partners]}");
    ASSERT_TRUE(acl);
    EXPECT_EQ(acl->stage(), proxy::Stage::kAuthz);
  }
}

TEST(AclPlugin, DenyListRefusesMembersOnly) {
  AclWorld w;
  auto acl = w.build("{deny: [public]}");
  ASSERT_TRUE(acl);
  EXPECT_TRUE(check(*acl, verified(&w.partner)).allowed);
  EXPECT_TRUE(check(*acl, verified(&w.loner)).allowed);
  AclOutcome refused = check(*acl, verified(&w.outsider));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.reply.status, 403);
  EXPECT_EQ(refused.reply.detail, "access denied");
  EXPECT_EQ(refused.log, "acl: in a denied group");
}

TEST(AclPlugin, TokenRolesReplaceConsumerGroups) {
  AclWorld w;
  auto allow = w.build("{allow: [partners]}");
  EXPECT_FALSE(check(*allow, verified(&w.partner, {"viewer"})).allowed);
  EXPECT_TRUE(check(*allow, verified(&w.outsider, {"viewer", "partners"})).allowed);
  EXPECT_TRUE(check(*allow, verified(nullptr, {"partners"})).allowed);
  auto deny = w.build("{deny: [banned]}");
  EXPECT_FALSE(check(*deny, verified(nullptr, {"ok", "banned"})).allowed);
  {  // GroupNamesAreCaseSensitive
    AclWorld w;
    auto acl = w.build("{allow: [Partners]}");
    EXPECT_FALSE(check(*acl, verified(&w.partner)).allowed);
  }
}

TEST(AclPlugin, NoIdentity) {
  AclWorld w;
  EXPECT_FALSE(check(*w.build("{allow: [partners]}"), proxy::Identity{}).allowed);
  EXPECT_TRUE(check(*w.build("{deny: [partners]}"), proxy::Identity{}).allowed);
}

TEST(AclPlugin, AnonymousConsumerIsCheckedByItsGroups) {
  AclWorld w;
  proxy::Identity anon;
  anon.consumer = &w.outsider;
  anon.anonymous = true;
  EXPECT_TRUE(check(*w.build("{allow: [public]}"), anon).allowed);
  EXPECT_FALSE(check(*w.build("{deny: [public]}"), anon).allowed);
}

TEST(AclPlugin, ConfigErrors) {
  AclWorld w;
  EXPECT_FALSE(w.build("{allow: [a], deny: [b]}"));
  EXPECT_FALSE(w.build("{allow: []}"));
  EXPECT_FALSE(w.build("{allow: a}"));
  EXPECT_FALSE(w.build("{allow: [a, '']}"));
  EXPECT_FALSE(w.build("{permit: [a]}"));
  EXPECT_FALSE(w.build("[a]"));
  EXPECT_FALSE(w.build("{}"));
  EXPECT_EQ(w.errors, (std::vector<std::string>{
                          "1:1: 'acl' takes exactly one of 'allow' or 'deny'",
                          "1:9: 'acl' needs at least one group",
                          "1:9: 'allow' must be a list of strings",
                          "1:13: 'allow' must hold non-empty strings",
                          "1:2: unknown key 'permit' in acl",
                          "1:1: 'acl' needs {allow: [groups]} or {deny: [groups]}",
                          "1:1: 'acl' takes exactly one of 'allow' or 'deny'",
                      }));
}

}  // namespace
}  // namespace gatehouse::plugins
