// `basic_auth`: HTTP Basic (RFC 7617) against the consumers' crypt(3)
// password hashes. crypt costs milliseconds by design, so a successful
// credential is remembered per worker under a keyed hash (never in the
// clear) and later requests with it cost one HMAC.
#include <crypt.h>

#include <cstring>

#include "auth/crypto.h"
#include "plugins/auth/authenticator.h"
#include "plugins/auth/per_worker.h"

namespace gatehouse::plugins::auth {
namespace {

namespace ga = gatehouse::auth;

struct DigestHash {
  std::size_t operator()(const ga::Sha256& d) const {
    std::size_t h;
    std::memcpy(&h, d.data(), sizeof h);
    return h;
  }
};

// Checked when the username is unknown, so that the answer takes as long as
// for a known user with a wrong password (no user enumeration by timing).
const std::string& dummy_hash() {
  static const std::string hash = [] {
    std::string setting = "$6$rounds=5000$gatehousedummy$";
    return std::string(crypt(ga::random_bytes(12).c_str(), setting.c_str()));
  }();
  return hash;
}

class BasicAuth : public Authenticator {
 public:
  BasicAuth(std::string realm, bool hide, const PluginEnv& env)
      : hide_(hide),
        consumers_(env.consumers),
        cache_(env.workers),
        cache_key_(ga::random_bytes(32)) {
    challenge_ = "Basic realm=\"" + realm + "\", charset=\"UTF-8\"";
  }

  Presence presented(const proxy::RequestContext& ctx) const override {
    bool ambiguous = false;
    return authorization(*ctx.head, "Basic", ambiguous) ? Presence::kStrong : Presence::kNone;
  }

  const std::string& challenge() const override { return challenge_; }

  bool on_request(const proxy::RequestContext& ctx, proxy::LocalReply& reply) const override {
    bool ambiguous = false;
    std::optional<std::string_view> creds = authorization(*ctx.head, "Basic", ambiguous);
    std::optional<std::string> decoded;
    if (creds && !ambiguous) decoded = ga::base64_decode(*creds);
    std::size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos) return fail(ctx, reply, "basic_auth: malformed credentials");
    std::string_view user = std::string_view(*decoded).substr(0, colon);
    std::string_view password = std::string_view(*decoded).substr(colon + 1);

    const ga::Sha256 key = ga::hmac_sha256(cache_key_, *decoded);
    auto& cache = cache_[ctx.worker];
    if (const ga::Consumer** hit = cache.find(key)) {
      identify_consumer(ctx.state->identity, *hit);
      return true;
    }
    const ga::BasicEntry* entry = consumers_->by_username(user);
    bool ok = ga::crypt_verify(password, entry ? entry->password_hash : dummy_hash());
    if (!ok || entry == nullptr) return fail(ctx, reply, "basic_auth: wrong username or password");
    cache.put(key, entry->consumer);
    identify_consumer(ctx.state->identity, entry->consumer);
    return true;
  }

  void on_upstream_request(const proxy::RequestContext&, proxy::HeaderEdits& edits) const override {
    if (hide_) edits.remove.emplace_back("Authorization");
  }

 private:
  bool fail(const proxy::RequestContext& ctx, proxy::LocalReply& reply,
            std::string_view why) const {
    refuse(reply, 401, "invalid credentials", challenge_);
    ctx.state->log_detail.assign(why);
    return false;
  }

  std::string challenge_;
  bool hide_;
  const ga::ConsumerTable* consumers_;
  PerWorker<BoundedMap<ga::Sha256, const ga::Consumer*, DigestHash>> cache_;
  std::string cache_key_;
};

}  // namespace

std::unique_ptr<proxy::Plugin> create_basic_auth(const YAML::Node& config, const PluginEnv& env,
                                                 const Report& report) {
  std::string realm = "gatehouse";
  bool hide = true;
  const ga::Consumer* anonymous = nullptr;
  bool ok = true;
  if (!config.IsNull()) {
    if (!config.IsMap()) {
      report(config, "'basic_auth' needs a map (or {})");
      return nullptr;
    }
    ok = only_keys(config, {"realm", "anonymous", "hide_credentials"}, "basic_auth", report);
    for (const auto& kv : config) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      if (key == "realm") {
        auto r = read_string(v, "'realm'", report);
        if (r && (r->find('"') != std::string::npos || r->find('\\') != std::string::npos ||
                  !http::is_field_value(*r))) {
          report(v, "'realm' must be printable, without quotes or backslashes");
          r.reset();
        }
        if (r) realm = *r;
        ok = ok && r.has_value();
      } else if (key == "anonymous") {
        ok = read_anonymous(v, env, report, anonymous) && ok;
      } else if (key == "hide_credentials") {
        auto b = read_bool(v, "'hide_credentials'", report);
        if (b) hide = *b;
        ok = ok && b.has_value();
      }
    }
  }
  if (!ok) return nullptr;
  if (env.validating()) return std::make_unique<BasicAuth>(realm, hide, env);
  auto p = std::make_unique<BasicAuth>(realm, hide, env);
  p->set_anonymous(anonymous);
  return p;
}

}  // namespace gatehouse::plugins::auth
