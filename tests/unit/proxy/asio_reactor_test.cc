// The configure-time patch of Asio's reactor (cmake/AsioPatch.cmake): a
// short read ends speculative reads, and a FIN that came with the data must
// still end the next read at once.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <string>
#include <thread>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

struct Pair {
  asio::io_context io;
  tcp::socket a{io};
  tcp::socket b{io};
  Pair() {
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    a.connect(acc.local_endpoint());
    acc.accept(b);
    b.non_blocking(true);
  }
  // One async_read_some on b; "" with ec set when it ended, "<timeout>" when
  // nothing completed within the time.
  // `meanwhile` runs after the read is started and before the loop runs.
  template <typename F = void (*)()>
  std::string read_once(
      error_code& ec, std::chrono::milliseconds limit = std::chrono::seconds(3),
      F meanwhile = [] {}) {
    char buf[4096];
    std::string out = "<timeout>";
    bool done = false;
    asio::steady_timer timer(io, limit);
    b.async_read_some(asio::buffer(buf), [&](const error_code& e, std::size_t n) {
      ec = e;
      out.assign(buf, n);
      done = true;
      timer.cancel();
    });
    timer.async_wait([&](const error_code& e) {
      if (!e && !done) b.cancel();
    });
    meanwhile();
    io.restart();
    io.run();
    return done && ec != asio::error::operation_aborted ? out : "<timeout>";
  }
};

TEST(AsioReactor, DataAfterAShortReadIsStillDelivered) {
  Pair p;
  error_code ec;
  asio::write(p.a, asio::buffer(std::string("first")));
  EXPECT_EQ(p.read_once(ec), "first");
  // The short read ended speculation: this read waits for the event.
  asio::write(p.a, asio::buffer(std::string("second")));
  EXPECT_EQ(p.read_once(ec), "second");
  for (int i = 0; i < 50; ++i) {
    std::string msg = "m" + std::to_string(i);
    asio::write(p.a, asio::buffer(msg));
    ASSERT_EQ(p.read_once(ec), msg);
  }
}

TEST(AsioReactor, AFinThatCameWithTheDataEndsTheNextRead) {
  Pair p;
  error_code ec;
  // The read waits (nothing there yet); data and FIN then arrive together,
  // and one epoll event carries both: the read takes the data.
  std::string got = p.read_once(ec, std::chrono::seconds(3), [&] {
    asio::write(p.a, asio::buffer(std::string("last words")));
    p.a.shutdown(tcp::socket::shutdown_send);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  });
  EXPECT_EQ(got, "last words");
  EXPECT_FALSE(ec);
  // No event is left to wait for: this read must find the end at once.
  EXPECT_EQ(p.read_once(ec, std::chrono::seconds(2)), "");
  EXPECT_EQ(ec, asio::error::eof);
}

TEST(AsioReactor, AFinAfterAShortReadEndsTheNextRead) {
  Pair p;
  error_code ec;
  asio::write(p.a, asio::buffer(std::string("hello")));
  EXPECT_EQ(p.read_once(ec), "hello");
  p.a.shutdown(tcp::socket::shutdown_send);
  EXPECT_EQ(p.read_once(ec, std::chrono::seconds(2)), "");
  EXPECT_EQ(ec, asio::error::eof);
}

TEST(AsioReactor, AFullBufferKeepsReadingWithoutAnEvent) {
  Pair p;
  error_code ec;
  std::string big(10000, 'x');
  asio::write(p.a, asio::buffer(big));
  asio::steady_timer settle(p.io, std::chrono::milliseconds(50));
  settle.wait();
  std::size_t got = 0;
  while (got < big.size()) {
    std::string part = p.read_once(ec, std::chrono::seconds(2));
    ASSERT_NE(part, "<timeout>") << "after " << got << " bytes";
    got += part.size();
  }
  EXPECT_EQ(got, big.size());
}

}  // namespace
