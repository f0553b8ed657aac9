// What every auth plugin (key_auth, basic_auth, jwt, oauth2_introspection)
// shares: how strongly a request presents its kind of credential, its
// challenge, its anonymous consumer, and the helpers that read credentials.
// A route's auth plugins run as one chain (auth_chain.cc) that picks the
// plugin by the credential the request presents (docs/auth.md).
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <string_view>

#include "auth/consumers.h"
#include "plugins/plugin_config.h"
#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins::auth {

// How a request presents a plugin's credential.
enum class Presence : uint8_t {
  kNone,
  kWeak,    // a Bearer token of the shape the other bearer plugin prefers
  kStrong,  // exactly this plugin's kind
};

class Authenticator : public proxy::Plugin {
 public:
  proxy::Stage stage() const override { return proxy::Stage::kAuthn; }
  virtual Presence presented(const proxy::RequestContext& ctx) const = 0;
  // Runs for every request on the route, whichever plugin checks it: drops
  // this plugin's credential from what goes upstream when it hides it.
  virtual void hide_credential(const proxy::RequestContext& ctx) const {}
  // The WWW-Authenticate value when the request presents nothing.
  virtual const std::string& challenge() const = 0;
  const gatehouse::auth::Consumer* anonymous() const { return anonymous_; }
  void set_anonymous(const gatehouse::auth::Consumer* c) { anonymous_ = c; }

 protected:
  const gatehouse::auth::Consumer* anonymous_ = nullptr;
};

// The credentials of `Authorization: <scheme> <credentials>` (scheme compared
// case-insensitively, RFC 9110 11.1); nullopt when absent or another scheme.
// Several Authorization fields are ambiguous: `ambiguous` is set.
std::optional<std::string_view> authorization(const http::RequestHead& head,
                                              std::string_view scheme, bool& ambiguous);

// Three base64url parts joined by dots: a JWS compact token (RFC 7515 7.1).
bool looks_like_jws(std::string_view token);

// 401 with one challenge.
void refuse(proxy::LocalReply& reply, int status, std::string_view detail,
            std::string_view challenge);

// Reads `anonymous: NAME` (validated against the configured consumers);
// false when it names none. At build time resolves it into `out`.
bool read_anonymous(const YAML::Node& node, const PluginEnv& env, const Report& report,
                    const gatehouse::auth::Consumer*& out);

// Marks the request as authenticated by a consumer (key, basic...).
void identify_consumer(proxy::Identity& identity, const gatehouse::auth::Consumer* consumer);

std::unique_ptr<proxy::Plugin> create_key_auth(const YAML::Node& config, const PluginEnv& env,
                                               const Report& report);
std::unique_ptr<proxy::Plugin> create_basic_auth(const YAML::Node& config, const PluginEnv& env,
                                                 const Report& report);
std::unique_ptr<proxy::Plugin> create_jwt(const YAML::Node& config, const PluginEnv& env,
                                          const Report& report);
std::unique_ptr<proxy::Plugin> create_introspection(const YAML::Node& config, const PluginEnv& env,
                                                    const Report& report);
std::unique_ptr<proxy::Plugin> create_mtls_auth(const YAML::Node& config, const PluginEnv& env,
                                                const Report& report);
std::unique_ptr<proxy::Plugin> create_acl(const YAML::Node& config, const PluginEnv& env,
                                          const Report& report);

}  // namespace gatehouse::plugins::auth
