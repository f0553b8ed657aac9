// The TLS context each listener currently serves with. Built with the
// snapshot, replaced when SIGHUP re-reads the certificate files; workers
// copy the pointers at their tick when the generation moved (never on the
// request path), and a connection keeps the context it began with.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "config/config.h"
#include "tls/server_context.h"

namespace gatehouse::proxy {

class ListenerTls {
 public:
  using ContextPtr = std::shared_ptr<const tls::ServerContext>;

  explicit ListenerTls(std::vector<ContextPtr> contexts) : contexts_(std::move(contexts)) {}

  // Null for a plain listener.
  ContextPtr get(std::size_t listener) const {
    std::lock_guard<std::mutex> lock(mu_);
    return listener < contexts_.size() ? contexts_[listener] : nullptr;
  }
  void set(std::size_t listener, ContextPtr context) {
    std::lock_guard<std::mutex> lock(mu_);
    contexts_[listener] = std::move(context);
    generation_.fetch_add(1, std::memory_order_release);
  }
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::vector<ContextPtr> contexts_;
  std::atomic<uint64_t> generation_{0};
};

// What tls::ServerContext::create needs from a listener's config.
inline tls::ServerSettings server_settings(const config::ListenerTls& c) {
  tls::ServerSettings s;
  for (const config::TlsCertificate& cert : c.certificates)
    s.certificates.push_back({cert.cert, cert.key});
  s.min_version = c.min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  s.client_ca = c.client_ca;
  s.http2 = true;
  s.client_auth = c.client_auth == config::ClientAuth::kRequired   ? tls::ClientAuth::kRequired
                  : c.client_auth == config::ClientAuth::kOptional ? tls::ClientAuth::kOptional
                                                                   : tls::ClientAuth::kNone;
  return s;
}

}  // namespace gatehouse::proxy
