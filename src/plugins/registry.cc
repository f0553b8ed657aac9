#include "plugins/registry.h"

#include "plugins/auth/authenticator.h"
#include "plugins/headers/headers_plugin.h"

namespace gatehouse::plugins {

namespace {

// One line per plugin kind.
constexpr PluginKind kKinds[] = {
    {"headers", &headers::create},
    {"key_auth", &auth::create_key_auth, true},
    {"basic_auth", &auth::create_basic_auth, true},
    {"jwt", &auth::create_jwt, true},
    {"oauth2_introspection", &auth::create_introspection, true},
    {"acl", &auth::create_acl},
};

}  // namespace

const PluginKind* find_plugin_kind(std::string_view name) {
  for (const PluginKind& k : kKinds)
    if (k.name == name) return &k;
  return nullptr;
}

}  // namespace gatehouse::plugins
