// The part of an HTTP/2 stream's Pipe that both ends of the proxy share.
// A client's stream (H2Connection) and a stream to a backend (H2Upstream)
// work the same way: the codec delivers bytes into a buffer that the
// pipeline reads, the pipeline's writes go to the codec piece by piece, and
// one timer wakes whichever of the two is waiting. They differ only in the
// hooks below: what a consumed byte is worth to flow control, which error ends
// reads and writes, and which codec call takes the bytes.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <string>
#include <string_view>

#include "proxy/stream.h"

namespace gatehouse::proxy {

class StreamPipeBase : public Pipe {
 public:
  explicit StreamPipeBase(boost::asio::io_context& io);

  // Wakes the pipeline's pending read or write (new bytes, room, an end).
  void wake() { signal_.cancel(); }

  // --- Pipe, for the pipeline ---
  Task<std::size_t> read_some(boost::asio::mutable_buffer b, boost::system::error_code& ec) final;
  std::size_t read_now(void* p, std::size_t n, boost::system::error_code& ec) final;
  bool try_write(boost::asio::const_buffer* bufs, std::size_t n,
                 boost::system::error_code& ec) final;
  Task<std::size_t> write(std::vector<boost::asio::const_buffer> bufs,
                          boost::system::error_code& ec) final;
  void cancel() final;

 protected:
  // Queues bytes from the codec for the pipeline and wakes it.
  void deliver_input(std::string_view bytes) {
    in_.append(bytes);
    wake();
  }

  // n bytes went to the pipeline (credit them to the peer's window).
  virtual void consumed(std::size_t n) = 0;
  // With no bytes buffered: eof, connection_reset, or no error (wait).
  virtual boost::system::error_code input_end() const = 0;
  // Whether writes fail (the stream is gone).
  virtual bool output_closed() const = 0;
  // Hands bytes to the codec; how many it took (0: its buffer is full).
  virtual std::size_t send(std::string_view bytes) = 0;
  // The codec may have frames to put on the wire.
  virtual void kick() = 0;

 private:
  // A cancel() not yet seen: the pending read or write fails once with
  // operation_aborted.
  bool take_cancel(boost::system::error_code& ec);

  boost::asio::steady_timer signal_;
  std::string in_;
  std::size_t in_off_ = 0;
  bool cancelled_ = false;
};

}  // namespace gatehouse::proxy
