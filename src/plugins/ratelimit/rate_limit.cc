// `rate_limit`: counts requests per key in a window, locally (exact for the
// instance, lock-free) or on Redis (exact for the fleet), and refuses with
// 429 beyond the limit (docs/protection.md).
#include <atomic>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "auth/consumers.h"
#include "config/duration.h"
#include "core/clock.h"
#include "http/http1_parser.h"
#include "plugins/plugin_config.h"
#include "plugins/ratelimit/ratelimit_plugins.h"
#include "ratelimit/local_store.h"
#include "ratelimit/redis_client.h"
#include "ratelimit/redis_scripts.h"

namespace gatehouse::plugins::ratelimit {
namespace {

namespace rl = gatehouse::ratelimit;

std::atomic<uint64_t> g_degraded{0};
std::atomic<uint64_t> g_untracked{0};
std::atomic<uint64_t> g_refused{0};

struct KeyPart {
  enum Kind : uint8_t { kConsumer, kIp, kRoute, kHeader, kClaim } kind;
  std::string name;  // header or claim name
};

// One limit: its spec and the local table that counts it.
struct Limit {
  rl::LimitSpec spec;
  std::shared_ptr<rl::LocalStore> store;
  std::string label;   // "20/60s" for the log
  std::string suffix;  // "|p:pro" for a plan's limit: its own counters
};

class RateLimit : public proxy::Plugin {
 public:
  proxy::Stage stage() const override { return proxy::Stage::kRateLimit; }
  bool async_request() const override { return redis_; }

  bool on_request(const proxy::RequestContext& ctx, proxy::LocalReply& reply) const override {
    const Limit* limit = pick(ctx);
    if (limit == nullptr) return true;
    std::string& key = key_buffer();
    build_key(ctx, key);
    key.append(limit->suffix);
    rl::Decision d =
        limit->store->hit(std::hash<std::string_view>()(key), limit->spec, core::coarse_ms());
    return decide(ctx, reply, *limit, d, false);
  }

  proxy::Task<bool> on_request_async(const proxy::RequestContext& ctx,
                                     proxy::LocalReply& reply) const override {
    const Limit* limit = pick(ctx);
    if (limit == nullptr) co_return true;
    std::string key;
    build_key(ctx, key);
    key.append(limit->suffix);
    rl::RedisReply r;
    if (ctx.redis != nullptr) {
      r = co_await ctx.redis->eval(rl::redis_script(limit->spec.algorithm),
                                   rl::redis_keys(key, limit->spec), rl::redis_args(limit->spec));
    } else {
      r.error = "no redis connection";
    }
    rl::Decision d;
    if (r.ok && rl::decision_from_reply(r, limit->spec, d)) {
      co_return decide(ctx, reply, *limit, d, false);
    }
    if (deny_on_error_) {
      reply.status = 503;
      reply.detail = "rate limit store unavailable";
      ctx.state->log_detail =
          "rate_limit: redis unavailable (" + r.error + "), on_store_error deny";
      co_return false;
    }
    // Degraded: the local table keeps limiting until Redis answers again.
    g_degraded.fetch_add(1, std::memory_order_relaxed);
    d = limit->store->hit(std::hash<std::string_view>()(key), limit->spec, core::coarse_ms());
    co_return decide(ctx, reply, *limit, d, true);
  }

  std::vector<KeyPart> key_;
  std::string scope_;
  Limit own_;
  bool has_own_ = false;
  bool use_plan_ = false;
  std::map<std::string, Limit, std::less<>> plans_;  // plan name -> limit
  bool redis_ = false;
  bool deny_on_error_ = false;

 private:
  static std::string& key_buffer() {
    thread_local std::string buffer;
    return buffer;
  }

  const Limit* pick(const proxy::RequestContext& ctx) const {
    if (use_plan_) {
      const gatehouse::auth::Consumer* c = ctx.state->identity.consumer;
      if (c != nullptr && !c->plan.empty()) {
        auto it = plans_.find(c->plan);
        if (it != plans_.end()) return &it->second;
      }
    }
    return has_own_ ? &own_ : nullptr;
  }

  void build_key(const proxy::RequestContext& ctx, std::string& out) const {
    out.assign(scope_);
    const proxy::Identity& id = ctx.state->identity;
    for (const KeyPart& part : key_) {
      out.push_back('|');
      switch (part.kind) {
        case KeyPart::kConsumer:
          if (id.consumer != nullptr) {
            out.append("c:").append(id.consumer->name);
          } else if (id.verified && !id.user_id.empty()) {
            out.append("u:").append(id.user_id);
          } else {
            out.append("ip:").append(ctx.client_ip);
          }
          break;
        case KeyPart::kIp:
          out.append("ip:").append(ctx.client_ip);
          break;
        case KeyPart::kRoute:
          out.append("r");
          break;
        case KeyPart::kHeader: {
          std::string_view v = plugins::find_header(*ctx.head, part.name);
          if (v.empty()) {
            out.append("ip:").append(ctx.client_ip);
          } else {
            out.append("h:").append(v);
          }
          break;
        }
        case KeyPart::kClaim: {
          std::string value;
          if (part.name == "sub" && id.verified && !id.user_id.empty()) value = id.user_id;
          if (value.empty() && id.claims) {
            auto it = id.claims->find(part.name);
            if (it != id.claims->end())
              value = it->is_string() ? it->get<std::string>() : it->dump();
          }
          if (value.empty()) {
            out.append("ip:").append(ctx.client_ip);
          } else {
            out.append("k:").append(value);
          }
          break;
        }
      }
    }
  }

  bool decide(const proxy::RequestContext& ctx, proxy::LocalReply& reply, const Limit& limit,
              const rl::Decision& d, bool degraded) const {
    if (!d.tracked) g_untracked.fetch_add(1, std::memory_order_relaxed);
    report_headers(*ctx.state, d);
    if (degraded && ctx.state->log_detail.empty())
      ctx.state->log_detail = "rate_limit: redis unavailable, limited locally";
    if (d.allowed) return true;
    g_refused.fetch_add(1, std::memory_order_relaxed);
    reply.status = 429;
    reply.detail = "rate limit exceeded";
    reply.headers.emplace_back("Retry-After",
                               std::to_string(std::max<int64_t>(1, d.retry_after_s)));
    ctx.state->log_detail = "rate_limit: key " + key_label() + ", limit " + limit.label +
                            (degraded ? " (redis unavailable, limited locally)" : "");
    return false;
  }

  // The least remaining of every limit on the request is what the client
  // sees (RateLimit headers draft: the closest limit).
  static void report_headers(proxy::RequestState& state, const rl::Decision& d) {
    auto& h = state.response_headers;
    for (std::size_t i = 0; i < h.size(); ++i) {
      if (h[i].first != "RateLimit-Remaining") continue;
      if (std::stoull(h[i].second) <= d.remaining) return;
      h.erase(h.begin() + static_cast<std::ptrdiff_t>(i) - 1,
              h.begin() + static_cast<std::ptrdiff_t>(i) + 2);
      break;
    }
    h.emplace_back("RateLimit-Limit", std::to_string(d.limit));
    h.emplace_back("RateLimit-Remaining", std::to_string(d.remaining));
    h.emplace_back("RateLimit-Reset", std::to_string(std::max<int64_t>(0, d.reset_s)));
  }

  std::string key_label() const {
    std::string out;
    for (const KeyPart& p : key_) {
      if (!out.empty()) out.push_back('+');
      switch (p.kind) {
        case KeyPart::kConsumer:
          out += "consumer";
          break;
        case KeyPart::kIp:
          out += "ip";
          break;
        case KeyPart::kRoute:
          out += "route";
          break;
        case KeyPart::kHeader:
          out += "header:" + p.name;
          break;
        case KeyPart::kClaim:
          out += "claim:" + p.name;
          break;
      }
    }
    return out;
  }
};

std::optional<KeyPart> parse_key(const YAML::Node& node, const Report& report) {
  const std::string text = node.IsScalar() ? node.Scalar() : std::string();
  if (text == "consumer") return KeyPart{KeyPart::kConsumer, {}};
  if (text == "ip") return KeyPart{KeyPart::kIp, {}};
  if (text == "route") return KeyPart{KeyPart::kRoute, {}};
  if (text.starts_with("header:") && http::is_token(text.substr(7)))
    return KeyPart{KeyPart::kHeader, text.substr(7)};
  if (text.starts_with("claim:") && text.size() > 6)
    return KeyPart{KeyPart::kClaim, text.substr(6)};
  report(node, "unknown rate limit key '" + text +
                   "' (consumer, ip, route, header:NAME, claim:NAME, or a list of them)");
  return std::nullopt;
}

std::string label(const rl::LimitSpec& spec) {
  return std::to_string(spec.limit) + "/" + std::to_string(spec.window_ms / 1000) + "s";
}

}  // namespace

std::unique_ptr<proxy::Plugin> create_rate_limit(const YAML::Node& config, const PluginEnv& env,
                                                 const Report& report) {
  if (!config.IsMap()) {
    report(config, "'rate_limit' needs a map with 'limit' and 'window' (or 'use_plan: true')");
    return nullptr;
  }
  bool ok = only_keys(
      config,
      {"limit", "window", "key", "algorithm", "burst", "store", "on_store_error", "use_plan"},
      "rate_limit", report);
  auto p = std::make_unique<RateLimit>();
  rl::LimitSpec spec;
  bool have_limit = false, have_window = false;
  uint64_t burst = 0;
  YAML::Node burst_node;
  for (const auto& kv : config) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    const YAML::Node& v = kv.second;
    if (key == "limit") {
      uint64_t n = 0;
      bool good = v.IsScalar() && !v.Scalar().empty() &&
                  v.Scalar().find_first_not_of("0123456789") == std::string::npos &&
                  v.Scalar().size() <= 9 && (n = std::stoull(v.Scalar())) >= 1 &&
                  n <= rl::kMaxLimit;
      if (!good) {
        report(v, "'limit' must be an integer from 1 to " + std::to_string(rl::kMaxLimit));
        ok = false;
      } else {
        spec.limit = n;
        have_limit = true;
      }
    } else if (key == "window") {
      std::string error;
      std::optional<config::Millis> d;
      if (v.IsScalar()) d = config::parse_duration(v.Scalar(), error);
      if (!d || d->count() < 1000 || d->count() > 30LL * 24 * 3600 * 1000) {
        report(v,
               d ? "'window' must be between 1s and 30d"
                 : "'window' must be a duration such as 1m" + (error.empty() ? "" : ": " + error));
        ok = false;
      } else {
        spec.window_ms = d->count();
        have_window = true;
      }
    } else if (key == "key") {
      if (v.IsSequence()) {
        if (v.size() == 0) {
          report(v, "'key' needs at least one part");
          ok = false;
        }
        for (const YAML::Node& item : v) {
          auto part = parse_key(item, report);
          if (part) p->key_.push_back(*part);
          ok = ok && part.has_value();
        }
      } else {
        auto part = parse_key(v, report);
        if (part) p->key_.push_back(*part);
        ok = ok && part.has_value();
      }
    } else if (key == "algorithm") {
      const std::string a = v.IsScalar() ? v.Scalar() : std::string();
      if (a == "sliding_window") {
        spec.algorithm = rl::Algorithm::kSlidingWindow;
      } else if (a == "token_bucket") {
        spec.algorithm = rl::Algorithm::kTokenBucket;
      } else if (a == "fixed_window") {
        spec.algorithm = rl::Algorithm::kFixedWindow;
      } else {
        report(v, "unknown algorithm '" + a + "' (sliding_window, token_bucket, fixed_window)");
        ok = false;
      }
    } else if (key == "burst") {
      burst_node = v;
      bool good = v.IsScalar() && !v.Scalar().empty() &&
                  v.Scalar().find_first_not_of("0123456789") == std::string::npos &&
                  v.Scalar().size() <= 9 && (burst = std::stoull(v.Scalar())) >= 1 &&
                  burst <= rl::kMaxLimit;
      if (!good) {
        report(v, "'burst' must be an integer from 1 to " + std::to_string(rl::kMaxLimit));
        ok = false;
      }
    } else if (key == "store") {
      const std::string s = v.IsScalar() ? v.Scalar() : std::string();
      if (s == "redis") {
        p->redis_ = true;
        if (!env.config.redis) {
          report(v, "'store: redis' needs a top-level 'redis: {url: ...}'");
          ok = false;
        }
      } else if (s != "local") {
        report(v, "'store' must be local or redis");
        ok = false;
      }
    } else if (key == "on_store_error") {
      const std::string s = v.IsScalar() ? v.Scalar() : std::string();
      if (s == "deny") {
        p->deny_on_error_ = true;
      } else if (s != "allow") {
        report(v, "'on_store_error' must be allow or deny");
        ok = false;
      }
    } else if (key == "use_plan") {
      auto b = read_bool(v, "'use_plan'", report);
      if (b) p->use_plan_ = *b;
      ok = ok && b.has_value();
    }
  }
  if (!ok) return nullptr;
  if (burst != 0 && spec.algorithm != rl::Algorithm::kTokenBucket) {
    report(burst_node, "'burst' only applies to algorithm: token_bucket");
    return nullptr;
  }
  spec.burst = burst;
  if (have_limit != have_window) {
    report(config, "'rate_limit' needs both 'limit' and 'window'");
    return nullptr;
  }
  if (!have_limit && !p->use_plan_) {
    report(config, "'rate_limit' needs 'limit' and 'window', or 'use_plan: true'");
    return nullptr;
  }
  if (p->key_.empty()) p->key_.push_back({KeyPart::kConsumer, {}});
  p->scope_ = env.scope;
  auto store = [&](const std::string& name) {
    if (env.shared == nullptr) return std::make_shared<rl::LocalStore>(16);
    return env.shared->get<rl::LocalStore>("rate_limit:" + env.scope + ":" + name);
  };
  if (have_limit) {
    p->has_own_ = true;
    p->own_ = Limit{spec, store("own"), label(spec), {}};
  }
  if (p->use_plan_) {
    for (const config::Plan& plan : env.config.plans) {
      if (plan.limit == 0) continue;
      rl::LimitSpec ps = spec;
      ps.limit = plan.limit;
      ps.window_ms = plan.window.count();
      if (ps.burst == 0 || ps.algorithm != rl::Algorithm::kTokenBucket) ps.burst = 0;
      p->plans_.emplace(plan.name,
                        Limit{ps, store("plan:" + plan.name), label(ps), "|p:" + plan.name});
    }
  }
  return p;
}

void append_metrics(std::string& out) {
  out.append("# HELP gatehouse_rate_limit_refused_total Requests refused by a rate limit.\n");
  out.append("# TYPE gatehouse_rate_limit_refused_total counter\n");
  out.append("gatehouse_rate_limit_refused_total " + std::to_string(g_refused.load()) + "\n");
  out.append(
      "# HELP gatehouse_rate_limit_degraded_total Requests limited locally because Redis "
      "failed.\n");
  out.append("# TYPE gatehouse_rate_limit_degraded_total counter\n");
  out.append("gatehouse_rate_limit_degraded_total " + std::to_string(g_degraded.load()) + "\n");
  out.append(
      "# HELP gatehouse_rate_limit_untracked_total Requests let through because the key table "
      "was full.\n");
  out.append("# TYPE gatehouse_rate_limit_untracked_total counter\n");
  out.append("gatehouse_rate_limit_untracked_total " + std::to_string(g_untracked.load()) + "\n");
}

}  // namespace gatehouse::plugins::ratelimit
