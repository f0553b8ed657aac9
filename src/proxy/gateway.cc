#include "proxy/gateway.h"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "admin/admin_server.h"
#include "core/clock.h"
#include "observability/access_log.h"
#include "plugins/ratelimit/ratelimit_plugins.h"
#include "proxy/worker.h"

namespace gatehouse::proxy {

namespace asio = boost::asio;

namespace {

// Workers bind their listeners with SO_REUSEPORT, so a second gateway started
// on a taken address would bind too and quietly get part of its traffic.
// A bind without SO_REUSEPORT first (SO_REUSEADDR only: sockets in TIME_WAIT
// from a previous run do not count) fails while any socket listens there.
void ensure_address_free(const config::Address& a) {
  asio::io_context io;
  asio::ip::tcp::acceptor probe(io);
  asio::ip::tcp::endpoint ep(asio::ip::make_address(a.host), a.port);
  probe.open(ep.protocol());
  probe.set_option(asio::socket_base::reuse_address(true));
  boost::system::error_code ec;
  probe.bind(ep, ec);
  if (ec == asio::error::address_in_use) {
    throw std::runtime_error("listen " + a.to_string() +
                             ": address already in use (is another gatehouse running?)");
  }
}

class Gateway {
 public:
  explicit Gateway(std::shared_ptr<const Snapshot> snapshot, observability::AccessLogWriter& log)
      : snapshot_(std::move(snapshot)),
        log_(log),
        signals_(io_, SIGTERM, SIGINT),
        hangup_(io_, SIGHUP),
        drain_timer_(io_) {
    unsigned n = snapshot_->workers;
    uint64_t prefix = core::RequestIdGenerator::random_prefix();
    for (unsigned i = 0; i < n; ++i) {
      workers_.push_back(std::make_unique<Worker>(i, snapshot_, log_, prefix));
    }
  }

  int run() {
    for (const auto& l : snapshot_->config.listeners) ensure_address_free(l.address);
    for (auto& w : workers_) w->listen();
    const auto& cfg = snapshot_->config;
    if (cfg.admin.listen) {
      const config::Address& a = *cfg.admin.listen;
      admin_ = std::make_unique<admin::AdminServer>(
          io_, asio::ip::tcp::endpoint(asio::ip::make_address(a.host), a.port),
          [this] { return render(); }, [this] { return ready_.load(); });
      admin_->start();
    }
    signals_.async_wait([this](const boost::system::error_code& ec, int) {
      if (!ec) begin_shutdown();
    });
    await_hangup();
    for (auto& w : workers_) threads_.emplace_back([&w] { w->run(); });
    snapshot_->jwks->start();
    std::cerr << "gatehouse: listening on ";
    for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
      std::cerr << (i ? ", " : "") << cfg.listeners[i].address.to_string()
                << (cfg.listeners[i].tls ? " (tls)" : "");
    }
    std::cerr << " with " << workers_.size() << " workers" << std::endl;
    io_.run();
    for (auto& t : threads_) t.join();
    snapshot_->jwks->stop();
    log_.stop();
    return 0;
  }

 private:
  std::string render() {
    std::vector<const observability::WorkerMetrics*> m;
    for (auto& w : workers_) m.push_back(&w->metrics());
    std::string out =
        observability::render_metrics(m, snapshot_->route_names, snapshot_->upstream_names);
    snapshot_->jwks->append_metrics(out);
    plugins::ratelimit::append_metrics(out);
    uint64_t refused = 0;
    for (auto& w : workers_) refused += w->connections_refused();
    out.append(
        "# HELP gatehouse_connections_refused_total Connections closed at accept: "
        "max_connections_per_ip.\n# TYPE gatehouse_connections_refused_total counter\n"
        "gatehouse_connections_refused_total " +
        std::to_string(refused) + "\n");
    return out;
  }

  // SIGHUP re-reads every TLS listener's certificate files. A listener whose
  // new files do not load keeps serving with the ones it has.
  void await_hangup() {
    hangup_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      reload_certificates();
      await_hangup();
    });
  }

  void reload_certificates() {
    const auto& listeners = snapshot_->config.listeners;
    for (std::size_t i = 0; i < listeners.size(); ++i) {
      if (!listeners[i].tls) continue;
      std::string error;
      auto context = tls::ServerContext::create(server_settings(*listeners[i].tls), error);
      if (!context) {
        std::cerr << "gatehouse: listener " << listeners[i].address.to_string()
                  << ": certificates not reloaded, keeping the current ones: " << error
                  << std::endl;
        continue;
      }
      snapshot_->listener_tls->set(i, std::move(context));
      std::cerr << "gatehouse: listener " << listeners[i].address.to_string()
                << ": certificates reloaded" << std::endl;
    }
  }

  void begin_shutdown() {
    ready_ = false;
    for (auto& w : workers_) w->begin_drain();
    drain_deadline_ms_ = core::monotonic_ms() + snapshot_->config.shutdown_timeout.count();
    // A second signal stops at once.
    signals_.async_wait([this](const boost::system::error_code& ec, int) {
      if (!ec) finish();
    });
    poll_drain();
  }

  void poll_drain() {
    long open = 0;
    for (auto& w : workers_) open += w->open_connections();
    if (open == 0 || core::monotonic_ms() >= drain_deadline_ms_) {
      finish();
      return;
    }
    drain_timer_.expires_after(std::chrono::milliseconds(50));
    drain_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) poll_drain();
    });
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    for (auto& w : workers_) w->stop();
    if (admin_) admin_->stop();
    boost::system::error_code ec;
    signals_.cancel(ec);
    hangup_.cancel(ec);
    drain_timer_.cancel();
    // Admin keep-alive connections must not hold the process open.
    io_.stop();
  }

  std::shared_ptr<const Snapshot> snapshot_;
  observability::AccessLogWriter& log_;
  asio::io_context io_{1};
  asio::signal_set signals_;
  asio::signal_set hangup_;
  asio::steady_timer drain_timer_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> ready_{true};
  int64_t drain_deadline_ms_ = 0;
  bool finished_ = false;
};

}  // namespace

int run_gateway(const config::Config& config) {
  std::shared_ptr<const Snapshot> snapshot;
  try {
    snapshot = compile_snapshot(config);
  } catch (const std::exception& e) {
    std::cerr << e.what() << std::endl;
    return 1;
  }
  int fd = observability::open_access_log(config.access_log_path,
                                          config.access_log == config::AccessLogKind::kOff,
                                          config.access_log == config::AccessLogKind::kStdout);
  if (config.access_log == config::AccessLogKind::kFile && fd < 0) {
    std::cerr << config.file << ": cannot open access log '" << config.access_log_path << "'"
              << std::endl;
    return 1;
  }
  observability::AccessLogWriter log(fd);
  try {
    Gateway gw(snapshot, log);
    return gw.run();
  } catch (const std::exception& e) {
    std::cerr << "gatehouse: " << e.what() << std::endl;
    log.stop();
    return 1;
  }
}

}  // namespace gatehouse::proxy
