#include "http2/client_codec.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gatehouse::http2 {
namespace {

using namespace std::string_literals;
using Headers = std::vector<std::pair<std::string, std::string>>;

std::vector<nghttp2_nv> to_nv(const Headers& h) {
  std::vector<nghttp2_nv> nva;
  for (const auto& [name, value] : h) {
    nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                   reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                   value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nva;
}

std::string find_header(const Headers& h, std::string_view name) {
  for (const auto& [n, v] : h)
    if (n == name) return v;
  return "<none>";
}

// ---------------------------------------------------------------------------
// A real nghttp2 server session exchanging bytes with the codec in memory.

struct ServerStream {
  Headers headers;  // pseudo-fields included, in order
  Headers trailers;
  std::string body;
  bool headers_ended_stream = false;
  bool ended = false;
  bool closed = false;
  uint32_t close_code = 0;
  // Response body still to send.
  std::string out;
  bool out_eof = false;
  Headers out_trailers;
};

class H2Server {
 public:
  struct Options {
    uint32_t initial_window = 65535;
    bool auto_window = true;  // else read() grants request credit
    uint32_t max_concurrent_streams = 100;
  };

  explicit H2Server(Options o) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    nghttp2_option* opt;
    nghttp2_option_new(&opt);
    if (!o.auto_window) nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_session_server_new2(&session_, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o.initial_window},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o.max_concurrent_streams}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, 2);
  }
  ~H2Server() { nghttp2_session_del(session_); }

  nghttp2_session* session() { return session_; }
  ServerStream& stream(int32_t id) { return streams_[id]; }
  const std::vector<int32_t>& order() const { return order_; }

  std::string drain() {
    std::string out;
    for (;;) {
      const uint8_t* data;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) break;
      out.append(reinterpret_cast<const char*>(data), n);
    }
    return out;
  }
  bool feed(const std::string& bytes) {
    return nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()),
                                    bytes.size()) == static_cast<ssize_t>(bytes.size());
  }
  void read(int32_t id, std::size_t n) { nghttp2_session_consume(session_, id, n); }

  // A response; without body and trailers the HEADERS frame ends the stream.
  void respond(int32_t id, const Headers& h, std::optional<std::string> body = std::nullopt,
               Headers trailers = {}, bool eof = true) {
    auto nva = to_nv(h);
    if (!body && trailers.empty()) {
      nghttp2_submit_response(session_, id, nva.data(), nva.size(), nullptr);
      return;
    }
    ServerStream& s = streams_[id];
    s.out = body.value_or("");
    s.out_eof = eof;
    s.out_trailers = std::move(trailers);
    nghttp2_data_provider prd;
    prd.source.ptr = nullptr;
    prd.read_callback = read_body;
    nghttp2_submit_response(session_, id, nva.data(), nva.size(), &prd);
  }
  void send_body(int32_t id, std::string_view data, bool eof) {
    streams_[id].out.append(data);
    streams_[id].out_eof = eof;
    nghttp2_session_resume_data(session_, id);
  }
  void interim(int32_t id, std::string status) {
    Headers h = {{":status", std::move(status)}};
    auto nva = to_nv(h);
    nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, id, nullptr, nva.data(), nva.size(),
                           nullptr);
  }

 private:
  static H2Server& self(void* p) { return *static_cast<H2Server*>(p); }
  static int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name,
                       std::size_t namelen, const uint8_t* value, std::size_t valuelen, uint8_t,
                       void* p) {
    ServerStream& s = self(p).streams_[f->hd.stream_id];
    Headers& dst = f->headers.cat == NGHTTP2_HCAT_REQUEST ? s.headers : s.trailers;
    dst.emplace_back(std::string(reinterpret_cast<const char*>(name), namelen),
                     std::string(reinterpret_cast<const char*>(value), valuelen));
    return 0;
  }
  static int on_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, std::size_t len,
                     void* p) {
    self(p).streams_[id].body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* p) {
    H2Server& srv = self(p);
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) return 0;
    ServerStream& s = srv.streams_[f->hd.stream_id];
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
      srv.order_.push_back(f->hd.stream_id);
      s.headers_ended_stream = end;
    }
    if (end) s.ended = true;
    return 0;
  }
  static int on_close(nghttp2_session*, int32_t id, uint32_t code, void* p) {
    ServerStream& s = self(p).streams_[id];
    s.closed = true;
    s.close_code = code;
    return 0;
  }
  static ssize_t read_body(nghttp2_session* session, int32_t id, uint8_t* buf, std::size_t length,
                           uint32_t* flags, nghttp2_data_source*, void* p) {
    ServerStream& s = self(p).streams_[id];
    std::size_t n = std::min(length, s.out.size());
    std::copy_n(s.out.data(), n, buf);
    s.out.erase(0, n);
    if (s.out.empty() && s.out_eof) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!s.out_trailers.empty()) {
        auto nva = to_nv(s.out_trailers);
        nghttp2_submit_trailer(session, id, nva.data(), nva.size());
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
    } else if (n == 0) {
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }

  nghttp2_session* session_ = nullptr;
  std::map<int32_t, ServerStream> streams_;
  std::vector<int32_t> order_;
};

// ---------------------------------------------------------------------------
// The pipeline side of one exchange.

class Exchange : public ClientCodec::StreamHandler {
 public:
  ClientCodec* codec = nullptr;
  bool auto_consume = true;
  std::string response;  // HTTP/1.1 bytes as delivered
  int ended = 0;
  int closed = 0;
  uint32_t close_code = 0;
  bool retryable = false;
  int writable = 0;
  int calls_after_close = 0;
  std::function<void()> on_writable;

  void on_response_bytes(int32_t stream, std::string_view bytes) override {
    check();
    response.append(bytes);
    if (auto_consume) codec->consume(stream, bytes.size());
  }
  void on_response_end(int32_t) override {
    check();
    ++ended;
  }
  void on_stream_writable(int32_t) override {
    check();
    ++writable;
    if (on_writable) on_writable();
  }
  void on_stream_closed(int32_t, uint32_t code, bool retry) override {
    check();
    ++closed;
    close_code = code;
    retryable = retry;
  }

 private:
  void check() {
    if (closed > 0) ++calls_after_close;
  }
};

class ClientCodecTest : public ::testing::Test {
 protected:
  void start(ClientSettings settings = {}, H2Server::Options options = {}) {
    codec_ = std::make_unique<ClientCodec>(settings);
    server_ = std::make_unique<H2Server>(options);
    pump();
  }

  void pump() {
    for (int round = 0; round < 10000; ++round) {
      bool progress = false;
      std::string up;
      codec_->take_output(up);
      if (!up.empty()) {
        progress = true;
        server_->feed(up);
      }
      std::string down = server_->drain();
      if (!down.empty() && codec_ok_) {
        progress = true;
        codec_ok_ = codec_->receive(reinterpret_cast<const uint8_t*>(down.data()), down.size());
      }
      if (!progress) return;
    }
    FAIL() << "pump did not settle";
  }

  // Opens a stream for `ex` and sends `request`; returns the handle.
  int32_t send(Exchange& ex, std::string_view request) {
    ex.codec = codec_.get();
    int32_t handle = codec_->open_stream(ex);
    EXPECT_GT(handle, 0);
    if (handle > 0) {
      EXPECT_EQ(codec_->send_request(handle, request), request.size());
    }
    pump();
    return handle;
  }

  // The server-side id of the n-th request it received.
  int32_t sid(std::size_t n = 0) { return server_->order().at(n); }

  std::unique_ptr<ClientCodec> codec_;
  std::unique_ptr<H2Server> server_;
  bool codec_ok_ = true;
};

// --- Requests -------------------------------------------------------------------

TEST_F(ClientCodecTest, GetBecomesPseudoHeadersWithTeTrailers) {
  start();
  Exchange ex;
  send(ex,
       "GET /links/42?x=1 HTTP/1.1\r\nHost: api.example\r\nAccept: text/html\r\n"
       "Connection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nTE: trailers\r\n"
       "\r\n");
  ASSERT_EQ(server_->order().size(), 1u);
  const ServerStream& s = server_->stream(sid());
  Headers expected = {
      {":method", "GET"},         {":scheme", "http"},     {":authority", "api.example"},
      {":path", "/links/42?x=1"}, {"accept", "text/html"}, {"te", "trailers"}};
  EXPECT_EQ(s.headers, expected);
  EXPECT_TRUE(s.headers_ended_stream);
}

TEST_F(ClientCodecTest, SchemeComesFromSettings) {
  ClientSettings cs;
  cs.scheme = "https";
  start(cs);
  Exchange ex;
  send(ex, "GET / HTTP/1.1\r\nhost: a\r\n\r\n");
  EXPECT_EQ(find_header(server_->stream(sid()).headers, ":scheme"), "https");
}

TEST_F(ClientCodecTest, AbsoluteFormTargetBecomesPathAndAuthority) {
  start();
  Exchange ex;
  send(ex, "GET http://api.example/a/b?c=d HTTP/1.1\r\nHost: api.example\r\n\r\n");
  const Headers& h = server_->stream(sid()).headers;
  EXPECT_EQ(find_header(h, ":path"), "/a/b?c=d");
  EXPECT_EQ(find_header(h, ":authority"), "api.example");
}

TEST_F(ClientCodecTest, OptionsAsteriskKeepsAsteriskPath) {
  start();
  Exchange ex;
  send(ex, "OPTIONS * HTTP/1.1\r\nHost: api.example\r\n\r\n");
  EXPECT_EQ(find_header(server_->stream(sid()).headers, ":path"), "*");
}

TEST_F(ClientCodecTest, PostWithContentLengthSendsBodyAsIs) {
  start();
  Exchange ex;
  send(ex, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world");
  const ServerStream& s = server_->stream(sid());
  EXPECT_EQ(find_header(s.headers, "content-length"), "11");
  EXPECT_EQ(s.body, "hello world");
  EXPECT_TRUE(s.ended);
  EXPECT_FALSE(s.headers_ended_stream);
}

TEST_F(ClientCodecTest, ChunkedRequestIsDecodedAndTrailersBecomeHeaders) {
  start();
  Exchange ex;
  int32_t h = send(ex,
                   "POST /pkg.Svc/Upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                   "Content-Type: application/grpc\r\n\r\n5\r\nhello\r\n");
  const ServerStream& s = server_->stream(sid());
  EXPECT_EQ(find_header(s.headers, "transfer-encoding"), "<none>");
  EXPECT_EQ(s.body, "hello");
  EXPECT_FALSE(s.ended);
  codec_->send_request(h, "6\r\n world\r\n0\r\nX-Checksum: abc\r\nContent-Length: 3\r\n\r\n");
  pump();
  EXPECT_EQ(s.body, "hello world");
  EXPECT_TRUE(s.ended);
  Headers expected = {{"x-checksum", "abc"}};
  EXPECT_EQ(s.trailers, expected);
}

TEST_F(ClientCodecTest, RequestArrivingByteByByte) {
  start();
  Exchange ex;
  ex.codec = codec_.get();
  int32_t h = codec_->open_stream(ex);
  std::string req = "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd";
  for (char ch : req) {
    EXPECT_EQ(codec_->send_request(h, std::string_view(&ch, 1)), 1u);
    pump();
  }
  EXPECT_EQ(server_->stream(sid()).body, "abcd");
  EXPECT_TRUE(server_->stream(sid()).ended);
}

TEST_F(ClientCodecTest, MalformedRequestFailsWithoutReachingTheBackend) {
  start();
  Exchange ex;
  ex.codec = codec_.get();
  int32_t h = codec_->open_stream(ex);
  std::string req = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
  EXPECT_EQ(codec_->send_request(h, req), req.size());
  EXPECT_EQ(ex.closed, 0) << "never from inside send_request";
  EXPECT_TRUE(codec_->wants_write());
  pump();
  EXPECT_TRUE(server_->order().empty());
  EXPECT_EQ(ex.closed, 1);
  EXPECT_EQ(ex.close_code, NGHTTP2_INTERNAL_ERROR);
  EXPECT_FALSE(ex.retryable);
  EXPECT_EQ(codec_->stream_count(), 0u);
}

TEST_F(ClientCodecTest, IncompleteRequestAtEndRequestIsCancelled) {
  start();
  Exchange ex;
  int32_t h = send(ex, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhalf");
  codec_->end_request(h);
  pump();
  EXPECT_EQ(server_->stream(sid()).close_code, NGHTTP2_CANCEL);
  EXPECT_EQ(ex.closed, 1);
  EXPECT_EQ(ex.close_code, NGHTTP2_CANCEL);
}

// --- Responses -----------------------------------------------------------------

TEST_F(ClientCodecTest, ContentLengthResponseIsPassedAsIs) {
  start();
  Exchange ex;
  send(ex, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  server_->respond(sid(),
                   {{":status", "200"}, {"content-type", "text/plain"}, {"content-length", "5"}},
                   "hello");
  pump();
  EXPECT_EQ(ex.response,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello");
  EXPECT_EQ(ex.ended, 1);
  EXPECT_EQ(ex.closed, 1);
  EXPECT_EQ(ex.close_code, NGHTTP2_NO_ERROR);
  EXPECT_FALSE(ex.retryable);
  EXPECT_EQ(codec_->stream_count(), 0u);
}

TEST_F(ClientCodecTest, BodyWithoutLengthIsChunkedWithTrailers) {
  start();
  Exchange ex;
  send(ex,
       "POST /pkg.Svc/Call HTTP/1.1\r\nHost: a\r\nContent-Type: application/grpc\r\n"
       "Content-Length: 5\r\n\r\n\0\0\0\0\0"s);
  server_->respond(sid(), {{":status", "200"}, {"content-type", "application/grpc"}},
                   std::string("\0\0\0\0\2hi", 7), {{"grpc-status", "0"}, {"grpc-message", "ok"}});
  pump();
  EXPECT_EQ(ex.response,
            "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n"
            "\r\n7\r\n\0\0\0\0\2hi\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n"s);
  EXPECT_EQ(ex.ended, 1);
  EXPECT_EQ(ex.close_code, NGHTTP2_NO_ERROR);
}

TEST_F(ClientCodecTest, TrailersOnlyResponseGetsContentLengthZero) {
  start();
  Exchange ex;
  send(ex, "POST /pkg.Svc/Call HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  server_->respond(sid(), {{":status", "200"}, {"grpc-status", "12"}});
  pump();
  EXPECT_EQ(ex.response, "HTTP/1.1 200 OK\r\ngrpc-status: 12\r\ncontent-length: 0\r\n\r\n");
  EXPECT_EQ(ex.ended, 1);
}

TEST_F(ClientCodecTest, HeadAnd204And304GetNoFraming) {
  start();
  Exchange head, no_content, not_modified;
  send(head, "HEAD /f HTTP/1.1\r\nHost: a\r\n\r\n");
  send(no_content, "DELETE /f HTTP/1.1\r\nHost: a\r\n\r\n");
  send(not_modified, "GET /f HTTP/1.1\r\nHost: a\r\n\r\n");
  server_->respond(sid(0), {{":status", "200"}, {"content-length", "1234"}});
  server_->respond(sid(1), {{":status", "204"}});
  server_->respond(sid(2), {{":status", "304"}, {"etag", "\"v\""}});
  pump();
  EXPECT_EQ(head.response, "HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n");
  EXPECT_EQ(no_content.response, "HTTP/1.1 204 No Content\r\n\r\n");
  EXPECT_EQ(not_modified.response, "HTTP/1.1 304 Not Modified\r\netag: \"v\"\r\n\r\n");
  EXPECT_EQ(head.ended + no_content.ended + not_modified.ended, 3);
}

TEST_F(ClientCodecTest, InterimResponsesAreNotPassedOn) {
  start();
  Exchange ex;
  send(ex, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  server_->interim(sid(), "103");
  pump();
  EXPECT_TRUE(ex.response.empty());
  server_->respond(sid(), {{":status", "200"}, {"content-length", "2"}}, "ok");
  pump();
  EXPECT_EQ(ex.response, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
}

TEST_F(ClientCodecTest, StreamedResponseArrivesAsItComes) {
  start();
  Exchange ex;
  send(ex, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n");
  server_->respond(sid(), {{":status", "200"}, {"content-type", "text/event-stream"}}, "a", {},
                   false);
  pump();
  EXPECT_EQ(ex.response,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            "\r\n1\r\na\r\n");
  server_->send_body(sid(), "bc", true);
  pump();
  EXPECT_EQ(ex.response.substr(ex.response.size() - 12), "2\r\nbc\r\n0\r\n\r\n");
  EXPECT_EQ(ex.ended, 1);
}

// --- Flow control -----------------------------------------------------------------

TEST_F(ClientCodecTest, ResponseCreditOnlyOnConsume) {
  ClientSettings cs;
  cs.stream_window = 4096;
  start(cs);
  Exchange ex;
  ex.auto_consume = false;
  send(ex, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
  std::string body(150000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i % 253);
  server_->respond(sid(), {{":status", "200"}, {"content-length", "150000"}}, body);
  pump();
  std::size_t head = ex.response.find("\r\n\r\n") + 4;
  EXPECT_EQ(ex.response.size() - head, 4096u);
  std::size_t consumed = 0;
  int rounds = 0;
  while (ex.ended == 0 && rounds < 1000) {
    ++rounds;
    codec_->consume(1, ex.response.size() - consumed);
    consumed = ex.response.size();
    pump();
    EXPECT_LE(ex.response.size() - consumed, 4096u);
  }
  EXPECT_EQ(ex.response.substr(head), body);
  EXPECT_GT(rounds, 30);
}

TEST_F(ClientCodecTest, ChunkEncodedResponseCreditAddsUp) {
  ClientSettings cs;
  cs.stream_window = 2000;
  cs.connection_window = 65535;
  start(cs);
  for (int i = 0; i < 4; ++i) {
    Exchange ex;
    ex.auto_consume = false;
    int32_t h = send(ex, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    server_->respond(sid(i), {{":status", "200"}}, std::string(40000, 'q'));
    pump();
    std::size_t consumed = 0;
    for (int k = 0; k < 5000 && ex.ended == 0; ++k) {
      std::size_t n = std::min<std::size_t>(ex.response.size() - consumed, 777);
      codec_->consume(h, n);
      consumed += n;
      pump();
    }
    ASSERT_EQ(ex.ended, 1) << "exchange " << i;
  }
}

TEST_F(ClientCodecTest, SlowBackendGetsPartialAcceptanceAndWritableEvents) {
  ClientSettings cs;
  cs.max_stream_output = 8192;
  H2Server::Options so;
  so.initial_window = 1000;
  so.auto_window = false;
  start(cs, so);
  Exchange ex;
  ex.codec = codec_.get();
  int32_t h = codec_->open_stream(ex);
  std::string body(200000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 3 % 241);
  std::string req = "PUT /blob HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n" + body;
  std::size_t sent = 0;
  auto offer = [&] { sent += codec_->send_request(h, std::string_view(req).substr(sent)); };
  ex.on_writable = offer;
  offer();
  EXPECT_LT(sent, req.size());
  pump();
  std::size_t read = 0;
  for (int i = 0; i < 5000 && !server_->stream(sid()).ended; ++i) {
    const ServerStream& s = server_->stream(sid());
    EXPECT_LE(s.body.size() - read, 1000u);
    server_->read(sid(), s.body.size() - read);
    read = s.body.size();
    pump();
  }
  EXPECT_EQ(server_->stream(sid()).body, body);
  EXPECT_GT(ex.writable, 10);
}

TEST_F(ClientCodecTest, UnconsumedResponseOfClosedStreamReturnsToConnectionWindow) {
  ClientSettings cs;
  cs.connection_window = 65535;
  start(cs);
  for (int i = 0; i < 3; ++i) {
    Exchange ex;
    ex.auto_consume = false;
    int32_t h = send(ex, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    server_->respond(sid(i), {{":status", "200"}, {"content-length", "60000"}},
                     std::string(60000, 'r'));
    pump();
    ASSERT_EQ(ex.ended, 1) << "connection window leaked at exchange " << i;
    EXPECT_EQ(ex.closed, 1);
    (void)h;
  }
}

// --- Failures and retries --------------------------------------------------------

TEST_F(ClientCodecTest, RefusedStreamIsRetryable) {
  start();
  Exchange ex;
  send(ex, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  nghttp2_submit_rst_stream(server_->session(), NGHTTP2_FLAG_NONE, sid(), NGHTTP2_REFUSED_STREAM);
  pump();
  EXPECT_EQ(ex.closed, 1);
  EXPECT_EQ(ex.close_code, NGHTTP2_REFUSED_STREAM);
  EXPECT_TRUE(ex.retryable);
}

TEST_F(ClientCodecTest, ResetMidResponseIsNotRetryable) {
  start();
  Exchange ex;
  send(ex, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  server_->respond(sid(), {{":status", "200"}, {"content-length", "10"}}, "hal", {}, false);
  pump();
  nghttp2_submit_rst_stream(server_->session(), NGHTTP2_FLAG_NONE, sid(), NGHTTP2_INTERNAL_ERROR);
  pump();
  EXPECT_EQ(ex.ended, 0);
  EXPECT_EQ(ex.closed, 1);
  EXPECT_EQ(ex.close_code, NGHTTP2_INTERNAL_ERROR);
  EXPECT_FALSE(ex.retryable);
}

TEST_F(ClientCodecTest, GoawayFailsLaterStreamsAsRetryableAndStopsNewOnes) {
  start();
  Exchange a, b, c;
  send(a, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  send(b, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
  send(c, "GET /c HTTP/1.1\r\nHost: a\r\n\r\n");
  nghttp2_submit_goaway(server_->session(), NGHTTP2_FLAG_NONE, sid(0), NGHTTP2_NO_ERROR, nullptr,
                        0);
  pump();
  EXPECT_TRUE(codec_->draining());
  EXPECT_FALSE(codec_->can_open_stream());
  Exchange d;
  EXPECT_EQ(codec_->open_stream(d), ClientCodec::kClosed);
  for (Exchange* ex : {&b, &c}) {
    EXPECT_EQ(ex->closed, 1);
    EXPECT_EQ(ex->close_code, NGHTTP2_REFUSED_STREAM);
    EXPECT_TRUE(ex->retryable);
  }
  EXPECT_EQ(a.closed, 0);
  server_->respond(sid(0), {{":status", "200"}, {"content-length", "1"}}, "a");
  pump();
  EXPECT_EQ(a.response, "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na");
  EXPECT_EQ(a.close_code, NGHTTP2_NO_ERROR);
  EXPECT_FALSE(codec_->wants_read());
  EXPECT_FALSE(codec_->wants_write());
}

TEST_F(ClientCodecTest, RespectsBackendMaxConcurrentStreams) {
  H2Server::Options so;
  so.max_concurrent_streams = 2;
  start({}, so);
  Exchange a, b, c;
  send(a, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  send(b, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_FALSE(codec_->can_open_stream());
  EXPECT_EQ(codec_->open_stream(c), ClientCodec::kBusy);
  EXPECT_FALSE(codec_->draining());
  server_->respond(sid(0), {{":status", "204"}});
  pump();
  EXPECT_TRUE(codec_->can_open_stream());
  send(c, "GET /c HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(server_->order().size(), 2u + 1u);
}

TEST_F(ClientCodecTest, OwnConcurrencyCapApplies) {
  ClientSettings cs;
  cs.max_concurrent_streams = 1;
  start(cs);
  Exchange a, b;
  a.codec = codec_.get();
  EXPECT_GT(codec_->open_stream(a), 0);
  EXPECT_EQ(codec_->open_stream(b), ClientCodec::kBusy);
}

TEST_F(ClientCodecTest, PipelineResetIsReportedOnceAtTakeOutput) {
  start();
  Exchange ex;
  int32_t h = send(ex, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab");
  codec_->reset_stream(h, NGHTTP2_CANCEL);
  EXPECT_EQ(ex.closed, 0);
  pump();
  EXPECT_EQ(server_->stream(sid()).close_code, NGHTTP2_CANCEL);
  EXPECT_EQ(ex.closed, 1);
  EXPECT_EQ(ex.close_code, NGHTTP2_CANCEL);
  codec_->reset_stream(h, NGHTTP2_CANCEL);
  codec_->consume(h, 10);
  EXPECT_EQ(codec_->send_request(h, "cde"), 3u);
  pump();
  EXPECT_EQ(ex.closed, 1);
  EXPECT_EQ(ex.calls_after_close, 0);
}

TEST_F(ClientCodecTest, OversizeResponseHeadResetsStream) {
  ClientSettings cs;
  cs.max_header_list_size = 1024;
  start(cs);
  Exchange ex;
  send(ex, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  server_->respond(sid(), {{":status", "200"}, {"x-big", std::string(2000, 'b')}});
  pump();
  EXPECT_TRUE(ex.response.empty());
  EXPECT_EQ(ex.closed, 1);
  EXPECT_EQ(ex.close_code, NGHTTP2_INTERNAL_ERROR);
  EXPECT_FALSE(ex.retryable);
}

TEST_F(ClientCodecTest, NonHttp2BackendIsRefused) {
  codec_ = std::make_unique<ClientCodec>(ClientSettings{});
  std::string preface;
  codec_->take_output(preface);
  EXPECT_EQ(preface.substr(0, 24), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  std::string reply = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
  EXPECT_FALSE(codec_->receive(reinterpret_cast<const uint8_t*>(reply.data()), reply.size()));
  EXPECT_FALSE(codec_->close_reason().empty());
  EXPECT_TRUE(codec_->draining());
}

TEST_F(ClientCodecTest, CloseReportsOpenStreamsOnceWithRetryability) {
  start();
  Exchange sent, unsent;
  send(sent, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  unsent.codec = codec_.get();
  int32_t h = codec_->open_stream(unsent);
  codec_->send_request(h, "GET /b HTTP/1.1\r\n");  // head incomplete: nothing left
  codec_->close();
  EXPECT_EQ(sent.closed, 1);
  EXPECT_EQ(sent.close_code, NGHTTP2_CANCEL);
  EXPECT_FALSE(sent.retryable);
  EXPECT_EQ(unsent.closed, 1);
  EXPECT_TRUE(unsent.retryable);
  EXPECT_FALSE(codec_->wants_read());
  EXPECT_FALSE(codec_->wants_write());
  EXPECT_EQ(codec_->open_stream(unsent), ClientCodec::kClosed);
  std::string out;
  codec_->take_output(out);
  EXPECT_EQ(sent.closed + unsent.closed, 2);
}

TEST_F(ClientCodecTest, ShutdownSendsGoawayAndLetsStreamsFinish) {
  start();
  Exchange ex;
  send(ex, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  codec_->shutdown();
  pump();
  EXPECT_TRUE(codec_->draining());
  server_->respond(sid(), {{":status", "200"}, {"content-length", "2"}}, "ok");
  pump();
  EXPECT_EQ(ex.ended, 1);
  EXPECT_FALSE(codec_->wants_read());
  EXPECT_FALSE(codec_->wants_write());
}

}  // namespace
}  // namespace gatehouse::http2
