#include "plugins/registry.h"

#include "plugins/headers/headers_plugin.h"

namespace gatehouse::plugins {

namespace {

// One line per plugin kind.
constexpr PluginKind kKinds[] = {
    {"headers", &headers::create},
};

}  // namespace

const PluginKind* find_plugin_kind(std::string_view name) {
  for (const PluginKind& k : kKinds)
    if (k.name == name) return &k;
  return nullptr;
}

}  // namespace gatehouse::plugins
