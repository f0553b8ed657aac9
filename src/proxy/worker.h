// A worker: one thread, one io_context, its own SO_REUSEPORT listener, its
// connections, upstream pools, balancers, metrics and access-log buffer.
// Nothing in here is touched by another thread except through post().
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/buffer_pool.h"
#include "core/clock.h"
#include "core/intrusive_list.h"
#include "core/request_id.h"
#include "observability/access_log.h"
#include "observability/metrics.h"
#include "proxy/balancer.h"
#include "proxy/exchange.h"
#include "proxy/snapshot.h"
#include "proxy/stream.h"
#include "proxy/task.h"
#include "ratelimit/redis_client.h"
#include "tls/server_context.h"

namespace gatehouse::proxy {

class Session;
class H2Connection;
class H2Upstream;

// One of the config's listeners, as this worker accepts on it (each worker
// binds its own SO_REUSEPORT socket per listener).
struct WorkerListener {
  explicit WorkerListener(boost::asio::io_context& io) : acceptor(io) {}
  Acceptor acceptor;
  std::size_t index = 0;
  std::shared_ptr<const tls::ServerContext> tls;  // null: plain
};

// A connection to an upstream target, idle in a pool or lent to a session.
struct UpstreamConnection {
  explicit UpstreamConnection(boost::asio::io_context& io) : stream(Socket(io)) {}
  // One stream of a multiplexed HTTP/2 connection, which `owner` keeps alive.
  UpstreamConnection(boost::asio::io_context& io, Pipe* pipe, std::shared_ptr<void> owner)
      : owner(std::move(owner)), stream(Socket(io), pipe) {}
  std::shared_ptr<void> owner;  // declared first: outlives `stream`
  Stream stream;                // TLS on top when the upstream has `tls`; a Pipe for HTTP/2
  int64_t idle_since_ms = 0;
  uint64_t requests = 0;
};

struct TargetState {
  int64_t avoid_until_ms = 0;                             // connect refused: not chosen before this
  std::vector<std::unique_ptr<UpstreamConnection>> idle;  // LIFO: warmest first
  std::vector<std::shared_ptr<H2Upstream>> h2;            // protocol h2c/h2: multiplexed
};

struct UpstreamState {
  std::unique_ptr<Balancer> balancer;
  std::vector<TargetState> targets;
  Excluded excluded;  // scratch for one pick, reused to avoid allocation
};

class Worker {
 public:
  Worker(unsigned id, std::shared_ptr<const Snapshot> snapshot, observability::AccessLogWriter& log,
         uint64_t id_prefix);
  ~Worker();

  // Binds the SO_REUSEPORT listener; throws on failure (startup only).
  void listen();
  // Runs the event loop on the calling thread until stop().
  void run();
  // Thread-safe: stop accepting, close idle connections, let busy ones finish
  // (acted on at the next tick, within 100 ms).
  void begin_drain();
  // Thread-safe: close everything; run() then returns (at the next tick).
  void stop();

  // Number of open client connections (read from any thread).
  long open_connections() const { return metrics_->open_connections().get(); }
  const observability::WorkerMetrics& metrics() const { return *metrics_; }

  // --- used by sessions, on this worker's thread only ---
  boost::asio::io_context& io() { return io_; }
  const Snapshot& snapshot() const { return *snapshot_; }
  observability::WorkerMetrics& metrics_mut() { return *metrics_; }
  core::WallClock& clock() { return clock_; }
  unsigned id() const { return id_; }
  ratelimit::RedisClient* redis() { return redis_.get(); }
  uint64_t connections_refused() const { return connections_refused_.get(); }
  core::RequestIdGenerator& request_ids() { return request_ids_; }
  core::BufferPool& small_buffers() { return small_buffers_; }
  core::BufferPool& large_buffers() { return large_buffers_; }
  ExchangePool& exchanges() { return exchanges_; }
  UpstreamState& upstream(int index) { return upstreams_[static_cast<std::size_t>(index)]; }
  std::string& log_buffer() { return log_buffer_; }
  bool log_enabled() const { return log_.enabled(); }
  bool draining() const { return draining_; }
  // Starts (or resumes, after parking) a session's coroutine.
  // Runs a session's coroutine: spawn_session through the scheduler's queue
  // (from code a session could re-enter, such as nghttp2's callbacks),
  // start_session at once (from a completion handler or the accept loop).
  void spawn_session(std::unique_ptr<Session> session);
  void start_session(std::unique_ptr<Session> session);
  void add_session(Session* s);
  void remove_session(Session* s);
  void add_h2(H2Connection* c);
  void remove_h2(H2Connection* c);
  // An HTTP/2 connection to the target that can take a stream (or is still
  // connecting), opening one when none can.
  std::shared_ptr<H2Upstream> h2_upstream(int upstream, int target);
  // Gives an upstream connection back to its target's idle pool.
  void park_upstream(int upstream, int target, std::unique_ptr<UpstreamConnection> c);
  // A session gave its read buffer back because its client went idle.
  void note_parked() { ++parked_since_trim_; }

 private:
  void start_accepting(WorkerListener& l);
  void on_accept(WorkerListener& l, const boost::system::error_code& ec, Socket socket);
  void close_acceptors();
  void schedule_tick();
  void on_tick();
  void close_idle_sessions();
  void release_idle_memory(int64_t now_ms);
  void drain();
  void shut_down();

  unsigned id_;
  boost::asio::io_context io_;
  std::shared_ptr<const Snapshot> snapshot_;
  observability::AccessLogWriter& log_;
  std::unique_ptr<observability::WorkerMetrics> metrics_;
  std::vector<std::unique_ptr<WorkerListener>> listeners_;
  uint64_t tls_generation_ = 0;
  boost::asio::steady_timer tick_timer_;
  core::WallClock clock_;
  core::RequestIdGenerator request_ids_;
  core::BufferPool small_buffers_;
  core::BufferPool large_buffers_;
  ExchangePool exchanges_;
  std::vector<UpstreamState> upstreams_;
  core::IntrusiveList<Session> sessions_;
  core::IntrusiveList<H2Connection> h2_connections_;
  std::string log_buffer_;
  bool draining_ = false;
  bool stopped_ = false;
  std::atomic<bool> drain_requested_{false};
  std::atomic<bool> stop_requested_{false};
  std::size_t parked_since_trim_ = 0;
  int64_t last_trim_ms_ = 0;
  observability::Counter connections_refused_;
  // Declared after io_: destroyed before the context its socket lives on.
  std::unique_ptr<ratelimit::RedisClient> redis_;
};

}  // namespace gatehouse::proxy
