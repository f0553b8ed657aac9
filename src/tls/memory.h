// OpenSSL's allocator hooks (see memory.cc). Call first thing in main(),
// before OpenSSL allocates anything.
#pragma once

namespace gatehouse::tls {

void install_allocator();
// Frees the calling thread's cached blocks (a worker thread ending).
void release_thread_cache();

}  // namespace gatehouse::tls
