// `acl`: allows or denies callers by group. The groups are the roles an auth
// plugin took from the token (jwt `roles_claim`), else the consumer's groups.
#include <algorithm>

#include "plugins/auth/authenticator.h"

namespace gatehouse::plugins::auth {
namespace {

class Acl : public proxy::Plugin {
 public:
  Acl(std::vector<std::string> groups, bool allow) : groups_(std::move(groups)), allow_(allow) {}

  proxy::Stage stage() const override { return proxy::Stage::kAuthz; }

  bool on_request(const proxy::RequestContext& ctx, proxy::LocalReply& reply) const override {
    const proxy::Identity& id = ctx.state->identity;
    bool member = false;
    auto listed = [&](const std::string& g) {
      return std::find(groups_.begin(), groups_.end(), g) != groups_.end();
    };
    if (!id.roles.empty()) {
      member = std::any_of(id.roles.begin(), id.roles.end(), listed);
    } else if (id.consumer != nullptr) {
      member = std::any_of(id.consumer->groups.begin(), id.consumer->groups.end(), listed);
    }
    if (member == allow_) return true;
    reply.status = 403;
    reply.detail = "access denied";
    ctx.state->log_detail = allow_ ? "acl: not in an allowed group" : "acl: in a denied group";
    return false;
  }

 private:
  std::vector<std::string> groups_;
  bool allow_;
};

}  // namespace

std::unique_ptr<proxy::Plugin> create_acl(const YAML::Node& config, const PluginEnv&,
                                          const Report& report) {
  if (!config.IsMap()) {
    report(config, "'acl' needs {allow: [groups]} or {deny: [groups]}");
    return nullptr;
  }
  if (!only_keys(config, {"allow", "deny"}, "acl", report)) return nullptr;
  if (config.size() != 1) {
    report(config, "'acl' takes exactly one of 'allow' or 'deny'");
    return nullptr;
  }
  bool allow = config["allow"].IsDefined();
  const YAML::Node list = allow ? config["allow"] : config["deny"];
  auto groups = read_strings(list, allow ? "'allow'" : "'deny'", report);
  if (!groups) return nullptr;
  if (groups->empty()) {
    report(list, "'acl' needs at least one group");
    return nullptr;
  }
  return std::make_unique<Acl>(std::move(*groups), allow);
}

}  // namespace gatehouse::plugins::auth
