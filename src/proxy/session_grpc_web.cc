// gRPC-Web (the grpc_web plugin, docs/tls.md): the body halves of the
// translation. The plugin marks the request (RequestState::grpc_web) and
// rewrites the upstream content type; proxy() calls these for marked
// requests only, so other requests never run any of this.
//
// Request: binary bodies go up as they are. Text bodies are read whole
// (bounded) and base64-decoded here, then sent with a content-length.
// Response: the gRPC answer arrives from the h2 client codec as HTTP/1.1
// with a chunked body and the gRPC trailers in the chunked trailer section;
// the client gets the messages unchanged, then one trailer frame (0x80)
// holding those trailers, base64-encoded in text mode (padded per write),
// chunked (or close-delimited for HTTP/1.0), with no HTTP trailers.
#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <cstdio>

#include "proxy/session.h"

namespace gatehouse::proxy {

namespace asio = boost::asio;
using boost::system::error_code;
using http::BodyKind;
namespace grpc_web = plugins::grpc_web;

namespace {

// A text-mode request body is buffered whole: at most this much when
// limits.max_body_bytes is not set.
constexpr uint64_t kMaxTextBody = 4 << 20;

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

Task<bool> Session::read_grpc_web_text(http::RequestHead& head, std::size_t body_off,
                                       std::size_t& body_bytes, uint64_t& payload,
                                       std::string& body, int& status, std::string_view& detail) {
  const auto& limits = worker_.snapshot().config.limits;
  const uint64_t limit = limits.max_body_bytes ? *limits.max_body_bytes : kMaxTextBody;
  const bool chunked = head.facts.body == BodyKind::kChunked;
  uint64_t remaining = chunked ? 0 : head.facts.content_length;
  if (remaining > limit) {
    status = 413;
    detail = "request body larger than max_body_bytes";
    co_return false;
  }
  grpc_web::Base64Decoder b64;
  http::ChunkedDecoder chunks;
  // Takes body bytes from data[0, n) (decoding the chunked framing in
  // place); `used` says how many belonged to the body.
  auto take = [&](char* data, std::size_t n, std::size_t& used) {
    std::size_t text = 0;
    if (chunked) {
      if (chunks.decode(data, n, used, payload, data, text) ==
          http::ChunkedDecoder::Result::kError) {
        status = 400;
        detail = chunks.error();
        return false;
      }
    } else {
      text = static_cast<std::size_t>(std::min<uint64_t>(n, remaining));
      remaining -= text;
      payload += text;
      used = text;
    }
    if (payload > limit) {
      status = 413;
      detail = "request body larger than max_body_bytes";
      return false;
    }
    if (!b64.update(std::string_view(data, text), body)) {
      status = 400;
      detail = "gRPC-Web text body is not base64";
      return false;
    }
    return true;
  };
  auto complete = [&] { return chunked ? chunks.done() : remaining == 0; };

  // What arrived with the head.
  std::size_t used = 0;
  if (!take(rbuf_.data() + body_off, rend_ - body_off, used)) co_return false;
  body_bytes = used;
  // The rest goes through a scratch buffer: rbuf_ keeps the head, which
  // build_upstream_head and balance_hash still read.
  if (!complete()) {
    error_code ec;
    if (head.expect_continue) co_await client_.write(asio::buffer(kContinue), ec);
    core::Buffer scratch = worker_.large_buffers().take();
    const std::size_t cap = worker_.large_buffers().buffer_size();
    while (!complete()) {
      std::size_t want = cap;
      if (!chunked && want > remaining) want = static_cast<std::size_t>(remaining);
      set_deadline(&client_, limits.idle_timeout.count());
      std::size_t n = co_await client_.read_some(asio::buffer(scratch.data(), want), ec);
      clear_deadline();
      if (ec || n == 0) {
        status = timed_out_ ? 408 : 400;
        detail = timed_out_ ? "request body not received in time" : "client closed mid-body";
        co_return false;
      }
      if (!take(scratch.data(), n, used)) co_return false;
      // Bytes of a pipelined request came with the end of a chunked body:
      // they are not kept, so the connection closes after this answer.
      if (used < n) head.keep_alive = false;
    }
  }
  if (!b64.finish(body)) {
    status = 400;
    detail = "gRPC-Web text body is not base64";
    co_return false;
  }
  head.facts.body = BodyKind::kLength;
  head.facts.content_length = body.size();
  co_return true;
}

int Session::grpc_web_response(const http::ResponseHead& resp, BodyKind kind) {
  bool grpc = false;
  for (std::size_t i = 0; i < resp.header_count; ++i) {
    if (http::iequals(resp.headers[i].name, "content-type")) {
      grpc = grpc_web::is_grpc_content_type(resp.headers[i].value);
      break;
    }
  }
  if (!grpc) return 0;
  if (kind == BodyKind::kNone || (kind == BodyKind::kLength && resp.facts.content_length == 0)) {
    return 1;  // Trailers-Only: grpc-status is in the head, where clients read it too
  }
  return 2;
}

Task<bool> Session::stream_grpc_web_body(BodyKind kind, uint64_t remaining, std::size_t off,
                                         std::size_t avail, http::ChunkedDecoder& decoder,
                                         bool& upstream_clean) {
  const CompiledUpstream& u = worker_.snapshot().upstreams[static_cast<std::size_t>(upstream_)];
  const auto& limits = worker_.snapshot().config.limits;
  const bool text = grpc_web_type_.mode == grpc_web::Mode::kText;
  const bool chunk_out = !client_http10_;
  std::string trailers;  // the upstream's trailer lines
  if (kind == BodyKind::kChunked) decoder.capture_trailers(&trailers);
  std::string body;  // text: the base64 of payload and frame; binary: the frame
  grpc_web::Base64Encoder b64;
  char size_line[24];
  char* data = ubuf_.data() + off;
  std::size_t n = avail;
  bool first = true;
  bool eof = false;
  bool ok = true;
  while (true) {
    // The upstream's bytes become payload, in place.
    std::size_t len = 0;
    bool done = false;
    if (kind == BodyKind::kChunked) {
      uint64_t pl = 0;
      std::size_t consumed = 0;
      if (decoder.decode(data, n, consumed, pl, data, len) ==
          http::ChunkedDecoder::Result::kError) {
        ok = false;
        break;
      }
      if (consumed < n) upstream_clean = false;  // bytes after the body: not reusable
      done = decoder.done();
    } else if (kind == BodyKind::kLength) {
      len = static_cast<std::size_t>(std::min<uint64_t>(n, remaining));
      if (n > len) upstream_clean = false;
      remaining -= len;
      done = remaining == 0;
    } else {
      len = n;
      done = eof;
    }
    // What the client gets for them: [chunk size line][payload][frame][CRLF, last chunk].
    body.clear();
    std::string_view payload(data, len);
    if (done && !trailers.empty()) {
      if (text) {
        b64.update(payload, body);
        std::string frame;
        grpc_web::append_trailer_frame(frame, trailers);
        b64.update(frame, body);
      } else {
        grpc_web::append_trailer_frame(body, trailers);
      }
    } else if (text) {
      b64.update(payload, body);
    }
    if (text) {
      b64.finish(body);  // padded per write: a message never waits for the next
      payload = {};
    }
    std::size_t out_size = payload.size() + body.size();
    if (out_size > 0 || (done && chunk_out)) {
      std::size_t line = 0;
      if (chunk_out && out_size > 0) {
        line = static_cast<std::size_t>(
            std::snprintf(size_line, sizeof size_line, "%zx\r\n", out_size));
      }
      std::string_view end = !chunk_out ? ""
                             : done     ? (out_size > 0 ? "\r\n0\r\n\r\n" : "0\r\n\r\n")
                                        : "\r\n";
      std::array<asio::const_buffer, 4> bufs{asio::buffer(size_line, line), asio::buffer(payload),
                                             asio::buffer(body), asio::buffer(end)};
      error_code ec;
      if (!client_.try_write(bufs, ec) && !ec) {
        set_deadline(&client_, limits.idle_timeout.count());
        co_await client_.write(bufs, ec);
        clear_deadline();
      }
      if (ec) {
        upstream_clean = false;
        ok = false;
        break;
      }
      bytes_out_ += out_size;
    }
    if (done) break;
    // More from the upstream; bodies past the head buffer use a large one.
    if (first) {
      first = false;
      ubuf_ = worker_.large_buffers().take();
      ucap_ = worker_.large_buffers().buffer_size();
    }
    data = ubuf_.data();
    std::size_t want = ucap_;
    if (kind == BodyKind::kLength && want > remaining) want = static_cast<std::size_t>(remaining);
    error_code ec;
    set_deadline(&upstream_conn_->stream, u.read_timeout_ms);
    n = co_await upstream_conn_->stream.read_some(asio::buffer(data, want), ec);
    clear_deadline();
    if (ec || n == 0) {
      upstream_clean = false;
      if (kind != BodyKind::kUntilClose || timed_out_) {
        ok = false;
        break;
      }
      n = 0;
      eof = true;
    }
  }
  decoder.capture_trailers(nullptr);
  co_return ok;
}

}  // namespace gatehouse::proxy
