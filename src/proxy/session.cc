#include "proxy/session.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

#include "auth/consumers.h"
#include "core/clock.h"
#include "http/head_writer.h"
#include "http/path.h"
#include "http/status.h"
#include "observability/json_escape.h"
#include "proxy/client_ip.h"
#include "proxy/identity.h"
#include "proxy/socket_io.h"

namespace gatehouse::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using http::BodyKind;

namespace {

// A client that keeps a connection open but sends nothing gives its read
// buffer back after this long (see await_request). Under load connections
// are never idle this long, so the fast path keeps its buffer.
constexpr int64_t kParkAfterMs = 200;
constexpr int kMaxLeadingEmptyLines = 8;

template <typename Out>
void append_uint(Out& out, uint64_t v) {
  char buf[24];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  out.append(p, static_cast<std::size_t>(buf + sizeof buf - p));
}

std::string_view lower_host(std::string_view host, char (&buf)[256]) {
  // Strip the port; IPv6 literals keep their brackets.
  std::size_t end = host.size();
  if (!host.empty() && host[0] == '[') {
    std::size_t close = host.find(']');
    end = close == std::string_view::npos ? host.size() : close + 1;
  } else if (std::size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    end = colon;
  }
  if (end > sizeof buf) end = sizeof buf;
  for (std::size_t i = 0; i < end; ++i) {
    char c = host[i];
    buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
  return std::string_view(buf, end);
}

class RequestHeaders : public router::HeaderLookup {
 public:
  explicit RequestHeaders(const http::RequestHead& h) : h_(h) {}
  bool get(std::string_view lower_name, std::string_view& value) const override {
    for (std::size_t i = 0; i < h_.header_count; ++i) {
      if (http::iequals(h_.headers[i].name, lower_name)) {
        value = h_.headers[i].value;
        return true;
      }
    }
    return false;
  }

 private:
  const http::RequestHead& h_;
};

constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// An HTTP/1.1 GET asking to switch to WebSocket (RFC 6455 4.1): Upgrade
// names websocket and Connection carries the upgrade token. Other upgrades
// (h2c, TLS) are not offered: their Upgrade is dropped as hop-by-hop.
// gRPC and gRPC-Web requests: errors are answered in gRPC form.
bool is_grpc(const http::RequestHead& head, std::string_view& content_type) {
  for (std::size_t i = 0; i < head.header_count; ++i) {
    const http::Header& h = head.headers[i];
    if (h.name.size() == 12 && http::iequals(h.name, "content-type")) {
      content_type = h.value;
      std::string_view v = h.value;
      return v.size() >= 16 && http::iequals(v.substr(0, 16), "application/grpc");
    }
  }
  return false;
}

bool is_websocket_upgrade(const http::RequestHead& head) {
  if (head.minor_version != 1 || head.method != "GET" || head.facts.body != BodyKind::kNone) {
    return false;
  }
  bool websocket = false;
  bool connection_upgrade = false;
  auto has_token = [](std::string_view list, std::string_view token) {
    bool found = false;
    http::for_each_list_item(list,
                             [&](std::string_view t) { found = found || http::iequals(t, token); });
    return found;
  };
  for (std::size_t i = 0; i < head.header_count; ++i) {
    const http::Header& h = head.headers[i];
    if (http::iequals(h.name, "upgrade")) websocket = websocket || has_token(h.value, "websocket");
    if (http::iequals(h.name, "connection")) {
      connection_upgrade = connection_upgrade || has_token(h.value, "upgrade");
    }
  }
  return websocket && connection_upgrade;
}

}  // namespace

Session::Session(Worker& worker, Stream stream, std::shared_ptr<const tls::ServerContext> tls)
    : worker_(worker), client_(std::move(stream)), tls_context_(std::move(tls)) {
  rcap_ = worker_.small_buffers().buffer_size();
  worker_.add_session(this);
  worker_.metrics_mut().open_connections().add();
  if (client_.is_pipe()) return;
  error_code ec;
  Socket& sock = client_.socket();
  sock.set_option(tcp::no_delay(true), ec);
  sock.non_blocking(true, ec);
  if (tls_context_) {
    SSL* ssl = tls_context_->new_connection(sock.native_handle());
    if (ssl == nullptr) sock.close(ec);  // out of memory: run() ends at once
    client_.attach(ssl);
  }
  auto remote = sock.remote_endpoint(ec);
  if (!ec) {
    auto addr = remote.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    client_ip_ = addr.to_string();
    if (addr.is_v4()) {
      auto b = addr.to_v4().to_bytes();
      std::copy(b.begin(), b.end(), peer_.bytes.begin());
    } else {
      auto b = addr.to_v6().to_bytes();
      std::copy(b.begin(), b.end(), peer_.bytes.begin());
      peer_.v6 = true;
    }
  }
}

Session::~Session() {
  if (ex_) ex_->state.end();
  if (ip_key_ != 0) worker_.snapshot().connections_per_ip->release(ip_key_);
  if (counted_) worker_.metrics_mut().open_connections().sub();
  worker_.remove_session(this);
  if (upstream_conn_) {
    error_code ec;
    upstream_conn_->stream.socket().close(ec);
  }
}

void Session::set_deadline(Stream* stream, int64_t timeout_ms) {
  deadline_ms_ = core::coarse_ms() + timeout_ms;
  deadline_stream_ = stream;
  timed_out_ = false;
}

void Session::check_deadline(int64_t now_ms) {
  if (idle_read_ && now_ms - idle_since_ms_ >= kParkAfterMs && !park_requested_) {
    park_requested_ = true;
    error_code ec;
    client_.socket().cancel(ec);
  }
  if (deadline_ms_ != 0 && now_ms >= deadline_ms_) {
    deadline_ms_ = 0;
    timed_out_ = true;
    if (deadline_stream_) deadline_stream_->cancel();
  }
}

void Session::close_if_idle() {
  if (between_requests_) {
    closing_ = true;
    client_.cancel();
  }
}

void Session::abort() {
  closing_ = true;
  error_code ec;
  client_.cancel();
  client_.socket().close(ec);
  if (upstream_conn_) upstream_conn_->stream.socket().close(ec);
}

// Waits, inside the coroutine, for more bytes of a request that has begun.
Task<bool> Session::wait_for_bytes() {
  if (!rbuf_) rbuf_ = worker_.small_buffers().take();
  if (rbeg_ == rend_) rbeg_ = rend_ = 0;
  if (rend_ == rcap_ && rbeg_ > 0) {
    std::memmove(rbuf_.data(), rbuf_.data() + rbeg_, rend_ - rbeg_);
    rend_ -= rbeg_;
    rbeg_ = 0;
  }
  error_code ec;
  std::size_t n = co_await client_.read_some(asio::buffer(rbuf_.data() + rend_, rcap_ - rend_), ec);
  if (ec || n == 0) co_return false;
  rend_ += n;
  co_return true;
}

// Between requests a session waits outside any coroutine: its frames are
// gone, so the only memory an idle connection holds is the Session, Asio's
// per-socket state and one pending operation. It first waits with its read
// buffer (the cheap path under load: the next request lands straight in it,
// no extra system call). If the client stays silent for kParkAfterMs, the
// tick cancels that read and the session parks: the buffer goes back to the
// pool and a 1-byte MSG_PEEK holds the connection until the client speaks.
// (Frames that lived through those 200 ms fragmented the heap: see
// bench/NOTES.md.) TLS sessions read the same way; await_request_tls says how
// they differ.
void Session::await_request(std::unique_ptr<Session> self) {
  Session* s = self.get();
  if (s->client_.tls()) {
    await_request_tls(std::move(self));
    return;
  }
  s->rbeg_ = s->rend_ = 0;
  s->between_requests_ = true;
  read_next_request(std::move(self), s->rcap_);
}

// The buffered wait of await_request: up to `size` bytes into rbuf_. With TLS
// they are ciphertext, staged for OpenSSL to decrypt.
void Session::read_next_request(std::unique_ptr<Session> self, std::size_t size) {
  Session* s = self.get();
  if (!s->rbuf_) s->rbuf_ = s->worker_.small_buffers().take();
  s->idle_read_ = true;
  s->idle_since_ms_ = core::coarse_ms();
  s->park_requested_ = false;
  s->client_.socket().async_read_some(
      asio::buffer(s->rbuf_.data(), size),
      [self = std::move(self)](const error_code& ec, std::size_t n) mutable {
        Session* s = self.get();
        s->idle_read_ = false;
        bool tls = s->client_.tls();
        if (ec == asio::error::operation_aborted && s->park_requested_ && !s->timed_out_ &&
            !s->closing_) {
          s->rbuf_.release();
          s->worker_.note_parked();
          if (tls) {
            await_request_tls(std::move(self), true);
          } else {
            park(std::move(self));
          }
          return;
        }
        if (ec || n == 0 || s->closing_) return;  // destroying self closes the socket
        if (tls) {
          s->client_.stage(s->rbuf_.data(), n);
          decrypt_request(std::move(self));
          return;
        }
        s->rend_ = n;
        s->start_ns_ = core::monotonic_ns();
        s->worker_.start_session(std::move(self));
      });
}

void Session::park(std::unique_ptr<Session> self) {
  Session* s = self.get();
  s->client_.socket().async_receive(
      asio::buffer(&s->peek_byte_, 1), Socket::message_peek,
      [self = std::move(self)](const error_code& ec, std::size_t n) mutable {
        Session* s = self.get();
        if (ec || n == 0 || s->closing_ || s->worker_.draining()) {
          return;  // destroying self closes the socket
        }
        await_request(std::move(self));
      });
}

// With TLS a session waits like a plain one (read_next_request): under load
// with its buffer, the next request's records landing straight in it (no
// epoll_ctl per wait, as async_wait would cost), staged for OpenSSL and
// decrypted. When the tick ends that read after kParkAfterMs of silence,
// the session waits for readability without a buffer (`want_read`; OpenSSL
// frees its own while idle: SSL_MODE_RELEASE_BUFFERS). It also waits that
// way when OpenSSL holds part of a record: the rest must come through
// OpenSSL's own read, as staged bytes must fit its record buffer at once.
// Readable is not the same as a request byte: a partial record or a TLS
// message of its own (a ticket, a key update) decrypts to nothing, and the
// session waits again.
void Session::await_request_tls(std::unique_ptr<Session> self, bool want_read) {
  Session* s = self.get();
  s->rbeg_ = s->rend_ = 0;
  s->between_requests_ = true;
  bool held = s->client_.pending();
  if (held && !want_read) {
    asio::post(s->worker_.io(),
               [self = std::move(self)]() mutable { decrypt_request(std::move(self)); });
    return;
  }
  if (held || want_read) {
    s->client_.socket().async_wait(Socket::wait_read,
                                   [self = std::move(self)](const error_code& ec) mutable {
                                     Session* s = self.get();
                                     if (ec || s->closing_ || s->worker_.draining()) return;
                                     decrypt_request(std::move(self));
                                   });
    return;
  }
  // OpenSSL's read-ahead buffer holds a full record and more (the largest
  // plaintext plus overhead), so with it empty the first read inside
  // SSL_read takes everything staged.
  read_next_request(std::move(self), std::min<std::size_t>(s->rcap_, SSL3_RT_MAX_PLAIN_LENGTH));
}

// Decrypts what the socket (or the staged bytes in rbuf_) holds into rbuf_
// and starts the request, or waits again when that was no request byte.
void Session::decrypt_request(std::unique_ptr<Session> self) {
  Session* s = self.get();
  if (!s->rbuf_) s->rbuf_ = s->worker_.small_buffers().take();
  // The staged ciphertext may sit in rbuf_ itself: decrypt beside it.
  thread_local char plain[SSL3_RT_MAX_PLAIN_LENGTH];  // one record's worth
  error_code ec;
  std::size_t n = s->client_.read_now(plain, sizeof plain, ec);
  if (ec) return;  // destroying self closes
  if (n == 0) {
    s->rbuf_.release();
    await_request_tls(std::move(self), true);
    return;
  }
  std::memcpy(s->rbuf_.data(), plain, n);
  s->rend_ = n;
  s->start_ns_ = core::monotonic_ns();
  s->worker_.start_session(std::move(self));
}

Task<bool> Session::handshake() {
  set_deadline(&client_, worker_.snapshot().config.limits.header_timeout.count());
  error_code ec;
  bool ok = co_await client_.handshake(ec);
  clear_deadline();
  tls_context_.reset();
  if (!ok) {
    worker_.metrics_mut().count_tls_handshake_failure();
    co_return false;
  }
  SSL* ssl = client_.ssl();
  peer_verified_ =
      SSL_get0_peer_certificate(ssl) != nullptr && SSL_get_verify_result(ssl) == X509_V_OK;
  secure_ = true;
  tls_info_ = ssl;
  co_return true;
}

void Session::serve_stream(const PeerInfo& peer) {
  peer_ = peer.addr;
  client_ip_ = peer.ip;
  secure_ = peer.secure;
  tls_info_ = peer.ssl;
  peer_verified_ = peer.verified;
  worker_.metrics_mut().open_connections().sub();  // counted by its connection
  counted_ = false;
}

// The connection speaks HTTP/2 (ALPN h2, or the h2c preface): an
// H2Connection takes the socket over, and this session ends.
void Session::hand_off_h2(std::string initial) {
  PeerInfo peer{peer_, client_ip_, secure_, client_.ssl(), peer_verified_};
  uint64_t ip_key = ip_key_;
  ip_key_ = 0;
  clear_deadline();
  worker_.metrics_mut().open_connections().sub();  // the H2Connection counts itself
  counted_ = false;
  H2Connection::start(worker_, std::move(client_), std::move(peer), ip_key, std::move(initial));
}

Task<Session::HeadResult> Session::read_head(http::ParseError& err) {
  std::size_t scanned = 0;
  int empty_lines = 0;
  bool line_checked = false;
  const auto& limits = worker_.snapshot().config.limits;
  between_requests_ = rbeg_ == rend_;
  set_deadline(&client_, between_requests_ && !first_request_ ? limits.idle_timeout.count()
                                                              : limits.header_timeout.count());
  while (true) {
    // RFC 9112 2.2: ignore empty lines before a request-line (bounded).
    while (rend_ - rbeg_ >= 2 && rbuf_.data()[rbeg_] == '\r' && rbuf_.data()[rbeg_ + 1] == '\n' &&
           scanned == 0) {
      rbeg_ += 2;
      if (++empty_lines > kMaxLeadingEmptyLines) {
        err = {400, "too many empty lines before request"};
        co_return HeadResult::kError;
      }
    }
    if (rend_ > rbeg_) {
      if (between_requests_) {
        between_requests_ = false;
        start_ns_ = core::monotonic_ns();
        set_deadline(&client_, limits.header_timeout.count());
      }
      const char* data = rbuf_.data() + rbeg_;
      std::size_t size = rend_ - rbeg_;
      // h2c with prior knowledge (RFC 9113 3.3): the connection preface
      // instead of a first request (never on a stream or after TLS).
      if (first_request_ && !client_.is_pipe() && !secure_ && data[0] == 'P') {
        std::size_t k = std::min(size, kH2Preface.size());
        if (kH2Preface.compare(0, k, std::string_view(data, k)) == 0) {
          if (size >= kH2Preface.size()) co_return HeadResult::kHttp2;
          if (!co_await wait_for_bytes()) co_return HeadResult::kClosed;
          continue;
        }
      }
      std::size_t end = http::find_head_end(data, size, scanned);
      if (end == http::kBareLf) {
        err = {400, "bare LF in request head"};
        co_return HeadResult::kError;
      }
      if (end != 0) {
        if (end > limits.max_header_bytes) {
          err = {431, "request head too large"};
          co_return HeadResult::kError;
        }
        if (!ex_) ex_ = worker_.exchanges().take();
        http::ParseStatus s = http::parse_request_head(data, end, ex_->head, err);
        co_return s == http::ParseStatus::kComplete ? HeadResult::kComplete : HeadResult::kError;
      }
      if (size >= limits.max_header_bytes) {
        err = {431, "request head too large"};
        co_return HeadResult::kError;
      }
      if (!line_checked &&
          http::check_request_line(data, size, err) != http::ParseStatus::kIncomplete) {
        if (err.status != 0) co_return HeadResult::kError;
        line_checked = true;
      }
    }
    if (closing_ || worker_.draining()) {
      if (between_requests_) co_return HeadResult::kClosed;
    }
    if (rend_ == rbeg_ && !client_.is_pipe()) co_return HeadResult::kAwaitRequest;
    if (!co_await wait_for_bytes()) {
      if (timed_out_ && rend_ > rbeg_ && !between_requests_) {
        err = {408, "request head not received in time"};
        co_return HeadResult::kError;
      }
      co_return HeadResult::kClosed;
    }
  }
}

Task<void> Session::run() {
  awaiting_request_ = false;
  if (client_.tls() && tls_context_) {
    if (!co_await handshake()) {
      client_.socket().close();
      co_return;
    }
    if (tls::alpn_selected(client_.ssl()) == "h2") {
      hand_off_h2({});
      co_return;
    }
  }
  while (!closing_) {
    http::ParseError err;
    HeadResult r = co_await read_head(err);
    if (r == HeadResult::kAwaitRequest) {
      awaiting_request_ = true;
      co_return;  // the caller hands the session to await_request()
    }
    if (r == HeadResult::kClosed) break;
    if (r == HeadResult::kHttp2) {
      std::string initial(rbuf_.data() + rbeg_, rend_ - rbeg_);
      rbuf_.release();
      hand_off_h2(std::move(initial));
      co_return;
    }
    begin_request();
    if (r == HeadResult::kError) {
      co_await respond_problem(err.status, err.detail, false);
      break;
    }
    Outcome o = co_await serve(ex_->head);
    first_request_ = false;
    worker_.exchanges().give_back(std::move(ex_));
    if (o == Outcome::kClose || worker_.draining()) break;
  }
  worker_.exchanges().give_back(std::move(ex_));
  clear_deadline();
  between_requests_ = true;
  if (client_.tls() || client_.is_pipe()) {
    client_.close();
  } else {
    error_code ec;
    client_.socket().shutdown(Socket::shutdown_send, ec);
    client_.socket().close(ec);
  }
}

// Keeps a valid incoming X-Request-Id (the parser checked it), else makes one.
void Session::assign_request_id(std::string_view incoming) {
  if (incoming.empty()) {
    ex_->request_id_len = worker_.request_ids().next(ex_->request_id).size();
  } else {
    ex_->request_id_len = incoming.size();
    std::memcpy(ex_->request_id, incoming.data(), incoming.size());
  }
}

void Session::begin_request() {
  if (start_ns_ == 0) start_ns_ = core::monotonic_ns();
  if (!ex_) ex_ = worker_.exchanges().take();
  ex_->request_id_len = 0;
  route_ = upstream_ = target_ = -1;
  upstream_latency_us_ = -1;
  bytes_in_ = bytes_out_ = 0;
  ex_->method.clear();
  ex_->raw_path.clear();
  ex_->state.reset();
  upgrade_ = false;
  grpc_ = false;
  grpc_web_type_ = {};
}

Task<Session::Outcome> Session::serve(http::RequestHead& head) {
  const Snapshot& snap = worker_.snapshot();
  ex_->method.assign(head.method);
  ex_->raw_path.assign(head.path);
  assign_request_id(head.request_id);
  std::string_view content_type;
  grpc_ = is_grpc(head, content_type);
  if (grpc_) grpc_web_type_ = plugins::grpc_web::parse_content_type(content_type);
  bool has_body = head.facts.body != BodyKind::kNone;
  const auto& limits = snap.config.limits;

  if (head.path == "*") {
    co_await respond_problem(404, "no route matches *", head.keep_alive && !has_body);
    co_return head.keep_alive && !has_body ? Outcome::kKeepAlive : Outcome::kClose;
  }
  http::normalize_path(head.path, ex_->normalized_path);
  char host_buf[256];
  std::string_view host = lower_host(head.host, host_buf);
  RequestHeaders headers(head);
  snap.router.match(host, ex_->normalized_path, head.method, headers, ex_->match);
  bool keep = head.keep_alive && !has_body;
  if (ex_->match.kind == router::MatchResult::Kind::kNotFound) {
    std::string detail = "no route matches " + ex_->normalized_path;
    co_await respond_problem(404, detail, keep);
    co_return keep ? Outcome::kKeepAlive : Outcome::kClose;
  }
  if (ex_->match.kind == router::MatchResult::Kind::kMethodNotAllowed) {
    std::string detail = "method " + ex_->method + " not allowed here";
    co_await respond_problem(405, detail, keep, ex_->match.allow);
    co_return keep ? Outcome::kKeepAlive : Outcome::kClose;
  }
  route_ = static_cast<int>(ex_->match.route_index);
  if (!snap.trusted_proxies.empty()) {
    core::IpAddr client = resolve_client_ip(peer_, head, snap.trusted_proxies);
    if (!(client == peer_)) ex_->state.client_ip = core::to_string(client);
  }
  if (limits.max_body_bytes && head.facts.body == BodyKind::kLength &&
      head.facts.content_length > *limits.max_body_bytes) {
    co_await respond_problem(413, "request body larger than max_body_bytes", false);
    co_return Outcome::kClose;
  }
  const CompiledRoute& route = snap.routes[ex_->match.route_index];
  if (!route.plugins.empty()) {
    RequestContext ctx = plugin_context(&head);
    LocalReply reply;
    for (const auto& plugin : route.plugins) {
      bool pass = plugin->async_request() ? co_await plugin->on_request_async(ctx, reply)
                                          : plugin->on_request(ctx, reply);
      if (pass) continue;
      if (reply.problem) {
        co_await respond_problem(reply.status, reply.detail, keep, {}, &reply.headers);
      } else {
        co_await respond_empty(reply.status, keep, reply.headers);
      }
      co_return keep ? Outcome::kKeepAlive : Outcome::kClose;
    }
  }
  if (route.direct) co_return co_await respond_direct(head, route_);
  upgrade_ = is_websocket_upgrade(head);
  co_return co_await proxy(head, route_);
}

Task<Session::Outcome> Session::respond_direct(const http::RequestHead& head, int route) {
  const CompiledRoute& r = worker_.snapshot().routes[static_cast<std::size_t>(route)];
  bool keep = head.keep_alive && head.facts.body == BodyKind::kNone && !worker_.draining();
  ex_->out_head.assign(r.direct_head);
  http::append_field(ex_->out_head, "X-Request-Id",
                     std::string_view(ex_->request_id, ex_->request_id_len));
  for (const auto& [name, value] : ex_->state.response_headers) {
    bool configured = false;
    for (const std::string& n : r.direct_header_names) configured |= http::iequals(n, name);
    if (!configured) http::append_field(ex_->out_head, name, value);
  }
  http::append_field(ex_->out_head, "Date", worker_.clock().http_date());
  if (!keep) ex_->out_head.append("Connection: close\r\n");
  ex_->out_head.append("\r\n");
  bool is_head = head.method == "HEAD";
  std::size_t body = is_head ? 0 : r.direct_body.size();
  rbeg_ += head.head_size;
  bool ok = co_await write_client(ex_->out_head, r.direct_body.data(), body);
  bytes_out_ = body;
  finish_request(r.direct_status);
  co_return ok&& keep ? Outcome::kKeepAlive : Outcome::kClose;
}

Task<void> Session::respond_problem(int status, std::string_view detail, bool keep_alive,
                                    std::string_view allow, const ReplyHeaders* extra) {
  // Every locally generated error is counted here, once (docs/contracts.md).
  worker_.metrics_mut().count_rejected(status);
  if (grpc_) {
    co_await respond_grpc_error(status, detail, keep_alive, extra);
    co_return;
  }
  std::string body;
  body.reserve(160 + detail.size());
  body.append("{\"type\":\"about:blank\",\"title\":");
  observability::append_json_string(body, http::reason_phrase(status));
  body.append(",\"status\":");
  append_uint(body, static_cast<uint64_t>(status));
  body.append(",\"detail\":");
  observability::append_json_string(body, detail);
  body.append(",\"request_id\":");
  if (ex_->request_id_len == 0) assign_request_id({});
  observability::append_json_string(body, std::string_view(ex_->request_id, ex_->request_id_len));
  body.append("}");
  keep_alive = keep_alive && !worker_.draining();
  ex_->out_head.clear();
  http::append_status_line(ex_->out_head, status, {});
  http::append_field(ex_->out_head, "Content-Type", "application/problem+json");
  ex_->out_head.append("Content-Length: ");
  append_uint(ex_->out_head, body.size());
  ex_->out_head.append("\r\n");
  http::append_field(ex_->out_head, "X-Request-Id",
                     std::string_view(ex_->request_id, ex_->request_id_len));
  http::append_field(ex_->out_head, "Date", worker_.clock().http_date());
  if (!allow.empty()) http::append_field(ex_->out_head, "Allow", allow);
  if (extra != nullptr) {
    for (const auto& [name, value] : *extra) http::append_field(ex_->out_head, name, value);
  }
  for (const auto& [name, value] : ex_->state.response_headers)
    http::append_field(ex_->out_head, name, value);
  ex_->out_head.append(keep_alive ? "\r\n" : "Connection: close\r\n\r\n");
  bool head_request = ex_->method == "HEAD";
  if (keep_alive) consume_request_head();
  co_await write_client(ex_->out_head, body.data(), head_request ? 0 : body.size());
  bytes_out_ = head_request ? 0 : body.size();
  finish_request(status);
}

// gRPC clients read errors from grpc-status, not from the HTTP status: a
// gateway-made error on a gRPC request is a "trailers-only" response (HTTP
// 200, the status in the head, no body), its code mapped from the HTTP one
// as the gRPC spec's HTTP-to-gRPC table does, except where the gateway's
// meaning is more precise (429: RESOURCE_EXHAUSTED, 504: DEADLINE_EXCEEDED).
Task<void> Session::respond_grpc_error(int status, std::string_view detail, bool keep_alive,
                                       const ReplyHeaders* extra) {
  int code = 2;  // UNKNOWN
  switch (status) {
    case 400:
      code = 13;
      break;  // INTERNAL
    case 401:
      code = 16;
      break;  // UNAUTHENTICATED
    case 403:
      code = 7;
      break;  // PERMISSION_DENIED
    case 404:
      code = 12;
      break;  // UNIMPLEMENTED
    case 408:
      code = 4;
      break;  // DEADLINE_EXCEEDED
    case 413:
    case 429:
    case 431:
      code = 8;
      break;  // RESOURCE_EXHAUSTED
    case 502:
    case 503:
      code = 14;
      break;  // UNAVAILABLE
    case 504:
      code = 4;
      break;  // DEADLINE_EXCEEDED
    default:
      break;
  }
  ReplyHeaders headers;
  // gRPC-Web clients get their own content type back (grpc-web or -text).
  headers.emplace_back("Content-Type", plugins::grpc_web::client_content_type(grpc_web_type_));
  headers.emplace_back("grpc-status", std::to_string(code));
  // grpc-message is percent-encoded (gRPC over HTTP/2, "Responses").
  std::string message;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : detail) {
    if (c >= 0x20 && c <= 0x7E && c != '%') {
      message.push_back(static_cast<char>(c));
    } else {
      message.push_back('%');
      message.push_back(kHex[c >> 4]);
      message.push_back(kHex[c & 15]);
    }
  }
  headers.emplace_back("grpc-message", std::move(message));
  if (extra != nullptr) headers.insert(headers.end(), extra->begin(), extra->end());
  // The access log and metrics keep the status the gateway decided on.
  co_await respond_empty(200, keep_alive, headers, status);
}

Task<void> Session::respond_empty(int status, bool keep_alive, const ReplyHeaders& headers,
                                  int log_status) {
  keep_alive = keep_alive && !worker_.draining();
  ex_->out_head.clear();
  http::append_status_line(ex_->out_head, status, {});
  if (status != 204 && status != 304) ex_->out_head.append("Content-Length: 0\r\n");
  http::append_field(ex_->out_head, "X-Request-Id",
                     std::string_view(ex_->request_id, ex_->request_id_len));
  http::append_field(ex_->out_head, "Date", worker_.clock().http_date());
  for (const auto& [name, value] : headers) http::append_field(ex_->out_head, name, value);
  for (const auto& [name, value] : ex_->state.response_headers)
    http::append_field(ex_->out_head, name, value);
  ex_->out_head.append(keep_alive ? "\r\n" : "Connection: close\r\n\r\n");
  if (keep_alive) consume_request_head();
  co_await write_client(ex_->out_head, nullptr, 0);
  bytes_out_ = 0;
  finish_request(log_status != 0 ? log_status : status);
}

void Session::consume_request_head() {
  // A locally answered request that stays alive has no body: skip its head.
  if (rend_ <= rbeg_) return;
  std::size_t scanned = 0;
  std::size_t end = http::find_head_end(rbuf_.data() + rbeg_, rend_ - rbeg_, scanned);
  if (end != 0 && end != http::kBareLf) rbeg_ += end;
}

Task<bool> Session::write_client(const std::string& head, const char* body, std::size_t body_size) {
  std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body, body_size)};
  error_code ec;
  if (client_.try_write(bufs, ec)) co_return true;
  if (ec) co_return false;
  set_deadline(&client_, worker_.snapshot().config.limits.idle_timeout.count());
  co_await client_.write(bufs, ec);
  clear_deadline();
  co_return !ec;
}

std::string_view Session::request_path_for_upstream(const http::RequestHead& head, int route) {
  const CompiledRoute& r = worker_.snapshot().routes[static_cast<std::size_t>(route)];
  ex_->upstream_path.clear();
  if (r.rewrite.empty()) {
    ex_->upstream_path.append(ex_->normalized_path);
  } else {
    for (const RewritePiece& p : r.rewrite) {
      if (!p.param) {
        ex_->upstream_path.append(p.text);
        continue;
      }
      for (std::size_t i = 0; i < ex_->match.param_count; ++i) {
        if (ex_->match.params[i].name == p.text)
          ex_->upstream_path.append(ex_->match.params[i].value);
      }
    }
    // A rewrite must never produce dot segments, whatever the params held.
    if (http::has_dot_segment(ex_->upstream_path) || ex_->upstream_path.empty() ||
        ex_->upstream_path[0] != '/') {
      std::string normalized;
      if (ex_->upstream_path.empty() || ex_->upstream_path[0] != '/')
        ex_->upstream_path.insert(0, "/");
      http::normalize_path(ex_->upstream_path, normalized);
      ex_->upstream_path = std::move(normalized);
    }
  }
  if (head.has_query) {
    ex_->upstream_path.push_back('?');
    if (ex_->state.hidden_query_param.empty()) {
      ex_->upstream_path.append(head.query);
    } else {
      append_query_without(ex_->upstream_path, head.query, ex_->state.hidden_query_param);
    }
  }
  return ex_->upstream_path;
}

void Session::build_upstream_head(const http::RequestHead& head, std::string_view path) {
  using namespace std::string_view_literals;
  http::HopByHop hop_by_hop(head);
  std::string& out = ex_->out_head;
  out.clear();
  std::string_view xff;
  bool host_seen = false;
  ex_->edits.set.clear();
  ex_->edits.remove.clear();
  if (const auto* plugins = route_plugins()) {
    RequestContext ctx = plugin_context(&head);
    for (const auto& plugin : *plugins) plugin->on_upstream_request(ctx, ex_->edits);
  }
  std::string_view request_id(ex_->request_id, ex_->request_id_len);
  http::HeadWriter w(out, head.head_size + path.size() + request_id.size() + 64);
  w.append(head.method).push_back(' ');
  w.append(path).append(" HTTP/1.1\r\n"sv);
  http::append_kept_fields(w, head, [&](const http::Header& h) {
    if (hop_by_hop.drops(h.name)) return false;
    if (!ex_->edits.empty() && ex_->edits.drops(h.name)) return false;
    switch (h.name.size()) {
      case 4:
        if (http::iequals(h.name, "host")) host_seen = true;
        break;
      case 6:
        if (http::iequals(h.name, "expect")) return false;  // 100-continue is answered here
        break;
      case 12:
        if (http::iequals(h.name, "x-request-id")) return false;
        break;
      case 14:
        if (http::iequals(h.name, "content-length")) return false;
        break;
      case 15:
        if (http::iequals(h.name, "x-forwarded-for")) {
          xff = h.value;
          return false;
        }
        // Identity headers only ever come from the gateway (docs/auth.md).
        if (http::iequals(h.name, "x-consumer-tier") || http::iequals(h.name, "x-auth-verified"))
          return false;
        break;
      case 16:
        if (http::iequals(h.name, "x-forwarded-host")) return false;
        break;
      case 17:
        if (http::iequals(h.name, "x-forwarded-proto")) return false;
        break;
      case 9:
        if (http::iequals(h.name, "x-user-id")) return false;
        break;
      case 10:
        if (http::iequals(h.name, "x-consumer")) return false;
        break;
      case 11:
        if (http::iequals(h.name, "x-user-role")) return false;
        break;
      case 19:
        if (http::iequals(h.name, "x-gateway-signature")) return false;
        break;
      case 20:
        if (http::iequals(h.name, "x-anonymous-consumer")) return false;
        break;
    }
    return true;
  });
  for (const auto& [name, value] : ex_->edits.set) http::append_field(w, name, value);
  if (!host_seen && !head.host.empty()) http::append_field(w, "Host", head.host);
  http::append_field(w, "X-Request-Id", request_id);
  const Identity& id = ex_->state.identity;
  const std::string& secret = worker_.snapshot().signing_secret;
  w.finish();  // the identity writers below append to the string itself
  if (id.known()) append_identity_headers(out, id);
  if (!secret.empty()) {
    append_signature(out, secret, core::WallClock::unix_seconds(), head.method, path, request_id,
                     identity_user_id(id));
  }
  http::HeadWriter tail(out, xff.size() + client_ip_.size() + head.host.size() + 128);
  tail.append("X-Forwarded-For: "sv);
  if (!xff.empty()) tail.append(xff).append(", "sv);
  tail.append(client_ip_).append("\r\n"sv);
  tail.append(secure_ ? "X-Forwarded-Proto: https\r\n"sv : "X-Forwarded-Proto: http\r\n"sv);
  if (!head.host.empty()) http::append_field(tail, "X-Forwarded-Host", head.host);
  if (upgrade_) tail.append("Connection: Upgrade\r\nUpgrade: websocket\r\n"sv);
  if (head.facts.body == BodyKind::kLength) {
    tail.append("Content-Length: "sv);
    append_uint(tail, head.facts.content_length);
    tail.append("\r\n"sv);
  } else if (head.facts.body == BodyKind::kChunked) {
    tail.append("Transfer-Encoding: chunked\r\n"sv);
  }
  tail.append("\r\n"sv);
}

uint64_t Session::balance_hash(const http::RequestHead& head, const CompiledUpstream& u) const {
  switch (u.hash_on) {
    case config::HashOn::kHeader:
      for (std::size_t i = 0; i < head.header_count; ++i) {
        if (http::iequals(head.headers[i].name, u.hash_key)) {
          return hash_key(head.headers[i].value.data(), head.headers[i].value.size());
        }
      }
      return hash_key(client_ip_.data(), client_ip_.size());
    case config::HashOn::kCookie:
      for (std::size_t i = 0; i < head.header_count; ++i) {
        if (!http::iequals(head.headers[i].name, "cookie")) continue;
        std::string_view v = head.headers[i].value;
        std::size_t pos = 0;
        while (pos < v.size()) {
          while (pos < v.size() && (v[pos] == ' ' || v[pos] == ';')) ++pos;
          std::size_t eq = v.find('=', pos);
          std::size_t semi = v.find(';', pos);
          if (eq == std::string_view::npos) break;
          if (v.substr(pos, eq - pos) == u.hash_key) {
            std::string_view val = v.substr(eq + 1, semi == v.npos ? v.npos : semi - eq - 1);
            return hash_key(val.data(), val.size());
          }
          if (semi == std::string_view::npos) break;
          pos = semi + 1;
        }
      }
      return hash_key(client_ip_.data(), client_ip_.size());
    case config::HashOn::kIp:
      return hash_key(client_ip_.data(), client_ip_.size());
    case config::HashOn::kPath:
      return hash_key(ex_->normalized_path.data(), ex_->normalized_path.size());
    case config::HashOn::kNone:
      break;
  }
  return 0;
}

// Pre-reads a chunked request body into rbuf_ (up to the buffer's size), so
// that a body that fits is validated whole before any byte goes upstream.
Task<bool> Session::buffer_chunked_body(http::ChunkedDecoder& decoder, std::size_t body_off,
                                        std::size_t& body_bytes, uint64_t& payload, int& status,
                                        std::string_view& detail) {
  const auto& limits = worker_.snapshot().config.limits;
  std::size_t fed = body_off;
  while (true) {
    std::size_t consumed = 0;
    auto res = decoder.feed(rbuf_.data() + fed, rend_ - fed, consumed, payload);
    fed += consumed;
    body_bytes = fed - body_off;
    if (res == http::ChunkedDecoder::Result::kError) {
      status = 400;
      detail = decoder.error();
      co_return false;
    }
    if (limits.max_body_bytes && payload > *limits.max_body_bytes) {
      status = 413;
      detail = "request body larger than max_body_bytes";
      co_return false;
    }
    if (res == http::ChunkedDecoder::Result::kDone || rend_ == rcap_) co_return true;
    // gRPC streams its body: a message may wait for the response to the last.
    if (grpc_) co_return true;
    set_deadline(&client_, limits.header_timeout.count());
    error_code ec;
    std::size_t n =
        co_await client_.read_some(asio::buffer(rbuf_.data() + rend_, rcap_ - rend_), ec);
    clear_deadline();
    if (ec || n == 0) {
      status = timed_out_ ? 408 : 400;
      detail = timed_out_ ? "request body not received in time" : "client closed mid-body";
      co_return false;
    }
    rend_ += n;
  }
}

RequestContext Session::plugin_context(const http::RequestHead* head) const {
  RequestContext ctx;
  ctx.head = head;
  if (route_ >= 0) ctx.route = worker_.snapshot().routes[static_cast<std::size_t>(route_)].name;
  ctx.client_ip = ex_->state.client_ip.empty() ? std::string_view(client_ip_)
                                               : std::string_view(ex_->state.client_ip);
  ctx.request_id = std::string_view(ex_->request_id, ex_->request_id_len);
  ctx.state = &ex_->state;
  ctx.worker = worker_.id();
  ctx.unix_s = worker_.clock().unix_seconds();
  ctx.redis = worker_.redis();
  if (tls_info_ != nullptr) {
    ctx.peer_certificate = SSL_get0_peer_certificate(tls_info_);
    ctx.peer_verified = peer_verified_;
  }
  return ctx;
}

const std::vector<std::unique_ptr<Plugin>>* Session::route_plugins() const {
  if (route_ < 0) return nullptr;
  const auto& plugins = worker_.snapshot().routes[static_cast<std::size_t>(route_)].plugins;
  return plugins.empty() ? nullptr : &plugins;
}

void Session::finish_request(int status) {
  ex_->state.end();
  if (const auto* plugins = route_plugins()) {
    RequestContext ctx = plugin_context(nullptr);
    for (auto it = plugins->rbegin(); it != plugins->rend(); ++it) (*it)->on_log(ctx, status);
  }
  int64_t end_ns = core::monotonic_ns();
  uint64_t latency_us = static_cast<uint64_t>((end_ns - start_ns_) / 1000);
  worker_.metrics_mut().count_request(route_, status, latency_us);
  if (worker_.log_enabled()) append_log_line(status, end_ns);
  start_ns_ = 0;
}

void Session::append_log_line(int status, int64_t end_ns) {
  using observability::append_json_string;
  std::string& out = worker_.log_buffer();
  const Snapshot& snap = worker_.snapshot();
  char ts[24];
  out.append("{\"request_id\":");
  append_json_string(out, std::string_view(ex_->request_id, ex_->request_id_len));
  out.append(",\"timestamp\":\"").append(worker_.clock().rfc3339_ms(ts)).append("\",\"method\":");
  append_json_string(out, ex_->method);
  out.append(",\"path\":");
  append_json_string(out, ex_->raw_path);
  out.append(",\"route\":");
  if (route_ >= 0) {
    append_json_string(out, snap.routes[static_cast<std::size_t>(route_)].name);
  } else {
    out.append("null");
  }
  out.append(",\"status\":");
  append_uint(out, static_cast<uint64_t>(status));
  char num[32];
  int64_t lat_us = (end_ns - start_ns_) / 1000;
  std::snprintf(num, sizeof num, "%.3f", static_cast<double>(lat_us) / 1000.0);
  out.append(",\"latency_ms\":").append(num);
  if (upstream_ >= 0) {
    const CompiledUpstream& u = snap.upstreams[static_cast<std::size_t>(upstream_)];
    out.append(",\"upstream_service\":");
    append_json_string(out, u.name);
    out.append(",\"upstream_addr\":");
    if (target_ >= 0) {
      append_json_string(out, u.targets[static_cast<std::size_t>(target_)].address);
    } else {
      out.append("null");
    }
  } else {
    out.append(",\"upstream_service\":null,\"upstream_addr\":null");
  }
  out.append(",\"upstream_latency_ms\":");
  if (upstream_latency_us_ >= 0) {
    std::snprintf(num, sizeof num, "%.3f", static_cast<double>(upstream_latency_us_) / 1000.0);
    out.append(num);
  } else {
    out.append("null");
  }
  out.append(",\"client_ip\":");
  append_json_string(out, ex_->state.client_ip.empty() ? std::string_view(client_ip_)
                                                       : std::string_view(ex_->state.client_ip));
  out.append(",\"bytes_in\":");
  append_uint(out, bytes_in_);
  out.append(",\"bytes_out\":");
  append_uint(out, bytes_out_);
  const Identity& id = ex_->state.identity;
  std::string_view user = identity_user_id(id);
  out.append(",\"consumer\":");
  if (id.consumer != nullptr) {
    append_json_string(out, id.consumer->name);
  } else {
    out.append("null");
  }
  out.append(",\"user_id\":");
  if (!user.empty()) {
    append_json_string(out, user);
  } else {
    out.append("null");
  }
  out.append(",\"consumer_tier\":");
  if (id.consumer != nullptr && !id.consumer->plan.empty()) {
    append_json_string(out, id.consumer->plan);
  } else {
    out.append("null");
  }
  if (!ex_->state.log_detail.empty()) {
    out.append(",\"detail\":");
    append_json_string(out, ex_->state.log_detail);
  }
  out.append(",\"cache\":null}\n");
}

}  // namespace gatehouse::proxy
