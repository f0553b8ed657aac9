#include "proxy/http_client.h"

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <memory>

#include "proxy/socket_io.h"

namespace gatehouse::proxy {

namespace asio = boost::asio;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Executor>;

Task<bool> http_call(asio::ip::tcp::endpoint endpoint, std::string request, int64_t timeout_ms,
                     http::ClientResponse& out, std::string& error) {
  Executor ex = co_await asio::this_coro::executor;
  auto socket = std::make_shared<Socket>(ex);
  auto timed_out = std::make_shared<bool>(false);
  Timer timer(ex);
  timer.expires_after(std::chrono::milliseconds(timeout_ms));
  // The timer only holds weak references: if it fires after the call ended
  // (or is cancelled), it touches nothing that is gone.
  timer.async_wait([weak = std::weak_ptr<Socket>(socket), timed_out](boost::system::error_code ec) {
    if (ec) return;
    if (auto s = weak.lock()) {
      *timed_out = true;
      boost::system::error_code ignored;
      s->close(ignored);
    }
  });
  boost::system::error_code ec;
  co_await socket->async_connect(endpoint, await_ec(ec));
  if (!ec) co_await asio::async_write(*socket, asio::buffer(request), await_ec(ec));
  std::string raw;
  std::size_t n = 0;
  while (!ec) {
    raw.resize(n + 16384);
    std::size_t got =
        co_await socket->async_read_some(asio::buffer(raw.data() + n, 16384), await_ec(ec));
    n += got;
    if (n > http::kMaxClientResponseBytes) {
      error = "answer larger than 1 MiB";
      timer.cancel();
      co_return false;
    }
  }
  timer.cancel();
  raw.resize(n);
  if (*timed_out) {
    error = "timed out after " + std::to_string(timeout_ms) + " ms";
    co_return false;
  }
  if (ec != asio::error::eof) {
    error = ec.message();
    co_return false;
  }
  std::string why;
  if (!http::parse_client_response(raw, out, why)) {
    error = "bad answer: " + why;
    co_return false;
  }
  co_return true;
}

}  // namespace gatehouse::proxy
