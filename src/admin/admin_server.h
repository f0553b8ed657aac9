// The admin listener: /healthz, /readyz and /metrics over HTTP/1.1. Runs on
// the main thread's io_context, never on a worker.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <string>

namespace gatehouse::admin {

class AdminServer {
 public:
  using MetricsRenderer = std::function<std::string()>;
  using ReadyCheck = std::function<bool()>;

  AdminServer(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& ep,
              MetricsRenderer metrics, ReadyCheck ready);
  void start();
  void stop();

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  MetricsRenderer metrics_;
  ReadyCheck ready_;
};

}  // namespace gatehouse::admin
