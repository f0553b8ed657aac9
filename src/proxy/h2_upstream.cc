#include "proxy/h2_upstream.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <cstring>

#include "core/clock.h"
#include "proxy/snapshot.h"
#include "proxy/stream_pipe.h"
#include "proxy/worker.h"

namespace gatehouse::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::size_t kReadBuffer = 16384;
constexpr std::size_t kWriteChunk = 65536;
constexpr uint32_t kNoError = 0;
constexpr uint32_t kCancel = 8;

http2::ClientSettings client_settings(const CompiledUpstream& u) {
  http2::ClientSettings s;
  s.scheme = u.tls ? "https" : "http";
  return s;
}

}  // namespace

// One exchange: the session writes its HTTP/1.1 request here and reads the
// HTTP/1.1 response the codec rebuilds from the stream's frames.
class H2Upstream::StreamPipe final : public StreamPipeBase,
                                     public http2::ClientCodec::StreamHandler {
 public:
  explicit StreamPipe(H2Upstream& conn) : StreamPipeBase(conn.worker_.io()), conn_(conn) {}
  void set_id(int32_t id) { id_ = id; }
  int32_t id() const { return id_; }
  bool released() const { return released_; }
  bool closed() const { return closed_; }

  // --- codec events ---
  void on_response_bytes(int32_t, std::string_view bytes) override { deliver_input(bytes); }
  void on_response_end(int32_t) override {
    response_end_ = true;
    wake();
  }
  void on_stream_writable(int32_t) override { wake(); }
  void on_stream_closed(int32_t, uint32_t h2_error, bool) override {
    closed_ = true;
    error_ = h2_error;
    conn_.sweep_needed_ = true;  // freed after the codec call returns, never inside it
    wake();
  }

  // --- the session side (reads and writes are StreamPipeBase's) ---
  void close() override {
    released_ = true;
    // An exchange given up before its end is reset (a complete response
    // with a request still open too: RST_STREAM NO_ERROR, RFC 9113 8.1).
    if (!closed_) conn_.codec_.reset_stream(id_, response_end_ ? kNoError : kCancel);
    conn_.kick();
    conn_.pipe_released(this);
  }

 private:
  void consumed(std::size_t n) override {
    if (!closed_) {
      conn_.codec_.consume(id_, n);
      conn_.kick();
    }
  }
  error_code input_end() const override {
    if (response_end_ || (closed_ && error_ == kNoError)) return asio::error::eof;
    if (closed_) return asio::error::connection_reset;
    return {};
  }
  bool output_closed() const override { return closed_; }
  std::size_t send(std::string_view bytes) override {
    return conn_.codec_.send_request(id_, bytes);
  }
  void kick() override { conn_.kick(); }

  H2Upstream& conn_;
  int32_t id_ = 0;
  uint32_t error_ = 0;
  bool response_end_ = false;
  bool closed_ = false;
  bool released_ = false;
};

H2Upstream::H2Upstream(Worker& worker, const CompiledUpstream& u, const CompiledTarget& t)
    : worker_(worker),
      upstream_(u),
      target_(t),
      stream_(Socket(worker.io())),
      codec_(client_settings(u)),
      write_signal_(worker.io()),
      ready_signal_(worker.io()),
      connect_timer_(worker.io()),
      rbuf_(new char[kReadBuffer]) {
  write_signal_.expires_at(asio::steady_timer::time_point::max());
  ready_signal_.expires_at(asio::steady_timer::time_point::max());
  idle_since_ms_ = core::coarse_ms();
}

H2Upstream::~H2Upstream() = default;

std::shared_ptr<H2Upstream> H2Upstream::connect(Worker& worker, const CompiledUpstream& u,
                                                const CompiledTarget& t) {
  std::shared_ptr<H2Upstream> c(new H2Upstream(worker, u, t));
  asio::co_spawn(worker.io(), run(c), asio::detached);
  return c;
}

Task<bool> H2Upstream::wait_ready() {
  while (!ready_ && !dead_) {
    error_code ec;
    co_await ready_signal_.async_wait(await_ec(ec));
  }
  co_return ready_ && !dead_;
}

Pipe* H2Upstream::open_stream() {
  if (!can_open()) return nullptr;
  auto pipe = std::make_unique<StreamPipe>(*this);
  int32_t id = codec_.open_stream(*pipe);
  if (id <= 0) return nullptr;
  pipe->set_id(id);
  StreamPipe* p = pipe.get();
  pipes_[id] = std::move(pipe);
  return p;
}

Task<bool> H2Upstream::establish() {
  error_code ec;
  connect_timer_.expires_after(std::chrono::milliseconds(upstream_.connect_timeout_ms));
  connect_timer_.async_wait([self = shared_from_this()](const error_code& e) {
    if (e || self->ready_) return;
    self->connect_timed_out_ = true;
    self->stream_.cancel();
  });
  co_await stream_.socket().async_connect(target_.endpoint, await_ec(ec));
  bool ok = !ec && !connect_timed_out_;
  if (ok) {
    stream_.socket().set_option(tcp::no_delay(true), ec);
    stream_.socket().non_blocking(true, ec);
    if (upstream_.tls) {
      SSL* ssl = upstream_.tls->new_connection(
          stream_.socket().native_handle(),
          upstream_.tls_server_name.empty() ? target_.host : upstream_.tls_server_name);
      ok = ssl != nullptr;
      if (ok) {
        stream_.attach(ssl);
        ok = co_await stream_.handshake(ec) && !connect_timed_out_;
      }
    }
  }
  connect_timer_.cancel();
  co_return ok;
}

Task<void> H2Upstream::run(std::shared_ptr<H2Upstream> self) {
  H2Upstream& c = *self;
  bool ok = co_await c.establish();
  if (!ok) {
    c.dead_ = true;
    c.worker_.metrics_mut().count_connect_error(
        static_cast<std::size_t>(&c.upstream_ - c.worker_.snapshot().upstreams.data()));
    c.ready_signal_.cancel();
    c.codec_.close();
    c.stream_.close();
    co_return;
  }
  c.ready_ = true;
  c.ready_signal_.cancel();
  asio::co_spawn(c.worker_.io(), c.write_loop(), asio::detached);
  co_await c.read_loop();
  c.dead_ = true;
  c.writer_stop_ = true;
  c.kick();
  while (!c.writer_done_) {
    error_code ec;
    co_await c.ready_signal_.async_wait(await_ec(ec));
  }
  c.codec_.close();
  c.sweep();
  c.stream_.close();
}

Task<void> H2Upstream::read_loop() {
  while (true) {
    error_code ec;
    std::size_t n = co_await stream_.read_some(asio::buffer(rbuf_.get(), kReadBuffer), ec);
    if (ec || n == 0) break;
    bool ok = codec_.receive(reinterpret_cast<const uint8_t*>(rbuf_.get()), n);
    kick();
    sweep();
    if (!ok || (!codec_.wants_read() && !codec_.wants_write())) break;
  }
}

Task<void> H2Upstream::write_loop() {
  while (true) {
    out_.clear();
    codec_.take_output(out_, kWriteChunk);
    sweep();
    if (!out_.empty()) {
      error_code ec;
      co_await stream_.write(asio::buffer(out_), ec);
      if (ec) break;
      continue;
    }
    if (writer_stop_) break;
    if (codec_.draining() && pipes_.empty()) break;  // GOAWAY and nothing left: done
    error_code ec;
    co_await write_signal_.async_wait(await_ec(ec));
  }
  writer_done_ = true;
  if (!dead_) stream_.cancel();  // the reader stops too
  ready_signal_.cancel();
}

void H2Upstream::kick() { write_signal_.cancel(); }

// Pipes whose stream ended and whose session let go are freed here, outside
// any codec call (the codec may still hold the handler during one).
void H2Upstream::sweep() {
  if (!sweep_needed_) return;
  sweep_needed_ = false;
  for (auto it = pipes_.begin(); it != pipes_.end();) {
    if (it->second->closed() && it->second->released()) {
      it = pipes_.erase(it);
    } else {
      ++it;
    }
  }
  if (pipes_.empty()) idle_since_ms_ = core::coarse_ms();
}

void H2Upstream::pipe_released(StreamPipe* p) {
  if (p->closed()) sweep_needed_ = true;
  kick();  // the writer sweeps
}

void H2Upstream::shutdown() {
  codec_.shutdown();
  kick();
}

void H2Upstream::abort() {
  dead_ = true;
  stream_.cancel();
  error_code ec;
  stream_.socket().close(ec);
  ready_signal_.cancel();
}

}  // namespace gatehouse::proxy
