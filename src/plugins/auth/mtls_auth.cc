// `mtls_auth`: the client certificate verified during the TLS handshake
// (the listener's client_ca) names the consumer, by its subject CN, a SAN
// URI or a SAN DNS name. No certificate, or one that did not verify (a
// listener with `client_auth: optional` lets those through the handshake),
// is 401 on routes with this plugin (docs/tls.md).
#include <openssl/x509v3.h>

#include "plugins/auth/authenticator.h"

namespace gatehouse::plugins::auth {
namespace {

namespace ga = gatehouse::auth;

enum class From { kSubjectCn, kSanUri, kSanDns };

std::string_view as_view(const ASN1_STRING* s) {
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
          static_cast<std::size_t>(ASN1_STRING_length(s))};
}

class MtlsAuth : public Authenticator {
 public:
  MtlsAuth(From from, const PluginEnv& env) : from_(from), consumers_(env.consumers) {}

  Presence presented(const proxy::RequestContext& ctx) const override {
    return ctx.peer_certificate != nullptr ? Presence::kStrong : Presence::kNone;
  }

  // A client certificate is asked for in the handshake, not by an HTTP
  // challenge: 401s from this plugin carry no WWW-Authenticate of its own.
  const std::string& challenge() const override { return challenge_; }

  bool on_request(const proxy::RequestContext& ctx, proxy::LocalReply& reply) const override {
    if (ctx.peer_certificate == nullptr) {
      return fail(ctx, reply, "client certificate required", "mtls_auth: no client certificate");
    }
    if (!ctx.peer_verified) {
      return fail(ctx, reply, "client certificate not verified",
                  "mtls_auth: client certificate did not verify against client_ca");
    }
    const ga::Consumer* consumer = find_consumer(ctx.peer_certificate);
    if (consumer == nullptr) {
      return fail(ctx, reply, "client certificate names no consumer",
                  "mtls_auth: certificate names no consumer");
    }
    identify_consumer(ctx.state->identity, consumer);
    return true;
  }

 private:
  const ga::Consumer* find_consumer(X509* cert) const {
    if (from_ == From::kSubjectCn) {
      X509_NAME* subject = X509_get_subject_name(cert);
      int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
      if (idx < 0) return nullptr;
      return consumers_->by_name(
          as_view(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx))));
    }
    auto* sans =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (sans == nullptr) return nullptr;
    const ga::Consumer* found = nullptr;
    int type = from_ == From::kSanUri ? GEN_URI : GEN_DNS;
    for (int i = 0; i < sk_GENERAL_NAME_num(sans) && found == nullptr; ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != type) continue;
      found = consumers_->by_name(
          as_view(type == GEN_URI ? gn->d.uniformResourceIdentifier : gn->d.dNSName));
    }
    GENERAL_NAMES_free(sans);
    return found;
  }

  bool fail(const proxy::RequestContext& ctx, proxy::LocalReply& reply, std::string_view detail,
            std::string_view why) const {
    refuse(reply, 401, detail, challenge_);
    ctx.state->log_detail.assign(why);
    return false;
  }

  From from_;
  const ga::ConsumerTable* consumers_;
  std::string challenge_;
};

}  // namespace

std::unique_ptr<proxy::Plugin> create_mtls_auth(const YAML::Node& config, const PluginEnv& env,
                                                const Report& report) {
  From from = From::kSubjectCn;
  const ga::Consumer* anonymous = nullptr;
  bool ok = true;
  if (!config.IsNull()) {
    if (!config.IsMap()) {
      report(config, "'mtls_auth' needs a map (or {})");
      return nullptr;
    }
    ok = only_keys(config, {"consumer_from", "anonymous"}, "mtls_auth", report);
    for (const auto& kv : config) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      if (key == "consumer_from") {
        auto s = read_string(v, "'consumer_from'", report);
        if (s && *s == "subject_cn") {
          from = From::kSubjectCn;
        } else if (s && *s == "san_uri") {
          from = From::kSanUri;
        } else if (s && *s == "san_dns") {
          from = From::kSanDns;
        } else {
          if (s) report(v, "'consumer_from' must be subject_cn, san_uri or san_dns");
          ok = false;
        }
      } else if (key == "anonymous") {
        ok = read_anonymous(v, env, report, anonymous) && ok;
      }
    }
  }
  if (!ok) return nullptr;
  auto p = std::make_unique<MtlsAuth>(from, env);
  if (!env.validating()) p->set_anonymous(anonymous);
  return p;
}

}  // namespace gatehouse::plugins::auth
