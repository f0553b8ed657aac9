#include "http2/server_codec.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <new>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "http/http1_parser.h"
#include "http/status.h"
#include "http2/body_credit.h"
#include "http2/message_reader.h"
#include "http2/session_common.h"

namespace gatehouse::http2 {
namespace {

// NGHTTP2_ERR_TOO_MANY_CONTINUATIONS: only in nghttp2 >= 1.61 and in builds
// of older versions patched for CVE-2024-28182 (Debian 12 has it since
// 1.52.0-1+deb12u2), so it is spelled out here rather than named.
constexpr int kErrTooManyContinuations = -905;

using detail::as_chunk;
using detail::as_view;
using detail::kMinConnectionWindow;
using detail::make_nv;

// Counts events in fixed windows; exceeded() is true once a window holds
// more than `limit`. Fixed windows are cheap and precise enough for flood
// detection: a client gets at most twice the limit across a boundary.
class RateWindow {
 public:
  bool exceeded(int64_t now_ms, int window_ms, uint32_t limit) {
    if (!started_ || now_ms - start_ms_ >= window_ms) {
      started_ = true;
      start_ms_ = now_ms;
      count_ = 0;
    }
    return ++count_ > limit;
  }

 private:
  int64_t start_ms_ = 0;
  uint32_t count_ = 0;
  bool started_ = false;
};

// What arrives for a request before its head can be written as HTTP/1.1
// (pseudo-fields come first in HTTP/2, but cookies and host are merged).
// Freed as soon as the head is delivered.
struct RequestParts {
  std::string method;
  std::string path;
  std::string authority;
  std::string host;
  std::string fields;  // "name: value\r\n" lines
  std::string cookies;
  bool has_content_length = false;
};

struct Stream {
  Stream(int32_t stream_id, std::size_t max_output)
      : id(stream_id), parts(std::make_unique<RequestParts>()), response(max_output) {}

  int32_t id;
  // Request side.
  std::unique_ptr<RequestParts> parts;
  int reject_status = 0;  // answered locally with this status, never delivered
  std::string_view reject_detail;
  uint32_t header_list_size = 0;
  uint32_t trailer_list_size = 0;
  bool delivered = false;  // the handler saw on_request_head: owes one on_stream_closed
  bool head_request = false;
  bool chunked_request = false;
  bool request_ended = false;
  std::string trailers;  // request trailer lines, for the last chunk
  BodyCredit credit;     // request body delivered but not yet consume()d
  // Response side.
  MessageReader response;
  bool response_submitted = false;  // nghttp2 has our HEADERS
  bool blocked = false;             // send_response refused bytes: owe on_stream_writable
  bool reset_by_us = false;         // RST_STREAM requested: deliver nothing more
};

}  // namespace

class ServerCodec::Connection {
 public:
  Connection(Handler& handler, const ServerSettings& settings);
  ~Connection();

  bool receive(const uint8_t* data, std::size_t len);
  std::size_t take_output(std::string& out, std::size_t max_bytes);
  bool wants_read() const;
  bool wants_write() const;
  void consume(int32_t id, std::size_t http1_bytes);
  std::size_t send_response(int32_t id, std::string_view bytes);
  void end_response(int32_t id);
  void reset_stream(int32_t id, uint32_t h2_error);
  void shutdown();
  void close();
  std::string_view close_reason() const { return close_reason_; }
  std::size_t stream_count() const { return streams_.size(); }

 private:
  static Connection& self(void* user_data) { return *static_cast<Connection*>(user_data); }
  static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user_data);
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       std::size_t namelen, const uint8_t* value, std::size_t valuelen,
                       uint8_t flags, void* user_data);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int on_invalid_frame_recv(nghttp2_session*, const nghttp2_frame* frame, int lib_error,
                                   void* user_data);
  static int on_data_chunk_recv(nghttp2_session*, uint8_t flags, int32_t stream_id,
                                const uint8_t* data, std::size_t len, void* user_data);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int on_error(nghttp2_session*, int lib_error, const char* msg, std::size_t len,
                      void* user_data);
  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                             void* user_data);
  static ssize_t read_response(nghttp2_session*, int32_t stream_id, uint8_t* buf,
                               std::size_t length, uint32_t* data_flags,
                               nghttp2_data_source* source, void* user_data);

  Stream* find(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }
  void trip(std::string_view why);
  void count_reset();
  void count_control_frame();

  void on_request_field(Stream& s, std::string_view name, std::string_view value);
  void on_trailer_field(Stream& s, std::string_view name, std::string_view value);
  void on_request_headers_done(Stream& s, bool end_stream);
  void deliver_body(Stream& s, std::string_view http1_bytes, std::size_t h2_bytes);
  void finish_request(Stream& s);

  bool start_response(Stream& s);
  void respond_locally(Stream& s, int status, std::string_view detail);
  void fail_response(Stream& s, std::string_view why);
  // Queues the response trailers, if any; true when it did (the last DATA
  // frame must then not end the stream).
  bool submit_trailers(Stream& s);
  void reset(Stream& s, uint32_t h2_error);

  void report_writable(int32_t id);
  void report_closed(int32_t id, uint32_t code);

  Handler& handler_;
  ServerSettings settings_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;

  // Handler calls that arise inside nghttp2_session_mem_send are queued and
  // made once it returns: the handler may then submit frames freely, and
  // nghttp2 is never re-entered from its own send loop.
  struct Deferred {
    bool closed;  // else writable
    int32_t stream;
    uint32_t code;
  };
  std::vector<Deferred> deferred_;
  bool sending_ = false;

  bool closed_ = false;  // close() ran: no more handler calls
  bool fatal_ = false;   // the connection is being torn down
  std::string_view close_reason_;

  uint32_t continuations_ = 0;
  RateWindow resets_;
  RateWindow control_frames_;

  // Reused per connection so that the per-request path does not allocate
  // for scratch: the HTTP/1.1 head or chunk being delivered, the parsed
  // response head (3 KiB), and name/value arrays for nghttp2.
  std::string scratch_;
  http::ResponseHead response_head_;
  std::vector<nghttp2_nv> nva_;
};

ServerCodec::Connection::Connection(Handler& handler, const ServerSettings& settings)
    : handler_(handler), settings_(settings) {
  settings_.stream_window = std::min<uint32_t>(settings_.stream_window, NGHTTP2_MAX_WINDOW_SIZE);
  settings_.connection_window = std::clamp<uint32_t>(settings_.connection_window,
                                                     kMinConnectionWindow, NGHTTP2_MAX_WINDOW_SIZE);

  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) throw std::bad_alloc();
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);

  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    throw std::bad_alloc();
  }
  // Request body credit is granted only as the pipeline consumes (consume()),
  // so a client can never have more in flight than the windows we advertise.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_outbound_ack(opt, settings_.max_outbound_ack);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, settings_.header_table_size);
  // RFC 7540 priorities are off (SETTINGS_NO_RFC7540_PRIORITIES below):
  // keeping closed streams for the dependency tree would only cost memory.
  nghttp2_option_set_no_closed_streams(opt, 1);
  int rv = nghttp2_session_server_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) throw std::bad_alloc();

  const nghttp2_settings_entry entries[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings_.max_header_list_size},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, settings_.header_table_size},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, entries, std::size(entries));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(settings_.connection_window));
}

ServerCodec::Connection::~Connection() {
  // Before the streams go: nghttp2 holds pointers to them in data providers.
  nghttp2_session_del(session_);
}

// ---------------------------------------------------------------------------
// Abuse guards

void ServerCodec::Connection::trip(std::string_view why) {
  if (fatal_) return;
  fatal_ = true;
  close_reason_ = why;
  // Queues GOAWAY and makes nghttp2 ignore the rest of the input.
  nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
}

void ServerCodec::Connection::count_reset() {
  if (resets_.exceeded(core::coarse_ms(), settings_.reset_window_ms,
                       settings_.max_resets_per_window)) {
    trip("rapid reset");
  }
}

void ServerCodec::Connection::count_control_frame() {
  if (control_frames_.exceeded(core::coarse_ms(), settings_.reset_window_ms,
                               settings_.max_control_frames_per_window)) {
    trip("control frame flood");
  }
}

int ServerCodec::Connection::on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd,
                                            void* user_data) {
  Connection& c = self(user_data);
  switch (hd->type) {
    case NGHTTP2_HEADERS:
      c.continuations_ = 0;
      break;
    case NGHTTP2_CONTINUATION:
      // A header block cannot be acted on until its last CONTINUATION, and
      // each one costs HPACK work: a long chain is an attack, not a request.
      if (++c.continuations_ > c.settings_.max_continuations) c.trip("CONTINUATION flood");
      break;
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PRIORITY:
      c.count_control_frame();
      break;
    case NGHTTP2_DATA:
      if (hd->length == 0 && (hd->flags & NGHTTP2_FLAG_END_STREAM) == 0) c.count_control_frame();
      break;
    default:
      break;
  }
  return 0;
}

int ServerCodec::Connection::on_invalid_frame_recv(nghttp2_session*, const nghttp2_frame*, int,
                                                   void* user_data) {
  // Every stream error the client causes makes us send RST_STREAM: counted
  // with its own resets, or malformed requests become a reset flood
  // (CVE-2025-8671). Refused streams (over the concurrency limit) land here too.
  self(user_data).count_reset();
  return 0;
}

// ---------------------------------------------------------------------------
// Request side

int ServerCodec::Connection::on_begin_headers(nghttp2_session*, const nghttp2_frame* frame,
                                              void* user_data) {
  Connection& c = self(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  int32_t id = frame->hd.stream_id;
  c.streams_.emplace(id, std::make_unique<Stream>(id, c.settings_.max_stream_output));
  return 0;
}

int ServerCodec::Connection::on_header(nghttp2_session*, const nghttp2_frame* frame,
                                       const uint8_t* name, std::size_t namelen,
                                       const uint8_t* value, std::size_t valuelen, uint8_t,
                                       void* user_data) {
  Connection& c = self(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  Stream* s = c.find(frame->hd.stream_id);
  if (s == nullptr) return 0;
  if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    c.on_request_field(*s, as_view(name, namelen), as_view(value, valuelen));
  } else if (frame->headers.cat == NGHTTP2_HCAT_HEADERS) {
    c.on_trailer_field(*s, as_view(name, namelen), as_view(value, valuelen));
  }
  return 0;
}

void ServerCodec::Connection::on_request_field(Stream& s, std::string_view name,
                                               std::string_view value) {
  if (s.reject_status != 0) return;
  // nghttp2 does not enforce the SETTINGS_MAX_HEADER_LIST_SIZE it advertises.
  s.header_list_size += static_cast<uint32_t>(name.size() + value.size() + 32);
  if (s.header_list_size > settings_.max_header_list_size) {
    s.reject_status = 431;
    s.reject_detail = "request header list larger than SETTINGS_MAX_HEADER_LIST_SIZE";
    s.parts->fields.clear();
    s.parts->cookies.clear();
    return;
  }
  RequestParts& p = *s.parts;
  // nghttp2 has already checked: pseudo-fields first, known, not repeated;
  // lowercase names; no CR/LF/NUL in values; no connection-specific fields;
  // "te" only as "trailers" (RFC 9113 8.2 and 8.3).
  if (!name.empty() && name[0] == ':') {
    if (name == ":method") {
      p.method = value;
    } else if (name == ":path") {
      p.path = value;
    } else if (name == ":authority") {
      p.authority = value;
    }
    // :scheme is dropped: the pipeline knows whether its connection is TLS.
    return;
  }
  if (name == "host") {
    if (!p.host.empty() && p.host != value) {
      s.reject_status = 400;
      s.reject_detail = "conflicting host fields";
    }
    p.host = value;
    return;
  }
  if (name == "cookie") {
    // RFC 9113 8.2.3: cookie crumbs are joined with "; " for HTTP/1.1.
    if (!p.cookies.empty()) p.cookies.append("; ");
    p.cookies.append(value);
    return;
  }
  if (name == "content-length") p.has_content_length = true;
  http::append_field(p.fields, name, value);
}

void ServerCodec::Connection::on_trailer_field(Stream& s, std::string_view name,
                                               std::string_view value) {
  if (!s.delivered || s.reset_by_us) return;
  s.trailer_list_size += static_cast<uint32_t>(name.size() + value.size() + 32);
  if (s.trailer_list_size > settings_.max_header_list_size) {
    // Too late for a 431: the request is already in the pipeline.
    reset(s, NGHTTP2_ENHANCE_YOUR_CALM);
    return;
  }
  // Trailers reach HTTP/1.1 only in a chunked body; after a content-length
  // body they have nowhere to go and are dropped.
  if (!s.chunked_request || is_forbidden_trailer(name)) return;
  http::append_field(s.trailers, name, value);
}

void ServerCodec::Connection::on_request_headers_done(Stream& s, bool end_stream) {
  RequestParts& p = *s.parts;
  s.head_request = p.method == "HEAD";
  if (s.reject_status == 0) {
    if (p.method == "CONNECT") {
      // No tunnels through the gateway (and no SETTINGS_ENABLE_CONNECT_PROTOCOL,
      // so nghttp2 refuses extended CONNECT before we get here).
      s.reject_status = 405;
      s.reject_detail = "CONNECT is not supported";
    } else if (!p.authority.empty() && !p.host.empty() && !http::iequals(p.authority, p.host)) {
      // RFC 9113 8.3.1: they must not differ; routing on one while the
      // backend serves the other would be a confused-deputy hole.
      s.reject_status = 400;
      s.reject_detail = "host field does not match :authority";
    } else if (p.authority.empty() && p.host.empty()) {
      s.reject_status = 400;
      s.reject_detail = "missing :authority";
    } else if (std::any_of(p.path.begin(), p.path.end(),
                           [](unsigned char ch) { return ch <= 0x20 || ch >= 0x7f; })) {
      // RFC 9112 3.2: a request-target is visible ASCII (RFC 3986); a space
      // would split the HTTP/1.1 request line differently.
      s.reject_status = 400;
      s.reject_detail = "invalid character in :path";
    }
  }
  if (s.reject_status != 0) {
    s.request_ended = end_stream;
    respond_locally(s, s.reject_status, s.reject_detail);
    s.parts.reset();
    return;
  }

  s.chunked_request = !end_stream && !p.has_content_length;
  std::string& head = scratch_;
  head.clear();
  head.append(p.method).append(" ").append(p.path).append(" HTTP/1.1\r\nhost: ");
  head.append(p.authority.empty() ? p.host : p.authority).append("\r\n");
  head.append(p.fields);
  if (!p.cookies.empty()) head.append("cookie: ").append(p.cookies).append("\r\n");
  if (s.chunked_request) head.append("transfer-encoding: chunked\r\n");
  head.append("\r\n");
  s.parts.reset();

  s.delivered = true;
  handler_.on_request_head(s.id, head, end_stream);
  if (end_stream && !s.reset_by_us) finish_request(s);
}

void ServerCodec::Connection::deliver_body(Stream& s, std::string_view http1_bytes,
                                           std::size_t h2_bytes) {
  s.credit.delivered(http1_bytes.size(), h2_bytes);
  handler_.on_request_body(s.id, http1_bytes);
}

void ServerCodec::Connection::finish_request(Stream& s) {
  if (s.request_ended) return;
  s.request_ended = true;
  if (s.chunked_request) {
    scratch_.assign("0\r\n").append(s.trailers).append("\r\n");
    std::string().swap(s.trailers);
    deliver_body(s, scratch_, 0);
    if (s.reset_by_us) return;
  }
  handler_.on_request_end(s.id);
}

int ServerCodec::Connection::on_data_chunk_recv(nghttp2_session* session, uint8_t,
                                                int32_t stream_id, const uint8_t* data,
                                                std::size_t len, void* user_data) {
  Connection& c = self(user_data);
  Stream* s = c.find(stream_id);
  if (s == nullptr || !s->delivered || s->reset_by_us || c.closed_) {
    // Nobody will consume these bytes: credit them now, or they would
    // shrink the connection window for good.
    nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  if (!s->chunked_request) {
    c.deliver_body(*s, as_view(data, len), len);
    return 0;
  }
  c.deliver_body(*s, as_chunk(c.scratch_, data, len), len);
  return 0;
}

int ServerCodec::Connection::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame,
                                           void* user_data) {
  Connection& c = self(user_data);
  if (c.closed_) return 0;
  if (frame->hd.type == NGHTTP2_RST_STREAM) {
    c.count_reset();
    return 0;
  }
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
  Stream* s = c.find(frame->hd.stream_id);
  if (s == nullptr) return 0;
  bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    c.on_request_headers_done(*s, end_stream);
  } else if (end_stream) {
    // The last DATA frame, or trailers (nghttp2 requires END_STREAM on them).
    if (s->delivered && !s->reset_by_us) {
      c.finish_request(*s);
    } else {
      s->request_ended = true;
    }
  }
  return 0;
}

void ServerCodec::Connection::consume(int32_t id, std::size_t http1_bytes) {
  Stream* s = find(id);
  if (s == nullptr || http1_bytes == 0 || closed_) return;
  uint64_t credit = s->credit.consume(http1_bytes);
  if (credit > 0) nghttp2_session_consume(session_, id, credit);
}

// ---------------------------------------------------------------------------
// Response side

std::size_t ServerCodec::Connection::send_response(int32_t id, std::string_view bytes) {
  Stream* s = find(id);
  if (s == nullptr || !s->delivered || s->reset_by_us || closed_) return bytes.size();
  std::optional<std::size_t> took = detail::feed_message(
      s->response, bytes, [&] { return start_response(*s); },
      [&] { fail_response(*s, s->response.error()); });
  if (!took) return bytes.size();  // the stream is over: nothing to resume
  if (*took < bytes.size()) s->blocked = true;
  if (s->response_submitted) nghttp2_session_resume_data(session_, id);
  return *took;
}

bool ServerCodec::Connection::start_response(Stream& s) {
  std::string& head = s.response.head();
  http::ParseError err;
  http::ResponseHead& h = response_head_;
  if (http::parse_response_head(head.data(), head.size(), h, err) != http::ParseStatus::kComplete) {
    fail_response(s, err.detail);
    return false;
  }
  if (h.status == 101) {
    // RFC 9113 8.6: HTTP/2 has no Upgrade; a 101 cannot be relayed.
    fail_response(s, "protocol switch (101) cannot be relayed over HTTP/2");
    return false;
  }
  if (h.status < 200) {
    // 100 Continue and 103 Early Hints are interim: the final head follows.
    s.response.await_head();
    return true;
  }
  http::BodyKind kind = http::response_body_kind(h, s.head_request);
  char status[3] = {static_cast<char>('0' + h.status / 100),
                    static_cast<char>('0' + h.status / 10 % 10),
                    static_cast<char>('0' + h.status % 10)};
  nva_.clear();
  nva_.push_back(make_nv(":status", std::string_view(status, 3)));
  // Hop-by-hop fields (RFC 9110 7.6.1) and any named in Connection must not
  // be relayed; in HTTP/2 they would make the response malformed (RFC 9113 8.2.2).
  http::HopByHop hop(h.headers, h.header_count);
  for (std::size_t i = 0; i < h.header_count; ++i) {
    const http::Header& f = h.headers[i];
    if (hop.drops(f.name)) continue;
    // RFC 9110 8.6: no Content-Length in a 204.
    if (h.status == 204 && f.name == "content-length") continue;
    nva_.push_back(make_nv(f.name, f.value));
  }
  nghttp2_data_provider provider;
  provider.source.ptr = &s;
  provider.read_callback = read_response;
  bool has_body = kind != http::BodyKind::kNone;
  int rv = nghttp2_submit_response(session_, s.id, nva_.data(), nva_.size(),
                                   has_body ? &provider : nullptr);
  s.response.begin_body(kind, h.facts.content_length);
  if (rv != 0) {
    reset(s, NGHTTP2_INTERNAL_ERROR);
    return false;
  }
  s.response_submitted = true;
  return true;
}

void ServerCodec::Connection::respond_locally(Stream& s, int status, std::string_view detail) {
  // RFC 9457 problem details, as the HTTP/1.1 side answers its rejections.
  // `detail` is one of our own literals or a parser's error literal: nothing
  // in it needs JSON escaping.
  std::string body;
  body.append("{\"type\":\"about:blank\",\"title\":\"").append(http::reason_phrase(status));
  body.append("\",\"status\":").append(std::to_string(status));
  body.append(",\"detail\":\"").append(detail).append("\"}");
  std::string status_text = std::to_string(status);
  std::string length = std::to_string(body.size());
  nghttp2_nv nva[] = {make_nv(":status", status_text),
                      make_nv("content-type", "application/problem+json"),
                      make_nv("content-length", length)};
  s.response.set_complete_body(s.head_request ? std::string_view() : body);
  nghttp2_data_provider provider;
  provider.source.ptr = &s;
  provider.read_callback = read_response;
  int rv = nghttp2_submit_response(session_, s.id, nva, std::size(nva),
                                   s.head_request ? nullptr : &provider);
  if (rv != 0) {
    reset(s, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  s.response_submitted = true;
}

void ServerCodec::Connection::fail_response(Stream& s, std::string_view why) {
  // Before our HEADERS went out the client can still get a proper 502;
  // after, only a reset tells it the response is incomplete.
  if (!s.response_submitted) {
    respond_locally(s, 502, why);
  } else {
    reset(s, NGHTTP2_INTERNAL_ERROR);
  }
}

ssize_t ServerCodec::Connection::read_response(nghttp2_session*, int32_t stream_id, uint8_t* buf,
                                               std::size_t length, uint32_t* data_flags,
                                               nghttp2_data_source* source, void* user_data) {
  Connection& c = self(user_data);
  Stream& s = *static_cast<Stream*>(source->ptr);
  return detail::read_message_body(
      s.response, s.blocked, buf, length, data_flags, [&] { return c.submit_trailers(s); },
      [&] { c.report_writable(stream_id); });
}

bool ServerCodec::Connection::submit_trailers(Stream& s) {
  return detail::submit_trailers(session_, s.id, s.response.trailers(), nva_);
}

void ServerCodec::Connection::end_response(int32_t id) {
  Stream* s = find(id);
  if (s == nullptr || !s->delivered || s->reset_by_us || closed_) return;
  if (!s->response.end_of_input()) {
    reset(*s, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  if (s->response_submitted) nghttp2_session_resume_data(session_, id);
}

void ServerCodec::Connection::reset(Stream& s, uint32_t h2_error) {
  if (s.reset_by_us) return;
  s.reset_by_us = true;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, h2_error);
}

void ServerCodec::Connection::reset_stream(int32_t id, uint32_t h2_error) {
  Stream* s = find(id);
  if (s == nullptr || closed_) return;
  reset(*s, h2_error);
}

int ServerCodec::Connection::on_error(nghttp2_session*, int lib_error, const char*, std::size_t,
                                      void* user_data) {
  // The one connection error nghttp2 reports here rather than through a
  // failing mem_recv: the peer's first frame was not SETTINGS. Flagged now
  // so that receive() says so at once.
  Connection& c = self(user_data);
  if (lib_error == NGHTTP2_ERR_SETTINGS_EXPECTED && !c.fatal_) {
    c.fatal_ = true;
    c.close_reason_ = "client is not speaking HTTP/2";
  }
  return 0;
}

int ServerCodec::Connection::on_frame_send(nghttp2_session*, const nghttp2_frame* frame,
                                           void* user_data) {
  Connection& c = self(user_data);
  if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR &&
      !c.fatal_) {
    // nghttp2 found a connection error on its own and is closing.
    c.fatal_ = true;
    c.close_reason_ = "protocol error";
    return 0;
  }
  bool ends_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 &&
                     (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA);
  if (!ends_stream) return 0;
  Stream* s = c.find(frame->hd.stream_id);
  if (s != nullptr && !s->request_ended) {
    // RFC 9113 8.1: a complete response before the complete request ends
    // the exchange with RST_STREAM(NO_ERROR); otherwise the client's rest
    // would keep the stream (and a concurrency slot) open for nothing.
    c.reset(*s, NGHTTP2_NO_ERROR);
  }
  return 0;
}

int ServerCodec::Connection::on_stream_close(nghttp2_session* session, int32_t stream_id,
                                             uint32_t error_code, void* user_data) {
  Connection& c = self(user_data);
  auto it = c.streams_.find(stream_id);
  if (it == c.streams_.end()) return 0;
  // Body bytes delivered but never consumed still occupy the connection window.
  if (uint64_t owed = it->second->credit.outstanding(); owed > 0) {
    nghttp2_session_consume_connection(session, owed);
  }
  bool notify = it->second->delivered;
  c.streams_.erase(it);
  if (notify) c.report_closed(stream_id, error_code);
  return 0;
}

void ServerCodec::Connection::report_writable(int32_t id) {
  if (sending_) {
    deferred_.push_back({false, id, 0});
  } else if (!closed_) {
    handler_.on_stream_writable(id);
  }
}

void ServerCodec::Connection::report_closed(int32_t id, uint32_t code) {
  if (sending_) {
    deferred_.push_back({true, id, code});
  } else if (!closed_) {
    handler_.on_stream_closed(id, code);
  }
}

// ---------------------------------------------------------------------------
// Connection

bool ServerCodec::Connection::receive(const uint8_t* data, std::size_t len) {
  if (closed_ || fatal_) return false;
  ssize_t rv = nghttp2_session_mem_recv(session_, data, len);
  if (rv < 0 && !fatal_) {
    fatal_ = true;
    uint32_t code = NGHTTP2_PROTOCOL_ERROR;
    if (rv == NGHTTP2_ERR_FLOODED) {
      close_reason_ = "flood of frames that need an answer";
      code = NGHTTP2_ENHANCE_YOUR_CALM;
    } else if (rv == kErrTooManyContinuations) {
      close_reason_ = "CONTINUATION flood";
      code = NGHTTP2_ENHANCE_YOUR_CALM;
    } else if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
      close_reason_ = "not an HTTP/2 connection preface";
    } else {
      close_reason_ = "protocol error";
    }
    nghttp2_session_terminate_session(session_, code);
  }
  return !fatal_;
}

std::size_t ServerCodec::Connection::take_output(std::string& out, std::size_t max_bytes) {
  if (closed_) return 0;
  std::size_t before = out.size();
  sending_ = true;
  if (!detail::drain_output(session_, out, max_bytes)) {
    fatal_ = true;
    if (close_reason_.empty()) close_reason_ = "HTTP/2 send error";
  }
  sending_ = false;
  std::vector<Deferred> events;
  events.swap(deferred_);
  for (const Deferred& e : events) {
    if (closed_) break;
    if (e.closed) {
      handler_.on_stream_closed(e.stream, e.code);
    } else if (find(e.stream) != nullptr) {
      handler_.on_stream_writable(e.stream);
    }
  }
  events.clear();
  deferred_.swap(events);  // keeps the capacity
  return out.size() - before;
}

bool ServerCodec::Connection::wants_read() const {
  return !closed_ && !fatal_ && nghttp2_session_want_read(session_) != 0;
}

bool ServerCodec::Connection::wants_write() const {
  return !closed_ && nghttp2_session_want_write(session_) != 0;
}

void ServerCodec::Connection::shutdown() {
  if (closed_ || fatal_) return;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
}

void ServerCodec::Connection::close() {
  if (closed_) return;
  closed_ = true;
  if (close_reason_.empty()) close_reason_ = "connection closed";
  std::vector<int32_t> open;
  for (const auto& [id, s] : streams_) {
    if (s->delivered) open.push_back(id);
  }
  std::sort(open.begin(), open.end());
  deferred_.clear();
  // The streams stay allocated (nghttp2's data providers point at them)
  // until the codec is destroyed; only the handler is done with them.
  for (int32_t id : open) handler_.on_stream_closed(id, NGHTTP2_CANCEL);
}

// ---------------------------------------------------------------------------

ServerCodec::ServerCodec(Handler& handler, const ServerSettings& settings)
    : conn_(std::make_unique<Connection>(handler, settings)) {}
ServerCodec::~ServerCodec() = default;
bool ServerCodec::receive(const uint8_t* data, std::size_t len) {
  return conn_->receive(data, len);
}
std::size_t ServerCodec::take_output(std::string& out, std::size_t max_bytes) {
  return conn_->take_output(out, max_bytes);
}
bool ServerCodec::wants_read() const { return conn_->wants_read(); }
bool ServerCodec::wants_write() const { return conn_->wants_write(); }
void ServerCodec::consume(int32_t stream, std::size_t http1_bytes) {
  conn_->consume(stream, http1_bytes);
}
std::size_t ServerCodec::send_response(int32_t stream, std::string_view http1_bytes) {
  return conn_->send_response(stream, http1_bytes);
}
void ServerCodec::end_response(int32_t stream) { conn_->end_response(stream); }
void ServerCodec::reset_stream(int32_t stream, uint32_t h2_error) {
  conn_->reset_stream(stream, h2_error);
}
void ServerCodec::shutdown() { conn_->shutdown(); }
void ServerCodec::close() { conn_->close(); }
std::string_view ServerCodec::close_reason() const { return conn_->close_reason(); }
std::size_t ServerCodec::stream_count() const { return conn_->stream_count(); }

}  // namespace gatehouse::http2
