#include "tls/client_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/server_context.h"
#include "tls/socket_bio.h"

namespace gatehouse::tls {

namespace {

bool is_ip_literal(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

ClientContext::~ClientContext() {
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

std::shared_ptr<const ClientContext> ClientContext::create(const ClientSettings& settings,
                                                           std::string& error) {
  std::shared_ptr<ClientContext> cc(new ClientContext());
  cc->verify_ = settings.verify;
  cc->ctx_ = SSL_CTX_new(TLS_client_method());
  if (cc->ctx_ == nullptr) {
    error = "cannot create a TLS context: " + last_error();
    return nullptr;
  }
  SSL_CTX* ctx = cc->ctx_;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);  // one read() per burst of records (server_context.cc)
  if (!settings.ca.empty()) {
    error = check_ca_file(settings.ca);
    if (!error.empty()) return nullptr;
    if (SSL_CTX_load_verify_locations(ctx, settings.ca.c_str(), nullptr) != 1) {
      error = settings.ca + ": " + last_error();
      return nullptr;
    }
  } else {
    SSL_CTX_set_default_verify_paths(ctx);
  }
  if (!settings.cert.empty()) {
    error = check_certificate_pair(settings.cert, settings.key);
    if (!error.empty()) return nullptr;
    if (SSL_CTX_use_certificate_chain_file(ctx, settings.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, settings.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      error = settings.cert + ": " + last_error();
      return nullptr;
    }
  }
  SSL_CTX_set_verify(ctx, settings.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  static const unsigned char kH2[] = "\x02h2";
  static const unsigned char kHttp11[] = "\x08http/1.1";
  if (settings.http2) {
    SSL_CTX_set_alpn_protos(ctx, kH2, sizeof kH2 - 1);
  } else {
    SSL_CTX_set_alpn_protos(ctx, kHttp11, sizeof kHttp11 - 1);
  }
  error.clear();
  return cc;
}

SSL* ClientContext::new_connection(int fd, const std::string& server_name) const {
  SSL* ssl = new_ssl_on_socket(ctx_, fd);
  if (ssl == nullptr) return nullptr;
  SSL_set_connect_state(ssl);
  if (!server_name.empty()) {
    if (is_ip_literal(server_name)) {
      if (verify_) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, server_name.c_str());
      if (verify_) SSL_set1_host(ssl, server_name.c_str());
    }
  }
  return ssl;
}

}  // namespace gatehouse::tls
