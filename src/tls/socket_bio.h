// The BIO OpenSSL reads and writes a connection's non-blocking socket
// through. It is OpenSSL's socket BIO plus one thing: bytes the caller
// already received from the socket can be handed back ("staged") and the
// next reads take them before the socket's. That lets a session wait for its
// next request with Asio's ordinary speculative read into its own buffer, as
// the plain path does, instead of an async_wait for readability (which in
// Asio 1.74 costs an epoll_ctl per wait) followed by a read. OpenSSL offers
// no way to push received bytes back into a socket BIO, hence this one.
#pragma once

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <cstddef>

namespace gatehouse::tls {

// A BIO on `fd` (not closed with the BIO). Sends use MSG_NOSIGNAL.
BIO* new_socket_bio(int fd);

// A new SSL of `ctx` reading and writing `fd` through new_socket_bio; null
// when OpenSSL could not make one. The caller sets the connect or accept state.
SSL* new_ssl_on_socket(SSL_CTX* ctx, int fd);

// The next reads of `bio` (made by new_socket_bio) return [p, p + n) first.
// The caller keeps those bytes alive until staged_bytes() is 0 or it calls
// keep_staged().
void stage(BIO* bio, const void* p, std::size_t n);
std::size_t staged_bytes(BIO* bio);
// Copies what is still staged into the BIO's own storage, so the caller may
// reuse its buffer.
void keep_staged(BIO* bio);

}  // namespace gatehouse::tls
