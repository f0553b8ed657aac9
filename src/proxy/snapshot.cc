#include "proxy/snapshot.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <stdexcept>
#include <thread>

#include "http/status.h"
#include "plugins/registry.h"

namespace gatehouse::proxy {
namespace {

namespace asio = boost::asio;

asio::ip::tcp::endpoint resolve(const config::Address& a, const std::string& file) {
  boost::system::error_code ec;
  asio::ip::address ip = asio::ip::make_address(a.host, ec);
  if (!ec) return {ip, a.port};
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(a.host, std::to_string(a.port), ec);
  if (ec || results.empty()) {
    throw std::runtime_error(file + ":" + std::to_string(a.mark.line) + ":" +
                             std::to_string(a.mark.col) + ": cannot resolve '" + a.host +
                             "': " + ec.message());
  }
  return *results.begin();
}

std::vector<RewritePiece> compile_rewrite(const std::string& tmpl) {
  std::vector<RewritePiece> pieces;
  std::size_t i = 0;
  while (i < tmpl.size()) {
    std::size_t open = tmpl.find('{', i);
    if (open == std::string::npos) {
      pieces.push_back({false, tmpl.substr(i)});
      break;
    }
    if (open > i) pieces.push_back({false, tmpl.substr(i, open - i)});
    std::size_t close = tmpl.find('}', open);
    std::string name = tmpl.substr(open + 1, close - open - 1);
    if (!name.empty() && name[0] == '*') name.erase(0, 1);
    pieces.push_back({true, name});
    i = close + 1;
  }
  return pieces;
}

std::string direct_head(const config::DirectResponse& r) {
  std::string head;
  http::append_status_line(head, r.status, {});
  for (const auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
  bool no_body = r.status < 200 || r.status == 204 || r.status == 304;
  if (!no_body) head += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  return head;
}

std::vector<std::unique_ptr<Plugin>> compile_plugins(const config::Route& route,
                                                     const plugins::PluginEnv& base_env) {
  const std::string& file = base_env.config.file;
  std::vector<std::unique_ptr<Plugin>> out;
  // global_plugins apply to every route; the route's own entry of a kind wins.
  std::vector<const config::PluginEntry*> entries;
  for (const config::PluginEntry& e : route.plugins) entries.push_back(&e);
  for (const config::PluginEntry& g : base_env.config.global_plugins) {
    bool overridden = std::any_of(route.plugins.begin(), route.plugins.end(),
                                  [&](const config::PluginEntry& e) { return e.kind == g.kind; });
    if (!overridden) entries.push_back(&g);
  }
  for (const config::PluginEntry* entry : entries) {
    const config::PluginEntry& e = *entry;
    plugins::PluginEnv env = base_env;
    const auto& global = base_env.config.global_plugins;
    env.scope = entry >= global.data() && entry < global.data() + global.size()
                    ? "global:" + std::to_string(entry - global.data())
                    : "route:" + route.name;
    const plugins::PluginKind* kind = plugins::find_plugin_kind(e.kind);
    std::string problem;
    std::unique_ptr<Plugin> p;
    if (kind != nullptr) {
      p = kind->create(YAML::Load(e.yaml), env, [&](const YAML::Node&, std::string message) {
        problem = std::move(message);
      });
    }
    if (!p) {
      // The loader validated this config already; reaching here is a bug.
      throw std::runtime_error(file + ":" + std::to_string(e.mark.line) + ":" +
                               std::to_string(e.mark.col) + ": plugin '" + e.kind +
                               "' failed to build: " + problem);
    }
    out.push_back(std::move(p));
  }
  plugins::assemble(out);
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a->stage() < b->stage(); });
  return out;
}

}  // namespace

std::shared_ptr<const Snapshot> compile_snapshot(config::Config cfg,
                                                 std::shared_ptr<auth::JwksRegistry> jwks) {
  auto snap = std::make_shared<Snapshot>(
      Snapshot{cfg, router::Router(cfg.routes), {}, {}, {}, {}, 1, {}, {}, {}, {}, {}, {}, {}, {}});
  snap->workers =
      cfg.workers != 0 ? cfg.workers : std::max(1u, std::thread::hardware_concurrency());
  snap->consumers = std::make_shared<auth::ConsumerTable>(cfg.consumers);
  snap->jwks = jwks ? std::move(jwks) : std::make_shared<auth::JwksRegistry>();
  if (cfg.upstream_signing) snap->signing_secret = cfg.upstream_signing->secret;
  for (const std::string& block : cfg.trusted_proxies) {
    std::string error;
    if (auto cidr = core::parse_cidr(block, error)) snap->trusted_proxies.push_back(*cidr);
  }
  snap->plugin_state = std::make_shared<plugins::SharedState>();
  std::vector<ListenerTls::ContextPtr> tls_contexts;
  for (const config::Listener& l : cfg.listeners) {
    if (!l.tls) {
      tls_contexts.push_back(nullptr);
      continue;
    }
    std::string error;
    tls_contexts.push_back(tls::ServerContext::create(server_settings(*l.tls), error));
    if (!tls_contexts.back()) {
      throw std::runtime_error(config::ConfigError{cfg.file, l.tls->mark, error}.to_string());
    }
  }
  snap->listener_tls = std::make_shared<ListenerTls>(std::move(tls_contexts));
  if (cfg.redis) {
    std::string error;
    snap->redis = ratelimit::parse_redis_url(cfg.redis->url, error);
    if (snap->redis) snap->redis->timeout_ms = cfg.redis->timeout.count();
  }
  if (cfg.limits.max_connections_per_ip > 0)
    snap->connections_per_ip = std::make_shared<ratelimit::CountTable>();
  plugins::PluginEnv env{snap->config, snap->consumers.get(), snap->jwks.get(), snap->workers};
  env.shared = snap->plugin_state.get();
  std::vector<std::string>& upstream_names = snap->upstream_names;
  for (const config::Upstream& u : cfg.upstreams) {
    CompiledUpstream cu;
    cu.name = u.name;
    cu.balance = u.balance;
    cu.hash_on = u.hash_on;
    cu.hash_key = u.hash_key;
    cu.connect_timeout_ms = u.connect_timeout.count();
    cu.read_timeout_ms = u.read_timeout.count();
    cu.protocol = u.protocol;
    for (const config::Target& t : u.targets) {
      cu.targets.push_back(
          {t.address.to_string(), resolve(t.address, cfg.file), t.weight, t.address.host});
    }
    if (u.tls) {
      tls::ClientSettings ts{u.tls->ca, u.tls->cert, u.tls->key, u.tls->verify,
                             u.protocol == config::UpstreamProtocol::kH2};
      std::string error;
      cu.tls = tls::ClientContext::create(ts, error);
      if (!cu.tls) {
        throw std::runtime_error(config::ConfigError{cfg.file, u.tls->mark, error}.to_string());
      }
      cu.tls_server_name = u.tls->server_name;
    }
    snap->upstreams.push_back(std::move(cu));
    upstream_names.push_back(u.name);
  }
  for (const config::Route& r : cfg.routes) {
    CompiledRoute cr;
    cr.name = r.name;
    snap->route_names.push_back(r.name);
    if (r.respond) {
      cr.direct = true;
      cr.direct_status = r.respond->status;
      cr.direct_head = direct_head(*r.respond);
      for (const auto& [name, value] : r.respond->headers) cr.direct_header_names.push_back(name);
      bool no_body =
          r.respond->status < 200 || r.respond->status == 204 || r.respond->status == 304;
      if (!no_body) cr.direct_body = r.respond->body;
    } else {
      for (std::size_t i = 0; i < upstream_names.size(); ++i) {
        if (upstream_names[i] == r.upstream) cr.upstream = static_cast<int>(i);
      }
      if (r.rewrite) cr.rewrite = compile_rewrite(*r.rewrite);
    }
    cr.plugins = compile_plugins(r, env);
    snap->routes.push_back(std::move(cr));
  }
  return snap;
}

}  // namespace gatehouse::proxy
