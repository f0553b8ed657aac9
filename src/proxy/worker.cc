#include "proxy/worker.h"

#include <malloc.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/version.hpp>

#include "proxy/h2_connection.h"
#include "proxy/h2_upstream.h"
#include "proxy/session.h"
#include "tls/memory.h"

namespace gatehouse::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// Timeouts are checked by one coarse tick per worker instead of a timer per
// request: arming an Asio timer per request re-programs the timerfd (a
// system call) whenever the earliest deadline changes.
constexpr auto kTickInterval = std::chrono::milliseconds(100);
constexpr int64_t kUpstreamIdleMs = 60000;
constexpr std::size_t kMaxIdlePerTarget = 256;
constexpr std::size_t kTrimAfterParked = 32;
constexpr std::size_t kKeepFree = 64;

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

Task<void> run_session(std::unique_ptr<Session> session) {
  try {
    co_await session->run();
  } catch (...) {
    // Dropped, as asio::co_spawn(..., detached) drops it: the session is
    // destroyed with the frame, which closes its sockets.
    co_return;
  }
  if (session->awaiting_request()) Session::await_request(std::move(session));
}

}  // namespace

Worker::Worker(unsigned id, std::shared_ptr<const Snapshot> snapshot,
               observability::AccessLogWriter& log, uint64_t id_prefix)
    : id_(id),
      // Only this worker's thread ever touches this context (drain and stop
      // arrive as flags read by the tick), so Asio can skip all its locks:
      // the scheduler mutex was ~3% of user time per request (perf).
      io_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE),
      snapshot_(std::move(snapshot)),
      log_(log),
      metrics_(std::make_unique<observability::WorkerMetrics>(snapshot_->routes.size(),
                                                              snapshot_->upstreams.size())),
      tick_timer_(io_),
      request_ids_(id_prefix, id),
      small_buffers_(std::max<std::size_t>(
                         16384, round_up(snapshot_->config.limits.max_header_bytes + 4096, 4096)),
                     1024),
      large_buffers_(262144, 16) {
  if (snapshot_->redis) redis_ = std::make_unique<ratelimit::RedisClient>(io_, *snapshot_->redis);
  uint64_t seed = id_prefix ^ (uint64_t{id} * 0x9E3779B97F4A7C15ull);
  for (const CompiledUpstream& u : snapshot_->upstreams) {
    UpstreamState s;
    std::vector<uint32_t> weights;
    std::vector<uint64_t> ids;
    for (const CompiledTarget& t : u.targets) {
      weights.push_back(t.weight);
      ids.push_back(hash_key(t.address.data(), t.address.size()));
    }
    s.balancer = make_balancer(u.balance, weights, seed++, ids);
    s.targets.resize(u.targets.size());
    s.excluded.assign(u.targets.size(), false);
    upstreams_.push_back(std::move(s));
  }
  log_buffer_.reserve(64 * 1024);
}

Worker::~Worker() = default;

void Worker::listen() {
  tls_generation_ = snapshot_->listener_tls->generation();
  for (std::size_t i = 0; i < snapshot_->config.listeners.size(); ++i) {
    const config::Address& a = snapshot_->config.listeners[i].address;
    auto l = std::make_unique<WorkerListener>(io_);
    l->index = i;
    l->tls = snapshot_->listener_tls->get(i);
    tcp::endpoint ep(asio::ip::make_address(a.host), a.port);
    l->acceptor.open(ep.protocol());
    l->acceptor.set_option(asio::socket_base::reuse_address(true));
    int one = 1;
    setsockopt(l->acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    l->acceptor.bind(ep);
    l->acceptor.listen(4096);
    listeners_.push_back(std::move(l));
  }
}

void Worker::close_acceptors() {
  boost::system::error_code ec;
  for (auto& l : listeners_) l->acceptor.close(ec);
}

void Worker::run() {
  for (auto& l : listeners_) start_accepting(*l);
  schedule_tick();
  io_.run();
  log_.submit(log_buffer_);
  tls::release_thread_cache();
}

static uint64_t address_key(const asio::ip::address& address) {
  asio::ip::address a = address;
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  if (a.is_v4()) return hash_key("4", 1) ^ (uint64_t{a.to_v4().to_uint()} * 0x9E3779B97F4A7C15ull);
  auto b = a.to_v6().to_bytes();
  return hash_key(reinterpret_cast<const char*>(b.data()), b.size());
}

void Worker::start_accepting(WorkerListener& l) {
  l.acceptor.async_accept([this, &l](const boost::system::error_code& ec, Socket socket) {
    on_accept(l, ec, std::move(socket));
  });
}

void Worker::on_accept(WorkerListener& l, const boost::system::error_code& ec, Socket socket) {
  if (ec == asio::error::operation_aborted || !l.acceptor.is_open()) return;
  if (!ec && !draining_) {
    uint64_t ip_key = 0;
    if (snapshot_->connections_per_ip) {
      // Refused before a byte is read: the limit exists for floods.
      boost::system::error_code ep_ec;
      auto ep = socket.remote_endpoint(ep_ec);
      ip_key = ep_ec ? 0 : address_key(ep.address());
      if (ip_key != 0 && !snapshot_->connections_per_ip->acquire(
                             ip_key, snapshot_->config.limits.max_connections_per_ip)) {
        connections_refused_.add();
        boost::system::error_code ignored;
        socket.close(ignored);
        ip_key = 0;
        start_accepting(l);
        return;
      }
    }
    auto session = std::make_unique<Session>(*this, std::move(socket), l.tls);
    session->hold_connection_slot(ip_key);
    start_session(std::move(session));
  }
  start_accepting(l);
}

void Worker::schedule_tick() {
  tick_timer_.expires_after(kTickInterval);
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    // A tick already queued when stop() cancelled the timer still runs with
    // success; it must not re-arm, or the loop never runs out of work.
    if (ec || stopped_) return;
    on_tick();
    schedule_tick();
  });
}

void Worker::on_tick() {
  // Other threads never touch this worker's io_context (it runs without
  // locks); they raise these flags and the tick acts on them.
  if (stop_requested_.load(std::memory_order_acquire)) {
    shut_down();
    return;
  }
  if (!draining_ && drain_requested_.load(std::memory_order_acquire)) drain();
  if (uint64_t g = snapshot_->listener_tls->generation(); g != tls_generation_) {
    tls_generation_ = g;  // certificates reloaded (SIGHUP): new connections use them
    for (auto& l : listeners_) l->tls = snapshot_->listener_tls->get(l->index);
  }
  int64_t now = core::coarse_ms();
  for (Session* s = sessions_.front(); s != nullptr;) {
    Session* next = core::IntrusiveList<Session>::next(s);
    s->check_deadline(now);
    s = next;
  }
  for (H2Connection* c = h2_connections_.front(); c != nullptr;) {
    H2Connection* next = core::IntrusiveList<H2Connection>::next(c);
    c->check_deadline(now);
    c = next;
  }
  for (UpstreamState& u : upstreams_) {
    for (TargetState& t : u.targets) {
      // idle is LIFO: the oldest connections are at the front.
      std::size_t stale = 0;
      while (stale < t.idle.size() && now - t.idle[stale]->idle_since_ms > kUpstreamIdleMs) ++stale;
      if (stale) t.idle.erase(t.idle.begin(), t.idle.begin() + static_cast<long>(stale));
      std::erase_if(t.h2, [now](const auto& c) {
        if (c->dead()) return true;
        if (!c->ready() || !c->idle() || now - c->idle_since_ms() <= kUpstreamIdleMs) return false;
        c->shutdown();  // its GOAWAY goes out; it ends on its own
        return true;
      });
    }
  }
  if (!log_buffer_.empty()) log_.submit(log_buffer_);
  release_idle_memory(now);
}

// After a burst of clients went idle, their buffers sit in the free lists and
// in malloc's heap, still resident. Give most back to the kernel, at most
// once a second: idle connections should cost well under a kilobyte each.
void Worker::release_idle_memory(int64_t now) {
  if (parked_since_trim_ < kTrimAfterParked || now - last_trim_ms_ < 500) return;
  parked_since_trim_ = 0;
  last_trim_ms_ = now;
  small_buffers_.shrink(kKeepFree);
  large_buffers_.shrink(kKeepFree / 4);
  exchanges_.shrink(kKeepFree);
  malloc_trim(0);
}

void Worker::spawn_session(std::unique_ptr<Session> session) {
  asio::co_spawn(io_, run_session(std::move(session)), asio::detached);
}

// asio::co_spawn (Boost 1.74) wraps a coroutine in an entry coroutine that
// first posts itself through the scheduler's queue and at the end dispatches
// a completion handler: two more frames and a queue round trip per request.
// An HTTP/1 session starts from a completion handler of this worker (its
// request's first bytes came, or its connection was accepted), where nothing
// is on the stack that it could re-enter, so it runs at once, launched the
// way co_spawn launches its entry coroutine: through Asio's awaitable_thread,
// a detail type whose constructor later Boosts changed (they keep co_spawn).
void Worker::start_session(std::unique_ptr<Session> session) {
#if BOOST_VERSION == 107400
  asio::detail::awaitable_thread<Executor>(run_session(std::move(session)), io_.get_executor())
      .launch();
#else
  spawn_session(std::move(session));
#endif
}

void Worker::add_session(Session* s) { sessions_.push_back(s); }
void Worker::remove_session(Session* s) { sessions_.remove(s); }
void Worker::add_h2(H2Connection* c) { h2_connections_.push_back(c); }
void Worker::remove_h2(H2Connection* c) { h2_connections_.remove(c); }

std::shared_ptr<H2Upstream> Worker::h2_upstream(int upstream, int target) {
  TargetState& t =
      upstreams_[static_cast<std::size_t>(upstream)].targets[static_cast<std::size_t>(target)];
  std::erase_if(t.h2, [](const auto& c) { return c->dead(); });
  for (const auto& c : t.h2) {
    if (!c->ready() || c->can_open()) return c;
  }
  const CompiledUpstream& u = snapshot_->upstreams[static_cast<std::size_t>(upstream)];
  t.h2.push_back(H2Upstream::connect(*this, u, u.targets[static_cast<std::size_t>(target)]));
  return t.h2.back();
}

void Worker::park_upstream(int upstream, int target, std::unique_ptr<UpstreamConnection> c) {
  TargetState& t =
      upstreams_[static_cast<std::size_t>(upstream)].targets[static_cast<std::size_t>(target)];
  if (t.idle.size() >= kMaxIdlePerTarget) return;
  c->idle_since_ms = core::coarse_ms();
  ++c->requests;
  t.idle.push_back(std::move(c));
}

void Worker::close_idle_sessions() {
  for (Session* s = sessions_.front(); s != nullptr;) {
    Session* next = core::IntrusiveList<Session>::next(s);
    s->close_if_idle();
    s = next;
  }
  for (H2Connection* c = h2_connections_.front(); c != nullptr;) {
    H2Connection* next = core::IntrusiveList<H2Connection>::next(c);
    c->close_if_idle();
    c = next;
  }
}

void Worker::begin_drain() { drain_requested_.store(true, std::memory_order_release); }

void Worker::stop() { stop_requested_.store(true, std::memory_order_release); }

// Runs on the worker's thread (from the tick) once drain_requested_ is seen.
void Worker::drain() {
  draining_ = true;
  close_acceptors();
  close_idle_sessions();
  for (UpstreamState& u : upstreams_) {
    for (TargetState& t : u.targets) {
      t.idle.clear();
      for (const auto& c : t.h2) c->shutdown();
    }
  }
}

// Runs on the worker's thread once stop_requested_ is seen: closes every
// socket, so the loop runs out of work and run() returns.
void Worker::shut_down() {
  draining_ = true;
  stopped_ = true;
  close_acceptors();
  tick_timer_.cancel();
  for (Session* s = sessions_.front(); s != nullptr;) {
    Session* next = core::IntrusiveList<Session>::next(s);
    s->abort();
    s = next;
  }
  for (H2Connection* c = h2_connections_.front(); c != nullptr;) {
    H2Connection* next = core::IntrusiveList<H2Connection>::next(c);
    c->abort();
    c = next;
  }
  for (UpstreamState& u : upstreams_) {
    for (TargetState& t : u.targets) {
      t.idle.clear();
      for (const auto& c : t.h2) c->abort();
      t.h2.clear();
    }
  }
  // Its reader keeps the loop busy; calls still in flight complete as failed.
  redis_.reset();
}

}  // namespace gatehouse::proxy
