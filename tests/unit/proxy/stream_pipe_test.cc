// StreamPipeBase: the buffered, timer-woken pipe both HTTP/2 ends share.
// A fake codec end stands in for H2Connection / H2Upstream.
#include "proxy/stream_pipe.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <string>

namespace gatehouse::proxy {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

class FakePipe final : public StreamPipeBase {
 public:
  explicit FakePipe(asio::io_context& io) : StreamPipeBase(io) {}
  void feed(std::string_view bytes) { deliver_input(bytes); }
  void close() override {}

  std::size_t credited = 0;
  std::size_t kicks = 0;
  std::size_t room = 1 << 20;  // bytes send() takes before its buffer is "full"
  std::string sent;
  error_code end;
  bool closed_for_output = false;

 private:
  void consumed(std::size_t n) override { credited += n; }
  error_code input_end() const override { return end; }
  bool output_closed() const override { return closed_for_output; }
  std::size_t send(std::string_view bytes) override {
    std::size_t k = std::min(room, bytes.size());
    sent.append(bytes.substr(0, k));
    room -= k;
    return k;
  }
  void kick() override { ++kicks; }
};

TEST(StreamPipeBase, ReadNowTakesWhatWasDeliveredAndCreditsIt) {
  asio::io_context io;
  FakePipe p(io);
  char buf[4];
  error_code ec;
  EXPECT_EQ(p.read_now(buf, sizeof buf, ec), 0u);  // nothing yet, no end: wait
  EXPECT_FALSE(ec);
  p.feed("hello!");
  EXPECT_EQ(p.read_now(buf, sizeof buf, ec), 4u);
  EXPECT_EQ(std::string(buf, 4), "hell");
  EXPECT_EQ(p.read_now(buf, sizeof buf, ec), 2u);
  EXPECT_EQ(std::string(buf, 2), "o!");
  EXPECT_EQ(p.credited, 6u);
  p.end = asio::error::eof;
  EXPECT_EQ(p.read_now(buf, sizeof buf, ec), 0u);
  EXPECT_EQ(ec, asio::error::eof);
}

TEST(StreamPipeBase, ReadSomeWaitsForDeliveryAndCancelAbortsIt) {
  asio::io_context io;
  FakePipe p(io);
  std::string got;
  error_code read_ec;
  int reads = 0;
  asio::co_spawn(
      io,
      [&]() -> Task<void> {
        char buf[16];
        for (;;) {
          error_code ec;
          std::size_t n = co_await p.read_some(asio::buffer(buf), ec);
          ++reads;
          if (ec) {
            read_ec = ec;
            co_return;
          }
          got.append(buf, n);
        }
      },
      asio::detached);
  io.poll();
  EXPECT_EQ(reads, 0);  // waiting
  p.feed("abc");
  io.poll();
  EXPECT_EQ(got, "abc");
  p.cancel();
  io.poll();
  EXPECT_EQ(read_ec, asio::error::operation_aborted);
}

TEST(StreamPipeBase, WriteWaitsWhileTheCodecIsFullAndFailsOnceTheStreamIsGone) {
  asio::io_context io;
  FakePipe p(io);
  p.room = 3;
  error_code write_ec;
  std::size_t written = 0;
  bool done = false;
  std::string a = "hello ", b = "world";
  asio::co_spawn(
      io,
      [&]() -> Task<void> {
        std::vector<asio::const_buffer> bufs{asio::buffer(a), asio::buffer(b)};
        written = co_await p.write(std::move(bufs), write_ec);
        done = true;
      },
      asio::detached);
  io.poll();
  EXPECT_FALSE(done);
  EXPECT_EQ(p.sent, "hel");
  EXPECT_GE(p.kicks, 1u);
  p.room = 100;
  p.wake();  // the codec's buffer drained
  io.poll();
  EXPECT_TRUE(done);
  EXPECT_FALSE(write_ec);
  EXPECT_EQ(written, 11u);
  EXPECT_EQ(p.sent, "hello world");

  p.closed_for_output = true;
  error_code ec;
  asio::const_buffer more = asio::buffer(a);
  EXPECT_FALSE(p.try_write(&more, 1, ec));
  EXPECT_EQ(ec, asio::error::connection_reset);
}

}  // namespace
}  // namespace gatehouse::proxy
