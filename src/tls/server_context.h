// TLS for a listener: one OpenSSL 3 SSL_CTX per configured certificate, the
// one that serves a handshake picked by SNI from each certificate's names.
// Built off the workers (startup, SIGHUP) and shared by them read-only:
// SSL_new on a shared SSL_CTX is thread-safe, and tickets issued by one
// worker resume on any other because they share the ticket keys.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gatehouse::tls {

enum class ClientAuth { kNone, kOptional, kRequired };

struct CertificateFiles {
  std::string cert;  // PEM: the certificate, then its chain
  std::string key;   // PEM private key
};

struct ServerSettings {
  std::vector<CertificateFiles> certificates;  // at least one; the first is the default
  int min_version = TLS1_2_VERSION;            // TLS1_2_VERSION or TLS1_3_VERSION
  std::string client_ca;                       // PEM bundle; empty: no client certificates
  ClientAuth client_auth = ClientAuth::kNone;
  bool http2 = false;  // offer "h2" in ALPN (before "http/1.1")
};

class ServerContext {
 public:
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // Loads every file; nullptr and `error` ("FILE: why") when one is unusable.
  static std::shared_ptr<const ServerContext> create(const ServerSettings& settings,
                                                     std::string& error);

  // A server-side SSL bound to the (non-blocking) socket `fd`; the caller owns it.
  SSL* new_connection(int fd) const;
  ClientAuth client_auth() const { return client_auth_; }

 private:
  ServerContext() = default;
  SSL_CTX* pick(std::string_view server_name) const;
  static int on_server_name(SSL* ssl, int* alert, void* arg);

  std::vector<SSL_CTX*> contexts_;                      // [0]: default
  std::unordered_map<std::string, SSL_CTX*> exact_;     // lower-case DNS names
  std::unordered_map<std::string, SSL_CTX*> wildcard_;  // "example.com" for "*.example.com"
  ClientAuth client_auth_ = ClientAuth::kNone;
};

// Config validation: "" when the PEM certificate and key load and belong
// together, else why not.
std::string check_certificate_pair(const std::string& cert, const std::string& key);
// "" when the file holds at least one PEM certificate, else why not.
std::string check_ca_file(const std::string& path);

// The negotiated ALPN protocol of a finished handshake ("" when none).
std::string_view alpn_selected(const SSL* ssl);

// Why the last OpenSSL call failed, as one line (clears the error queue).
std::string last_error();

}  // namespace gatehouse::tls
