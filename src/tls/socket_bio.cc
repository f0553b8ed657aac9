#include "tls/socket_bio.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace gatehouse::tls {

namespace {

struct SocketBio {
  int fd = -1;
  const char* staged = nullptr;
  std::size_t staged_len = 0;
  std::string kept;  // staged bytes copied by keep_staged()
  bool eof = false;
};

SocketBio* state(BIO* bio) { return static_cast<SocketBio*>(BIO_get_data(bio)); }

bool should_retry(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == EINPROGRESS ||
         err == EALREADY || err == ENOTCONN;
}

int bio_read(BIO* bio, char* out, std::size_t len, std::size_t* got) {
  SocketBio* s = state(bio);
  BIO_clear_retry_flags(bio);
  *got = 0;
  if (s->staged_len != 0) {
    std::size_t n = len < s->staged_len ? len : s->staged_len;
    std::memcpy(out, s->staged, n);
    s->staged += n;
    s->staged_len -= n;
    if (s->staged_len == 0) {
      s->staged = nullptr;
      s->kept.clear();
    }
    *got = n;
    return 1;
  }
  ssize_t r = ::recv(s->fd, out, len, 0);
  if (r > 0) {
    *got = static_cast<std::size_t>(r);
    return 1;
  }
  if (r == 0) {
    s->eof = true;
  } else if (should_retry(errno)) {
    BIO_set_retry_read(bio);
  }
  return 0;
}

int bio_write(BIO* bio, const char* in, std::size_t len, std::size_t* written) {
  SocketBio* s = state(bio);
  BIO_clear_retry_flags(bio);
  *written = 0;
  ssize_t r = ::send(s->fd, in, len, MSG_NOSIGNAL);
  if (r >= 0) {
    *written = static_cast<std::size_t>(r);
    return 1;
  }
  if (should_retry(errno)) BIO_set_retry_write(bio);
  return 0;
}

int bio_puts(BIO* bio, const char* str) {
  std::size_t written = 0;
  return bio_write(bio, str, std::strlen(str), &written) == 1 ? static_cast<int>(written) : -1;
}

long bio_ctrl(BIO* bio, int cmd, long, void* ptr) {  // NOLINT(google-runtime-int): OpenSSL's type
  SocketBio* s = state(bio);
  switch (cmd) {
    case BIO_CTRL_FLUSH:
    case BIO_CTRL_DUP:
      return 1;
    case BIO_CTRL_EOF:
      return s->eof ? 1 : 0;
    case BIO_CTRL_PENDING:
      return static_cast<long>(s->staged_len);  // NOLINT(google-runtime-int)
    case BIO_C_GET_FD:
      if (ptr != nullptr) *static_cast<int*>(ptr) = s->fd;
      return s->fd;
    case BIO_CTRL_GET_CLOSE:
      return BIO_NOCLOSE;
    default:
      return 0;
  }
}

int bio_create(BIO* bio) {
  BIO_set_data(bio, new SocketBio());
  BIO_set_init(bio, 1);
  return 1;
}

int bio_destroy(BIO* bio) {
  delete state(bio);
  BIO_set_data(bio, nullptr);
  return 1;
}

BIO_METHOD* make_method() {
  BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                               "gatehouse socket");
  BIO_meth_set_read_ex(m, bio_read);
  BIO_meth_set_write_ex(m, bio_write);
  BIO_meth_set_puts(m, bio_puts);
  BIO_meth_set_ctrl(m, bio_ctrl);
  BIO_meth_set_create(m, bio_create);
  BIO_meth_set_destroy(m, bio_destroy);
  return m;
}

}  // namespace

BIO* new_socket_bio(int fd) {
  static BIO_METHOD* const method = make_method();  // lives as long as the process
  BIO* bio = BIO_new(method);
  if (bio != nullptr) state(bio)->fd = fd;
  return bio;
}

void stage(BIO* bio, const void* p, std::size_t n) {
  SocketBio* s = state(bio);
  s->staged = static_cast<const char*>(p);
  s->staged_len = n;
}

std::size_t staged_bytes(BIO* bio) { return state(bio)->staged_len; }

void keep_staged(BIO* bio) {
  SocketBio* s = state(bio);
  if (s->staged_len == 0) return;
  if (!s->kept.empty() && s->staged >= s->kept.data() &&
      s->staged < s->kept.data() + s->kept.size()) {
    return;  // already ours
  }
  s->kept.assign(s->staged, s->staged_len);
  s->staged = s->kept.data();
}

SSL* new_ssl_on_socket(SSL_CTX* ctx, int fd) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return nullptr;
  BIO* bio = new_socket_bio(fd);
  if (bio == nullptr) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_bio(ssl, bio, bio);  // one reference, owned by the SSL
  return ssl;
}

}  // namespace gatehouse::tls
