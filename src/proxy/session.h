// One client connection speaking HTTP/1.1, and the proxy pipeline that runs
// for each request on it: read head, route, answer locally or forward to an
// upstream target, stream both bodies, log. Runs as one coroutine on its
// worker's thread; see docs/life_of_a_request.md.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <optional>
#include <string>

#include "core/buffer_pool.h"
#include "core/intrusive_list.h"
#include "core/ip.h"
#include "http/http1_parser.h"
#include "plugins/grpc/grpc_web_codec.h"
#include "proxy/exchange.h"
#include "proxy/h2_connection.h"
#include "proxy/plugin.h"
#include "proxy/stream.h"
#include "proxy/worker.h"
#include "router/router.h"
#include "tls/server_context.h"

namespace gatehouse::proxy {

class Session : public core::ListHook<Session> {
 public:
  // `tls`: the listener's TLS context, or null for a plain listener.
  Session(Worker& worker, Socket socket, std::shared_ptr<const tls::ServerContext> tls = nullptr)
      : Session(worker, Stream(std::move(socket)), std::move(tls)) {}
  // `stream` may be an HTTP/2 stream's pipe (then call serve_stream()).
  Session(Worker& worker, Stream stream, std::shared_ptr<const tls::ServerContext> tls = nullptr);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Serves the requests whose bytes have arrived; returns when the connection
  // closes or when it has to wait for the next request (awaiting_request()).
  Task<void> run();
  // True when run() returned to wait for the next request: the caller hands
  // the session to await_request(), which resumes it with a new run() when
  // bytes arrive, or destroys it when the client goes away or times out.
  bool awaiting_request() const { return awaiting_request_; }
  static void await_request(std::unique_ptr<Session> self);

  // Called by the worker's tick: enforces the current deadline.
  void check_deadline(int64_t now_ms);
  // Called when the worker drains: closes the connection if it is between
  // requests; otherwise it closes after the current response.
  void close_if_idle();
  // Closes both sockets now (shutdown timeout expired).
  void abort();
  // Serves one HTTP/2 stream (its client_ is the stream's Pipe) for `peer`.
  void serve_stream(const PeerInfo& peer);
  // The session holds one of its address's max_connections_per_ip slots
  // (0: none) and gives it back when it ends.
  void hold_connection_slot(uint64_t ip_key) { ip_key_ = ip_key; }

 private:
  enum class HeadResult { kComplete, kClosed, kError, kAwaitRequest, kHttp2 };
  enum class Outcome { kKeepAlive, kClose };

  Task<HeadResult> read_head(http::ParseError& err);
  Task<bool> wait_for_bytes();
  Task<bool> read_upstream_head(http::ResponseHead& resp, std::size_t& ulen, int& status,
                                std::string_view& detail);
  Task<bool> stream_request_body(const http::RequestHead& head, http::ChunkedDecoder& decoder,
                                 uint64_t& payload, int& status, std::string_view& detail);
  Task<bool> stream_response_body(http::BodyKind kind, uint64_t remaining,
                                  http::ChunkedDecoder& decoder, bool& upstream_clean);
  // gRPC-Web (the grpc_web plugin; session_grpc_web.cc): a text-mode request
  // body read whole and base64-decoded into `body`; a gRPC answer re-framed.
  Task<bool> read_grpc_web_text(http::RequestHead& head, std::size_t body_off,
                                std::size_t& body_bytes, uint64_t& payload, std::string& body,
                                int& status, std::string_view& detail);
  // 0: not a gRPC answer (passed on untouched); 1: no body (only the
  // content type changes); 2: a body to re-frame with stream_grpc_web_body.
  static int grpc_web_response(const http::ResponseHead& resp, http::BodyKind kind);
  Task<bool> stream_grpc_web_body(http::BodyKind kind, uint64_t remaining, std::size_t off,
                                  std::size_t avail, http::ChunkedDecoder& decoder,
                                  bool& upstream_clean);
  void reset_upstream();
  Task<bool> upstream_handshake(const CompiledUpstream& u, const CompiledTarget& t);
  static void park(std::unique_ptr<Session> self);
  static void await_request_tls(std::unique_ptr<Session> self, bool want_read = false);
  static void decrypt_request(std::unique_ptr<Session> self);
  static void read_next_request(std::unique_ptr<Session> self, std::size_t size);
  Task<bool> handshake();
  void hand_off_h2(std::string initial);
  Task<Outcome> serve(http::RequestHead& head);
  Task<Outcome> proxy(http::RequestHead& head, int route);
  // WebSocket (docs/tls.md): the 101, then bytes both ways.
  struct TunnelState {
    explicit TunnelState(boost::asio::io_context& io) : wake(io) {
      wake.expires_at(boost::asio::steady_timer::time_point::max());
    }
    boost::asio::steady_timer wake;
    int running = 0;
    bool stop = false;
  };
  // The request body of a duplex exchange (gRPC), streamed upstream by a
  // second coroutine while the first one streams the response back.
  struct BodyPump {
    explicit BodyPump(boost::asio::io_context& io) : done(io) {
      done.expires_at(boost::asio::steady_timer::time_point::max());
    }
    boost::asio::steady_timer done;
    bool running = true;
    bool stop = false;
    bool ok = true;
    int status = 0;
    std::string_view detail;
  };
  Task<void> pump_request_body(const http::RequestHead& head, http::ChunkedDecoder& decoder,
                               uint64_t& payload);
  Task<BodyPump> stop_body_pump();
  Task<Outcome> switch_protocols(const http::ResponseHead& resp, std::size_t ulen, int target,
                                 const HeaderEdits* edits);
  Task<void> tunnel();
  Task<void> pump_to_upstream(TunnelState& t);
  Task<void> pump_to_client(TunnelState& t);
  void end_tunnel(TunnelState& t);
  void touch_tunnel();
  Task<Outcome> respond_direct(const http::RequestHead& head, int route);
  using ReplyHeaders = std::vector<std::pair<std::string, std::string>>;
  Task<void> respond_problem(int status, std::string_view detail, bool keep_alive,
                             std::string_view allow = {}, const ReplyHeaders* extra = nullptr);
  Task<bool> buffer_chunked_body(http::ChunkedDecoder& decoder, std::size_t body_off,
                                 std::size_t& body_bytes, uint64_t& payload, int& status,
                                 std::string_view& detail);
  Task<void> respond_grpc_error(int status, std::string_view detail, bool keep_alive,
                                const ReplyHeaders* extra);
  Task<void> respond_empty(int status, bool keep_alive, const ReplyHeaders& headers,
                           int log_status = 0);
  void consume_request_head();
  Task<bool> write_client(const std::string& head, const char* body, std::size_t body_size);

  void build_upstream_head(const http::RequestHead& head, std::string_view path);
  RequestContext plugin_context(const http::RequestHead* head) const;
  const std::vector<std::unique_ptr<Plugin>>* route_plugins() const;
  std::string_view request_path_for_upstream(const http::RequestHead& head, int route);
  uint64_t balance_hash(const http::RequestHead& head, const CompiledUpstream& u) const;
  void set_deadline(Stream* stream, int64_t timeout_ms);
  void clear_deadline() { deadline_ms_ = 0; }
  void begin_request();
  void assign_request_id(std::string_view incoming);
  void finish_request(int status);
  void append_log_line(int status, int64_t end_ns);

  Worker& worker_;
  Stream client_;
  // Held only until the handshake is over (its SNI callback uses it).
  std::shared_ptr<const tls::ServerContext> tls_context_;
  bool peer_verified_ = false;  // TLS: the client presented a certificate that verified
  bool counted_ = true;         // in open_connections (HTTP/2 streams are not)
  bool secure_ = false;         // the client connection is TLS (X-Forwarded-Proto: https)
  // The current request's gRPC-Web content type (per request; kept here, in
  // what was padding, so that a Session does not grow).
  plugins::grpc_web::ContentType grpc_web_type_;
  SSL* tls_info_ = nullptr;  // the client connection's TLS (a stream's: its connection's)
  std::string client_ip_;    // the peer's address, as text
  core::IpAddr peer_;
  uint64_t ip_key_ = 0;

  // Client read buffer: [rbeg_, rend_) holds unconsumed bytes.
  core::Buffer rbuf_;
  std::size_t rbeg_ = 0;
  std::size_t rend_ = 0;
  std::size_t rcap_ = 0;
  char peek_byte_ = 0;
  bool idle_read_ = false;
  bool park_requested_ = false;
  bool awaiting_request_ = false;
  int64_t idle_since_ms_ = 0;

  // The upstream side of the current request.
  std::unique_ptr<UpstreamConnection> upstream_conn_;
  core::Buffer ubuf_;
  std::size_t ucap_ = 0;

  // Deadline enforcement (checked by the worker's tick).
  int64_t deadline_ms_ = 0;
  Stream* deadline_stream_ = nullptr;
  bool timed_out_ = false;
  bool between_requests_ = true;
  bool closing_ = false;
  bool first_request_ = true;
  bool client_http10_ = false;      // HTTP/1.0 client: no interim responses
  bool dechunk_ = false;            // HTTP/1.0 client, chunked upstream response
  bool upgrade_ = false;            // a WebSocket upgrade request
  bool grpc_ = false;               // a gRPC request: errors in gRPC form, duplex bodies
  std::unique_ptr<BodyPump> pump_;  // gRPC only: idle sessions pay a pointer

  // The request in flight (null between requests).
  std::unique_ptr<Exchange> ex_;

  // Per-request facts for the access log and metrics.
  int64_t start_ns_ = 0;
  int route_ = -1;
  int upstream_ = -1;
  int target_ = -1;
  int64_t upstream_latency_us_ = -1;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
};

}  // namespace gatehouse::proxy
