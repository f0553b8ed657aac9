// `grpc_web`: translates gRPC-Web from browsers to gRPC for the route's
// upstream (an h2c or h2 upstream speaking gRPC) and the answer back
// (docs/tls.md, "gRPC-Web").
//
//   plugins:
//     - grpc_web: {}
//
// The plugin marks gRPC-Web requests (RequestState::grpc_web) and asks for
// the upstream content type; the engine re-frames the bodies
// (src/proxy/session_grpc_web.cc, with grpc_web_codec.h).
#pragma once

#include <memory>

#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins::grpc_web {

std::unique_ptr<proxy::Plugin> create(const YAML::Node& config, const PluginEnv& env,
                                      const Report& report);

}  // namespace gatehouse::plugins::grpc_web
