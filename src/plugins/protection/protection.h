// Traffic protection plugins (docs/protection.md):
//
//   ip_restriction:   {allow: [10.0.0.0/8], deny: [10.1.2.3/32]}
//   cors:             {origins: ["https://app.example.com"], methods: [GET, POST],
//                      headers: [Authorization], expose_headers: [X-Request-Id],
//                      credentials: true, max_age: 600}
//   security_headers: {hsts: "max-age=600", frame_options: SAMEORIGIN,
//                      referrer_policy: same-origin, content_type_options: nosniff}
#pragma once

#include <yaml-cpp/yaml.h>

#include <memory>

#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins::protection {

std::unique_ptr<proxy::Plugin> create_ip_restriction(const YAML::Node& config, const PluginEnv& env,
                                                     const Report& report);
std::unique_ptr<proxy::Plugin> create_cors(const YAML::Node& config, const PluginEnv& env,
                                           const Report& report);
std::unique_ptr<proxy::Plugin> create_security_headers(const YAML::Node& config,
                                                       const PluginEnv& env, const Report& report);

}  // namespace gatehouse::plugins::protection
