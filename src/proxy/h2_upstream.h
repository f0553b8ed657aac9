// HTTP/2 to an upstream target (`protocol: h2c`, or `h2` over TLS): one
// multiplexed connection per target per worker (another when it is full),
// each exchange one stream. The session's forwarding code stays the one it
// uses for HTTP/1.1 backends: it writes the request as HTTP/1.1 into a Pipe
// and reads the response back as HTTP/1.1 (http2/client_codec.h translates),
// so retries, timeouts, trailers and streaming work the same way.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "http2/client_codec.h"
#include "proxy/stream.h"

namespace gatehouse::proxy {

class Worker;
struct CompiledUpstream;
struct CompiledTarget;

class H2Upstream : public std::enable_shared_from_this<H2Upstream> {
 public:
  class StreamPipe;

  // Starts connecting; open streams once ready() (wait_ready()).
  static std::shared_ptr<H2Upstream> connect(Worker& worker, const CompiledUpstream& u,
                                             const CompiledTarget& t);
  ~H2Upstream();

  // Waits until the connection is up (true) or failed (false).
  Task<bool> wait_ready();
  // A new exchange's pipe, or null when this connection takes no more
  // streams (full, closing or dead: use another).
  Pipe* open_stream();
  bool dead() const { return dead_; }
  bool ready() const { return ready_; }
  bool can_open() const { return ready_ && !dead_ && codec_.can_open_stream(); }
  bool idle() const { return pipes_.empty(); }
  int64_t idle_since_ms() const { return idle_since_ms_; }
  // Graceful close (idle, drain) and hard close (shutdown).
  void shutdown();
  void abort();

 private:
  H2Upstream(Worker& worker, const CompiledUpstream& u, const CompiledTarget& t);
  static Task<void> run(std::shared_ptr<H2Upstream> self);
  Task<bool> establish();
  Task<void> read_loop();
  Task<void> write_loop();
  void kick();
  void sweep();
  void pipe_released(StreamPipe* p);

  Worker& worker_;
  const CompiledUpstream& upstream_;
  const CompiledTarget& target_;
  Stream stream_;
  http2::ClientCodec codec_;
  std::unordered_map<int32_t, std::unique_ptr<StreamPipe>> pipes_;
  boost::asio::steady_timer write_signal_;
  boost::asio::steady_timer ready_signal_;
  boost::asio::steady_timer connect_timer_;
  std::string out_;
  std::unique_ptr<char[]> rbuf_;
  int64_t idle_since_ms_ = 0;
  bool ready_ = false;
  bool connect_timed_out_ = false;
  bool dead_ = false;
  bool writer_stop_ = false;
  bool writer_done_ = false;
  bool sweep_needed_ = false;
};

}  // namespace gatehouse::proxy
