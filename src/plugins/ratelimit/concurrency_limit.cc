// `concurrency_limit`: at most `max` requests of the route in flight at once
// across the instance; beyond, 503 with Retry-After (docs/protection.md).
#include <atomic>

#include "plugins/plugin_config.h"
#include "plugins/ratelimit/ratelimit_plugins.h"

namespace gatehouse::plugins::ratelimit {
namespace {

// One cache line of its own: every worker touches it on every request.
struct alignas(64) InFlight {
  std::atomic<uint64_t> count{0};
};

class ConcurrencyLimit : public proxy::Plugin {
 public:
  ConcurrencyLimit(uint64_t max, std::shared_ptr<InFlight> in_flight)
      : max_(max), in_flight_(std::move(in_flight)) {}

  proxy::Stage stage() const override { return proxy::Stage::kRateLimit; }

  bool on_request(const proxy::RequestContext& ctx, proxy::LocalReply& reply) const override {
    uint64_t before = in_flight_->count.fetch_add(1, std::memory_order_acq_rel);
    if (before >= max_) {
      in_flight_->count.fetch_sub(1, std::memory_order_acq_rel);
      reply.status = 503;
      reply.detail = "too many concurrent requests";
      reply.headers.emplace_back("Retry-After", "1");
      ctx.state->log_detail = "concurrency_limit: " + std::to_string(max_) + " in flight";
      return false;
    }
    // Released when the request ends, however it ends (RequestState::end).
    ctx.state->on_end.emplace_back(
        [](void* p) { static_cast<InFlight*>(p)->count.fetch_sub(1, std::memory_order_acq_rel); },
        in_flight_.get());
    return true;
  }

 private:
  uint64_t max_;
  std::shared_ptr<InFlight> in_flight_;
};

}  // namespace

std::unique_ptr<proxy::Plugin> create_concurrency_limit(const YAML::Node& config,
                                                        const PluginEnv& env,
                                                        const Report& report) {
  if (!config.IsMap() || !plugins::only_keys(config, {"max"}, "concurrency_limit", report)) {
    if (!config.IsMap()) report(config, "'concurrency_limit' needs {max: N}");
    return nullptr;
  }
  const YAML::Node max = config["max"];
  uint64_t n = 0;
  bool good = max.IsScalar() && !max.Scalar().empty() &&
              max.Scalar().find_first_not_of("0123456789") == std::string::npos &&
              max.Scalar().size() <= 9 && (n = std::stoull(max.Scalar())) >= 1;
  if (!good) {
    report(max.IsDefined() ? max : config, "'max' must be a positive integer");
    return nullptr;
  }
  auto in_flight = env.shared ? env.shared->get<InFlight>("concurrency_limit:" + env.scope)
                              : std::make_shared<InFlight>();
  return std::make_unique<ConcurrencyLimit>(n, std::move(in_flight));
}

}  // namespace gatehouse::plugins::ratelimit
