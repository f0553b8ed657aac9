// The forwarding half of Session: choose a target, get a pooled or new
// upstream connection, send the request, stream both bodies, give the
// connection back. Retries: one other target after a refused connect, and
// one fresh connection when a pooled one turns out to be stale.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

#include "core/clock.h"
#include "http/head_writer.h"
#include "http/status.h"
#include "proxy/h2_upstream.h"
#include "proxy/session.h"
#include "proxy/socket_io.h"

namespace gatehouse::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using http::BodyKind;

namespace {

constexpr int64_t kAvoidMs = 5000;
// Body bytes that arrived with a response head and are copied behind the
// client head instead of being written as a second buffer.
constexpr std::size_t kJoinBodyBytes = 1024;

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// A plugin's Vary (cors: Origin) joins the upstream's instead of replacing
// it: a cache must still key on what the upstream varies on. Nothing changes
// when the upstream already names the field or varies on everything ("*").
void add_vary(const http::ResponseHead& resp, const std::string& field, HeaderEdits& edits) {
  std::string merged;
  bool covered = false;
  for (std::size_t i = 0; i < resp.header_count; ++i) {
    const http::Header& h = resp.headers[i];
    if (h.name.size() != 4 || !http::iequals(h.name, "vary")) continue;
    http::for_each_list_item(h.value, [&](std::string_view t) {
      if (t == "*" || http::iequals(t, field)) covered = true;
      if (!t.empty()) merged.append(merged.empty() ? "" : ", ").append(t);
    });
  }
  if (covered) return;
  merged.append(merged.empty() ? "" : ", ").append(field);
  edits.set.emplace_back("Vary", std::move(merged));
}

// Response head for the client: the upstream's fields minus hop-by-hop ones,
// our framing and request id.
void build_client_head(std::string& out, const http::ResponseHead& resp, BodyKind kind,
                       std::string_view request_id, bool keep_alive,
                       const HeaderEdits* edits = nullptr) {
  using namespace std::string_view_literals;
  out.clear();
  http::HeadWriter w(out, resp.head_size + request_id.size() + 64);
  http::append_status_line(w, resp.status, resp.reason);
  http::HopByHop hop_by_hop(resp);
  http::append_kept_fields(w, resp, [&](const http::Header& h) {
    if (hop_by_hop.drops(h.name)) return false;
    if (h.name.size() == 12 && http::iequals(h.name, "x-request-id")) return false;
    return edits == nullptr || !edits->drops(h.name);
  });
  if (edits != nullptr) {
    for (const auto& [name, value] : edits->set) http::append_field(w, name, value);
  }
  if (kind == BodyKind::kChunked) w.append("Transfer-Encoding: chunked\r\n"sv);
  w.append("X-Request-Id: "sv).append(request_id).append("\r\n"sv);
  if (!keep_alive) w.append("Connection: close\r\n"sv);
  w.append("\r\n"sv);
}

}  // namespace

// The request body half of a duplex exchange (gRPC). When it fails, the
// response half is stopped too (its upstream read is cancelled).
Task<void> Session::pump_request_body(const http::RequestHead& head, http::ChunkedDecoder& decoder,
                                      uint64_t& payload) {
  int status = 0;
  std::string_view detail;
  bool ok = co_await stream_request_body(head, decoder, payload, status, detail);
  BodyPump& p = *pump_;
  p.ok = ok && !p.stop;
  p.status = p.stop ? 0 : status;
  p.detail = detail;
  p.running = false;
  if (!ok && !p.stop && upstream_conn_) upstream_conn_->stream.cancel();
  p.done.cancel();
}

// Ends the request body half (if still running, it is interrupted: the
// response is over) and reports how it went.
Task<Session::BodyPump> Session::stop_body_pump() {
  BodyPump result(worker_.io());
  if (!pump_) co_return result;
  if (pump_->running) {
    pump_->stop = true;
    client_.cancel();
    if (upstream_conn_) upstream_conn_->stream.cancel();
  }
  while (pump_->running) {
    error_code ec;
    co_await pump_->done.async_wait(await_ec(ec));
  }
  result.ok = pump_->ok;
  result.status = pump_->status;
  result.detail = pump_->detail;
  pump_.reset();
  co_return result;
}

Task<bool> Session::upstream_handshake(const CompiledUpstream& u, const CompiledTarget& t) {
  Stream& stream = upstream_conn_->stream;
  SSL* ssl = u.tls->new_connection(stream.socket().native_handle(),
                                   u.tls_server_name.empty() ? t.host : u.tls_server_name);
  if (ssl == nullptr) co_return false;
  stream.attach(ssl);
  set_deadline(&stream, u.connect_timeout_ms);
  error_code ec;
  bool ok = co_await stream.handshake(ec);
  clear_deadline();
  co_return ok;
}

void Session::reset_upstream() {
  if (!upstream_conn_) return;
  error_code ec;
  // SO_LINGER 0: close with RST, so the upstream sees the stream was cut
  // rather than a complete (truncated) body.
  upstream_conn_->stream.socket().set_option(asio::socket_base::linger(true, 0), ec);
  upstream_conn_->stream.socket().close(ec);
  upstream_conn_.reset();
}

Task<bool> Session::read_upstream_head(http::ResponseHead& resp, std::size_t& ulen, int& status,
                                       std::string_view& detail) {
  const CompiledUpstream& u = worker_.snapshot().upstreams[static_cast<std::size_t>(upstream_)];
  if (!ubuf_) {
    ubuf_ = worker_.small_buffers().take();
    ucap_ = worker_.small_buffers().buffer_size();
  }
  ulen = 0;
  std::size_t scanned = 0;
  while (true) {
    // After an interim response the next head may already be buffered.
    std::size_t end = ulen ? http::find_head_end(ubuf_.data(), ulen, scanned) : 0;
    if (end == 0 && ulen == ucap_) {
      status = 502;
      detail = "upstream response head too large";
      co_return false;
    }
    if (end == 0) {
      error_code ec;
      set_deadline(&upstream_conn_->stream, u.read_timeout_ms);
      std::size_t n = co_await upstream_conn_->stream.read_some(
          asio::buffer(ubuf_.data() + ulen, ucap_ - ulen), ec);
      clear_deadline();
      if (ec || n == 0) {
        if (timed_out_) {
          status = 504;
          detail = "upstream did not answer in time";
        } else {
          status = 502;
          detail = ec == asio::error::connection_reset ? "upstream reset the connection"
                                                       : "upstream closed the connection";
        }
        co_return false;
      }
      ulen += n;
      continue;
    }
    if (end == http::kBareLf) {
      status = 502;
      detail = "malformed upstream response";
      co_return false;
    }
    http::ParseError err;
    if (http::parse_response_head(ubuf_.data(), end, resp, err) != http::ParseStatus::kComplete) {
      status = 502;
      detail = "malformed upstream response";
      co_return false;
    }
    if (resp.status >= 200) co_return true;
    if (resp.status == 101) {
      if (upgrade_) co_return true;  // the WebSocket handshake: proxy() tunnels
      status = 502;
      detail = "upstream switched protocols without an upgrade request";
      co_return false;
    }
    // RFC 9110 15.2: pass interim responses on to HTTP/1.1 clients, except
    // 100 Continue, which this gateway answers itself.
    if (resp.status != 100 && !client_http10_) {
      std::string interim;
      build_client_head(interim, resp, BodyKind::kNone,
                        std::string_view(ex_->request_id, ex_->request_id_len), true);
      error_code wec;
      co_await client_.write(asio::buffer(interim), wec);
      if (wec) {
        status = 502;
        detail = "client went away";
        co_return false;
      }
    }
    std::memmove(ubuf_.data(), ubuf_.data() + end, ulen - end);
    ulen -= end;
    scanned = 0;
  }
}

Task<bool> Session::stream_request_body(const http::RequestHead& head,
                                        http::ChunkedDecoder& decoder, uint64_t& payload,
                                        int& status, std::string_view& detail) {
  const auto& limits = worker_.snapshot().config.limits;
  const CompiledUpstream& u = worker_.snapshot().upstreams[static_cast<std::size_t>(upstream_)];
  bool chunked = head.facts.body == BodyKind::kChunked;
  uint64_t remaining = chunked ? 0 : head.facts.content_length - payload;
  while (chunked ? !decoder.done() : remaining > 0) {
    if (rbeg_ == rend_) rbeg_ = rend_ = 0;
    std::size_t want = rcap_ - rend_;
    if (!chunked && want > remaining) want = static_cast<std::size_t>(remaining);
    error_code ec;
    if (!pump_) set_deadline(&client_, limits.idle_timeout.count());
    std::size_t n = co_await client_.read_some(asio::buffer(rbuf_.data() + rend_, want), ec);
    if (!pump_) clear_deadline();
    if (ec || n == 0) {
      status = timed_out_ ? 408 : 400;
      detail = timed_out_ ? "request body not received in time" : "client closed mid-body";
      co_return false;
    }
    rend_ += n;
    std::size_t send = n;
    if (chunked) {
      std::size_t consumed = 0;
      auto r = decoder.feed(rbuf_.data() + rbeg_, rend_ - rbeg_, consumed, payload);
      if (r == http::ChunkedDecoder::Result::kError) {
        status = 400;
        detail = decoder.error();
        co_return false;
      }
      send = consumed;
    } else {
      payload += n;
      remaining -= n;
    }
    if (limits.max_body_bytes && payload > *limits.max_body_bytes) {
      status = 413;
      detail = "request body larger than max_body_bytes";
      co_return false;
    }
    if (!pump_) set_deadline(&upstream_conn_->stream, u.read_timeout_ms);
    co_await upstream_conn_->stream.write(asio::buffer(rbuf_.data() + rbeg_, send), ec);
    if (!pump_) clear_deadline();
    if (ec) {
      status = timed_out_ ? 504 : 502;
      detail = "upstream stopped reading the request body";
      co_return false;
    }
    rbeg_ += send;
  }
  co_return true;
}

Task<bool> Session::stream_response_body(BodyKind kind, uint64_t remaining,
                                         http::ChunkedDecoder& decoder, bool& upstream_clean) {
  const CompiledUpstream& u = worker_.snapshot().upstreams[static_cast<std::size_t>(upstream_)];
  const auto& limits = worker_.snapshot().config.limits;
  if (kind == BodyKind::kNone || (kind == BodyKind::kLength && remaining == 0) ||
      (kind == BodyKind::kChunked && decoder.done())) {
    co_return true;
  }
  // Bodies larger than the head buffer stream through a 256 KiB buffer: fewer
  // system calls per byte; 1 MiB responses went from 0.9x to 1.25x nginx's
  // throughput when this grew from 64 KiB (see bench/NOTES.md).
  ubuf_ = worker_.large_buffers().take();
  ucap_ = worker_.large_buffers().buffer_size();
  while (true) {
    std::size_t want = ucap_;
    if (kind == BodyKind::kLength && want > remaining) want = static_cast<std::size_t>(remaining);
    error_code ec;
    set_deadline(&upstream_conn_->stream, u.read_timeout_ms);
    std::size_t n = co_await upstream_conn_->stream.read_some(asio::buffer(ubuf_.data(), want), ec);
    clear_deadline();
    if (ec || n == 0) {
      upstream_clean = false;
      co_return kind == BodyKind::kUntilClose && !timed_out_;
    }
    std::size_t send = n;
    if (kind == BodyKind::kChunked) {
      uint64_t payload = 0;
      std::size_t consumed = 0;
      std::size_t decoded = 0;
      auto r = dechunk_ ? decoder.decode(ubuf_.data(), n, consumed, payload, ubuf_.data(), decoded)
                        : decoder.feed(ubuf_.data(), n, consumed, payload);
      send = dechunk_ ? decoded : consumed;
      if (r == http::ChunkedDecoder::Result::kError) {
        upstream_clean = false;
        co_return false;
      }
      if (consumed < n) upstream_clean = false;  // bytes after the body: not reusable
      bytes_out_ += payload;
    } else {
      bytes_out_ += n;
      if (kind == BodyKind::kLength) remaining -= n;
    }
    std::array<asio::const_buffer, 1> out{asio::buffer(ubuf_.data(), send)};
    if (!client_.try_write(out, ec) && !ec) {
      set_deadline(&client_, limits.idle_timeout.count());
      co_await client_.write(out, ec);
      clear_deadline();
    }
    if (ec) {
      upstream_clean = false;
      co_return false;
    }
    if ((kind == BodyKind::kLength && remaining == 0) ||
        (kind == BodyKind::kChunked && decoder.done())) {
      co_return true;
    }
  }
}

Task<Session::Outcome> Session::proxy(http::RequestHead& head, int route) {
  const Snapshot& snap = worker_.snapshot();
  const CompiledRoute& r = snap.routes[static_cast<std::size_t>(route)];
  const CompiledUpstream& u = snap.upstreams[static_cast<std::size_t>(r.upstream)];
  UpstreamState& us = worker_.upstream(r.upstream);
  upstream_ = r.upstream;
  client_http10_ = head.minor_version == 0;
  error_code ec;

  // 1. The part of the body already read, validated before anything is sent.
  std::size_t body_off = rbeg_ + head.head_size;
  std::size_t body_bytes = 0;
  uint64_t payload = 0;
  bool body_complete = true;
  http::ChunkedDecoder decoder;
  bool expect = head.expect_continue;
  // gRPC-Web text (the grpc_web plugin): the body is read whole and
  // base64-decoded first; it goes up with a content-length.
  const bool web_text = ex_->state.grpc_web &&
                        grpc_web_type_.mode == plugins::grpc_web::Mode::kText &&
                        head.facts.body != BodyKind::kNone;
  std::string web_body;
  if (web_text) {
    int status = 0;
    std::string_view detail;
    if (!co_await read_grpc_web_text(head, body_off, body_bytes, payload, web_body, status,
                                     detail)) {
      bytes_in_ = payload;
      co_await respond_problem(status, detail, false);
      co_return Outcome::kClose;
    }
  } else if (head.facts.body == BodyKind::kLength) {
    uint64_t avail = rend_ - body_off;
    body_bytes = static_cast<std::size_t>(std::min<uint64_t>(avail, head.facts.content_length));
    payload = body_bytes;
    body_complete = body_bytes == head.facts.content_length;
  } else if (head.facts.body == BodyKind::kChunked) {
    if (expect && rend_ == body_off) {
      co_await client_.write(asio::buffer(kContinue), ec);
      expect = false;
    }
    int status = 0;
    std::string_view detail;
    if (!co_await buffer_chunked_body(decoder, body_off, body_bytes, payload, status, detail)) {
      co_await respond_problem(status, detail, false);
      co_return Outcome::kClose;
    }
    body_complete = decoder.done();
  }
  if (expect && !body_complete) {
    co_await client_.write(asio::buffer(kContinue), ec);
  }
  build_upstream_head(head, request_path_for_upstream(head, route));
  // From here on the request head's views are not needed: ex_->out_head holds
  // what goes upstream.

  // 2. Choose a target and send the request (retrying as described above).
  int64_t now = core::coarse_ms();
  us.excluded.assign(u.targets.size(), false);
  bool any = false;
  for (std::size_t i = 0; i < u.targets.size(); ++i) {
    us.excluded[i] = us.targets[i].avoid_until_ms > now;
    any = any || !us.excluded[i];
  }
  if (!any) {
    rbeg_ = body_off + body_bytes;
    co_await respond_problem(503, "no healthy target in upstream " + u.name,
                             head.keep_alive && body_complete);
    co_return head.keep_alive&& body_complete ? Outcome::kKeepAlive : Outcome::kClose;
  }
  uint64_t hash = balance_hash(head, u);
  int fail_status = 502;
  std::string_view fail_detail = "no target accepted the connection";
  int connect_failures = 0;
  bool stale_retry_left = true;
  bool fresh_only = false;
  int target = -1;
  http::ResponseHead& resp = ex_->response;
  std::size_t ulen = 0;
  int64_t up_start = core::monotonic_ns();
  bool sent_ok = false;
  while (true) {
    if (target < 0 || !fresh_only) target = us.balancer->pick(hash, us.excluded);
    if (target < 0) break;
    target_ = target;
    TargetState& ts = us.targets[static_cast<std::size_t>(target)];
    bool reused = false;
    if (u.protocol != config::UpstreamProtocol::kHttp1) {
      // HTTP/2: a stream on the target's multiplexed connection.
      Pipe* pipe = nullptr;
      std::shared_ptr<H2Upstream> conn;
      for (int attempt = 0; attempt < 3 && pipe == nullptr; ++attempt) {
        conn = worker_.h2_upstream(upstream_, target);
        reused = conn->ready();
        if (!co_await conn->wait_ready()) break;
        pipe = conn->open_stream();
      }
      if (closing_) co_return Outcome::kClose;
      if (pipe == nullptr) {
        ts.avoid_until_ms = core::coarse_ms() + kAvoidMs;
        us.excluded[static_cast<std::size_t>(target)] = true;
        fail_status = 502;
        fail_detail = "upstream HTTP/2 connection failed";
        fresh_only = false;
        if (++connect_failures > 1) break;
        continue;
      }
      upstream_conn_ = std::make_unique<UpstreamConnection>(worker_.io(), pipe, std::move(conn));
    } else if (!fresh_only && !ts.idle.empty()) {
      upstream_conn_ = std::move(ts.idle.back());
      ts.idle.pop_back();
      reused = true;
    } else {
      const CompiledTarget& ct = u.targets[static_cast<std::size_t>(target)];
      upstream_conn_ = std::make_unique<UpstreamConnection>(worker_.io());
      set_deadline(&upstream_conn_->stream, u.connect_timeout_ms);
      co_await upstream_conn_->stream.socket().async_connect(ct.endpoint, await_ec(ec));
      clear_deadline();
      if (ec || closing_) {
        bool timeout = timed_out_;
        upstream_conn_.reset();
        if (closing_) co_return Outcome::kClose;
        worker_.metrics_mut().count_connect_error(static_cast<std::size_t>(upstream_));
        ts.avoid_until_ms = core::coarse_ms() + kAvoidMs;
        us.excluded[static_cast<std::size_t>(target)] = true;
        fail_status = timeout ? 504 : 502;
        fail_detail = timeout ? "upstream connect timed out" : "upstream refused the connection";
        fresh_only = false;
        if (++connect_failures > 1) break;
        continue;
      }
      upstream_conn_->stream.socket().set_option(tcp::no_delay(true), ec);
      upstream_conn_->stream.socket().non_blocking(true, ec);
      if (u.tls && !co_await upstream_handshake(u, ct)) {
        upstream_conn_.reset();
        if (closing_) co_return Outcome::kClose;
        worker_.metrics_mut().count_connect_error(static_cast<std::size_t>(upstream_));
        us.excluded[static_cast<std::size_t>(target)] = true;
        fail_status = timed_out_ ? 504 : 502;
        fail_detail = timed_out_ ? "upstream TLS handshake timed out"
                                 : "upstream TLS handshake failed (certificate not trusted or "
                                   "not for the name checked)";
        fresh_only = false;
        if (++connect_failures > 1) break;
        continue;
      }
    }
    us.balancer->on_request_start(target);
    std::array<asio::const_buffer, 2> bufs{
        asio::buffer(ex_->out_head),
        web_text ? asio::buffer(web_body) : asio::buffer(rbuf_.data() + body_off, body_bytes)};
    if (!upstream_conn_->stream.try_write(bufs, ec) && !ec) {
      set_deadline(&upstream_conn_->stream, u.read_timeout_ms);
      co_await upstream_conn_->stream.write(bufs, ec);
      clear_deadline();
    }
    int status = 0;
    std::string_view detail;
    bool ok = !ec;
    if (ok && !body_complete && grpc_) {
      // gRPC streams both ways at once (a bidirectional call answers
      // messages while the client still sends): the rest of the request
      // body goes up from a second coroutine while this one reads the
      // response. Other requests keep the simpler half-duplex order.
      rbeg_ = body_off + body_bytes;
      pump_ = std::make_unique<BodyPump>(worker_.io());
      asio::co_spawn(worker_.io(), pump_request_body(head, decoder, payload), asio::detached);
    } else if (ok && !body_complete) {
      rbeg_ = body_off + body_bytes;
      ok = co_await stream_request_body(head, decoder, payload, status, detail);
      if (!ok) {
        us.balancer->on_request_end(target);
        reset_upstream();
        bytes_in_ = payload;
        co_await respond_problem(status, detail, false);
        co_return Outcome::kClose;
      }
    }
    if (ok) ok = co_await read_upstream_head(resp, ulen, status, detail);
    if (ok) {
      sent_ok = true;
      break;
    }
    if (pump_) {
      BodyPump p = co_await stop_body_pump();
      if (!p.ok && p.status != 0) {
        // The client side failed first (it went away, or its body was bad).
        us.balancer->on_request_end(target);
        reset_upstream();
        bytes_in_ = payload;
        co_await respond_problem(p.status, p.detail, false);
        co_return Outcome::kClose;
      }
    }
    us.balancer->on_request_end(target);
    upstream_conn_.reset();
    if (closing_) co_return Outcome::kClose;
    // A pooled connection the upstream closed while idle: try once more on a
    // fresh connection to the same target, if the request can be replayed.
    if (reused && body_complete && stale_retry_left && status != 504 && ulen == 0) {
      stale_retry_left = false;
      fresh_only = true;
      continue;
    }
    fail_status = status ? status : 502;
    fail_detail = detail.empty() ? "upstream write failed" : detail;
    break;
  }
  if (!sent_ok) {
    rbeg_ = body_complete ? body_off + body_bytes : rend_;
    bytes_in_ = payload;
    bool keep = head.keep_alive && body_complete;
    co_await respond_problem(fail_status, fail_detail, keep);
    co_return keep ? Outcome::kKeepAlive : Outcome::kClose;
  }
  upstream_latency_us_ = (core::monotonic_ns() - up_start) / 1000;
  if (body_complete) rbeg_ = body_off + body_bytes;
  bytes_in_ = payload;

  // 3. The response: head, the body bytes that came with it, then the rest.
  bool is_head = ex_->method == "HEAD";
  BodyKind kind = http::response_body_kind(resp, is_head);
  dechunk_ = kind == BodyKind::kChunked && head.minor_version == 0;
  bool client_keep =
      head.keep_alive && !worker_.draining() && kind != BodyKind::kUntilClose && !dechunk_;
  // gRPC-Web: a gRPC answer goes back with the request's gRPC-Web content
  // type, its body re-framed (chunked, or close-delimited for HTTP/1.0).
  int web = ex_->state.grpc_web ? grpc_web_response(resp, kind) : 0;
  if (web == 2) client_keep = head.keep_alive && !worker_.draining() && !client_http10_;
  std::size_t head_end = resp.head_size;
  std::size_t avail = ulen - head_end;
  std::size_t first = avail;
  bool upstream_clean = resp.keep_alive;
  http::ChunkedDecoder resp_decoder;
  uint64_t remaining = 0;
  if (web == 2) {
    first = 0;  // stream_grpc_web_body takes the body bytes from ubuf_
  } else if (kind == BodyKind::kLength) {
    first = static_cast<std::size_t>(std::min<uint64_t>(avail, resp.facts.content_length));
    remaining = resp.facts.content_length - first;
    if (avail > first) upstream_clean = false;
    bytes_out_ = first;
  } else if (kind == BodyKind::kChunked) {
    uint64_t pl = 0;
    std::size_t consumed = 0;
    std::size_t decoded = 0;
    auto res = dechunk_ ? resp_decoder.decode(ubuf_.data() + head_end, avail, consumed, pl,
                                              ubuf_.data() + head_end, decoded)
                        : resp_decoder.feed(ubuf_.data() + head_end, avail, consumed, pl);
    first = dechunk_ ? decoded : consumed;
    if (res == http::ChunkedDecoder::Result::kError) {
      co_await stop_body_pump();
      us.balancer->on_request_end(target);
      reset_upstream();
      co_await respond_problem(502, "malformed chunked upstream response", false);
      co_return Outcome::kClose;
    }
    if (consumed < avail) upstream_clean = false;
    bytes_out_ = pl;
  } else if (kind == BodyKind::kNone) {
    first = 0;
    if (avail > 0) upstream_clean = false;
  } else {
    upstream_clean = false;
    bytes_out_ = first;
  }
  // An HTTP/1.0 client cannot take chunked coding: it gets the payload,
  // delimited by closing the connection (RFC 9112 7.1).
  const HeaderEdits* edits = nullptr;
  if (const auto* plugins = route_plugins()) {
    ex_->edits.set.clear();
    ex_->edits.remove.clear();
    RequestContext ctx = plugin_context(nullptr);
    for (auto it = plugins->rbegin(); it != plugins->rend(); ++it) {
      (*it)->on_response_headers(ctx, resp.status, ex_->edits);
    }
    for (const auto& h : ex_->state.response_headers) {
      if (h.first.size() == 4 && http::iequals(h.first, "vary")) {
        add_vary(resp, h.second, ex_->edits);
      } else {
        ex_->edits.set.push_back(h);
      }
    }
    if (web != 0) {
      ex_->edits.set.emplace_back("Content-Type",
                                  plugins::grpc_web::client_content_type(grpc_web_type_));
      if (web == 2) ex_->edits.remove.emplace_back("Content-Length");
    }
    edits = &ex_->edits;
  }
  if (resp.status == 101) co_return co_await switch_protocols(resp, ulen, target, edits);
  BodyKind client_kind = dechunk_ ? BodyKind::kUntilClose : kind;
  if (web == 2) client_kind = client_http10_ ? BodyKind::kUntilClose : BodyKind::kChunked;
  build_client_head(ex_->out_head, resp, client_kind,
                    std::string_view(ex_->request_id, ex_->request_id_len), client_keep, edits);
  int status = resp.status;
  // A small first part of the body joins the head: one buffer, one send(2).
  std::size_t first_at = head_end;
  if (first != 0 && first <= kJoinBodyBytes) {
    ex_->out_head.append(ubuf_.data() + head_end, first);
    first_at += first;
    first = 0;
  }
  std::array<asio::const_buffer, 2> out{asio::buffer(ex_->out_head),
                                        asio::buffer(ubuf_.data() + first_at, first)};
  bool ok = client_.try_write(out, ec);
  if (!ok && !ec) {
    set_deadline(&client_, snap.config.limits.idle_timeout.count());
    co_await client_.write(out, ec);
    clear_deadline();
    ok = !ec;
  }
  if (ok && web == 2) {
    ok = co_await stream_grpc_web_body(kind, resp.facts.content_length, head_end, avail,
                                       resp_decoder, upstream_clean);
  } else if (ok) {
    ok = co_await stream_response_body(kind, remaining, resp_decoder, upstream_clean);
  }
  if (pump_) {
    BodyPump p = co_await stop_body_pump();
    if (!p.ok) upstream_clean = false;
    bytes_in_ = payload;
  }
  ubuf_.release();
  us.balancer->on_request_end(target);
  if (ok && upstream_clean && !worker_.draining() && !upstream_conn_->stream.is_pipe()) {
    worker_.park_upstream(upstream_, target, std::move(upstream_conn_));
  } else {
    upstream_conn_.reset();
  }
  finish_request(status);
  co_return ok&& client_keep ? Outcome::kKeepAlive : Outcome::kClose;
}

// The upstream accepted a WebSocket upgrade: pass its 101 on (with the
// Connection/Upgrade pair the handshake needs), then tunnel bytes both ways
// until either side closes or nothing moves for idle_timeout. The access log
// line is written when the tunnel ends: status 101, its duration and bytes.
Task<Session::Outcome> Session::switch_protocols(const http::ResponseHead& resp, std::size_t ulen,
                                                 int target, const HeaderEdits* edits) {
  std::string_view upgrade = "websocket";
  for (std::size_t i = 0; i < resp.header_count; ++i) {
    if (http::iequals(resp.headers[i].name, "upgrade")) upgrade = resp.headers[i].value;
  }
  std::string& out = ex_->out_head;
  build_client_head(out, resp, BodyKind::kNone,
                    std::string_view(ex_->request_id, ex_->request_id_len), true, edits);
  out.resize(out.size() - 2);
  out.append("Connection: Upgrade\r\nUpgrade: ").append(upgrade).append("\r\n\r\n");
  std::size_t early = ulen - resp.head_size;  // frames the upstream sent right after its 101
  std::array<asio::const_buffer, 2> bufs{asio::buffer(out),
                                         asio::buffer(ubuf_.data() + resp.head_size, early)};
  error_code ec;
  if (!client_.try_write(bufs, ec) && !ec) {
    set_deadline(&client_, worker_.snapshot().config.limits.idle_timeout.count());
    co_await client_.write(bufs, ec);
    clear_deadline();
  }
  bytes_out_ = early;
  if (!ec) co_await tunnel();
  worker_.upstream(upstream_).balancer->on_request_end(target);
  reset_upstream();
  ubuf_.release();
  finish_request(101);
  co_return Outcome::kClose;
}

Task<void> Session::tunnel() {
  TunnelState t(worker_.io());
  // Client bytes that came after the request head go first.
  if (rend_ > rbeg_) {
    error_code ec;
    co_await upstream_conn_->stream.write(asio::buffer(rbuf_.data() + rbeg_, rend_ - rbeg_), ec);
    if (ec) co_return;
    bytes_in_ += rend_ - rbeg_;
  }
  rbeg_ = rend_ = 0;
  if (!ubuf_) ubuf_ = worker_.small_buffers().take();
  touch_tunnel();
  t.running = 2;
  asio::co_spawn(worker_.io(), pump_to_client(t), asio::detached);
  co_await pump_to_upstream(t);
  while (t.running > 0) {
    error_code ec;
    co_await t.wake.async_wait(await_ec(ec));
  }
  clear_deadline();
}

void Session::touch_tunnel() {
  set_deadline(&client_, worker_.snapshot().config.limits.idle_timeout.count());
}

// Either direction ending ends both: WebSocket closes inside the stream
// (close frames pass through) before either side closes its connection.
void Session::end_tunnel(TunnelState& t) {
  t.stop = true;
  error_code ec;
  client_.socket().cancel(ec);
  if (upstream_conn_) upstream_conn_->stream.socket().cancel(ec);
  if (--t.running == 0) t.wake.cancel();
}

Task<void> Session::pump_to_upstream(TunnelState& t) {
  while (!t.stop && !closing_) {
    error_code ec;
    std::size_t n = co_await client_.read_some(asio::buffer(rbuf_.data(), rcap_), ec);
    if (ec || n == 0 || t.stop) break;
    touch_tunnel();
    co_await upstream_conn_->stream.write(asio::buffer(rbuf_.data(), n), ec);
    if (ec) break;
    bytes_in_ += n;
  }
  end_tunnel(t);
}

Task<void> Session::pump_to_client(TunnelState& t) {
  std::size_t cap = worker_.small_buffers().buffer_size();
  while (!t.stop && !closing_) {
    error_code ec;
    std::size_t n = co_await upstream_conn_->stream.read_some(asio::buffer(ubuf_.data(), cap), ec);
    if (ec || n == 0 || t.stop) break;
    touch_tunnel();
    co_await client_.write(asio::buffer(ubuf_.data(), n), ec);
    if (ec) break;
    bytes_out_ += n;
  }
  end_tunnel(t);
}

}  // namespace gatehouse::proxy
