#include "plugins/registry.h"

#include "plugins/auth/authenticator.h"
#include "plugins/grpc/grpc_web.h"
#include "plugins/headers/headers_plugin.h"
#include "plugins/protection/protection.h"
#include "plugins/ratelimit/ratelimit_plugins.h"

namespace gatehouse::plugins {

namespace {

// One line per plugin kind.
constexpr PluginKind kKinds[] = {
    {"headers", &headers::create},
    {"key_auth", &auth::create_key_auth, true},
    {"basic_auth", &auth::create_basic_auth, true},
    {"jwt", &auth::create_jwt, true},
    {"oauth2_introspection", &auth::create_introspection, true},
    {"mtls_auth", &auth::create_mtls_auth, true},
    {"acl", &auth::create_acl},
    {"ip_restriction", &protection::create_ip_restriction},
    {"cors", &protection::create_cors},
    {"security_headers", &protection::create_security_headers},
    {"rate_limit", &ratelimit::create_rate_limit},
    {"concurrency_limit", &ratelimit::create_concurrency_limit},
    {"grpc_web", &grpc_web::create},
};

}  // namespace

const PluginKind* find_plugin_kind(std::string_view name) {
  for (const PluginKind& k : kKinds)
    if (k.name == name) return &k;
  return nullptr;
}

}  // namespace gatehouse::plugins
