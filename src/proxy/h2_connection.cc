#include "proxy/h2_connection.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <cstring>

#include "core/clock.h"
#include "proxy/session.h"
#include "proxy/stream_pipe.h"
#include "proxy/worker.h"

namespace gatehouse::proxy {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::size_t kReadBuffer = 16384;
constexpr std::size_t kWriteChunk = 65536;

http2::ServerSettings codec_settings(const Snapshot& snap) {
  http2::ServerSettings s;
  s.max_header_list_size =
      static_cast<uint32_t>(std::min<uint64_t>(snap.config.limits.max_header_bytes, 1 << 20));
  return s;
}

}  // namespace

// The pipe between one stream and the Session serving it. Reads return the
// request bytes the codec delivered (and credit them back to the client's
// flow-control window); writes hand response bytes to the codec, waiting
// while its per-stream buffer is full (a client that does not read holds
// at most ServerSettings::max_stream_output per stream).
class H2Connection::StreamPipe final : public StreamPipeBase {
 public:
  StreamPipe(H2Connection& conn, int32_t id)
      : StreamPipeBase(conn.worker_.io()), conn_(conn), id_(id) {}

  // --- the codec side ---
  void deliver(std::string_view bytes, bool body) {
    if (!body) uncounted_ += bytes.size();
    deliver_input(bytes);
  }
  void finish_input() {
    in_eof_ = true;
    wake();
  }
  void stream_closed() {
    stream_closed_ = true;
    wake();
  }
  bool session_closed() const { return session_closed_; }
  bool is_stream_closed() const { return stream_closed_; }

  // --- the Session side (Pipe; reads and writes are StreamPipeBase's) ---
  void close() override {
    session_closed_ = true;
    if (!stream_closed_) conn_.codec_.end_response(id_);
    conn_.kick();
    conn_.pipe_released(this);  // may destroy this
  }

  int32_t id() const { return id_; }

 private:
  void consumed(std::size_t n) override {
    std::size_t head = std::min(uncounted_, n);  // head bytes are not flow-controlled
    uncounted_ -= head;
    n -= head;
    if (n > 0 && !stream_closed_) {
      conn_.codec_.consume(id_, n);
      conn_.kick();
    }
  }
  error_code input_end() const override {
    if (in_eof_) return asio::error::eof;
    if (stream_closed_) return asio::error::connection_reset;
    return {};
  }
  bool output_closed() const override { return stream_closed_; }
  std::size_t send(std::string_view bytes) override {
    return conn_.codec_.send_response(id_, bytes);
  }
  void kick() override { conn_.kick(); }

  H2Connection& conn_;
  int32_t id_;
  std::size_t uncounted_ = 0;  // head bytes: not flow-controlled
  bool in_eof_ = false;
  bool stream_closed_ = false;
  bool session_closed_ = false;
};

H2Connection::H2Connection(Worker& worker, Stream stream, PeerInfo peer, uint64_t ip_key)
    : worker_(worker),
      stream_(std::move(stream)),
      peer_(std::move(peer)),
      ip_key_(ip_key),
      codec_(*this, codec_settings(worker.snapshot())),
      write_signal_(worker.io()),
      done_signal_(worker.io()),
      rbuf_(new char[kReadBuffer]) {
  write_signal_.expires_at(asio::steady_timer::time_point::max());
  done_signal_.expires_at(asio::steady_timer::time_point::max());
  last_active_ms_ = core::coarse_ms();
  worker_.add_h2(this);
  worker_.metrics_mut().open_connections().add();
}

H2Connection::~H2Connection() {
  if (ip_key_ != 0) worker_.snapshot().connections_per_ip->release(ip_key_);
  worker_.metrics_mut().open_connections().sub();
  worker_.remove_h2(this);
}

void H2Connection::start(Worker& worker, Stream stream, PeerInfo peer, uint64_t ip_key,
                         std::string initial) {
  std::unique_ptr<H2Connection> c(
      new H2Connection(worker, std::move(stream), std::move(peer), ip_key));
  asio::co_spawn(worker.io(), run(std::move(c), std::move(initial)), asio::detached);
}

Task<void> H2Connection::run(std::unique_ptr<H2Connection> self, std::string initial) {
  H2Connection& c = *self;
  asio::co_spawn(c.worker_.io(), c.write_loop(), asio::detached);
  co_await c.read_loop(std::move(initial));
  // Reading is over: let the writer flush what is queued (a GOAWAY), then
  // end every open stream and wait for their sessions to let go of their
  // pipes before the connection (which they point into) goes away.
  c.reading_done_ = true;
  c.writer_stop_ = true;
  c.kick();
  while (!c.writer_done_) {
    error_code ec;
    co_await c.done_signal_.async_wait(await_ec(ec));
  }
  c.codec_.close();
  for (auto& [id, pipe] : c.pipes_) pipe->stream_closed();
  while (c.live_ > 0) {
    error_code ec;
    co_await c.done_signal_.async_wait(await_ec(ec));
  }
  c.stream_.close();
}

Task<void> H2Connection::read_loop(std::string initial) {
  if (!initial.empty()) {
    if (!codec_.receive(reinterpret_cast<const uint8_t*>(initial.data()), initial.size())) {
      co_return;
    }
    kick();
  }
  while (!draining_ || !pipes_.empty()) {
    error_code ec;
    std::size_t n = co_await stream_.read_some(asio::buffer(rbuf_.get(), kReadBuffer), ec);
    if (ec || n == 0) break;
    last_active_ms_ = core::coarse_ms();
    bool ok = codec_.receive(reinterpret_cast<const uint8_t*>(rbuf_.get()), n);
    kick();
    if (!ok || (!codec_.wants_read() && !codec_.wants_write())) break;
  }
}

Task<void> H2Connection::write_loop() {
  while (true) {
    out_.clear();
    codec_.take_output(out_, kWriteChunk);
    if (!out_.empty()) {
      error_code ec;
      co_await stream_.write(asio::buffer(out_), ec);
      if (ec) break;
      last_active_ms_ = core::coarse_ms();
      continue;
    }
    maybe_finish();
    if (writer_stop_) break;
    error_code ec;
    co_await write_signal_.async_wait(await_ec(ec));
  }
  writer_done_ = true;
  if (!reading_done_) stream_.cancel();  // a write failed: stop reading too
  wake_done();
}

void H2Connection::kick() { write_signal_.cancel(); }
void H2Connection::wake_done() { done_signal_.cancel(); }

// A graceful close (drain, idle) is over once no stream is left and the
// GOAWAY went out: stop reading.
void H2Connection::maybe_finish() {
  if (reading_done_) return;
  if ((draining_ && pipes_.empty()) || (!codec_.wants_read() && !codec_.wants_write())) {
    stream_.cancel();
  }
}

H2Connection::StreamPipe* H2Connection::find(int32_t stream) {
  auto it = pipes_.find(stream);
  return it == pipes_.end() ? nullptr : it->second.get();
}

void H2Connection::pipe_released(StreamPipe* pipe) {
  --live_;
  if (pipe->is_stream_closed()) pipes_.erase(pipe->id());
  wake_done();
  maybe_finish();
}

void H2Connection::on_request_head(int32_t stream, std::string_view http1_head, bool end_stream) {
  auto pipe = std::make_unique<StreamPipe>(*this, stream);
  // One request per pipeline: it ends the stream after its response.
  std::string_view fields = http1_head.substr(0, http1_head.size() - 2);
  pipe->deliver(fields, false);
  pipe->deliver("connection: close\r\n\r\n", false);
  if (end_stream) pipe->finish_input();
  StreamPipe* p = pipe.get();
  pipes_[stream] = std::move(pipe);
  ++live_;
  auto session = std::make_unique<Session>(worker_, Stream(Socket(worker_.io()), p));
  session->serve_stream(peer_);
  worker_.spawn_session(std::move(session));
}

void H2Connection::on_request_body(int32_t stream, std::string_view http1_bytes) {
  StreamPipe* p = find(stream);
  if (p == nullptr || p->session_closed()) {
    // Answered already (a refusal before the body): keep the window open.
    codec_.consume(stream, http1_bytes.size());
    return;
  }
  p->deliver(http1_bytes, true);
}

void H2Connection::on_request_end(int32_t stream) {
  if (StreamPipe* p = find(stream)) p->finish_input();
}

void H2Connection::on_stream_writable(int32_t stream) {
  if (StreamPipe* p = find(stream)) p->wake();
}

void H2Connection::on_stream_closed(int32_t stream, uint32_t) {
  auto it = pipes_.find(stream);
  if (it == pipes_.end()) return;
  if (it->second->session_closed()) {
    pipes_.erase(it);
    maybe_finish();
    return;
  }
  it->second->stream_closed();
}

void H2Connection::check_deadline(int64_t now_ms) {
  if (reading_done_ || !pipes_.empty()) return;
  if (now_ms - last_active_ms_ >= worker_.snapshot().config.limits.idle_timeout.count()) {
    close_if_idle();
    stream_.cancel();
  }
}

void H2Connection::close_if_idle() {
  if (draining_) return;
  draining_ = true;
  codec_.shutdown();
  kick();
}

void H2Connection::abort() {
  draining_ = true;
  stream_.cancel();
  error_code ec;
  stream_.socket().close(ec);
}

}  // namespace gatehouse::proxy
