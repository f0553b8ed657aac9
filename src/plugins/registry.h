// The plugin registry: the one place that knows every plugin kind. The
// engine and the config loader look kinds up here by name; plugins never
// include one another.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.h"
#include "proxy/plugin.h"

namespace gatehouse::auth {
class ConsumerTable;
class JwksRegistry;
}  // namespace gatehouse::auth

namespace gatehouse::plugins {

// State that plugin objects built from one config entry share, found by a
// name: the counters of a `global_plugins` rate limit, built once per route
// it applies to, are one store. Owned by the snapshot.
class SharedState {
 public:
  template <typename T, typename... Args>
  std::shared_ptr<T> get(const std::string& name, Args&&... args) {
    auto& slot = items_[name];
    if (!slot) slot = std::make_shared<T>(std::forward<Args>(args)...);
    return std::static_pointer_cast<T>(slot);
  }

 private:
  std::map<std::string, std::shared_ptr<void>> items_;
};

// Reports a config problem at a YAML node (the loader turns it into
// FILE:LINE:COL: message).
using Report = std::function<void(const YAML::Node& at, std::string message)>;

// What a plugin may use while it is built. The loader builds each plugin once
// only to validate it (`consumers` and `jwks` null, nothing started); the
// snapshot builds it for real.
struct PluginEnv {
  const config::Config& config;
  const auth::ConsumerTable* consumers = nullptr;
  auth::JwksRegistry* jwks = nullptr;
  unsigned workers = 1;  // RequestContext::worker is below this
  SharedState* shared = nullptr;
  // Who the entry belongs to: "route:NAME", or "global:N" for the N-th entry
  // of global_plugins (the same for every route it is built for).
  std::string scope = {};
  bool validating() const { return consumers == nullptr; }
};

struct PluginKind {
  std::string_view name;
  // Validates `config`, reporting every problem, and builds the plugin;
  // returns nullptr when the config is invalid.
  std::unique_ptr<proxy::Plugin> (*create)(const YAML::Node& config, const PluginEnv& env,
                                           const Report& report);
  // An auth plugin (plugins/auth/authenticator.h): the route's auth plugins
  // are combined into one that picks by the credential presented.
  bool authenticates = false;
};

const PluginKind* find_plugin_kind(std::string_view name);

// Turns a route's built plugins into what the engine runs: its auth plugins
// become one chain in their place (see plugins/auth/auth_chain.cc).
void assemble(std::vector<std::unique_ptr<proxy::Plugin>>& plugins);

}  // namespace gatehouse::plugins
