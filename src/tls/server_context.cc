#include "tls/server_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "tls/socket_bio.h"

namespace gatehouse::tls {

namespace {

// Mozilla's "intermediate" TLS 1.2 suites (forward secret AEADs only); TLS
// 1.3 keeps OpenSSL's defaults, which are the three AEAD suites.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";
constexpr unsigned char kSessionContext[] = "gatehouse";

bool readable(const std::string& path, std::string& error) {
  std::ifstream f(path);
  if (f) return true;
  error = path + ": " + std::strerror(errno == 0 ? ENOENT : errno);
  return false;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

// The DNS names a certificate answers for: its SAN DNS entries, or its
// subject CN when it has none (RFC 6125 6.4.4).
std::vector<std::string> certificate_names(X509* cert) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != GEN_DNS) continue;
      const ASN1_STRING* s = gn->d.dNSName;
      names.push_back(
          lowered(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                   static_cast<std::size_t>(ASN1_STRING_length(s)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    X509_NAME* subject = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx >= 0) {
      const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
      names.push_back(
          lowered(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                   static_cast<std::size_t>(ASN1_STRING_length(s)))));
    }
  }
  return names;
}

// ALPN (RFC 7301): h2 when enabled and offered, else http/1.1 when offered,
// else no ALPN at all (the client may still speak HTTP/1.1).
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  bool http2 = arg != nullptr;
  const unsigned char* http11 = nullptr;
  for (unsigned int i = 0; i < inlen;) {
    unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    const unsigned char* p = in + i + 1;
    if (http2 && len == 2 && std::memcmp(p, "h2", 2) == 0) {
      *out = p;
      *outlen = 2;
      return SSL_TLSEXT_ERR_OK;
    }
    if (len == 8 && std::memcmp(p, "http/1.1", 8) == 0) http11 = p;
    i += 1 + len;
  }
  if (http11 == nullptr) return SSL_TLSEXT_ERR_NOACK;
  *out = http11;
  *outlen = 8;
  return SSL_TLSEXT_ERR_OK;
}

// `optional` client authentication: the handshake completes whatever the
// client presents; SSL_get_verify_result() still says whether it verified,
// and routes with mtls_auth refuse what did not.
int accept_any(int, X509_STORE_CTX*) { return 1; }

}  // namespace

std::string last_error() {
  unsigned long code = ERR_get_error();
  unsigned long next;
  while ((next = ERR_get_error()) != 0) code = next;
  if (code == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

std::string check_certificate_pair(const std::string& cert, const std::string& key) {
  std::string error;
  if (!readable(cert, error) || !readable(key, error)) return error;
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return "cannot create a TLS context: " + last_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    error = cert + ": not a PEM certificate (" + last_error() + ")";
  } else if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = key + ": not a usable PEM private key for " + cert + " (" + last_error() + ")";
  } else if (SSL_CTX_check_private_key(ctx) != 1) {
    error = key + ": private key does not match certificate " + cert;
    ERR_clear_error();
  }
  SSL_CTX_free(ctx);
  return error;
}

std::string check_ca_file(const std::string& path) {
  std::string error;
  if (!readable(path, error)) return error;
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(path.c_str());
  if (names == nullptr || sk_X509_NAME_num(names) == 0) {
    ERR_clear_error();
    if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
    return path + ": holds no PEM certificate";
  }
  sk_X509_NAME_pop_free(names, X509_NAME_free);
  return {};
}

ServerContext::~ServerContext() {
  for (SSL_CTX* c : contexts_) SSL_CTX_free(c);
}

std::shared_ptr<const ServerContext> ServerContext::create(const ServerSettings& settings,
                                                           std::string& error) {
  std::shared_ptr<ServerContext> sc(new ServerContext());
  sc->client_auth_ = settings.client_auth;
  if (settings.certificates.empty()) {
    error = "no certificate";
    return nullptr;
  }
  for (const CertificateFiles& files : settings.certificates) {
    error = check_certificate_pair(files.cert, files.key);
    if (!error.empty()) return nullptr;
    if (!settings.client_ca.empty()) {
      error = check_ca_file(settings.client_ca);
      if (!error.empty()) return nullptr;
    }
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) {
      error = "cannot create a TLS context: " + last_error();
      return nullptr;
    }
    sc->contexts_.push_back(ctx);  // freed by ~ServerContext from here on
    SSL_CTX_set_min_proto_version(ctx, settings.min_version);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(
        ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Read and write buffers are freed while a connection is idle (an idle
    // TLS connection then costs the SSL object, not 2 x 16 KiB more), and a
    // write retried after WANT_WRITE may come from a re-filled buffer.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // One read() per burst of records instead of a 5-byte header read and a
    // body read per record. Whoever waits for the socket asks SSL_has_pending
    // first (Stream::pending), as read-ahead bytes no longer wake epoll.
    SSL_CTX_set_read_ahead(ctx, 1);
    // Resumption by stateless tickets only: no server-side session cache
    // (a locked table shared by every worker); one ticket per handshake.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
    if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 ||
        SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
      error = "cannot set TLS ciphers: " + last_error();
      return nullptr;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, files.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      error = files.cert + ": " + last_error();
      return nullptr;
    }
    if (!settings.client_ca.empty() && settings.client_auth != ClientAuth::kNone) {
      if (SSL_CTX_load_verify_locations(ctx, settings.client_ca.c_str(), nullptr) != 1) {
        error = settings.client_ca + ": " + last_error();
        return nullptr;
      }
      SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(settings.client_ca.c_str()));
      if (settings.client_auth == ClientAuth::kRequired) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
      }
      SSL_CTX_set_verify_depth(ctx, 8);
    }
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, settings.http2 ? sc.get() : nullptr);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_server_name);
    SSL_CTX_set_tlsext_servername_arg(ctx, sc.get());
    for (const std::string& name : certificate_names(SSL_CTX_get0_certificate(ctx))) {
      if (name.size() > 2 && name.compare(0, 2, "*.") == 0) {
        sc->wildcard_.emplace(name.substr(2), ctx);
      } else {
        sc->exact_.emplace(name, ctx);
      }
    }
  }
  error.clear();
  return sc;
}

SSL_CTX* ServerContext::pick(std::string_view server_name) const {
  if (contexts_.size() == 1 || server_name.empty() || server_name.size() > 253) {
    return contexts_[0];
  }
  char buf[256];
  for (std::size_t i = 0; i < server_name.size(); ++i) buf[i] = lower(server_name[i]);
  std::string name(buf, server_name.size());
  if (auto it = exact_.find(name); it != exact_.end()) return it->second;
  std::size_t dot = name.find('.');
  if (dot != std::string::npos) {
    if (auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) return it->second;
  }
  return contexts_[0];
}

int ServerContext::on_server_name(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;
  SSL_CTX* ctx = self->pick(name);
  if (ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
  return SSL_TLSEXT_ERR_OK;
}

SSL* ServerContext::new_connection(int fd) const {
  SSL* ssl = new_ssl_on_socket(contexts_[0], fd);
  if (ssl == nullptr) return nullptr;
  SSL_set_accept_state(ssl);
  return ssl;
}

std::string_view alpn_selected(const SSL* ssl) {
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &p, &len);
  return p == nullptr ? std::string_view()
                      : std::string_view(reinterpret_cast<const char*>(p), len);
}

}  // namespace gatehouse::tls
