// Client-facing HTTP/2 (RFC 9113) as a codec: bytes in, bytes out, no I/O.
//
// The gateway's request pipeline speaks HTTP/1.1. Rather than teach every
// phase a second protocol, HTTP/2 is translated at the edge: each stream
// becomes one HTTP/1.1 request for its own pipeline (run over an in-memory
// pipe), and the HTTP/1.1 response that pipeline writes comes back here to
// be framed as HTTP/2. Framing, HPACK, stream states and most of the
// protocol's validity rules are nghttp2's; this class adds the translation,
// end-to-end flow control and the abuse limits a public endpoint needs.
//
// Threading: one codec per connection, used from one thread. The handler is
// called from inside receive(), take_output() and close() only; it may call
// consume(), send_response(), end_response(), reset_stream() and shutdown()
// from there, but never receive(), take_output() or close().
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>

namespace gatehouse::http2 {

struct ServerSettings {
  // SETTINGS_MAX_CONCURRENT_STREAMS; nghttp2 refuses streams beyond it with
  // RST_STREAM(REFUSED_STREAM), which the client may retry.
  uint32_t max_concurrent_streams = 100;
  // SETTINGS_MAX_HEADER_LIST_SIZE, advertised and enforced (RFC 9113 6.5.2
  // size: name + value + 32 per field, pseudo-fields included): a larger
  // request head is answered 431, larger request trailers reset the stream.
  uint32_t max_header_list_size = 16384;
  // SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a client may send on a
  // stream before the pipeline consumes them.
  uint32_t stream_window = 65535;
  // Connection receive window: bounds request body bytes in flight over all
  // streams (so at most this much sits unconsumed in the pipelines).
  uint32_t connection_window = 1 << 20;
  // Response bytes buffered per stream while the client does not read
  // (its flow-control window is closed); send_response() accepts no more.
  std::size_t max_stream_output = 65536;
  // Rapid reset guard (CVE-2023-44487, and CVE-2025-8671 "MadeYouReset"):
  // RST_STREAMs from the client plus stream errors it causes (malformed or
  // refused streams) per window. Above it: GOAWAY(ENHANCE_YOUR_CALM).
  uint32_t max_resets_per_window = 100;
  int reset_window_ms = 1000;
  // CONTINUATION flood guard (CVE-2024-27316 class): CONTINUATION frames per
  // header block. Above it: GOAWAY(ENHANCE_YOUR_CALM). nghttp2 builds with
  // the CVE-2024-28182 fix (Debian 12's 1.52.0-1+deb12u2 and later) also
  // stop at 8 on their own: the lower limit wins.
  uint32_t max_continuations = 8;
  // PING, SETTINGS, PRIORITY and empty non-final DATA frames per window
  // (reset_window_ms): each costs us work and gives the client nothing.
  // Above it: GOAWAY(ENHANCE_YOUR_CALM).
  uint32_t max_control_frames_per_window = 1000;
  // SETTINGS and PING ACKs queued but not yet written (nghttp2 option): a
  // client that floods them and does not read is cut off.
  std::size_t max_outbound_ack = 100;
  // HPACK dynamic table sizes: ours for decoding (SETTINGS_HEADER_TABLE_SIZE)
  // and our encoder's (RFC 7541 4.2); each costs this much memory.
  uint32_t header_table_size = 4096;
};

class ServerCodec {
 public:
  // The per-stream pipeline side. Every call is about one stream; for a
  // stream that got on_request_head, on_stream_closed comes exactly once and
  // nothing comes after it.
  class Handler {
   public:
    virtual ~Handler() = default;
    // The request head, as HTTP/1.1: "METHOD /path HTTP/1.1\r\nhost:
    // <:authority>\r\n<fields>\r\n". Fields are lowercase, cookies joined
    // into one line, "te: trailers" kept. Body framing: the client's
    // content-length if it sent one; none when `end_stream` (HEADERS ended
    // the stream); else "transfer-encoding: chunked" and the body arrives
    // chunk-encoded, ending with the last chunk and any request trailers.
    virtual void on_request_head(int32_t stream, std::string_view http1_head, bool end_stream) = 0;
    // Next request body bytes, already in the head's framing. Report them to
    // consume() once processed: that is what lets the client send more.
    virtual void on_request_body(int32_t stream, std::string_view http1_bytes) = 0;
    // No more request bytes (also right after on_request_head when end_stream).
    virtual void on_request_end(int32_t stream) = 0;
    // send_response() had refused bytes and now has room again.
    virtual void on_stream_writable(int32_t stream) = 0;
    // The stream is over: response sent, reset by either side, or the
    // connection is closing. `h2_error` is the RFC 9113 error code (0:
    // NO_ERROR). Stop the stream's pipeline; later calls about it are no-ops.
    virtual void on_stream_closed(int32_t stream, uint32_t h2_error) = 0;
  };

  static constexpr std::size_t kNoLimit = std::numeric_limits<std::size_t>::max();

  // Queues our SETTINGS (and the connection window update) for take_output().
  ServerCodec(Handler& handler, const ServerSettings& settings);
  ~ServerCodec();  // never calls the handler: call close() first if streams may be open
  ServerCodec(const ServerCodec&) = delete;
  ServerCodec& operator=(const ServerCodec&) = delete;

  // Bytes read from the client, starting with the connection preface.
  // False: the connection must close (bad preface, protocol error, flood);
  // a GOAWAY is queued, so flush take_output() before closing. A protocol
  // error nghttp2 handles on its own may instead show up as wants_read() and
  // wants_write() both turning false once its GOAWAY is written.
  bool receive(const uint8_t* data, std::size_t len);
  // Appends frames to write to the client (stopping once more than
  // `max_bytes` were appended); returns how many bytes it appended. Call it
  // after receive() and after send_response()/end_response(), while
  // wants_write().
  std::size_t take_output(std::string& out, std::size_t max_bytes = kNoLimit);
  // When both are false the connection is finished: close it.
  bool wants_read() const;
  bool wants_write() const;

  // The pipeline processed `http1_bytes` more bytes of on_request_body: the
  // DATA payload that carried them is credited back to the client through
  // WINDOW_UPDATE, in proportion (chunk framing makes HTTP/1.1 bytes
  // outnumber it) and in full once all delivered bytes are consumed. DATA
  // padding never reaches the pipeline; nghttp2 credits it on arrival.
  void consume(int32_t stream, std::size_t http1_bytes);
  // HTTP/1.1 response bytes in any pieces: status line and fields (1xx
  // interim responses are skipped), then the body in its framing. Returns
  // how many bytes were accepted; fewer than offered when the stream's
  // buffer is full: offer the rest after on_stream_writable. A closed or
  // unknown stream accepts (and drops) everything.
  std::size_t send_response(int32_t stream, std::string_view http1_bytes);
  // The writer is done: a close-delimited body ends here; an incomplete
  // response resets the stream (INTERNAL_ERROR).
  void end_response(int32_t stream);
  // Resets a stream (RST_STREAM with `h2_error`); on_stream_closed follows.
  void reset_stream(int32_t stream, uint32_t h2_error);
  // Graceful close: GOAWAY(NO_ERROR) for streams not yet seen; open ones
  // finish, then wants_read()/wants_write() turn false.
  void shutdown();
  // The transport is gone (read error, timeout, or done after receive()
  // returned false): calls on_stream_closed(CANCEL) for every open stream.
  // Afterwards the codec calls the handler no more and wants nothing.
  void close();

  // Why the connection is being torn down ("rapid reset", "CONTINUATION
  // flood", ...) for the log and counters; empty while it is healthy.
  std::string_view close_reason() const;
  // Streams with state in the codec (open or finishing; after close() they
  // stay until the codec is destroyed).
  std::size_t stream_count() const;

 private:
  class Connection;  // the nghttp2 session and per-stream state (server_codec.cc)
  std::unique_ptr<Connection> conn_;
};

}  // namespace gatehouse::http2
