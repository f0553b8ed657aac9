// `headers`: sets and removes header fields on the request sent upstream and
// on the response sent to the client.
//
//   plugins:
//     - headers:
//         request:  {set: {X-Api-Version: "2"}, remove: [X-Debug]}
//         response: {set: {X-Frame-Options: DENY}, remove: [Server]}
#pragma once

#include <memory>

#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins::headers {

std::unique_ptr<proxy::Plugin> create(const YAML::Node& config, const PluginEnv& env,
                                      const Report& report);

}  // namespace gatehouse::plugins::headers
