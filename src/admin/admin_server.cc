#include "admin/admin_server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "http/http1_parser.h"
#include "http/status.h"

namespace gatehouse::admin {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::size_t kMaxHead = 8192;

std::string response(int status, std::string_view type, std::string_view body, bool keep) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " +
                    std::string(http::reason_phrase(status)) + "\r\nContent-Type: ";
  out.append(type).append("\r\nContent-Length: ").append(std::to_string(body.size()));
  out.append(keep ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
  out.append(body);
  return out;
}

}  // namespace

AdminServer::AdminServer(asio::io_context& io, const tcp::endpoint& ep, MetricsRenderer metrics,
                         ReadyCheck ready)
    : io_(io), acceptor_(io), metrics_(std::move(metrics)), ready_(std::move(ready)) {
  acceptor_.open(ep.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen();
}

void AdminServer::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void AdminServer::stop() {
  error_code ec;
  acceptor_.close(ec);
}

asio::awaitable<void> AdminServer::accept_loop() {
  while (acceptor_.is_open()) {
    error_code ec;
    tcp::socket s = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!acceptor_.is_open()) co_return;
      continue;
    }
    asio::co_spawn(io_, serve(std::move(s)), asio::detached);
  }
}

asio::awaitable<void> AdminServer::serve(tcp::socket socket) {
  std::string buf(kMaxHead, '\0');
  std::size_t len = 0;
  while (true) {
    std::size_t scanned = 0, end = 0;
    while ((end = http::find_head_end(buf.data(), len, scanned)) == 0) {
      if (len == buf.size()) co_return;
      error_code ec;
      std::size_t n =
          co_await socket.async_read_some(asio::buffer(buf.data() + len, buf.size() - len),
                                          asio::redirect_error(asio::use_awaitable, ec));
      if (ec || n == 0) co_return;
      len += n;
    }
    std::string out;
    http::RequestHead head;
    http::ParseError err;
    bool keep = false;
    if (end == http::kBareLf ||
        http::parse_request_head(buf.data(), end, head, err) != http::ParseStatus::kComplete ||
        head.facts.body != http::BodyKind::kNone) {
      out = response(400, "text/plain", "bad request\n", false);
    } else {
      keep = head.keep_alive;
      if (head.method != "GET" && head.method != "HEAD") {
        out = response(405, "text/plain", "method not allowed\n", keep);
      } else if (head.path == "/healthz") {
        out = response(200, "application/json", "{\"status\":\"ok\"}", keep);
      } else if (head.path == "/readyz") {
        bool ready = ready_();
        out = response(ready ? 200 : 503, "application/json",
                       ready ? "{\"status\":\"ready\"}" : "{\"status\":\"draining\"}", keep);
      } else if (head.path == "/metrics") {
        out = response(200, "text/plain; version=0.0.4", metrics_(), keep);
      } else {
        out = response(404, "text/plain", "not found\n", keep);
      }
    }
    error_code ec;
    co_await asio::async_write(socket, asio::buffer(out),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !keep) co_return;
    std::size_t rest = len - end;
    buf.replace(0, rest, buf, end, rest);
    len = rest;
  }
}

}  // namespace gatehouse::admin
