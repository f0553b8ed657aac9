// One client connection speaking HTTP/2 (h2 after ALPN, or h2c with prior
// knowledge). The codec (http2/server_codec.h) turns each stream into an
// HTTP/1.1 request, and each request runs through the same Session pipeline
// as an HTTP/1.1 connection's (routing, plugins, forwarding, access log),
// over an in-memory Pipe instead of a socket: one protocol-independent
// pipeline, so auth, limits and logs apply unchanged (docs/tls.md).
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/intrusive_list.h"
#include "core/ip.h"
#include "http2/server_codec.h"
#include "proxy/stream.h"

namespace gatehouse::proxy {

class Worker;

// Who is on the other end of a client connection, for the sessions that
// serve its requests.
struct PeerInfo {
  core::IpAddr addr;
  std::string ip;         // text
  bool secure = false;    // arrived over TLS
  SSL* ssl = nullptr;     // the connection's TLS: the client certificate (owned by the connection)
  bool verified = false;  // that certificate verified against client_ca
};

class H2Connection : public core::ListHook<H2Connection>, private http2::ServerCodec::Handler {
 public:
  // Serves `stream` as HTTP/2; `initial` holds bytes already read from it
  // (the start of the connection preface, for h2c). `ip_key`: the
  // max_connections_per_ip slot the connection holds (0: none).
  static void start(Worker& worker, Stream stream, PeerInfo peer, uint64_t ip_key,
                    std::string initial);
  ~H2Connection() override;

  // The worker's tick, drain and shutdown.
  void check_deadline(int64_t now_ms);
  void close_if_idle();
  void abort();

 private:
  class StreamPipe;
  H2Connection(Worker& worker, Stream stream, PeerInfo peer, uint64_t ip_key);

  static Task<void> run(std::unique_ptr<H2Connection> self, std::string initial);
  Task<void> read_loop(std::string initial);
  Task<void> write_loop();
  void kick();  // wakes the writer: the codec may have frames to send
  void wake_done();
  void pipe_released(StreamPipe* pipe);
  void maybe_finish();

  // http2::ServerCodec::Handler
  void on_request_head(int32_t stream, std::string_view http1_head, bool end_stream) override;
  void on_request_body(int32_t stream, std::string_view http1_bytes) override;
  void on_request_end(int32_t stream) override;
  void on_stream_writable(int32_t stream) override;
  void on_stream_closed(int32_t stream, uint32_t h2_error) override;

  StreamPipe* find(int32_t stream);

  Worker& worker_;
  Stream stream_;
  PeerInfo peer_;
  uint64_t ip_key_ = 0;
  http2::ServerCodec codec_;
  std::unordered_map<int32_t, std::unique_ptr<StreamPipe>> pipes_;
  std::size_t live_ = 0;  // pipes a session still uses
  boost::asio::steady_timer write_signal_;
  boost::asio::steady_timer done_signal_;
  std::string out_;
  std::unique_ptr<char[]> rbuf_;
  int64_t last_active_ms_ = 0;
  bool reading_done_ = false;
  bool writer_stop_ = false;
  bool writer_done_ = false;
  bool draining_ = false;
};

}  // namespace gatehouse::proxy
