// The route's auth plugins as one: the credential the request presents picks
// the plugin that checks it; none presented falls back to the first
// `anonymous` consumer, else 401 with every plugin's challenge (docs/auth.md).
#include <algorithm>

#include "plugins/auth/authenticator.h"

namespace gatehouse::plugins {
namespace {

using auth::Authenticator;
using auth::Presence;

class AuthChain : public proxy::Plugin {
 public:
  explicit AuthChain(std::vector<std::unique_ptr<Authenticator>> members)
      : members_(std::move(members)) {
    for (const auto& m : members_) {
      async_ = async_ || m->async_request();
      if (anonymous_ == nullptr) anonymous_ = m->anonymous();
    }
  }

  proxy::Stage stage() const override { return proxy::Stage::kAuthn; }
  bool async_request() const override { return async_; }

  bool on_request(const proxy::RequestContext& ctx, proxy::LocalReply& reply) const override {
    for (const auto& m : members_) m->hide_credential(ctx);
    const Authenticator* chosen = pick(ctx);
    if (chosen == nullptr) return no_credential(ctx, reply);
    return chosen->on_request(ctx, reply);
  }

  proxy::Task<bool> on_request_async(const proxy::RequestContext& ctx,
                                     proxy::LocalReply& reply) const override {
    for (const auto& m : members_) m->hide_credential(ctx);
    const Authenticator* chosen = pick(ctx);
    if (chosen == nullptr) co_return no_credential(ctx, reply);
    if (chosen->async_request()) co_return co_await chosen->on_request_async(ctx, reply);
    co_return chosen->on_request(ctx, reply);
  }

  void on_upstream_request(const proxy::RequestContext& ctx,
                           proxy::HeaderEdits& edits) const override {
    for (const auto& m : members_) m->on_upstream_request(ctx, edits);
  }
  void on_response_headers(const proxy::RequestContext& ctx, int status,
                           proxy::HeaderEdits& edits) const override {
    for (const auto& m : members_) m->on_response_headers(ctx, status, edits);
  }
  void on_log(const proxy::RequestContext& ctx, int status) const override {
    for (const auto& m : members_) m->on_log(ctx, status);
  }

 private:
  const Authenticator* pick(const proxy::RequestContext& ctx) const {
    if (members_.size() == 1) {
      return members_[0]->presented(ctx) == Presence::kNone ? nullptr : members_[0].get();
    }
    const Authenticator* weak = nullptr;
    for (const auto& m : members_) {
      Presence p = m->presented(ctx);
      if (p == Presence::kStrong) return m.get();
      if (p == Presence::kWeak && weak == nullptr) weak = m.get();
    }
    return weak;
  }

  bool no_credential(const proxy::RequestContext& ctx, proxy::LocalReply& reply) const {
    if (anonymous_ != nullptr) {
      proxy::Identity& id = ctx.state->identity;
      id.consumer = anonymous_;
      id.anonymous = true;
      return true;
    }
    reply.status = 401;
    reply.detail = "missing credentials";
    for (const auto& m : members_) {
      const std::string& c = m->challenge();
      if (c.empty()) continue;  // mtls_auth: no HTTP challenge
      bool seen = std::any_of(reply.headers.begin(), reply.headers.end(),
                              [&](const auto& h) { return h.second == c; });
      if (!seen) reply.headers.emplace_back("WWW-Authenticate", c);
    }
    ctx.state->log_detail = "no credential presented";
    return false;
  }

  std::vector<std::unique_ptr<Authenticator>> members_;
  const gatehouse::auth::Consumer* anonymous_ = nullptr;
  bool async_ = false;
};

}  // namespace

void assemble(std::vector<std::unique_ptr<proxy::Plugin>>& plugins) {
  std::vector<std::unique_ptr<Authenticator>> members;
  std::size_t first = plugins.size();
  for (std::size_t i = 0; i < plugins.size(); ++i) {
    if (auto* a = dynamic_cast<Authenticator*>(plugins[i].get())) {
      plugins[i].release();
      members.emplace_back(a);
      first = std::min(first, i);
    }
  }
  if (members.empty()) return;
  plugins[first] = std::make_unique<AuthChain>(std::move(members));
  std::erase_if(plugins, [](const auto& p) { return p == nullptr; });
}

}  // namespace gatehouse::plugins
