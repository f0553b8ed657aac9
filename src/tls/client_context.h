// TLS towards an upstream: verifies the backend's certificate against the
// configured CA (or the system's) and its name, and presents a client
// certificate when one is configured (mTLS to the backend).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace gatehouse::tls {

struct ClientSettings {
  std::string ca;    // PEM bundle; empty: the system's trust store
  std::string cert;  // optional client certificate (PEM, with chain)
  std::string key;   // its private key
  bool verify = true;
  bool http2 = false;  // offer "h2" in ALPN (else "http/1.1")
};

class ClientContext {
 public:
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  static std::shared_ptr<const ClientContext> create(const ClientSettings& settings,
                                                     std::string& error);

  // A client-side SSL bound to `fd`, checking the peer against `server_name`
  // (a DNS name, sent as SNI too, or an IP literal); the caller owns it.
  SSL* new_connection(int fd, const std::string& server_name) const;

 private:
  ClientContext() = default;
  SSL_CTX* ctx_ = nullptr;
  bool verify_ = true;
};

}  // namespace gatehouse::tls
