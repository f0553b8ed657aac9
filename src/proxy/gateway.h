// The running gateway: workers on their threads, the admin listener and
// signal handling on the calling (main) thread, and the graceful shutdown
// that ties them together.
#pragma once

#include "config/config.h"

namespace gatehouse::proxy {

// Runs until SIGTERM/SIGINT and a graceful drain; returns the exit code.
int run_gateway(const config::Config& config);

}  // namespace gatehouse::proxy
