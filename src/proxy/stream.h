// A connection's byte stream: a TCP socket, with TLS on top when the listener
// (or upstream) says so. Plain sockets go straight to Asio's own operations,
// so the plain path pays nothing for TLS existing: read_some/write return
// Asio's awaitable directly and try_write is the non-blocking write of
// socket_io.h. With TLS, OpenSSL reads and writes the non-blocking socket
// itself (SSL_set_fd, as nginx does) and the coroutine waits for readiness
// only when OpenSSL says it must: no extra copy through memory BIOs.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <boost/asio/write.hpp>
#include <vector>

#include "proxy/socket_io.h"
#include "proxy/task.h"
#include "tls/socket_bio.h"

namespace gatehouse::proxy {

// The in-memory end of an HTTP/2 stream, as the HTTP/1.1 pipeline that
// serves it sees it (proxy/h2_connection.cc): reads give the request bytes
// the codec produced, writes go to the codec as the response.
class Pipe {
 public:
  virtual ~Pipe() = default;
  virtual Task<std::size_t> read_some(boost::asio::mutable_buffer b,
                                      boost::system::error_code& ec) = 0;
  virtual std::size_t read_now(void* p, std::size_t n, boost::system::error_code& ec) = 0;
  // Advances `bufs` past what was taken; true when all was.
  virtual bool try_write(boost::asio::const_buffer* bufs, std::size_t n,
                         boost::system::error_code& ec) = 0;
  virtual Task<std::size_t> write(std::vector<boost::asio::const_buffer> bufs,
                                  boost::system::error_code& ec) = 0;
  // Makes the pending read or write fail with operation_aborted (deadlines).
  virtual void cancel() = 0;
  // The pipeline is done with the stream (called once).
  virtual void close() = 0;
};

class Stream {
 public:
  explicit Stream(Socket socket) : socket_(std::move(socket)) {}
  // An HTTP/2 stream's pipe; `socket` stays unopened.
  Stream(Socket socket, Pipe* pipe) : socket_(std::move(socket)), pipe_(pipe) {}
  Stream(Stream&& other) noexcept
      : socket_(std::move(other.socket_)), ssl_(other.ssl_), pipe_(other.pipe_) {
    other.ssl_ = nullptr;
    other.pipe_ = nullptr;
  }
  ~Stream() {
    if (pipe_ != nullptr) pipe_->close();
    if (ssl_ != nullptr) SSL_free(ssl_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  Socket& socket() { return socket_; }
  bool tls() const { return ssl_ != nullptr; }
  bool is_pipe() const { return pipe_ != nullptr; }
  // Fails the pending read or write with operation_aborted.
  void cancel() {
    if (pipe_ != nullptr) {
      pipe_->cancel();
      return;
    }
    boost::system::error_code ec;
    socket_.cancel(ec);
  }
  SSL* ssl() const { return ssl_; }
  // Takes ownership of an SSL already bound to socket()'s descriptor.
  void attach(SSL* ssl) { ssl_ = ssl; }

  // Runs the TLS handshake (server or client side, as the SSL was made).
  Task<bool> handshake(boost::system::error_code& ec);

  // Reads what is available (waiting for at least one byte).
  Task<std::size_t> read_some(boost::asio::mutable_buffer b, boost::system::error_code& ec) {
    if (pipe_ != nullptr) return pipe_->read_some(b, ec);
    if (ssl_ == nullptr) return socket_.async_read_some(b, await_ec(ec));
    return tls_read_some(b, ec);
  }

  // Without waiting: bytes already decrypted or on the socket. 0 with `ec`
  // clear when nothing is there yet; 0 with `ec` set when the stream ended.
  std::size_t read_now(void* p, std::size_t n, boost::system::error_code& ec);

  // TLS: bytes already received from the socket (ciphertext), which the
  // next reads decrypt before reading the socket (tls/socket_bio.h). They
  // must stay put until the next read_now(), which takes or copies them.
  void stage(const void* p, std::size_t n) { tls::stage(SSL_get_rbio(ssl_), p, n); }

  // Whether TLS holds decrypted bytes not read yet (the socket may not be
  // readable even though a read would return data).
  bool pending() const { return ssl_ != nullptr && SSL_has_pending(ssl_) == 1; }

  // Writes what goes out now, advancing `bufs`; true when all went out.
  template <std::size_t N>
  bool try_write(std::array<boost::asio::const_buffer, N>& bufs, boost::system::error_code& ec) {
    if (pipe_ != nullptr) return pipe_->try_write(bufs.data(), N, ec);
    if (ssl_ == nullptr) return try_write_all(socket_, bufs, ec);
    return tls_try_write(bufs.data(), N, ec);
  }

  // Writes everything, waiting as needed.
  template <std::size_t N>
  Task<std::size_t> write(std::array<boost::asio::const_buffer, N> bufs,
                          boost::system::error_code& ec) {
    if (pipe_ != nullptr) {
      return pipe_->write(std::vector<boost::asio::const_buffer>(bufs.begin(), bufs.end()), ec);
    }
    if (ssl_ == nullptr) return boost::asio::async_write(socket_, bufs, await_ec(ec));
    return tls_write(std::vector<boost::asio::const_buffer>(bufs.begin(), bufs.end()), ec);
  }
  Task<std::size_t> write(boost::asio::const_buffer b, boost::system::error_code& ec) {
    return write(std::array<boost::asio::const_buffer, 1>{b}, ec);
  }

  // Best-effort close_notify without waiting, then close (a pipe: done).
  void close();

 private:
  Task<std::size_t> tls_read_some(boost::asio::mutable_buffer b, boost::system::error_code& ec);
  bool tls_try_write(boost::asio::const_buffer* bufs, std::size_t n, boost::system::error_code& ec);
  Task<std::size_t> tls_write(std::vector<boost::asio::const_buffer> bufs,
                              boost::system::error_code& ec);
  // One SSL_write pass over `bufs`: coalesces small gathers into one record.
  // Returns 1 done, or the SSL_ERROR_WANT_* to wait for, or -1 (ec set).
  int tls_write_step(boost::asio::const_buffer* bufs, std::size_t n, boost::system::error_code& ec);

  Socket socket_;
  SSL* ssl_ = nullptr;
  Pipe* pipe_ = nullptr;
};

}  // namespace gatehouse::proxy
