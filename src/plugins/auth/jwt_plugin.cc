// `jwt`: Bearer JSON Web Tokens verified against a JWKS (by URL or OIDC
// discovery), static PEM keys, or an HMAC secret (docs/auth.md).
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "config/duration.h"
#include "http/client.h"
#include "plugins/auth/authenticator.h"
#include "plugins/auth/claims.h"
#include "plugins/auth/per_worker.h"

namespace gatehouse::plugins::auth {
namespace {

namespace ga = gatehouse::auth;

// A verified token is trusted from the cache for at most this long, so that
// a key withdrawn from the JWKS stops its tokens within minutes even when
// they carry no exp.
constexpr int64_t kMaxCacheSeconds = 300;

struct JwtConfig {
  std::vector<ga::JwtAlg> algorithms;
  ga::ClaimsPolicy policy;
  ClaimMapping mapping;
  std::string consumer_claim;
  bool hide = false;
};

bool is_scope_token(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
  }
  return true;
}

class JwtPlugin : public Authenticator {
 public:
  JwtPlugin(JwtConfig cfg, std::shared_ptr<const ga::KeySet> static_keys,
            std::shared_ptr<ga::JwksSource> source, const PluginEnv& env)
      : cfg_(std::move(cfg)),
        static_keys_(std::move(static_keys)),
        source_(std::move(source)),
        consumers_(env.consumers),
        slots_(env.workers),
        cache_(env.workers) {}

  Presence presented(const proxy::RequestContext& ctx) const override {
    bool ambiguous = false;
    auto token = authorization(*ctx.head, "Bearer", ambiguous);
    if (!token) return Presence::kNone;
    return looks_like_jws(*token) ? Presence::kStrong : Presence::kWeak;
  }

  const std::string& challenge() const override { return challenge_; }

  bool on_request(const proxy::RequestContext& ctx, proxy::LocalReply& reply) const override {
    bool ambiguous = false;
    std::optional<std::string_view> token = authorization(*ctx.head, "Bearer", ambiguous);
    if (!token || ambiguous || token->empty()) return invalid(ctx, reply, "malformed");
    if (token->size() > ga::kMaxTokenBytes) return invalid(ctx, reply, "too_large");

    auto& cache = cache_[ctx.worker];
    if (TokenIdentity* hit = cache.find(*token)) {
      if (hit->valid_until_s > ctx.unix_s) return accept(ctx, reply, *hit);
      cache.erase(std::string(*token));
    }

    const ga::KeySet* keys = static_keys_.get();
    if (source_) keys = slots_[ctx.worker].get(*source_);
    ga::JwtError error = ga::JwtError::kNone;
    if (keys == nullptr) {
      // No key set was ever fetched: the gateway's fault, unless the token
      // is not even a token.
      if (!ga::decode_jwt(*token, cfg_.algorithms, error)) {
        return invalid(ctx, reply, ga::jwt_error_name(error));
      }
      reply.status = 503;
      reply.detail = "authentication keys unavailable";
      ctx.state->log_detail = "jwt: no JWKS fetched yet from " + source_->location();
      return false;
    }
    ga::DecodedJwt jwt;
    error = ga::verify_jwt(*token, cfg_.algorithms, *keys, cfg_.policy, ctx.unix_s, jwt);
    if (error == ga::JwtError::kUnknownKey && source_) source_->request_refresh();
    if (error != ga::JwtError::kNone) return invalid(ctx, reply, ga::jwt_error_name(error));

    TokenIdentity identity;
    if (!identity_from_claims(jwt.claims, cfg_.mapping, {"sub"}, identity)) {
      return invalid(ctx, reply, "unusable claim value");
    }
    if (!cfg_.consumer_claim.empty()) {
      std::optional<std::string> name = claim_text(jwt.claims, cfg_.consumer_claim);
      identity.consumer = name ? consumers_->by_name(*name) : nullptr;
      if (identity.consumer == nullptr) return invalid(ctx, reply, "no such consumer");
    }
    int64_t horizon = ctx.unix_s + kMaxCacheSeconds;
    if (auto exp = jwt.claims.find("exp"); exp != jwt.claims.end() && exp->is_number()) {
      // Compared as a double first: a far-future exp (1e19) must not reach
      // an out-of-range integer conversion.
      double until = exp->get<double>() + static_cast<double>(cfg_.policy.skew_seconds);
      if (until < static_cast<double>(horizon)) horizon = static_cast<int64_t>(until);
    }
    identity.valid_until_s = horizon;
    cache.put(std::string(*token), identity);
    return accept(ctx, reply, identity);
  }

  void on_upstream_request(const proxy::RequestContext&, proxy::HeaderEdits& edits) const override {
    strip_claim_headers(cfg_.mapping, cfg_.hide, edits);
  }

 private:
  bool accept(const proxy::RequestContext& ctx, proxy::LocalReply& reply,
              const TokenIdentity& identity) const {
    return accept_token(ctx, reply, identity, cfg_.mapping, "jwt");
  }

  static bool invalid(const proxy::RequestContext& ctx, proxy::LocalReply& reply,
                      std::string_view why) {
    return refuse_invalid_token(ctx, reply, "jwt", why);
  }

  std::string challenge_ = "Bearer realm=\"gatehouse\"";
  JwtConfig cfg_;
  std::shared_ptr<const ga::KeySet> static_keys_;
  std::shared_ptr<ga::JwksSource> source_;
  const ga::ConsumerTable* consumers_;
  PerWorker<ga::JwksSlot> slots_;
  PerWorker<BoundedMap<std::string, TokenIdentity>> cache_;
};

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<int64_t> read_seconds(const YAML::Node& node, std::string_view label,
                                    const Report& report, int64_t min_ms) {
  if (!node.IsScalar()) {
    report(node, std::string(label) + " must be a duration such as 30s");
    return std::nullopt;
  }
  std::string error;
  auto d = config::parse_duration(node.Scalar(), error);
  if (!d) {
    report(node, "invalid " + std::string(label) + ": " + error);
    return std::nullopt;
  }
  if (d->count() < min_ms) {
    report(node, std::string(label) + " is too short");
    return std::nullopt;
  }
  return d->count();
}

}  // namespace

std::unique_ptr<proxy::Plugin> create_jwt(const YAML::Node& config, const PluginEnv& env,
                                          const Report& report) {
  if (!config.IsMap()) {
    report(config, "'jwt' needs a map with a key source (jwks_url, discovery, keys or secret_env)");
    return nullptr;
  }
  bool ok =
      only_keys(config,
                {"jwks_url", "discovery", "keys", "secret_env", "issuer", "audience", "algorithms",
                 "clock_skew", "required_scopes", "claims_to_headers", "consumer_claim",
                 "roles_claim", "refresh_interval", "anonymous", "hide_credentials"},
                "jwt", report);
  JwtConfig cfg;
  std::string jwks_url;
  bool discovery = false;
  int64_t refresh_ms = 300'000;
  std::shared_ptr<ga::KeySet> static_keys;
  const ga::Consumer* anonymous = nullptr;
  int sources = 0;
  enum class Kind { kNone, kPublic, kSecret } kind = Kind::kNone;
  std::vector<std::pair<std::string, YAML::Node>> algorithm_nodes;
  // optional + emplace: assigning one yaml-cpp Node to another that is
  // already bound rewrites the document node it points at.
  std::optional<YAML::Node> source_node;

  for (const auto& kv : config) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    const YAML::Node& v = kv.second;
    if (key == "jwks_url") {
      ++sources;
      kind = Kind::kPublic;
      source_node.emplace(kv.first);
      if (auto s = read_string(v, "'jwks_url'", report)) {
        std::string why;
        if (!http::parse_http_url(*s, why)) {
          report(v, "invalid 'jwks_url': " + why);
          ok = false;
        }
        jwks_url = *s;
      } else {
        ok = false;
      }
    } else if (key == "discovery") {
      auto b = read_bool(v, "'discovery'", report);
      ok = ok && b.has_value();
      if (b && *b) {
        ++sources;
        kind = Kind::kPublic;
        source_node.emplace(kv.first);
        discovery = true;
      }
    } else if (key == "keys") {
      ++sources;
      kind = Kind::kPublic;
      source_node.emplace(kv.first);
      if (!v.IsSequence() || v.size() == 0) {
        report(v, "'keys' must be a list of {kid, pem_file}");
        ok = false;
        continue;
      }
      static_keys = std::make_shared<ga::KeySet>();
      for (const YAML::Node& item : v) {
        if (!item.IsMap() || !only_keys(item, {"kid", "pem_file"}, "jwt keys", report) ||
            !item["pem_file"].IsDefined()) {
          if (!item.IsMap() || !item["pem_file"].IsDefined())
            report(item, "each key needs 'pem_file' (and usually 'kid')");
          ok = false;
          continue;
        }
        std::string kid = item["kid"].IsDefined() && item["kid"].IsScalar() ? item["kid"].Scalar()
                                                                            : std::string();
        auto file = read_string(item["pem_file"], "'pem_file'", report);
        if (!file) {
          ok = false;
          continue;
        }
        std::filesystem::path path(*file);
        if (path.is_relative() && !env.config.file.empty()) {
          path = std::filesystem::path(env.config.file).parent_path() / path;
        }
        std::optional<std::string> pem = read_file(path.string());
        std::string error;
        std::shared_ptr<const ga::Key> k;
        if (pem) k = ga::Key::from_pem(*pem, kid, &error);
        if (!k) {
          report(item["pem_file"],
                 pem ? "unusable key in '" + *file + "': " + error : "cannot read '" + *file + "'");
          ok = false;
          continue;
        }
        static_keys->keys.push_back(std::move(k));
      }
    } else if (key == "secret_env") {
      ++sources;
      kind = Kind::kSecret;
      source_node.emplace(kv.first);
      auto name = read_string(v, "'secret_env'", report);
      const char* value = name ? std::getenv(name->c_str()) : nullptr;
      if (!name) {
        ok = false;
      } else if (value == nullptr) {
        report(v, "environment variable '" + *name + "' is not set");
        ok = false;
      } else if (std::strlen(value) < 32) {
        // RFC 7518 3.2: a key at least as long as the hash output.
        report(v, "the HMAC secret in '" + *name + "' must be at least 32 bytes");
        ok = false;
      } else {
        static_keys = std::make_shared<ga::KeySet>();
        static_keys->keys.push_back(ga::Key::from_secret(value));
      }
    } else if (key == "issuer") {
      auto s = read_string(v, "'issuer'", report);
      if (s) cfg.policy.issuer = *s;
      ok = ok && s.has_value();
    } else if (key == "audience") {
      auto s = read_string(v, "'audience'", report);
      if (s) cfg.policy.audience = *s;
      ok = ok && s.has_value();
    } else if (key == "algorithms") {
      auto list = read_strings(v, "'algorithms'", report);
      if (!list || list->empty()) {
        if (list) report(v, "'algorithms' needs at least one algorithm");
        ok = false;
        continue;
      }
      for (std::size_t i = 0; i < list->size(); ++i) {
        auto alg = ga::parse_alg((*list)[i]);
        if (!alg) {
          report(v[i], "unsupported algorithm '" + (*list)[i] +
                           "' (RS256/384/512, PS256/384/512, ES256/384, EdDSA, HS256/384/512)");
          ok = false;
          continue;
        }
        cfg.algorithms.push_back(*alg);
        algorithm_nodes.emplace_back((*list)[i], v[i]);
      }
    } else if (key == "clock_skew") {
      auto s = read_seconds(v, "'clock_skew'", report, 0);
      if (s) cfg.policy.skew_seconds = *s / 1000;
      ok = ok && s.has_value();
    } else if (key == "required_scopes") {
      auto list = read_strings(v, "'required_scopes'", report);
      if (list) {
        for (std::size_t i = 0; i < list->size(); ++i) {
          if (!is_scope_token((*list)[i])) {
            report(v[i], "a scope must be printable ASCII without spaces or quotes");
            ok = false;
          }
        }
        cfg.mapping.required_scopes = std::move(*list);
      }
      ok = ok && list.has_value();
    } else if (key == "claims_to_headers") {
      ok = read_claims_to_headers(v, report, cfg.mapping) && ok;
    } else if (key == "consumer_claim") {
      auto s = read_string(v, "'consumer_claim'", report);
      if (s) cfg.consumer_claim = *s;
      ok = ok && s.has_value();
    } else if (key == "roles_claim") {
      auto s = read_string(v, "'roles_claim'", report);
      if (s) cfg.mapping.roles_claim = *s;
      ok = ok && s.has_value();
    } else if (key == "refresh_interval") {
      auto s = read_seconds(v, "'refresh_interval'", report, 1000);
      if (s) refresh_ms = *s;
      ok = ok && s.has_value();
    } else if (key == "anonymous") {
      ok = read_anonymous(v, env, report, anonymous) && ok;
    } else if (key == "hide_credentials") {
      auto b = read_bool(v, "'hide_credentials'", report);
      if (b) cfg.hide = *b;
      ok = ok && b.has_value();
    }
  }
  if (sources == 0) {
    report(config, "'jwt' needs a key source: jwks_url, discovery: true, keys or secret_env");
    return nullptr;
  }
  if (sources > 1) {
    report(*source_node,
           "'jwt' takes exactly one key source (jwks_url, discovery, keys, secret_env)");
    return nullptr;
  }
  if (discovery) {
    std::string why;
    if (cfg.policy.issuer.empty()) {
      report(*source_node, "'discovery: true' needs the 'issuer' whose discovery document to read");
      ok = false;
    } else if (!http::parse_http_url(cfg.policy.issuer, why)) {
      report(config["issuer"], "'issuer' is not a discovery URL: " + why);
      ok = false;
    }
  }
  if (cfg.algorithms.empty()) {
    cfg.algorithms.push_back(kind == Kind::kSecret ? ga::JwtAlg::kHS256 : ga::JwtAlg::kRS256);
  }
  std::size_t secret_size = 0;
  if (kind == Kind::kSecret && static_keys) {
    const char* value = std::getenv(config["secret_env"].Scalar().c_str());
    secret_size = value ? std::strlen(value) : 0;
  }
  for (const auto& [name, node] : algorithm_nodes) {
    bool hmac = ga::is_hmac(*ga::parse_alg(name));
    // RFC 7518 3.2: an HMAC key at least as long as the hash output.
    std::size_t need = name == "HS512" ? 64 : name == "HS384" ? 48 : 32;
    if (hmac && kind == Kind::kSecret && static_keys && secret_size < need) {
      report(node, "algorithm '" + name + "' needs a secret of at least " + std::to_string(need) +
                       " bytes");
      ok = false;
    }
    if (hmac != (kind == Kind::kSecret)) {
      report(node, hmac ? "algorithm '" + name + "' needs 'secret_env' (an HMAC key)"
                        : "algorithm '" + name + "' needs a public key, not 'secret_env'");
      ok = false;
    }
  }
  if (!ok) return nullptr;
  std::shared_ptr<ga::JwksSource> source;
  if (!env.validating() && (discovery || !jwks_url.empty())) {
    source = env.jwks->source(discovery ? cfg.policy.issuer : jwks_url, discovery, refresh_ms);
  }
  auto p =
      std::make_unique<JwtPlugin>(std::move(cfg), std::move(static_keys), std::move(source), env);
  p->set_anonymous(anonymous);
  return p;
}

}  // namespace gatehouse::plugins::auth
