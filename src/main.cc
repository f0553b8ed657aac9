// The gatehouse command line: run, validate, version.
#include <malloc.h>
#include <signal.h>

#include <cstring>
#include <iostream>
#include <string>

#include "config/config.h"
#include "proxy/gateway.h"
#include "tls/memory.h"

namespace {

int usage() {
  std::cerr << "usage: gatehouse run -c FILE | gatehouse validate -c FILE | gatehouse version\n";
  return 2;
}

const char* config_path(int argc, char** argv) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "-c") == 0 || std::strcmp(argv[i], "--config") == 0)
      return argv[i + 1];
  }
  return nullptr;
}

// Loads and validates; prints every problem as FILE:LINE:COL: message.
bool load(const char* path, gatehouse::config::Config& out) {
  gatehouse::config::LoadResult r = gatehouse::config::load_config_file(path);
  if (!r.errors.empty() || !r.config) {
    for (const auto& e : r.errors) std::cerr << e.to_string() << "\n";
    std::cerr.flush();
    return false;
  }
  out = std::move(*r.config);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  gatehouse::tls::install_allocator();
  if (argc < 2) return usage();
  std::string cmd = argv[1];
  if (cmd == "version" || cmd == "--version") {
    std::cout << "gatehouse " << GATEHOUSE_VERSION << std::endl;
    return 0;
  }
  if (cmd != "run" && cmd != "validate") return usage();
  const char* path = config_path(argc, argv);
  if (path == nullptr) return usage();
  gatehouse::config::Config config;
  if (!load(path, config)) return 1;
  if (cmd == "validate") {
    std::cout << path << ": ok" << std::endl;
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  // I/O buffers (16 KiB and up) come straight from mmap: they are pooled per
  // worker, so this costs a system call only when a burst grows the pool,
  // and when the pool shrinks the memory really goes back to the kernel
  // instead of fragmenting the heap (measured: idle connections after a
  // burst of 5000 kept ~5 KiB each of RSS without it; see bench/NOTES.md).
  mallopt(M_MMAP_THRESHOLD, 16 * 1024);
  int rc = gatehouse::proxy::run_gateway(config);
  gatehouse::tls::release_thread_cache();
  return rc;
}
