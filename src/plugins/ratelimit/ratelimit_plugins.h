// `rate_limit` and `concurrency_limit` (docs/protection.md).
#pragma once

#include <memory>
#include <string>

#include "plugins/registry.h"

namespace gatehouse::plugins::ratelimit {

std::unique_ptr<proxy::Plugin> create_rate_limit(const YAML::Node& config, const PluginEnv& env,
                                                 const Report& report);
std::unique_ptr<proxy::Plugin> create_concurrency_limit(const YAML::Node& config,
                                                        const PluginEnv& env, const Report& report);

// Prometheus lines for what the limits counted (degraded mode, untracked keys).
void append_metrics(std::string& out);

}  // namespace gatehouse::plugins::ratelimit
