// Upstream HTTP/2 (h2c, or h2 over TLS) as a codec: bytes in, bytes out, no I/O.
//
// The mirror of ServerCodec: one multiplexed connection to a backend carries
// many exchanges of the gateway's HTTP/1.1 pipelines. Each pipeline writes
// its HTTP/1.1 request into a stream and reads back the response as HTTP/1.1
// bytes, so the forwarding code stays the same whether a backend speaks
// HTTP/1.1 or HTTP/2. Framing, HPACK and the protocol rules are nghttp2's.
//
// Threading: one codec per connection, used from one thread. Handlers are
// called from inside receive(), take_output() and close() only (never from
// open_stream(), send_request(), end_request(), consume() or reset_stream(),
// whose consequences are reported at the next take_output()). They may call
// any of those, but never receive(), take_output() or close().
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>

namespace gatehouse::http2 {

struct ClientSettings {
  // :scheme of every request: "http" for h2c, "https" for h2 over TLS.
  std::string scheme = "http";
  // SETTINGS_INITIAL_WINDOW_SIZE: response body bytes the backend may send
  // on a stream before the pipeline consumes them.
  uint32_t stream_window = 65535;
  // Connection receive window: response bytes in flight over all streams.
  uint32_t connection_window = 1 << 20;
  // SETTINGS_MAX_HEADER_LIST_SIZE, advertised and enforced (RFC 9113 6.5.2
  // size): a larger response head or trailer section resets the stream.
  uint32_t max_header_list_size = 65536;
  // Request bytes buffered per stream while the backend's window is closed;
  // send_request() accepts no more.
  std::size_t max_stream_output = 65536;
  // Our own cap on open streams, on top of the backend's
  // SETTINGS_MAX_CONCURRENT_STREAMS.
  uint32_t max_concurrent_streams = 100;
  // HPACK dynamic table sizes (decoder: SETTINGS_HEADER_TABLE_SIZE; encoder).
  uint32_t header_table_size = 4096;
};

class ClientCodec {
 public:
  // One exchange's consumer: the upstream side of one pipeline. Registered
  // with open_stream(); called until on_stream_closed, never after.
  class StreamHandler {
   public:
    virtual ~StreamHandler() = default;
    // Response bytes as HTTP/1.1, in order: the status line and fields once
    // (interim 1xx responses are not passed on), then the body. Framing: the
    // backend's content-length when it sent one, with the body as is; none
    // for HEAD, 204 and 304; "content-length: 0" when the response ended
    // with its head; else "transfer-encoding: chunked" with the body
    // chunk-encoded and HTTP/2 trailers (grpc-status, grpc-message...) in the
    // chunked trailer section. Report processed bytes to consume().
    virtual void on_response_bytes(int32_t stream, std::string_view http1_bytes) = 0;
    // The whole response has been delivered.
    virtual void on_response_end(int32_t stream) = 0;
    // send_request() had refused bytes and now has room again.
    virtual void on_stream_writable(int32_t stream) = 0;
    // The stream is over. `h2_error` is 0 after a complete exchange, else the
    // RFC 9113 error code of the reset (ours or the backend's), or CANCEL
    // when the connection went away. `retryable`: the backend did not process
    // the request (it refused the stream, its GOAWAY excluded it, or the
    // request never left), so it may be sent again elsewhere.
    virtual void on_stream_closed(int32_t stream, uint32_t h2_error, bool retryable) = 0;
  };

  static constexpr std::size_t kNoLimit = std::numeric_limits<std::size_t>::max();
  // open_stream() failures.
  static constexpr int32_t kBusy = -1;    // at the concurrency limit: use another connection
  static constexpr int32_t kClosed = -2;  // GOAWAY, failure or close(): never again here

  // Queues the connection preface and our SETTINGS for take_output().
  explicit ClientCodec(const ClientSettings& settings);
  ~ClientCodec();  // never calls handlers: call close() first if streams may be open
  ClientCodec(const ClientCodec&) = delete;
  ClientCodec& operator=(const ClientCodec&) = delete;

  // Starts an exchange whose events go to `handler` (which must outlive it).
  // Returns its stream handle (> 0; the codec's own numbering, as the
  // HTTP/2 stream id is only chosen once the request head is complete), or
  // kBusy / kClosed.
  int32_t open_stream(StreamHandler& handler);
  // Whether open_stream() would succeed now.
  bool can_open_stream() const;
  // No new stream will ever succeed (GOAWAY received or sent, or failure):
  // the pool should replace this connection once its streams finish.
  bool draining() const;

  // HTTP/1.1 request bytes in any pieces: the head (Host becomes
  // :authority; hop-by-hop fields are dropped; "te: trailers" is added),
  // then the body in its framing (content-length or chunked; chunked
  // trailers become a trailing HEADERS frame). Returns how many bytes were
  // accepted; fewer when the stream's buffer is full: offer the rest after
  // on_stream_writable. A malformed request resets the stream.
  std::size_t send_request(int32_t stream, std::string_view http1_bytes);
  // The writer is done; an incomplete request resets the stream (CANCEL).
  void end_request(int32_t stream);
  // The pipeline processed `http1_bytes` more response bytes (from
  // on_response_bytes, head included): the HTTP/2 bytes that carried them
  // are credited back to the backend.
  void consume(int32_t stream, std::size_t http1_bytes);
  // Abandons an exchange (RST_STREAM with `h2_error`); on_stream_closed follows.
  void reset_stream(int32_t stream, uint32_t h2_error);

  // Bytes read from the backend. False: the connection is broken (protocol
  // error, or it is not speaking HTTP/2); close it after take_output().
  bool receive(const uint8_t* data, std::size_t len);
  // Appends frames to write to the backend (stopping once more than
  // `max_bytes` were appended) and reports events queued since the last
  // call; returns how many bytes it appended.
  std::size_t take_output(std::string& out, std::size_t max_bytes = kNoLimit);
  // When both are false the connection is finished: close it.
  bool wants_read() const;
  bool wants_write() const;
  // Graceful close: GOAWAY(NO_ERROR); open streams finish, no new ones.
  void shutdown();
  // The transport is gone: calls on_stream_closed(CANCEL) for every open
  // stream (retryable when its request never left). Afterwards the codec
  // calls no handler and wants nothing.
  void close();

  // Why the connection is being torn down, for the log; empty while healthy.
  std::string_view close_reason() const;
  // Streams with state in the codec (open or finishing; after close() they
  // stay until the codec is destroyed).
  std::size_t stream_count() const;

 private:
  class Connection;  // the nghttp2 session and per-stream state (client_codec.cc)
  std::unique_ptr<Connection> conn_;
};

}  // namespace gatehouse::http2
