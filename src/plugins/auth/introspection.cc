// `oauth2_introspection`: opaque Bearer tokens checked by the authorization
// server's introspection endpoint (RFC 7662), with answers cached per
// worker. An endpoint that cannot answer is 503, never a silent allow.
#include <netdb.h>

#include <boost/asio/ip/address.hpp>
#include <cstdio>
#include <cstring>

#include "auth/crypto.h"
#include "auth/jwt.h"
#include "config/duration.h"
#include "plugins/auth/authenticator.h"
#include "plugins/auth/claims.h"
#include "plugins/auth/per_worker.h"
#include "proxy/http_client.h"

namespace gatehouse::plugins::auth {
namespace {

namespace ga = gatehouse::auth;
using boost::asio::ip::tcp;

struct Cached {
  bool active = false;
  TokenIdentity identity;
  int64_t until_s = 0;
};

struct Slot {
  BoundedMap<std::string, Cached> cache;
  int64_t last_log_s = 0;
};

struct IntrospectionConfig {
  http::HttpUrl url;
  tcp::endpoint endpoint;
  std::string authorization;  // "Authorization: Basic ...\r\n"
  int64_t cache_s = 60;
  int64_t timeout_ms = 2000;
  ClaimMapping mapping;
  bool hide = false;
};

class Introspection : public Authenticator {
 public:
  Introspection(IntrospectionConfig cfg, const PluginEnv& env)
      : cfg_(std::move(cfg)), slots_(env.workers) {}

  Presence presented(const proxy::RequestContext& ctx) const override {
    bool ambiguous = false;
    auto token = authorization(*ctx.head, "Bearer", ambiguous);
    if (!token) return Presence::kNone;
    return looks_like_jws(*token) ? Presence::kWeak : Presence::kStrong;
  }

  const std::string& challenge() const override { return challenge_; }
  bool async_request() const override { return true; }

  bool on_request(const proxy::RequestContext& ctx, proxy::LocalReply& reply) const override {
    // Only reached through on_request_async (async_request() is true).
    reply.status = 500;
    reply.detail = "internal error";
    return false;
  }

  proxy::Task<bool> on_request_async(const proxy::RequestContext& ctx,
                                     proxy::LocalReply& reply) const override {
    bool ambiguous = false;
    std::optional<std::string_view> token = authorization(*ctx.head, "Bearer", ambiguous);
    if (!token || ambiguous || token->empty() || token->size() > ga::kMaxTokenBytes) {
      co_return invalid(ctx, reply, "malformed token");
    }
    Slot& slot = slots_[ctx.worker];
    if (Cached* hit = slot.cache.find(*token)) {
      if (hit->until_s > ctx.unix_s) co_return decide(ctx, reply, *hit);
      slot.cache.erase(std::string(*token));
    }
    std::string body = "token=" + ga::form_urlencode(*token) + "&token_type_hint=access_token";
    std::string request =
        http::client_request("POST", cfg_.url,
                             cfg_.authorization +
                                 "Content-Type: application/x-www-form-urlencoded\r\n"
                                 "Accept: application/json\r\n",
                             body);
    http::ClientResponse resp;
    std::string error;
    // The context's head stays valid: the session does not read the next
    // request while this one is being authorized.
    bool ok =
        co_await proxy::http_call(cfg_.endpoint, std::move(request), cfg_.timeout_ms, resp, error);
    nlohmann::json answer;
    if (ok && resp.status != 200) {
      ok = false;
      error = "answered " + std::to_string(resp.status);
    }
    if (ok) {
      answer = nlohmann::json::parse(resp.body, nullptr, false);
      if (!answer.is_object() || !answer.contains("active") || !answer["active"].is_boolean()) {
        ok = false;
        error = "answer is not an RFC 7662 JSON object with a boolean 'active'";
      }
    }
    if (!ok) {
      if (ctx.unix_s != slot.last_log_s) {  // at most one line per second per worker
        slot.last_log_s = ctx.unix_s;
        std::string line = "gatehouse: oauth2_introspection " + cfg_.url.authority +
                           cfg_.url.target + ": " + error + "; answering 503\n";
        std::fwrite(line.data(), 1, line.size(), stderr);
      }
      reply.status = 503;
      reply.detail = "token introspection unavailable";
      ctx.state->log_detail = "oauth2_introspection: " + error;
      co_return false;
    }
    Cached entry;
    entry.active = answer["active"].get<bool>();
    entry.until_s = ctx.unix_s + cfg_.cache_s;
    if (entry.active) {
      if (auto exp = answer.find("exp"); exp != answer.end() && exp->is_number()) {
        double e = exp->get<double>();
        if (e <= static_cast<double>(ctx.unix_s)) entry.active = false;  // active, but expired
        if (e < static_cast<double>(entry.until_s)) entry.until_s = static_cast<int64_t>(e);
      }
    }
    if (entry.active &&
        !identity_from_claims(answer, cfg_.mapping, {"sub", "username"}, entry.identity)) {
      co_return invalid(ctx, reply, "unusable claim value");
    }
    slot.cache.put(std::string(*token), entry);
    co_return decide(ctx, reply, entry);
  }

  void on_upstream_request(const proxy::RequestContext&, proxy::HeaderEdits& edits) const override {
    strip_claim_headers(cfg_.mapping, cfg_.hide, edits);
  }

 private:
  bool decide(const proxy::RequestContext& ctx, proxy::LocalReply& reply,
              const Cached& entry) const {
    if (!entry.active) return invalid(ctx, reply, "token not active");
    return accept_token(ctx, reply, entry.identity, cfg_.mapping, "oauth2_introspection");
  }

  static bool invalid(const proxy::RequestContext& ctx, proxy::LocalReply& reply,
                      std::string_view why) {
    return refuse_invalid_token(ctx, reply, "oauth2_introspection", why);
  }

  std::string challenge_ = "Bearer realm=\"gatehouse\"";
  IntrospectionConfig cfg_;
  PerWorker<Slot> slots_;
};

std::optional<tcp::endpoint> resolve(const http::HttpUrl& url, std::string& error) {
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(url.host, ec);
  if (!ec) return tcp::endpoint(address, url.port);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(url.host.c_str(), nullptr, &hints, &found); rc != 0) {
    error = "cannot resolve '" + url.host + "': " + gai_strerror(rc);
    return std::nullopt;
  }
  tcp::endpoint ep;
  if (found->ai_family == AF_INET6) {
    sockaddr_in6 sa;
    std::memcpy(&sa, found->ai_addr, sizeof sa);
    boost::asio::ip::address_v6::bytes_type b;
    std::memcpy(b.data(), &sa.sin6_addr, 16);
    ep = tcp::endpoint(boost::asio::ip::address_v6(b), url.port);
  } else {
    sockaddr_in sa;
    std::memcpy(&sa, found->ai_addr, sizeof sa);
    ep = tcp::endpoint(boost::asio::ip::address_v4(ntohl(sa.sin_addr.s_addr)), url.port);
  }
  freeaddrinfo(found);
  return ep;
}

}  // namespace

std::unique_ptr<proxy::Plugin> create_introspection(const YAML::Node& config, const PluginEnv& env,
                                                    const Report& report) {
  if (!config.IsMap()) {
    report(config,
           "'oauth2_introspection' needs a map with 'url', 'client_id' and "
           "'client_secret_env'");
    return nullptr;
  }
  bool ok = only_keys(config,
                      {"url", "client_id", "client_secret_env", "cache", "timeout",
                       "required_scopes", "claims_to_headers", "anonymous", "hide_credentials"},
                      "oauth2_introspection", report);
  IntrospectionConfig cfg;
  const ga::Consumer* anonymous = nullptr;
  std::string client_id;
  std::string secret;
  bool have_url = false;
  bool have_secret = false;
  for (const auto& kv : config) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    const YAML::Node& v = kv.second;
    if (key == "url") {
      auto s = read_string(v, "'url'", report);
      std::string why;
      std::optional<http::HttpUrl> url;
      if (s) url = http::parse_http_url(*s, why);
      if (s && !url) report(v, "invalid 'url': " + why);
      if (url && !env.validating()) {
        auto ep = resolve(*url, why);
        if (!ep) {
          report(v, why);
          url.reset();
        } else {
          cfg.endpoint = *ep;
        }
      }
      if (url) cfg.url = *url;
      have_url = url.has_value();
      ok = ok && have_url;
    } else if (key == "client_id") {
      auto s = read_string(v, "'client_id'", report);
      if (s) client_id = *s;
      ok = ok && s.has_value();
    } else if (key == "client_secret_env") {
      auto name = read_string(v, "'client_secret_env'", report);
      const char* value = name ? std::getenv(name->c_str()) : nullptr;
      if (name && value == nullptr) report(v, "environment variable '" + *name + "' is not set");
      if (value != nullptr) {
        secret = value;
        have_secret = true;
      }
      ok = ok && value != nullptr;
    } else if (key == "cache" || key == "timeout") {
      std::string error;
      std::optional<config::Millis> d;
      if (v.IsScalar()) d = config::parse_duration(v.Scalar(), error);
      if (!d || (key == "timeout" && d->count() == 0)) {
        report(v, "'" + key + "' must be a duration such as 30s" +
                      (error.empty() ? "" : ": " + error));
        ok = false;
      } else if (key == "cache") {
        cfg.cache_s = d->count() / 1000;
      } else {
        cfg.timeout_ms = d->count();
      }
    } else if (key == "required_scopes") {
      auto list = read_strings(v, "'required_scopes'", report);
      if (list) cfg.mapping.required_scopes = std::move(*list);
      ok = ok && list.has_value();
    } else if (key == "claims_to_headers") {
      ok = read_claims_to_headers(v, report, cfg.mapping) && ok;
    } else if (key == "anonymous") {
      ok = read_anonymous(v, env, report, anonymous) && ok;
    } else if (key == "hide_credentials") {
      auto b = read_bool(v, "'hide_credentials'", report);
      if (b) cfg.hide = *b;
      ok = ok && b.has_value();
    }
  }
  if (ok && (!have_url || client_id.empty() || !have_secret)) {
    report(config, "'oauth2_introspection' needs 'url', 'client_id' and 'client_secret_env'");
    ok = false;
  }
  if (!ok) return nullptr;
  // RFC 6749 2.3.1: client credentials form-encoded, then HTTP Basic.
  cfg.authorization =
      "Authorization: Basic " +
      ga::base64_encode(ga::form_urlencode(client_id) + ":" + ga::form_urlencode(secret)) + "\r\n";
  auto p = std::make_unique<Introspection>(std::move(cfg), env);
  p->set_anonymous(anonymous);
  return p;
}

}  // namespace gatehouse::plugins::auth
