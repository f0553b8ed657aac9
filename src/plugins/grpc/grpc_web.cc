#include "plugins/grpc/grpc_web.h"

#include "plugins/grpc/grpc_web_codec.h"
#include "plugins/plugin_config.h"

namespace gatehouse::plugins::grpc_web {
namespace {

ContentType request_type(const proxy::RequestContext& ctx) {
  if (ctx.head == nullptr) return {};
  return parse_content_type(find_header(*ctx.head, "content-type"));
}

class GrpcWebPlugin : public proxy::Plugin {
 public:
  proxy::Stage stage() const override { return proxy::Stage::kTransform; }

  // A gRPC-Web request: the engine translates its body and its answer.
  // Anything else on the route passes untouched.
  bool on_request(const proxy::RequestContext& ctx, proxy::LocalReply&) const override {
    if (request_type(ctx).mode != Mode::kNone) ctx.state->grpc_web = true;
    return true;
  }

  void on_upstream_request(const proxy::RequestContext& ctx,
                           proxy::HeaderEdits& edits) const override {
    if (ctx.state == nullptr || !ctx.state->grpc_web) return;
    ContentType type = request_type(ctx);
    if (type.mode == Mode::kNone) return;
    edits.set.emplace_back("content-type", upstream_content_type(type));
  }
};

}  // namespace

std::unique_ptr<proxy::Plugin> create(const YAML::Node& config, const PluginEnv&,
                                      const Report& report) {
  if (!config.IsNull() && !config.IsMap()) {
    report(config, "'grpc_web' needs an empty map: grpc_web: {}");
    return nullptr;
  }
  if (config.IsMap() && !only_keys(config, {}, "grpc_web", report)) return nullptr;
  return std::make_unique<GrpcWebPlugin>();
}

}  // namespace gatehouse::plugins::grpc_web
