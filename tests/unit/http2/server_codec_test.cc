#include "http2/server_codec.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace gatehouse::http2 {
namespace {

using namespace std::string_literals;
using Headers = std::vector<std::pair<std::string, std::string>>;

Headers request_headers(std::string method, std::string path, Headers extra = {}) {
  Headers h = {{":method", std::move(method)},
               {":scheme", "https"},
               {":path", std::move(path)},
               {":authority", "example.com"}};
  for (auto& f : extra) h.push_back(std::move(f));
  return h;
}

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
// A real nghttp2 client session exchanging bytes with the codec in memory.

struct ClientStream {
  int status = 0;
  Headers headers;
  Headers trailers;
  std::string body;
  bool headers_ended_stream = false;
  int data_frames = 0;
  bool closed = false;
  uint32_t close_code = 0;
  // Request body still to send.
  std::string out;
  bool out_eof = false;
  Headers out_trailers;
};

class H2Client {
 public:
  struct Options {
    uint32_t initial_window = 65535;
    bool auto_window = true;           // else read() grants response credit
    uint32_t peer_max_concurrent = 0;  // nonzero: send this many before the server's SETTINGS
    std::size_t padding = 0;           // pad every DATA frame by this much
  };

  explicit H2Client(Options o) : opts_(o) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    if (o.padding > 0) nghttp2_session_callbacks_set_select_padding_callback(cbs, on_padding);
    nghttp2_option* opt;
    nghttp2_option_new(&opt);
    if (!o.auto_window) nghttp2_option_set_no_auto_window_update(opt, 1);
    if (o.peer_max_concurrent > 0) {
      nghttp2_option_set_peer_max_concurrent_streams(opt, o.peer_max_concurrent);
    }
    nghttp2_session_client_new2(&session_, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o.initial_window},
                                   {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, 2);
  }
  ~H2Client() { nghttp2_session_del(session_); }

  nghttp2_session* session() { return session_; }
  ClientStream& stream(int32_t id) { return streams_[id]; }
  bool goaway() const { return goaway_code_.has_value(); }
  uint32_t goaway_code() const { return goaway_code_.value_or(0xffffffff); }

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
  // Grants response credit for `n` bytes of a stream's body (auto_window off).
  void read(int32_t id, std::size_t n) { nghttp2_session_consume(session_, id, n); }

  int32_t submit(const Headers& h, bool end_stream);
  void send_body(int32_t id, std::string_view data, bool eof, Headers trailers = {}) {
    ClientStream& s = streams_[id];
    s.out.append(data);
    s.out_eof = eof;
    s.out_trailers = std::move(trailers);
    nghttp2_session_resume_data(session_, id);
  }

 private:
  static H2Client& self(void* p) { return *static_cast<H2Client*>(p); }
  static int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name,
                       std::size_t namelen, const uint8_t* value, std::size_t valuelen, uint8_t,
                       void* p) {
    ClientStream& s = self(p).streams_[f->hd.stream_id];
    std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (f->headers.cat == NGHTTP2_HCAT_HEADERS) {
      s.trailers.emplace_back(n, v);
    } else if (n == ":status") {
      s.status = std::stoi(v);
    } else {
      s.headers.emplace_back(n, v);
    }
    return 0;
  }
  static int on_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, std::size_t len,
                     void* p) {
    self(p).streams_[id].body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* p) {
    H2Client& c = self(p);
    if (f->hd.type == NGHTTP2_GOAWAY) c.goaway_code_ = f->goaway.error_code;
    if (f->hd.type == NGHTTP2_DATA) ++c.streams_[f->hd.stream_id].data_frames;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      c.streams_[f->hd.stream_id].headers_ended_stream = true;
    }
    return 0;
  }
  static int on_close(nghttp2_session*, int32_t id, uint32_t code, void* p) {
    ClientStream& s = self(p).streams_[id];
    s.closed = true;
    s.close_code = code;
    return 0;
  }
  static ssize_t on_padding(nghttp2_session*, const nghttp2_frame* f, std::size_t max, void* p) {
    return static_cast<ssize_t>(std::min(f->hd.length + self(p).opts_.padding, max));
  }
  static ssize_t read_body(nghttp2_session* session, int32_t id, uint8_t* buf, std::size_t length,
                           uint32_t* flags, nghttp2_data_source*, void* p) {
    ClientStream& s = self(p).streams_[id];
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

  Options opts_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, ClientStream> streams_;
  std::optional<uint32_t> goaway_code_;
};

int32_t H2Client::submit(const Headers& h, bool end_stream) {
  auto nva = to_nv(h);
  nghttp2_data_provider prd;
  prd.source.ptr = nullptr;
  prd.read_callback = read_body;
  return nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                end_stream ? nullptr : &prd, nullptr);
}

// ---------------------------------------------------------------------------
// The pipeline side: records what the codec reports, per stream.

struct Recorded {
  std::string head;
  bool head_end_stream = false;
  std::string body;
  int ended = 0;
  int closed = 0;
  uint32_t close_code = 0;
  int writable = 0;
  int calls_after_close = 0;
};

class Recorder : public ServerCodec::Handler {
 public:
  ServerCodec* codec = nullptr;
  bool auto_consume = true;
  std::map<int32_t, Recorded> streams;
  std::vector<int32_t> order;  // streams in the order their heads arrived
  std::function<void(int32_t)> on_head;
  std::function<void(int32_t)> on_writable;

  void on_request_head(int32_t id, std::string_view head, bool end_stream) override {
    Recorded& r = get(id);
    r.head = head;
    r.head_end_stream = end_stream;
    order.push_back(id);
    if (on_head) on_head(id);
  }
  void on_request_body(int32_t id, std::string_view bytes) override {
    get(id).body.append(bytes);
    if (auto_consume) codec->consume(id, bytes.size());
  }
  void on_request_end(int32_t id) override { ++get(id).ended; }
  void on_stream_writable(int32_t id) override {
    ++get(id).writable;
    if (on_writable) on_writable(id);
  }
  void on_stream_closed(int32_t id, uint32_t code) override {
    Recorded& r = get(id);
    ++r.closed;
    r.close_code = code;
  }

 private:
  Recorded& get(int32_t id) {
    Recorded& r = streams[id];
    if (r.closed > 0) ++r.calls_after_close;
    return r;
  }
};

// Decodes the complete chunks of a chunked body.
std::string dechunk(std::string_view body) {
  std::string out;
  while (true) {
    std::size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) break;
    std::size_t size = std::stoul(std::string(body.substr(0, eol)), nullptr, 16);
    if (size == 0 || body.size() < eol + 2 + size + 2) break;
    out.append(body.substr(eol + 2, size));
    body.remove_prefix(eol + 2 + size + 2);
  }
  return out;
}

void append_chunk(std::string& out, std::string_view data) {
  char size[20];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  out.append(size).append(data).append("\r\n");
}

// ---------------------------------------------------------------------------
// Raw frames, for what a well-behaved client library will not send.

const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::string frame(uint8_t type, uint8_t flags, int32_t stream, std::string_view payload) {
  std::string f;
  uint32_t len = static_cast<uint32_t>(payload.size());
  f.push_back(static_cast<char>(len >> 16));
  f.push_back(static_cast<char>(len >> 8));
  f.push_back(static_cast<char>(len));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  f.push_back(static_cast<char>((stream >> 24) & 0x7f));
  f.push_back(static_cast<char>(stream >> 16));
  f.push_back(static_cast<char>(stream >> 8));
  f.push_back(static_cast<char>(stream));
  f.append(payload);
  return f;
}

std::string hpack(const Headers& h) {
  nghttp2_hd_deflater* d;
  nghttp2_hd_deflate_new(&d, 4096);
  auto nva = to_nv(h);
  std::string out(nghttp2_hd_deflate_bound(d, nva.data(), nva.size()), '\0');
  ssize_t n = nghttp2_hd_deflate_hd(d, reinterpret_cast<uint8_t*>(out.data()), out.size(),
                                    nva.data(), nva.size());
  nghttp2_hd_deflate_del(d);
  out.resize(n);
  return out;
}

// The error code of the first GOAWAY or RST_STREAM frame in `bytes`, if any.
std::optional<uint32_t> error_in(std::string_view bytes, uint8_t type) {
  auto byte = [&](std::size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(bytes[k])); };
  std::size_t i = 0;
  while (i + 9 <= bytes.size()) {
    std::size_t len = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    std::size_t code = i + 9 + (type == NGHTTP2_GOAWAY ? 4 : 0);  // after last-stream-id
    if (byte(i + 3) == type && code + 4 <= bytes.size()) {
      return (byte(code) << 24) | (byte(code + 1) << 16) | (byte(code + 2) << 8) | byte(code + 3);
    }
    i += 9 + len;
  }
  return std::nullopt;
}

std::optional<uint32_t> goaway_in(std::string_view bytes) {
  return error_in(bytes, NGHTTP2_GOAWAY);
}

// ---------------------------------------------------------------------------

class ServerCodecTest : public ::testing::Test {
 protected:
  void start(ServerSettings settings = {}, H2Client::Options options = {}, bool handshake = true) {
    server_ = std::make_unique<ServerCodec>(handler_, settings);
    handler_.codec = server_.get();
    client_ = std::make_unique<H2Client>(options);
    if (handshake) pump();
  }

  // Exchanges bytes until neither side has anything to say.
  void pump() {
    for (int round = 0; round < 10000; ++round) {
      bool progress = false;
      std::string up = client_->drain();
      if (!up.empty() && server_ok_) {
        progress = true;
        server_ok_ = server_->receive(reinterpret_cast<const uint8_t*>(up.data()), up.size());
      }
      std::string down;
      server_->take_output(down);
      if (!down.empty()) {
        progress = true;
        all_down_ += down;
        client_->feed(down);
      }
      if (!progress) return;
    }
    FAIL() << "pump did not settle";
  }

  bool feed_raw(const std::string& bytes) {
    server_ok_ = server_->receive(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    std::string down;
    server_->take_output(down);
    all_down_ += down;
    return server_ok_;
  }

  int32_t get(std::string path, Headers extra = {}) {
    return client_->submit(request_headers("GET", std::move(path), std::move(extra)), true);
  }

  void respond(int32_t id, std::string_view http1) {
    EXPECT_EQ(server_->send_response(id, http1), http1.size());
    pump();
  }

  Recorder handler_;
  std::unique_ptr<ServerCodec> server_;
  std::unique_ptr<H2Client> client_;
  bool server_ok_ = true;
  std::string all_down_;
};

// --- Requests ---------------------------------------------------------------

TEST_F(ServerCodecTest, GetBecomesHttp1HeadWithHostFromAuthority) {
  start();
  int32_t id = get("/links/42?x=1", {{"accept", "text/html"}, {"user-agent", "t"}});
  pump();
  ASSERT_EQ(handler_.streams.count(id), 1u);
  const Recorded& r = handler_.streams[id];
  EXPECT_EQ(r.head,
            "GET /links/42?x=1 HTTP/1.1\r\nhost: example.com\r\naccept: text/html\r\n"
            "user-agent: t\r\n\r\n");
  EXPECT_TRUE(r.head_end_stream);
  EXPECT_EQ(r.ended, 1);
  EXPECT_TRUE(r.body.empty());
}

TEST_F(ServerCodecTest, JoinsCookieCrumbsIntoOneLine) {
  start();
  int32_t id = get("/", {{"cookie", "a=1"}, {"x", "y"}, {"cookie", "b=2"}});
  pump();
  EXPECT_EQ(handler_.streams[id].head,
            "GET / HTTP/1.1\r\nhost: example.com\r\nx: y\r\ncookie: a=1; b=2\r\n\r\n");
}

TEST_F(ServerCodecTest, PassesTeTrailersThrough) {
  start();
  int32_t id = get("/svc/Method", {{"te", "trailers"}});
  pump();
  EXPECT_NE(handler_.streams[id].head.find("\r\nte: trailers\r\n"), std::string::npos);
}

TEST_F(ServerCodecTest, MatchingHostFieldIsNotRepeated) {
  start();
  int32_t id = get("/", {{"host", "example.com"}});
  pump();
  EXPECT_EQ(handler_.streams[id].head, "GET / HTTP/1.1\r\nhost: example.com\r\n\r\n");
}

TEST_F(ServerCodecTest, HostFieldServesWhenAuthorityIsAbsent) {
  start();
  int32_t id = client_->submit(
      {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"host", "h.example"}}, true);
  pump();
  EXPECT_EQ(handler_.streams[id].head, "GET / HTTP/1.1\r\nhost: h.example\r\n\r\n");
}

TEST_F(ServerCodecTest, PostWithContentLengthKeepsRawBody) {
  start();
  int32_t id =
      client_->submit(request_headers("POST", "/upload", {{"content-length", "11"}}), false);
  client_->send_body(id, "hello world", true);
  pump();
  const Recorded& r = handler_.streams[id];
  EXPECT_EQ(r.head, "POST /upload HTTP/1.1\r\nhost: example.com\r\ncontent-length: 11\r\n\r\n");
  EXPECT_FALSE(r.head_end_stream);
  EXPECT_EQ(r.body, "hello world");
  EXPECT_EQ(r.ended, 1);
}

TEST_F(ServerCodecTest, PostWithoutContentLengthIsChunked) {
  start();
  int32_t id = client_->submit(request_headers("POST", "/upload"), false);
  client_->send_body(id, "hello", false);
  pump();
  client_->send_body(id, " world", true);
  pump();
  const Recorded& r = handler_.streams[id];
  EXPECT_EQ(r.head,
            "POST /upload HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n\r\n");
  EXPECT_EQ(r.body, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  EXPECT_EQ(r.ended, 1);
}

TEST_F(ServerCodecTest, RequestTrailersGoToTheChunkedTrailerSection) {
  start();
  int32_t id = client_->submit(request_headers("POST", "/svc/Upload", {{"te", "trailers"}}), false);
  client_->send_body(id, "abc", true, {{"x-checksum", "900150983cd24fb0"}});
  pump();
  EXPECT_EQ(handler_.streams[id].body, "3\r\nabc\r\n0\r\nx-checksum: 900150983cd24fb0\r\n\r\n");
  EXPECT_EQ(handler_.streams[id].ended, 1);
}

TEST_F(ServerCodecTest, TrailersAfterContentLengthBodyAreDropped) {
  start();
  int32_t id = client_->submit(request_headers("POST", "/", {{"content-length", "3"}}), false);
  client_->send_body(id, "abc", true, {{"x-checksum", "1"}});
  pump();
  EXPECT_EQ(handler_.streams[id].body, "abc");
  EXPECT_EQ(handler_.streams[id].ended, 1);
}

TEST_F(ServerCodecTest, BigRequestBodyWaitsForConsume) {
  ServerSettings s;
  s.stream_window = 4096;
  start(s);
  handler_.auto_consume = false;
  std::string body(200000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  int32_t id =
      client_->submit(request_headers("PUT", "/blob", {{"content-length", "200000"}}), false);
  client_->send_body(id, body, true);
  pump();
  Recorded& r = handler_.streams[id];
  // Nothing consumed: the client stops at the stream window.
  EXPECT_EQ(r.body.size(), 4096u);
  int rounds = 0;
  std::size_t consumed = 0;
  while (r.ended == 0 && rounds < 1000) {
    ++rounds;
    server_->consume(id, r.body.size() - consumed);
    consumed = r.body.size();
    pump();
    EXPECT_LE(r.body.size() - consumed, 4096u);
  }
  EXPECT_EQ(r.body, body);
  EXPECT_GT(rounds, 40);
}

TEST_F(ServerCodecTest, ChunkedBodyCreditIncludesFramingAndPadding) {
  ServerSettings s;
  s.stream_window = 1000;
  H2Client::Options o;
  o.padding = 50;
  start(s, o);
  handler_.auto_consume = false;
  int32_t id = client_->submit(request_headers("POST", "/"), false);
  std::string body(50000, 'z');
  client_->send_body(id, body, true);
  pump();
  Recorded& r = handler_.streams[id];
  std::size_t consumed = 0;
  for (int i = 0; i < 2000 && r.ended == 0; ++i) {
    // Consume in odd-sized pieces: credit must add up exactly in the end.
    std::size_t n = std::min<std::size_t>(r.body.size() - consumed, 333);
    server_->consume(id, n);
    consumed += n;
    pump();
  }
  ASSERT_EQ(r.ended, 1);
  server_->consume(id, r.body.size() - consumed);
  std::string decoded = dechunk(r.body);
  EXPECT_EQ(decoded, body);
}

TEST_F(ServerCodecTest, UnconsumedBodyOfClosedStreamReturnsToConnectionWindow) {
  ServerSettings s;
  s.connection_window = 65535;
  start(s);
  handler_.auto_consume = false;
  // Each stream leaves 60000 bytes unconsumed and is reset: unless closing
  // credits them back, the second stream would stall at 5535 bytes.
  for (int i = 0; i < 3; ++i) {
    int32_t id =
        client_->submit(request_headers("POST", "/", {{"content-length", "60000"}}), false);
    client_->send_body(id, std::string(60000, 'x'), true);
    pump();
    ASSERT_EQ(handler_.streams[id].body.size(), 60000u) << "connection window leaked";
    server_->reset_stream(id, NGHTTP2_CANCEL);
    pump();
    EXPECT_EQ(handler_.streams[id].closed, 1);
  }
}

TEST_F(ServerCodecTest, FullyConsumedBodiesKeepTheConnectionWindowWhole) {
  ServerSettings s;
  s.connection_window = 65535;
  s.stream_window = 16384;
  start(s);
  for (int i = 0; i < 10; ++i) {
    int32_t id = client_->submit(request_headers("POST", "/"), false);
    client_->send_body(id, std::string(50000, 'y'), true);
    pump();
    ASSERT_EQ(handler_.streams[id].ended, 1) << "stream " << id;
    respond(id, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
  }
}

TEST_F(ServerCodecTest, InterleavedStreamsStaySeparate) {
  start();
  int32_t a = client_->submit(request_headers("POST", "/a"), false);
  int32_t b = client_->submit(request_headers("POST", "/b"), false);
  client_->send_body(a, "A1", false);
  client_->send_body(b, "B1", false);
  pump();
  client_->send_body(b, "B2", true);
  client_->send_body(a, "A2", true);
  pump();
  EXPECT_EQ(handler_.streams[a].body, "2\r\nA1\r\n2\r\nA2\r\n0\r\n\r\n");
  EXPECT_EQ(handler_.streams[b].body, "2\r\nB1\r\n2\r\nB2\r\n0\r\n\r\n");
  respond(b, "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb");
  respond(a, "HTTP/1.1 201 Created\r\ncontent-length: 1\r\n\r\na");
  EXPECT_EQ(client_->stream(a).status, 201);
  EXPECT_EQ(client_->stream(a).body, "a");
  EXPECT_EQ(client_->stream(b).body, "b");
}

// --- Local rejections -----------------------------------------------------

TEST_F(ServerCodecTest, ConnectIsRefusedWith405) {
  start();
  int32_t id = client_->submit({{":method", "CONNECT"}, {":authority", "db.internal:5432"}}, true);
  pump();
  EXPECT_TRUE(handler_.streams.empty());
  const ClientStream& c = client_->stream(id);
  EXPECT_EQ(c.status, 405);
  EXPECT_EQ(find_header(c.headers, "content-type"), "application/problem+json");
  EXPECT_EQ(c.body,
            "{\"type\":\"about:blank\",\"title\":\"Method Not Allowed\",\"status\":405,"
            "\"detail\":\"CONNECT is not supported\"}");
  EXPECT_EQ(find_header(c.headers, "content-length"), std::to_string(c.body.size()));
  EXPECT_TRUE(c.closed);
  EXPECT_EQ(server_->stream_count(), 0u);
}

TEST_F(ServerCodecTest, HostConflictingWithAuthorityIs400) {
  start();
  int32_t id = get("/", {{"host", "evil.example"}});
  pump();
  EXPECT_TRUE(handler_.streams.empty());
  EXPECT_EQ(client_->stream(id).status, 400);
  EXPECT_NE(client_->stream(id).body.find("host field does not match :authority"),
            std::string::npos);
}

TEST_F(ServerCodecTest, OversizeHeaderListGets431) {
  ServerSettings s;
  s.max_header_list_size = 4096;
  start(s);
  int32_t id = get("/", {{"x-big", std::string(5000, 'a')}});
  pump();
  EXPECT_TRUE(handler_.streams.empty());
  EXPECT_EQ(client_->stream(id).status, 431);
  EXPECT_TRUE(client_->stream(id).closed);
  // The connection stays usable.
  int32_t ok = get("/");
  pump();
  EXPECT_EQ(handler_.streams.count(ok), 1u);
}

TEST_F(ServerCodecTest, RejectedRequestBodyIsCreditedAndStreamReset) {
  ServerSettings s;
  s.max_header_list_size = 1024;
  start(s);
  int32_t id =
      client_->submit(request_headers("POST", "/", {{"x-big", std::string(2000, 'a')}}), false);
  client_->send_body(id, std::string(30000, 'x'), false);
  pump();
  EXPECT_EQ(client_->stream(id).status, 431);
  EXPECT_TRUE(client_->stream(id).closed);
  EXPECT_EQ(server_->stream_count(), 0u);
}

TEST_F(ServerCodecTest, MalformedRequestIsResetByNghttp2) {
  start({}, {}, false);
  // Uppercase names are malformed in HTTP/2 (RFC 9113 8.2.1); nghttp2's
  // client lowercases them, so this one is written by hand.
  std::string bytes = kPreface + frame(NGHTTP2_SETTINGS, 0, 0, "");
  bytes += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_END_HEADERS, 1,
                 hpack(request_headers("GET", "/", {{"X-Upper", "1"}})));
  EXPECT_TRUE(feed_raw(bytes));
  EXPECT_TRUE(handler_.streams.empty());
  EXPECT_EQ(error_in(all_down_, NGHTTP2_RST_STREAM), NGHTTP2_PROTOCOL_ERROR);
  EXPECT_EQ(server_->stream_count(), 0u);
}

TEST_F(ServerCodecTest, NonAsciiPathIs400) {
  start({}, {}, false);
  // nghttp2 lets bytes above 0x7f through; an HTTP/1.1 request-target may
  // not carry them unencoded (RFC 3986), so they stop here.
  std::string bytes = kPreface + frame(NGHTTP2_SETTINGS, 0, 0, "");
  bytes += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_END_HEADERS, 1,
                 hpack(request_headers("GET", "/caf\xc3\xa9")));
  EXPECT_TRUE(feed_raw(bytes));
  EXPECT_TRUE(handler_.streams.empty());
  EXPECT_NE(all_down_.find("invalid character in :path"), std::string::npos);
}

TEST_F(ServerCodecTest, PrefaceWithoutSettingsIsRefused) {
  start({}, {}, false);
  EXPECT_FALSE(feed_raw(kPreface + frame(NGHTTP2_PING, 0, 0, "12345678")));
  EXPECT_EQ(server_->close_reason(), "client is not speaking HTTP/2");
  EXPECT_EQ(goaway_in(all_down_), NGHTTP2_PROTOCOL_ERROR);
}

TEST_F(ServerCodecTest, TeOtherThanTrailersIsMalformed) {
  start();
  int32_t id = get("/", {{"te", "gzip"}});
  pump();
  EXPECT_TRUE(handler_.streams.empty());
  EXPECT_EQ(client_->stream(id).close_code, NGHTTP2_PROTOCOL_ERROR);
}

// --- Responses --------------------------------------------------------------

TEST_F(ServerCodecTest, ContentLengthResponse) {
  start();
  int32_t id = get("/");
  pump();
  respond(id,
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
          "X-Request-Id: abc\r\n\r\nhello");
  const ClientStream& c = client_->stream(id);
  EXPECT_EQ(c.status, 200);
  EXPECT_EQ(find_header(c.headers, "content-type"), "text/plain");
  EXPECT_EQ(find_header(c.headers, "content-length"), "5");
  EXPECT_EQ(find_header(c.headers, "x-request-id"), "abc");
  EXPECT_EQ(c.body, "hello");
  EXPECT_TRUE(c.closed);
  EXPECT_EQ(c.close_code, NGHTTP2_NO_ERROR);
  EXPECT_EQ(handler_.streams[id].closed, 1);
  EXPECT_EQ(handler_.streams[id].close_code, NGHTTP2_NO_ERROR);
  EXPECT_EQ(server_->stream_count(), 0u);
}

TEST_F(ServerCodecTest, ResponseArrivingByteByByte) {
  start();
  int32_t id = get("/");
  pump();
  std::string resp =
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n"
      "0\r\nx-t: 1\r\n\r\n";
  for (char ch : resp) {
    EXPECT_EQ(server_->send_response(id, std::string_view(&ch, 1)), 1u);
    pump();
  }
  EXPECT_EQ(client_->stream(id).body, "Wikipedia");
  EXPECT_EQ(find_header(client_->stream(id).trailers, "x-t"), "1");
  EXPECT_TRUE(client_->stream(id).closed);
}

TEST_F(ServerCodecTest, ChunkedResponseTrailersBecomeTrailingHeaders) {
  start();
  int32_t id =
      client_->submit(request_headers("POST", "/pkg.Svc/Call",
                                      {{"content-type", "application/grpc"}, {"te", "trailers"}}),
                      false);
  client_->send_body(id, std::string("\0\0\0\0\0", 5), true);
  pump();
  respond(id,
          "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n"
          "trailer: grpc-status\r\n\r\n7\r\n\0\0\0\0\2hi\r\n0\r\nGrpc-Status: 0\r\n"
          "grpc-message: fine\r\ncontent-length: 99\r\n\r\n"s);
  const ClientStream& c = client_->stream(id);
  EXPECT_EQ(c.status, 200);
  EXPECT_EQ(find_header(c.headers, "transfer-encoding"), "<none>");
  EXPECT_EQ(c.body, std::string("\0\0\0\0\2hi", 7));
  EXPECT_EQ(find_header(c.trailers, "grpc-status"), "0");
  EXPECT_EQ(find_header(c.trailers, "grpc-message"), "fine");
  EXPECT_EQ(find_header(c.trailers, "content-length"), "<none>");
  EXPECT_TRUE(c.closed);
  EXPECT_EQ(c.close_code, NGHTTP2_NO_ERROR);
}

TEST_F(ServerCodecTest, TrailersOnlyResponseIsOneHeadersFrame) {
  start();
  int32_t id = client_->submit(
      request_headers("POST", "/pkg.Svc/Call", {{"content-type", "application/grpc"}}), true);
  pump();
  respond(id,
          "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 12\r\n"
          "grpc-message: unimplemented\r\ncontent-length: 0\r\n\r\n");
  const ClientStream& c = client_->stream(id);
  EXPECT_TRUE(c.headers_ended_stream);
  EXPECT_EQ(c.data_frames, 0);
  EXPECT_EQ(find_header(c.headers, "grpc-status"), "12");
  EXPECT_TRUE(c.closed);
}

TEST_F(ServerCodecTest, CloseDelimitedResponseEndsAtEndResponse) {
  start();
  int32_t id = get("/");
  pump();
  respond(id, "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart one,");
  respond(id, " part two");
  EXPECT_FALSE(client_->stream(id).closed);
  server_->end_response(id);
  pump();
  EXPECT_EQ(client_->stream(id).body, "part one, part two");
  EXPECT_TRUE(client_->stream(id).closed);
  EXPECT_EQ(client_->stream(id).close_code, NGHTTP2_NO_ERROR);
}

TEST_F(ServerCodecTest, HeadResponseHasNoBody) {
  start();
  int32_t id = client_->submit(request_headers("HEAD", "/file"), true);
  pump();
  respond(id, "HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n");
  const ClientStream& c = client_->stream(id);
  EXPECT_EQ(find_header(c.headers, "content-length"), "1234");
  EXPECT_TRUE(c.headers_ended_stream);
  EXPECT_TRUE(c.body.empty());
  EXPECT_TRUE(c.closed);
}

TEST_F(ServerCodecTest, NoContentEndsWithHeaders) {
  start();
  int32_t id = client_->submit(request_headers("DELETE", "/x"), true);
  pump();
  respond(id, "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
  EXPECT_EQ(client_->stream(id).status, 204);
  EXPECT_TRUE(client_->stream(id).headers_ended_stream);
  EXPECT_EQ(find_header(client_->stream(id).headers, "content-length"), "<none>");
}

TEST_F(ServerCodecTest, NotModifiedEndsWithHeaders) {
  start();
  int32_t id = get("/", {{"if-none-match", "\"v1\""}});
  pump();
  respond(id, "HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\n\r\n");
  EXPECT_EQ(client_->stream(id).status, 304);
  EXPECT_TRUE(client_->stream(id).headers_ended_stream);
  EXPECT_TRUE(client_->stream(id).closed);
}

TEST_F(ServerCodecTest, InterimResponsesAreSkipped) {
  start();
  int32_t id = get("/");
  pump();
  respond(id,
          "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n"
          "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  EXPECT_EQ(client_->stream(id).status, 200);
  EXPECT_EQ(find_header(client_->stream(id).headers, "link"), "<none>");
  EXPECT_EQ(client_->stream(id).body, "ok");
}

TEST_F(ServerCodecTest, SwitchingProtocolsBecomes502) {
  start();
  int32_t id = get("/");
  pump();
  respond(id, "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n");
  EXPECT_EQ(client_->stream(id).status, 502);
  EXPECT_TRUE(client_->stream(id).closed);
  EXPECT_EQ(handler_.streams[id].closed, 1);
}

TEST_F(ServerCodecTest, MalformedResponseHeadBecomes502) {
  start();
  int32_t id = get("/");
  pump();
  respond(id, "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n");
  EXPECT_EQ(client_->stream(id).status, 502);
  EXPECT_NE(client_->stream(id).body.find("repeated Content-Length"), std::string::npos);
}

TEST_F(ServerCodecTest, HopByHopResponseFieldsAreDroppedAndNamesLowercased) {
  start();
  int32_t id = get("/");
  pump();
  respond(id,
          "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\n"
          "X-Secret: 1\r\nProxy-Connection: x\r\nUpgrade: h2c\r\nX-Kept: yes\r\n"
          "Content-Length: 0\r\n\r\n");
  const Headers& h = client_->stream(id).headers;
  EXPECT_EQ(find_header(h, "x-kept"), "yes");
  for (const char* gone : {"connection", "keep-alive", "x-secret", "proxy-connection", "upgrade"}) {
    EXPECT_EQ(find_header(h, gone), "<none>") << gone;
  }
  EXPECT_EQ(client_->stream(id).status, 200);
}

TEST_F(ServerCodecTest, ResponseBeforeRequestEndResetsWithNoError) {
  start();
  int32_t id = client_->submit(request_headers("POST", "/upload"), false);
  client_->send_body(id, "partial", false);
  pump();
  respond(id, "HTTP/1.1 413 Content Too Large\r\ncontent-length: 0\r\n\r\n");
  const ClientStream& c = client_->stream(id);
  EXPECT_EQ(c.status, 413);
  EXPECT_TRUE(c.closed);
  EXPECT_EQ(c.close_code, NGHTTP2_NO_ERROR);
  EXPECT_EQ(handler_.streams[id].closed, 1);
  EXPECT_EQ(server_->stream_count(), 0u);
}

TEST_F(ServerCodecTest, IncompleteResponseAtEndResponseResetsStream) {
  start();
  int32_t id = get("/");
  pump();
  respond(id, "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf");
  server_->end_response(id);
  pump();
  EXPECT_TRUE(client_->stream(id).closed);
  EXPECT_EQ(client_->stream(id).close_code, NGHTTP2_INTERNAL_ERROR);
  EXPECT_EQ(handler_.streams[id].closed, 1);
  EXPECT_EQ(handler_.streams[id].close_code, NGHTTP2_INTERNAL_ERROR);
}

TEST_F(ServerCodecTest, HandlerMayRespondFromInsideOnRequestHead) {
  start();
  handler_.on_head = [&](int32_t id) {
    server_->send_response(id, "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nnow");
  };
  int32_t id = get("/");
  pump();
  EXPECT_EQ(client_->stream(id).body, "now");
  EXPECT_EQ(handler_.streams[id].ended, 1);
  EXPECT_EQ(handler_.streams[id].closed, 1);
  EXPECT_EQ(handler_.streams[id].calls_after_close, 0);
}

// --- Response flow control ----------------------------------------------------

TEST_F(ServerCodecTest, SlowReaderGetsPartialAcceptanceAndWritableEvents) {
  ServerSettings s;
  s.max_stream_output = 8192;
  H2Client::Options o;
  o.initial_window = 1000;
  o.auto_window = false;
  start(s, o);
  int32_t id = get("/big");
  pump();
  std::string body(300000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7 % 251);
  std::string resp = "HTTP/1.1 200 OK\r\ncontent-length: 300000\r\n\r\n" + body;
  std::size_t sent = 0;
  auto offer = [&] { sent += server_->send_response(id, std::string_view(resp).substr(sent)); };
  handler_.on_writable = [&](int32_t) { offer(); };
  offer();
  EXPECT_LT(sent, resp.size());
  EXPECT_LE(sent, 8192u + 100u);
  pump();
  std::size_t read = 0;
  for (int i = 0; i < 5000 && !client_->stream(id).closed; ++i) {
    const ClientStream& c = client_->stream(id);
    // Never more in flight than the client's window allows.
    EXPECT_LE(c.body.size() - read, 1000u);
    client_->read(id, c.body.size() - read);
    read = c.body.size();
    pump();
  }
  EXPECT_EQ(client_->stream(id).body, body);
  EXPECT_GT(handler_.streams[id].writable, 10);
  EXPECT_EQ(handler_.streams[id].closed, 1);
}

TEST_F(ServerCodecTest, RandomPiecesAndWindowsKeepEveryByteInOrder) {
  ServerSettings s;
  s.stream_window = 3000;
  s.max_stream_output = 5000;
  H2Client::Options o;
  o.initial_window = 2500;
  o.auto_window = false;
  start(s, o);
  handler_.auto_consume = false;
  std::mt19937 rng(20240607);
  auto rnd = [&](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };
  constexpr int kStreams = 6;
  std::vector<int32_t> ids;
  std::vector<std::string> bodies, responses;
  for (int i = 0; i < kStreams; ++i) {
    std::string body(rnd(0, 40000), '\0');
    for (char& ch : body) ch = static_cast<char>(rnd(0, 255));
    int32_t id = client_->submit(request_headers("POST", "/r" + std::to_string(i)), false);
    client_->send_body(id, body, true);
    ids.push_back(id);
    bodies.push_back(body);
    std::string payload(rnd(0, 60000), '\0');
    for (char& ch : payload) ch = static_cast<char>(rnd(0, 255));
    responses.push_back(payload);
  }
  // Responses go out chunked in random pieces while requests are still arriving.
  std::vector<std::string> wire(kStreams);
  std::vector<std::size_t> offered(kStreams, 0), consumed(kStreams, 0), read(kStreams, 0);
  for (int i = 0; i < kStreams; ++i) {
    wire[i] = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
    for (std::size_t at = 0; at < responses[i].size();) {
      std::size_t n = std::min(rnd(1, 7000), responses[i].size() - at);
      append_chunk(wire[i], responses[i].substr(at, n));
      at += n;
    }
    wire[i] += "0\r\nx-n: " + std::to_string(i) + "\r\n\r\n";
  }
  for (int round = 0; round < 20000; ++round) {
    bool all_done = true;
    for (int i = 0; i < kStreams; ++i) {
      int32_t id = ids[i];
      Recorded& r = handler_.streams[id];
      std::size_t n = std::min(r.body.size() - consumed[i], rnd(0, 4000));
      server_->consume(id, n);
      consumed[i] += n;
      // Only once the pipeline exists: bytes for an unknown stream are dropped.
      if (!r.head.empty() && offered[i] < wire[i].size()) {
        std::size_t n = std::min(rnd(1, 3000), wire[i].size() - offered[i]);
        offered[i] += server_->send_response(id, std::string_view(wire[i]).substr(offered[i], n));
      }
      const ClientStream& c = client_->stream(id);
      std::size_t grant = std::min(c.body.size() - read[i], rnd(0, 3000));
      client_->read(id, grant);
      read[i] += grant;
      if (!c.closed) all_done = false;
    }
    pump();
    if (all_done) break;
  }
  for (int i = 0; i < kStreams; ++i) {
    const ClientStream& c = client_->stream(ids[i]);
    EXPECT_TRUE(c.closed) << i;
    EXPECT_EQ(c.close_code, NGHTTP2_NO_ERROR) << i;
    EXPECT_EQ(c.body, responses[i]) << i;
    EXPECT_EQ(find_header(c.trailers, "x-n"), std::to_string(i));
    const Recorded& r = handler_.streams[ids[i]];
    EXPECT_EQ(r.closed, 1);
    // The request may still have been arriving when the response ended (the
    // stream is then reset with NO_ERROR): what came must be a prefix.
    std::string got = dechunk(r.body);
    EXPECT_EQ(got, bodies[i].substr(0, got.size())) << i;
    if (r.ended == 1) {
      EXPECT_EQ(got, bodies[i]) << i;
    }
  }
  EXPECT_EQ(server_->stream_count(), 0u);
}

// --- Stream lifetime ------------------------------------------------------------

TEST_F(ServerCodecTest, ClientResetMidResponseClosesOnceAndLaterCallsAreHarmless) {
  start();
  int32_t id = get("/stream");
  pump();
  respond(id, "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\nfirst bytes");
  nghttp2_submit_rst_stream(client_->session(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  pump();
  Recorded& r = handler_.streams[id];
  EXPECT_EQ(r.closed, 1);
  EXPECT_EQ(r.close_code, NGHTTP2_CANCEL);
  EXPECT_EQ(server_->send_response(id, "more"), 4u);
  server_->consume(id, 100);
  server_->end_response(id);
  server_->reset_stream(id, NGHTTP2_INTERNAL_ERROR);
  pump();
  server_->close();
  EXPECT_EQ(r.closed, 1);
  EXPECT_EQ(r.calls_after_close, 0);
  EXPECT_EQ(server_->stream_count(), 0u);
}

TEST_F(ServerCodecTest, HandlerResetClosesStreamOnce) {
  start();
  int32_t id = client_->submit(request_headers("POST", "/"), false);
  client_->send_body(id, "abc", false);
  pump();
  server_->reset_stream(id, NGHTTP2_REFUSED_STREAM);
  client_->send_body(id, "more", true);
  pump();
  EXPECT_EQ(client_->stream(id).close_code, NGHTTP2_REFUSED_STREAM);
  EXPECT_EQ(handler_.streams[id].closed, 1);
  EXPECT_EQ(handler_.streams[id].close_code, NGHTTP2_REFUSED_STREAM);
  EXPECT_EQ(handler_.streams[id].calls_after_close, 0);
}

TEST_F(ServerCodecTest, CloseReportsEveryOpenStreamOnce) {
  start();
  int32_t a = get("/a");
  int32_t b = get("/b");
  pump();
  respond(a, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
  server_->close();
  EXPECT_EQ(handler_.streams[a].closed, 1);
  EXPECT_EQ(handler_.streams[b].closed, 1);
  EXPECT_EQ(handler_.streams[b].close_code, NGHTTP2_CANCEL);
  EXPECT_FALSE(server_->wants_read());
  EXPECT_FALSE(server_->wants_write());
  EXPECT_EQ(server_->send_response(b, "x"), 1u);
  const uint8_t byte = 0;
  EXPECT_FALSE(server_->receive(&byte, 1));
}

TEST_F(ServerCodecTest, ShutdownLetsOpenStreamsFinish) {
  start();
  int32_t id = get("/");
  pump();
  server_->shutdown();
  pump();
  EXPECT_TRUE(client_->goaway());
  EXPECT_EQ(client_->goaway_code(), NGHTTP2_NO_ERROR);
  EXPECT_TRUE(server_->wants_read());
  respond(id, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  EXPECT_EQ(client_->stream(id).body, "ok");
  EXPECT_FALSE(server_->wants_read());
  EXPECT_FALSE(server_->wants_write());
}

// --- Abuse --------------------------------------------------------------------

TEST_F(ServerCodecTest, GarbagePrefaceIsRefused) {
  start({}, {}, false);
  std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_FALSE(feed_raw(junk));
  EXPECT_EQ(server_->close_reason(), "not an HTTP/2 connection preface");
  EXPECT_FALSE(server_->wants_read());
}

TEST_F(ServerCodecTest, TooManyConcurrentStreamsAreRefused) {
  ServerSettings s;
  s.max_concurrent_streams = 5;
  H2Client::Options o;
  o.peer_max_concurrent = 100;
  start(s, o, false);
  std::vector<int32_t> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(client_->submit(request_headers("POST", "/"), false));
  pump();
  EXPECT_EQ(handler_.streams.size(), 5u);
  int refused = 0;
  for (int32_t id : ids) {
    if (client_->stream(id).closed && client_->stream(id).close_code == NGHTTP2_REFUSED_STREAM) {
      ++refused;
    }
  }
  EXPECT_EQ(refused, 3);
  EXPECT_TRUE(server_ok_);
}

TEST_F(ServerCodecTest, RapidResetFloodGetsGoaway) {
  ServerSettings s;
  s.max_resets_per_window = 50;
  start(s);
  std::string flood;
  for (int i = 0; i < 200; ++i) {
    int32_t id = get("/");
    flood += client_->drain();
    nghttp2_submit_rst_stream(client_->session(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    flood += client_->drain();
  }
  EXPECT_FALSE(feed_raw(flood));
  EXPECT_EQ(server_->close_reason(), "rapid reset");
  EXPECT_EQ(goaway_in(all_down_), NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_LE(handler_.streams.size(), 52u);
  server_->close();
  for (const auto& [id, r] : handler_.streams) {
    EXPECT_EQ(r.closed, 1) << id;
    EXPECT_EQ(r.calls_after_close, 0) << id;
  }
  EXPECT_FALSE(server_->wants_read());
  EXPECT_FALSE(server_->wants_write());
}

TEST_F(ServerCodecTest, ResetsBelowTheRateAreFine) {
  ServerSettings s;
  s.max_resets_per_window = 5;
  s.reset_window_ms = 1;
  start(s);
  for (int i = 0; i < 20; ++i) {
    int32_t id = get("/");
    pump();
    nghttp2_submit_rst_stream(client_->session(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    pump();
    // Coarse clock ticks are a few ms: make sure each reset lands in a new window.
    struct timespec ts = {0, 5'000'000};
    nanosleep(&ts, nullptr);
  }
  EXPECT_TRUE(server_ok_);
  EXPECT_TRUE(server_->close_reason().empty());
}

TEST_F(ServerCodecTest, ContinuationFloodGetsGoaway) {
  start({}, {}, false);
  std::string bytes = kPreface + frame(NGHTTP2_SETTINGS, 0, 0, "");
  bytes += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1, hpack(request_headers("GET", "/")));
  for (int i = 0; i < 50; ++i) {
    bytes += frame(NGHTTP2_CONTINUATION, 0, 1, hpack({{"x-pad", std::to_string(i)}}));
  }
  EXPECT_FALSE(feed_raw(bytes));
  EXPECT_EQ(server_->close_reason(), "CONTINUATION flood");
  EXPECT_EQ(goaway_in(all_down_), NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_TRUE(handler_.streams.empty());
}

TEST_F(ServerCodecTest, ContinuationLimitIsConfigurable) {
  ServerSettings s;
  s.max_continuations = 2;
  start(s, {}, false);
  std::string bytes = kPreface + frame(NGHTTP2_SETTINGS, 0, 0, "");
  bytes += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1, hpack(request_headers("GET", "/")));
  for (int i = 0; i < 3; ++i) bytes += frame(NGHTTP2_CONTINUATION, 0, 1, "");
  EXPECT_FALSE(feed_raw(bytes));
  EXPECT_EQ(server_->close_reason(), "CONTINUATION flood");
  EXPECT_EQ(goaway_in(all_down_), NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_F(ServerCodecTest, ContinuationsWithinTheLimitAreFine) {
  ServerSettings s;
  s.max_continuations = 2;
  start(s, {}, false);
  std::string block = hpack(request_headers("GET", "/cont", {{"x-a", "1"}}));
  std::string bytes = kPreface + frame(NGHTTP2_SETTINGS, 0, 0, "");
  bytes += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1, block.substr(0, 3));
  bytes += frame(NGHTTP2_CONTINUATION, 0, 1, block.substr(3, 3));
  bytes += frame(NGHTTP2_CONTINUATION, NGHTTP2_FLAG_END_HEADERS, 1, block.substr(6));
  EXPECT_TRUE(feed_raw(bytes));
  EXPECT_EQ(handler_.streams[1].head, "GET /cont HTTP/1.1\r\nhost: example.com\r\nx-a: 1\r\n\r\n");
}

TEST_F(ServerCodecTest, UnansweredPingFloodGetsGoaway) {
  start({}, {}, false);
  std::string bytes = kPreface + frame(NGHTTP2_SETTINGS, 0, 0, "");
  for (int i = 0; i < 500; ++i) bytes += frame(NGHTTP2_PING, 0, 0, "12345678");
  EXPECT_FALSE(feed_raw(bytes));
  EXPECT_EQ(goaway_in(all_down_), NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_F(ServerCodecTest, AnsweredPingFloodStillGetsGoaway) {
  ServerSettings s;
  s.max_control_frames_per_window = 300;
  start(s, {}, false);
  EXPECT_TRUE(feed_raw(kPreface + frame(NGHTTP2_SETTINGS, 0, 0, "")));
  bool ok = true;
  for (int i = 0; i < 40 && ok; ++i) {
    std::string bytes;
    for (int k = 0; k < 20; ++k) bytes += frame(NGHTTP2_PING, 0, 0, "12345678");
    ok = feed_raw(bytes);  // drains the PING ACKs each time
  }
  EXPECT_FALSE(ok);
  EXPECT_EQ(server_->close_reason(), "control frame flood");
  EXPECT_EQ(goaway_in(all_down_), NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_F(ServerCodecTest, ProtocolErrorEndsConnection) {
  start({}, {}, false);
  // A DATA frame on stream 0 is a connection error (RFC 9113 6.1).
  std::string bytes = kPreface + frame(NGHTTP2_SETTINGS, 0, 0, "") + frame(NGHTTP2_DATA, 0, 0, "x");
  feed_raw(bytes);
  EXPECT_EQ(goaway_in(all_down_), NGHTTP2_PROTOCOL_ERROR);
  EXPECT_FALSE(server_->wants_read());
  EXPECT_FALSE(server_->wants_write());
}

}  // namespace
}  // namespace gatehouse::http2
