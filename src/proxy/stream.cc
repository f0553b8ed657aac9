#include "proxy/stream.h"

#include <openssl/err.h>

#include <cerrno>
#include <cstring>

namespace gatehouse::proxy {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// Gathers up to this size go out as one TLS record (one copy, one send)
// instead of a record and a system call per buffer: nginx does the same.
constexpr std::size_t kCoalesce = 16384;

// What an SSL_* call that returned `r` <= 0 wants: SSL_ERROR_WANT_READ or
// SSL_ERROR_WANT_WRITE, or -1 with `ec` set (the stream is over).
int classify(SSL* ssl, int r, error_code& ec) {
  int saved_errno = errno;
  int e = SSL_get_error(ssl, r);
  switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return e;
    case SSL_ERROR_ZERO_RETURN:
      ec = asio::error::eof;
      break;
    case SSL_ERROR_SYSCALL:
      ec = saved_errno != 0 ? error_code(saved_errno, boost::system::system_category())
                            : error_code(asio::error::eof);
      break;
    default:
      ec = asio::error::access_denied;  // a TLS protocol error
      break;
  }
  ERR_clear_error();
  return -1;
}

thread_local char coalesce_buffer[kCoalesce];

}  // namespace

Task<bool> Stream::handshake(error_code& ec) {
  while (true) {
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(ssl_);
    if (r == 1) co_return true;
    int want = classify(ssl_, r, ec);
    if (want < 0) co_return false;
    co_await socket_.async_wait(
        want == SSL_ERROR_WANT_READ ? Socket::wait_read : Socket::wait_write, await_ec(ec));
    if (ec) co_return false;
  }
}

std::size_t Stream::read_now(void* p, std::size_t n, error_code& ec) {
  if (pipe_ != nullptr) return pipe_->read_now(p, n, ec);
  if (ssl_ == nullptr) {
    std::size_t got = socket_.read_some(asio::buffer(p, n), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
    return got;
  }
  ERR_clear_error();
  errno = 0;
  std::size_t got = 0;
  int r = SSL_read_ex(ssl_, p, n, &got);
  tls::keep_staged(SSL_get_rbio(ssl_));  // the caller's staged bytes are free again
  if (r == 1) return got;
  classify(ssl_, r, ec);
  return 0;  // ec set, or WANT_READ (or a WANT_WRITE a later write will flush): nothing yet
}

Task<std::size_t> Stream::tls_read_some(asio::mutable_buffer b, error_code& ec) {
  while (true) {
    ERR_clear_error();
    errno = 0;
    std::size_t got = 0;
    int r = SSL_read_ex(ssl_, b.data(), b.size(), &got);
    if (r == 1) co_return got;
    int want = classify(ssl_, r, ec);
    if (want < 0) co_return 0;
    co_await socket_.async_wait(
        want == SSL_ERROR_WANT_READ ? Socket::wait_read : Socket::wait_write, await_ec(ec));
    if (ec) co_return 0;
  }
}

int Stream::tls_write_step(asio::const_buffer* bufs, std::size_t n, error_code& ec) {
  std::size_t total = 0;
  std::size_t nonempty = 0;
  for (std::size_t i = 0; i < n; ++i) {
    total += bufs[i].size();
    nonempty += bufs[i].size() != 0;
  }
  if (total == 0) return 1;
  if (nonempty > 1 && total <= kCoalesce) {
    // After WANT_WRITE the retry copies the same bytes again: OpenSSL keeps
    // the record it began and accepts the moved buffer (ACCEPT_MOVING_WRITE_BUFFER).
    std::size_t off = 0;
    for (std::size_t i = 0; i < n; ++i) {
      std::memcpy(coalesce_buffer + off, bufs[i].data(), bufs[i].size());
      off += bufs[i].size();
    }
    ERR_clear_error();
    errno = 0;
    std::size_t written = 0;
    int r = SSL_write_ex(ssl_, coalesce_buffer, total, &written);
    if (r != 1) return classify(ssl_, r, ec);
    for (std::size_t i = 0; i < n; ++i) bufs[i] += bufs[i].size();
    return 1;
  }
  for (std::size_t i = 0; i < n; ++i) {
    while (bufs[i].size() != 0) {
      ERR_clear_error();
      errno = 0;
      std::size_t written = 0;
      int r = SSL_write_ex(ssl_, bufs[i].data(), bufs[i].size(), &written);
      if (r != 1) return classify(ssl_, r, ec);
      bufs[i] += written;
    }
  }
  return 1;
}

bool Stream::tls_try_write(asio::const_buffer* bufs, std::size_t n, error_code& ec) {
  int r = tls_write_step(bufs, n, ec);
  return r == 1;  // a WANT_*: ec clear, write() finishes it
}

Task<std::size_t> Stream::tls_write(std::vector<asio::const_buffer> bufs, error_code& ec) {
  std::size_t total = 0;
  for (const auto& b : bufs) total += b.size();
  while (true) {
    int r = tls_write_step(bufs.data(), bufs.size(), ec);
    if (r == 1) co_return total;
    if (r < 0) co_return 0;
    co_await socket_.async_wait(r == SSL_ERROR_WANT_READ ? Socket::wait_read : Socket::wait_write,
                                await_ec(ec));
    if (ec) co_return 0;
  }
}

void Stream::close() {
  if (pipe_ != nullptr) {
    Pipe* pipe = pipe_;
    pipe_ = nullptr;
    pipe->close();
    return;
  }
  error_code ec;
  if (ssl_ != nullptr && socket_.is_open() && SSL_is_init_finished(ssl_)) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // queues close_notify; never waits for the peer's
    ERR_clear_error();
  }
  socket_.close(ec);
}

}  // namespace gatehouse::proxy
