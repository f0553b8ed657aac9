// The plugin registry: the one place that knows every plugin kind. The
// engine and the config loader look kinds up here by name; plugins never
// include one another.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
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
