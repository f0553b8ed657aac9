// The plugin registry: the one place that knows every plugin kind. The
// engine and the config loader look kinds up here by name; plugins never
// include one another.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/plugin.h"

namespace gatehouse::plugins {

// Reports a config problem at a YAML node (the loader turns it into
// FILE:LINE:COL: message).
using Report = std::function<void(const YAML::Node& at, std::string message)>;

struct PluginKind {
  std::string_view name;
  // Validates `config`, reporting every problem, and builds the plugin;
  // returns nullptr when the config is invalid.
  std::unique_ptr<proxy::Plugin> (*create)(const YAML::Node& config, const Report& report);
};

const PluginKind* find_plugin_kind(std::string_view name);

}  // namespace gatehouse::plugins
