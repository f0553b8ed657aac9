#include "http2/client_codec.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <new>
#include <unordered_map>
#include <vector>

#include "http/http1_parser.h"
#include "http/status.h"
#include "http2/body_credit.h"
#include "http2/message_reader.h"
#include "http2/session_common.h"

namespace gatehouse::http2 {
namespace {

using detail::as_chunk;
using detail::as_view;
using detail::kMinConnectionWindow;
using detail::make_nv;

struct Stream {
  Stream(int32_t h, ClientCodec::StreamHandler& sh, std::size_t max_output)
      : handle(h), handler(&sh), request(max_output) {}

  int32_t handle;
  int32_t id = 0;  // HTTP/2 stream id, once the request head is submitted
  ClientCodec::StreamHandler* handler;
  // Request side.
  MessageReader request;
  bool submitted = false;     // nghttp2 has our HEADERS
  bool headers_sent = false;  // they left: the backend may have acted on the request
  bool head_request = false;
  bool blocked = false;      // send_request refused bytes: owe on_stream_writable
  bool reset_by_us = false;  // RST_STREAM requested: deliver nothing more
  // Response side.
  bool final_head = false;  // the final (non-1xx) head was delivered
  bool chunked = false;     // we chunk-encode the body for the pipeline
  bool ended = false;       // on_response_end delivered
  bool has_content_length = false;
  int status = 0;
  uint32_t header_list_size = 0;
  std::string fields;  // "name: value\r\n" lines of the head or trailers being received
  BodyCredit credit;
};

}  // namespace

class ClientCodec::Connection {
 public:
  explicit Connection(const ClientSettings& settings);
  ~Connection();

  int32_t open_stream(StreamHandler& handler);
  bool can_open_stream() const;
  bool draining() const;
  std::size_t send_request(int32_t handle, std::string_view bytes);
  void end_request(int32_t handle);
  void consume(int32_t handle, std::size_t http1_bytes);
  void reset_stream(int32_t handle, uint32_t h2_error);
  bool receive(const uint8_t* data, std::size_t len);
  std::size_t take_output(std::string& out, std::size_t max_bytes);
  bool wants_read() const;
  bool wants_write() const;
  void shutdown();
  void close();
  std::string_view close_reason() const { return close_reason_; }
  std::size_t stream_count() const { return streams_.size(); }

 private:
  static Connection& self(void* user_data) { return *static_cast<Connection*>(user_data); }
  static Stream* stream_of(nghttp2_session* session, int32_t id) {
    return static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, id));
  }
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       std::size_t namelen, const uint8_t* value, std::size_t valuelen,
                       uint8_t flags, void* user_data);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int on_data_chunk_recv(nghttp2_session*, uint8_t flags, int32_t stream_id,
                                const uint8_t* data, std::size_t len, void* user_data);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int on_error(nghttp2_session*, int lib_error, const char* msg, std::size_t len,
                      void* user_data);
  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                             void* user_data);
  static ssize_t read_request(nghttp2_session*, int32_t stream_id, uint8_t* buf, std::size_t length,
                              uint32_t* data_flags, nghttp2_data_source* source, void* user_data);

  Stream* find(int32_t handle) {
    auto it = streams_.find(handle);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  bool start_request(Stream& s);
  // The request cannot go on: resets it, or drops it if it never left
  // (not retryable: the pipeline gave up, or sent something unsendable).
  void fail_request(Stream& s, uint32_t h2_error);
  bool submit_trailers(Stream& s);
  void reset(Stream& s, uint32_t h2_error);
  // Ends a stream nghttp2 never heard of (its head was not submitted).
  void drop_unsubmitted(Stream& s, uint32_t h2_error, bool retryable);

  void on_response_head_done(Stream& s, bool end_stream);
  void deliver(Stream& s, std::string_view http1_bytes, std::size_t h2_bytes);
  void finish_response(Stream& s);

  void report_writable(Stream& s);
  void report_closed(StreamHandler* handler, int32_t handle, uint32_t code, bool retryable);
  void dispatch_deferred();

  ClientSettings settings_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;  // by handle
  int32_t next_handle_ = 1;

  // Handler calls are made inline only from inside receive(); the rest
  // (consequences of API calls, and of nghttp2's send loop) wait here for
  // the end of take_output(), so that no handler is re-entered from its own
  // call and nghttp2 never from its own send loop.
  struct Deferred {
    bool closed;  // else writable
    StreamHandler* handler;
    int32_t handle;
    uint32_t code;
    bool retryable;
  };
  std::vector<Deferred> deferred_;
  bool receiving_ = false;

  bool closed_ = false;
  bool fatal_ = false;
  bool shutdown_ = false;  // shutdown(): no new streams
  std::string_view close_reason_;

  // Per-connection scratch, reused across requests.
  std::string scratch_;
  std::string path_;
  http::RequestHead request_head_;  // 3 KiB, parsed into once per request
  std::vector<nghttp2_nv> nva_;
};

ClientCodec::Connection::Connection(const ClientSettings& settings) : settings_(settings) {
  settings_.stream_window = std::min<uint32_t>(settings_.stream_window, NGHTTP2_MAX_WINDOW_SIZE);
  settings_.connection_window = std::clamp<uint32_t>(settings_.connection_window,
                                                     kMinConnectionWindow, NGHTTP2_MAX_WINDOW_SIZE);
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) throw std::bad_alloc();
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    throw std::bad_alloc();
  }
  // Response credit only as the pipeline consumes: a fast backend cannot
  // fill the gateway's memory behind a slow client.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, settings_.header_table_size);
  nghttp2_option_set_no_closed_streams(opt, 1);
  int rv = nghttp2_session_client_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) throw std::bad_alloc();
  const nghttp2_settings_entry entries[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings_.max_header_list_size},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, settings_.header_table_size},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, entries, std::size(entries));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(settings_.connection_window));
}

ClientCodec::Connection::~Connection() {
  // Before the streams go: nghttp2 holds pointers to them.
  nghttp2_session_del(session_);
}

// ---------------------------------------------------------------------------
// Opening streams and sending requests

bool ClientCodec::Connection::draining() const {
  return closed_ || fatal_ || shutdown_ || nghttp2_session_check_request_allowed(session_) == 0;
}

bool ClientCodec::Connection::can_open_stream() const {
  if (draining()) return false;
  // Until the backend's SETTINGS arrive nghttp2 assumes 100: RFC 9113 6.5.2
  // says unlimited, but a burst above the real limit would be refused.
  uint32_t limit = std::min(
      settings_.max_concurrent_streams,
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS));
  return streams_.size() < limit;
}

int32_t ClientCodec::Connection::open_stream(StreamHandler& handler) {
  if (draining()) return kClosed;
  if (!can_open_stream()) return kBusy;
  int32_t handle = next_handle_++;
  streams_.emplace(handle, std::make_unique<Stream>(handle, handler, settings_.max_stream_output));
  return handle;
}

std::size_t ClientCodec::Connection::send_request(int32_t handle, std::string_view bytes) {
  Stream* s = find(handle);
  if (s == nullptr || s->reset_by_us || closed_) return bytes.size();
  std::optional<std::size_t> took = detail::feed_message(
      s->request, bytes, [&] { return start_request(*s); },
      [&] { fail_request(*s, NGHTTP2_INTERNAL_ERROR); });
  if (!took) return bytes.size();  // the stream is over: nothing to resume
  if (*took < bytes.size()) s->blocked = true;
  if (s->submitted) nghttp2_session_resume_data(session_, s->id);
  return *took;
}

bool ClientCodec::Connection::start_request(Stream& s) {
  std::string& head = s.request.head();
  http::RequestHead& h = request_head_;
  http::ParseError err;
  // The pipeline's request was parsed strictly already; this parse only
  // recovers its parts, but a failure still must not reach the backend.
  if (http::parse_request_head(head.data(), head.size(), h, err) != http::ParseStatus::kComplete ||
      h.host.empty()) {
    fail_request(s, NGHTTP2_INTERNAL_ERROR);
    return false;
  }
  if (h.authority.empty()) {
    path_.assign(h.target);  // origin-form (or "*" for OPTIONS) as sent
  } else {
    path_.assign(h.path);  // absolute-form: its path and query
    if (h.has_query) path_.append("?").append(h.query);
  }
  nva_.clear();
  nva_.push_back(make_nv(":method", h.method));
  nva_.push_back(make_nv(":scheme", settings_.scheme));
  nva_.push_back(make_nv(":authority", h.host));
  nva_.push_back(make_nv(":path", path_));
  // RFC 9113 8.2.2: connection-specific fields make an HTTP/2 request
  // malformed; Host moves to :authority (8.3.1).
  http::HopByHop hop(h.headers, h.header_count);
  for (std::size_t i = 0; i < h.header_count; ++i) {
    const http::Header& f = h.headers[i];
    if (hop.drops(f.name) || f.name == "host") continue;
    nva_.push_back(make_nv(f.name, f.value));
  }
  // gRPC servers refuse requests without it, and it costs HTTP/2 nothing:
  // trailers are always possible there.
  nva_.push_back(make_nv("te", "trailers"));

  s.head_request = h.method == "HEAD";
  bool has_body = h.facts.body != http::BodyKind::kNone;
  nghttp2_data_provider provider;
  provider.source.ptr = &s;
  provider.read_callback = read_request;
  int32_t id = nghttp2_submit_request(session_, nullptr, nva_.data(), nva_.size(),
                                      has_body ? &provider : nullptr, &s);
  s.request.begin_body(h.facts.body, h.facts.content_length);
  if (id < 0) {
    // Stream ids exhausted or the session is going away: it never left.
    drop_unsubmitted(s, NGHTTP2_REFUSED_STREAM, true);
    return false;
  }
  s.id = id;
  s.submitted = true;
  return true;
}

ssize_t ClientCodec::Connection::read_request(nghttp2_session*, int32_t, uint8_t* buf,
                                              std::size_t length, uint32_t* data_flags,
                                              nghttp2_data_source* source, void* user_data) {
  Connection& c = self(user_data);
  Stream& s = *static_cast<Stream*>(source->ptr);
  return detail::read_message_body(
      s.request, s.blocked, buf, length, data_flags, [&] { return c.submit_trailers(s); },
      [&] { c.report_writable(s); });
}

bool ClientCodec::Connection::submit_trailers(Stream& s) {
  return detail::submit_trailers(session_, s.id, s.request.trailers(), nva_);
}

void ClientCodec::Connection::fail_request(Stream& s, uint32_t h2_error) {
  if (s.submitted) {
    reset(s, h2_error);
  } else {
    drop_unsubmitted(s, h2_error, false);
  }
}

void ClientCodec::Connection::drop_unsubmitted(Stream& s, uint32_t h2_error, bool retryable) {
  StreamHandler* handler = s.handler;
  int32_t handle = s.handle;
  streams_.erase(handle);
  report_closed(handler, handle, h2_error, retryable);
}

void ClientCodec::Connection::reset(Stream& s, uint32_t h2_error) {
  if (s.reset_by_us) return;
  s.reset_by_us = true;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, h2_error);
}

void ClientCodec::Connection::end_request(int32_t handle) {
  Stream* s = find(handle);
  if (s == nullptr || s->reset_by_us || closed_) return;
  if (!s->request.end_of_input()) {
    fail_request(*s, NGHTTP2_CANCEL);
  } else if (s->submitted) {
    nghttp2_session_resume_data(session_, s->id);
  }
}

void ClientCodec::Connection::reset_stream(int32_t handle, uint32_t h2_error) {
  Stream* s = find(handle);
  if (s == nullptr || closed_) return;
  fail_request(*s, h2_error);
}

void ClientCodec::Connection::consume(int32_t handle, std::size_t http1_bytes) {
  Stream* s = find(handle);
  if (s == nullptr || !s->submitted || http1_bytes == 0 || closed_) return;
  uint64_t credit = s->credit.consume(http1_bytes);
  if (credit > 0) nghttp2_session_consume(session_, s->id, credit);
}

// ---------------------------------------------------------------------------
// Receiving responses

int ClientCodec::Connection::on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame,
                                              void*) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  Stream* s = stream_of(session, frame->hd.stream_id);
  if (s == nullptr) return 0;
  // A new block: an interim or final head, or the trailers.
  s->fields.clear();
  s->header_list_size = 0;
  s->status = 0;
  return 0;
}

int ClientCodec::Connection::on_header(nghttp2_session* session, const nghttp2_frame* frame,
                                       const uint8_t* name, std::size_t namelen,
                                       const uint8_t* value, std::size_t valuelen, uint8_t,
                                       void* user_data) {
  Connection& c = self(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  Stream* s = stream_of(session, frame->hd.stream_id);
  if (s == nullptr || s->reset_by_us) return 0;
  std::string_view n = as_view(name, namelen);
  std::string_view v = as_view(value, valuelen);
  // nghttp2 does not enforce the SETTINGS_MAX_HEADER_LIST_SIZE it advertises;
  // failing here makes it reset the stream (INTERNAL_ERROR).
  s->header_list_size += static_cast<uint32_t>(namelen + valuelen + 32);
  if (s->header_list_size > c.settings_.max_header_list_size) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  // nghttp2 has checked names (lowercase tokens), values (no CR, LF or NUL),
  // pseudo-fields and connection-specific fields (RFC 9113 8.2, 8.3.2), so
  // they can be written into HTTP/1.1 as they are.
  if (!s->final_head) {
    if (n == ":status") {
      s->status = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
      return 0;
    }
    if (n == "content-length") s->has_content_length = true;
  } else if (!s->chunked || is_forbidden_trailer(n)) {
    // Trailers fit HTTP/1.1 only in a chunked body.
    return 0;
  }
  http::append_field(s->fields, n, v);
  return 0;
}

void ClientCodec::Connection::on_response_head_done(Stream& s, bool end_stream) {
  if (s.status < 200) {
    // 1xx: interim; nghttp2 expects the final head next. Interim responses
    // are hop-by-hop for us: the pipeline never asked for one.
    s.has_content_length = false;
    return;
  }
  s.final_head = true;
  std::string& head = scratch_;
  head.assign("HTTP/1.1 ");
  head.append(std::to_string(s.status)).append(" ").append(http::reason_phrase(s.status));
  head.append("\r\n").append(s.fields);
  bool bodiless = s.head_request || s.status == 204 || s.status == 304;
  if (!bodiless && !s.has_content_length) {
    // HTTP/2 frames the body by END_STREAM; HTTP/1.1 needs it spelled out.
    if (end_stream) {
      head.append("content-length: 0\r\n");
    } else {
      head.append("transfer-encoding: chunked\r\n");
      s.chunked = true;
    }
  }
  head.append("\r\n");
  std::string().swap(s.fields);
  deliver(s, head, 0);
}

void ClientCodec::Connection::deliver(Stream& s, std::string_view http1_bytes,
                                      std::size_t h2_bytes) {
  s.credit.delivered(http1_bytes.size(), h2_bytes);
  s.handler->on_response_bytes(s.handle, http1_bytes);
}

void ClientCodec::Connection::finish_response(Stream& s) {
  if (s.ended || s.reset_by_us) return;
  s.ended = true;
  if (s.chunked) {
    scratch_.assign("0\r\n").append(s.fields).append("\r\n");
    std::string().swap(s.fields);
    deliver(s, scratch_, 0);
    if (s.reset_by_us) return;
  }
  s.handler->on_response_end(s.handle);
}

int ClientCodec::Connection::on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame,
                                           void* user_data) {
  Connection& c = self(user_data);
  if (c.closed_) return 0;
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
  Stream* s = stream_of(session, frame->hd.stream_id);
  if (s == nullptr || s->reset_by_us) return 0;
  bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS && !s->final_head) {
    c.on_response_head_done(*s, end_stream);
    if (s->reset_by_us) return 0;
  }
  if (end_stream && s->final_head) c.finish_response(*s);
  return 0;
}

int ClientCodec::Connection::on_data_chunk_recv(nghttp2_session* session, uint8_t,
                                                int32_t stream_id, const uint8_t* data,
                                                std::size_t len, void* user_data) {
  Connection& c = self(user_data);
  Stream* s = stream_of(session, stream_id);
  if (s == nullptr || s->reset_by_us || c.closed_) {
    // Nobody will consume these: credit them now so the window survives.
    nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  if (!s->chunked) {
    c.deliver(*s, as_view(data, len), len);
    return 0;
  }
  c.deliver(*s, as_chunk(c.scratch_, data, len), len);
  return 0;
}

int ClientCodec::Connection::on_error(nghttp2_session*, int lib_error, const char*, std::size_t,
                                      void* user_data) {
  // The one connection error nghttp2 reports here rather than through a
  // failing mem_recv: the peer's first frame was not SETTINGS. Flagged now
  // so that receive() says so at once.
  Connection& c = self(user_data);
  if (lib_error == NGHTTP2_ERR_SETTINGS_EXPECTED && !c.fatal_) {
    c.fatal_ = true;
    c.close_reason_ = "backend is not speaking HTTP/2";
  }
  return 0;
}

int ClientCodec::Connection::on_frame_send(nghttp2_session* session, const nghttp2_frame* frame,
                                           void* user_data) {
  Connection& c = self(user_data);
  if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR &&
      !c.fatal_) {
    c.fatal_ = true;
    c.close_reason_ = "protocol error";
  }
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    if (Stream* s = stream_of(session, frame->hd.stream_id)) s->headers_sent = true;
  }
  return 0;
}

int ClientCodec::Connection::on_stream_close(nghttp2_session* session, int32_t stream_id,
                                             uint32_t error_code, void* user_data) {
  Connection& c = self(user_data);
  Stream* s = stream_of(session, stream_id);
  if (s == nullptr) return 0;
  // Response bytes delivered but never consumed still hold connection window.
  if (uint64_t owed = s->credit.outstanding(); owed > 0) {
    nghttp2_session_consume_connection(session, owed);
  }
  // RFC 9113 8.7: REFUSED_STREAM, or a GOAWAY whose last stream id is below
  // ours (nghttp2 closes those with REFUSED_STREAM), means unprocessed. So
  // does a request whose HEADERS never left. A response already under way
  // cannot be retried whatever the code says: the pipeline has relayed it.
  bool retryable = !s->final_head && (!s->headers_sent || error_code == NGHTTP2_REFUSED_STREAM);
  if (error_code == NGHTTP2_NO_ERROR && !s->ended) {
    // nghttp2 closes unsent streams with NO_ERROR, and a backend may end a
    // stream early with RST_STREAM(NO_ERROR): either way the exchange failed.
    error_code = s->headers_sent ? NGHTTP2_INTERNAL_ERROR : NGHTTP2_REFUSED_STREAM;
  }
  StreamHandler* handler = s->handler;
  int32_t handle = s->handle;
  nghttp2_session_set_stream_user_data(session, stream_id, nullptr);
  c.streams_.erase(handle);
  c.report_closed(handler, handle, error_code, retryable);
  return 0;
}

// ---------------------------------------------------------------------------
// Events

void ClientCodec::Connection::report_writable(Stream& s) {
  // Only from nghttp2's send loop (read_request): always deferred.
  deferred_.push_back({false, s.handler, s.handle, 0, false});
}

void ClientCodec::Connection::report_closed(StreamHandler* handler, int32_t handle, uint32_t code,
                                            bool retryable) {
  if (receiving_ && !closed_) {
    handler->on_stream_closed(handle, code, retryable);
  } else {
    deferred_.push_back({true, handler, handle, code, retryable});
  }
}

void ClientCodec::Connection::dispatch_deferred() {
  std::vector<Deferred> events;
  events.swap(deferred_);
  for (const Deferred& e : events) {
    if (e.closed) {
      e.handler->on_stream_closed(e.handle, e.code, e.retryable);
    } else if (!closed_ && find(e.handle) != nullptr) {
      e.handler->on_stream_writable(e.handle);
    }
  }
  events.clear();
  if (deferred_.empty()) deferred_.swap(events);  // keeps the capacity
}

// ---------------------------------------------------------------------------
// Connection

bool ClientCodec::Connection::receive(const uint8_t* data, std::size_t len) {
  if (closed_ || fatal_) return false;
  receiving_ = true;
  ssize_t rv = nghttp2_session_mem_recv(session_, data, len);
  receiving_ = false;
  if (rv < 0 && !fatal_) {
    fatal_ = true;
    close_reason_ = "protocol error";
    nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
  }
  return !fatal_;
}

std::size_t ClientCodec::Connection::take_output(std::string& out, std::size_t max_bytes) {
  std::size_t before = out.size();
  if (!closed_ && !detail::drain_output(session_, out, max_bytes)) {
    fatal_ = true;
    if (close_reason_.empty()) close_reason_ = "HTTP/2 send error";
  }
  dispatch_deferred();
  return out.size() - before;
}

bool ClientCodec::Connection::wants_read() const {
  return !closed_ && !fatal_ && nghttp2_session_want_read(session_) != 0;
}

bool ClientCodec::Connection::wants_write() const {
  return !deferred_.empty() || (!closed_ && nghttp2_session_want_write(session_) != 0);
}

void ClientCodec::Connection::shutdown() {
  if (closed_ || fatal_ || shutdown_) return;
  // A client's GOAWAY only refuses server-initiated streams (RFC 9113 6.8);
  // not opening new ones is up to us. It still tells the backend we are
  // leaving, and makes nghttp2 stop wanting I/O once the open streams end.
  shutdown_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, nullptr, 0);
}

void ClientCodec::Connection::close() {
  if (closed_) return;
  closed_ = true;
  if (close_reason_.empty()) close_reason_ = "connection closed";
  // Closures already queued first: those streams are gone from the map.
  dispatch_deferred();
  std::vector<int32_t> open;
  for (const auto& [handle, s] : streams_) open.push_back(handle);
  std::sort(open.begin(), open.end());
  for (int32_t handle : open) {
    Stream& s = *streams_[handle];
    // The handler is done with the stream; its state stays allocated (nghttp2
    // points at it) until the codec is destroyed.
    s.reset_by_us = true;
    s.handler->on_stream_closed(handle, NGHTTP2_CANCEL, !s.headers_sent && !s.final_head);
  }
}

// ---------------------------------------------------------------------------

ClientCodec::ClientCodec(const ClientSettings& settings)
    : conn_(std::make_unique<Connection>(settings)) {}
ClientCodec::~ClientCodec() = default;
int32_t ClientCodec::open_stream(StreamHandler& handler) { return conn_->open_stream(handler); }
bool ClientCodec::can_open_stream() const { return conn_->can_open_stream(); }
bool ClientCodec::draining() const { return conn_->draining(); }
std::size_t ClientCodec::send_request(int32_t stream, std::string_view http1_bytes) {
  return conn_->send_request(stream, http1_bytes);
}
void ClientCodec::end_request(int32_t stream) { conn_->end_request(stream); }
void ClientCodec::consume(int32_t stream, std::size_t http1_bytes) {
  conn_->consume(stream, http1_bytes);
}
void ClientCodec::reset_stream(int32_t stream, uint32_t h2_error) {
  conn_->reset_stream(stream, h2_error);
}
bool ClientCodec::receive(const uint8_t* data, std::size_t len) {
  return conn_->receive(data, len);
}
std::size_t ClientCodec::take_output(std::string& out, std::size_t max_bytes) {
  return conn_->take_output(out, max_bytes);
}
bool ClientCodec::wants_read() const { return conn_->wants_read(); }
bool ClientCodec::wants_write() const { return conn_->wants_write(); }
void ClientCodec::shutdown() { conn_->shutdown(); }
void ClientCodec::close() { conn_->close(); }
std::string_view ClientCodec::close_reason() const { return conn_->close_reason(); }
std::size_t ClientCodec::stream_count() const { return conn_->stream_count(); }

}  // namespace gatehouse::http2
