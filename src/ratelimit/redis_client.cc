#include "ratelimit/redis_client.h"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <netdb.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <system_error>
#include <thread>

namespace gatehouse::ratelimit {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, proxy::Executor>;

// After a failure, the next connection attempt waits this long.
constexpr auto kRetryInterval = std::chrono::seconds(1);
// A connection whose oldest request is this much past its deadline is dead.
constexpr auto kOverdueLimit = std::chrono::seconds(1);
constexpr std::size_t kReadChunk = 16384;

auto await_ec(error_code& ec) { return asio::redirect_error(proxy::use_task, ec); }

struct Conn;

// One request in flight. It lives in the frame of the eval() that awaits it;
// the connection's FIFO points at it until it completes or gives up.
struct Call {
  explicit Call(proxy::Executor ex) : timer(ex) {}
  ~Call();
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  Timer timer;  // expires at the deadline; cancelled when the reply is in
  std::shared_ptr<Conn> conn;
  uint64_t seq = 0;  // position in conn's FIFO
  bool done = true;
  bool noscript = false;
  RedisReply reply;
};

enum class Kind : uint8_t {
  kCall,     // completes `call`
  kSetup,    // AUTH / SELECT sent before the first command: an error drops the connection
  kDropped,  // its caller timed out: the reply is read and thrown away
};

struct Entry {
  Call* call;
  Clock::time_point deadline;
  Kind kind;
  const char* what;  // kSetup: the command's name, for the error
};

void complete(Call* call) {
  call->done = true;
  call->timer.cancel();  // never runs the handler inline: the caller resumes later
}

// One TCP connection to Redis, shared by the client (while current) and the
// coroutines that connect, write and read it. Once `closed`, it stays closed;
// the client opens a new one.
struct Conn {
  explicit Conn(proxy::Executor ex) : socket(ex), wake(ex), reader(redisReaderCreate()) {}
  ~Conn() {
    if (reader != nullptr) redisReaderFree(reader);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  proxy::Socket socket;
  Timer wake;  // the writer sleeps on it while `out` is empty
  redisReader* reader;
  std::string out;      // commands not yet handed to the socket
  std::string writing;  // the batch being written
  std::deque<Entry> fifo;
  uint64_t head_seq = 0;  // seq of fifo.front()
  bool connected = false;
  bool closed = false;
  bool writer_idle = false;

  uint64_t push(Call* call, Clock::time_point deadline, Kind kind, const char* what = nullptr) {
    fifo.push_back(Entry{call, deadline, kind, what});
    return head_seq + fifo.size() - 1;
  }
  void drop(uint64_t seq) {
    Entry& e = fifo[seq - head_seq];
    e.call = nullptr;
    e.kind = Kind::kDropped;
  }
  bool overdue(Clock::time_point now) const {
    return !fifo.empty() && now - fifo.front().deadline > kOverdueLimit;
  }
  void kick() {
    if (writer_idle) {
      writer_idle = false;
      wake.cancel();
    }
  }
  // Closes the connection and fails everything pending on it with `why`.
  void fail(const std::string& why) {
    if (closed) return;
    closed = true;
    error_code ignored;
    socket.close(ignored);
    wake.cancel();
    std::deque<Entry> pending;
    pending.swap(fifo);
    head_seq += pending.size();
    for (Entry& e : pending) {
      if (e.call == nullptr) continue;
      e.call->reply.ok = false;
      e.call->reply.error = why;
      e.call->reply.integers.clear();
      complete(e.call);
    }
  }
};

Call::~Call() {
  // Only when the frame is destroyed mid-wait (io_context torn down): keep
  // the FIFO aligned and never leave it pointing at freed memory.
  if (!done && conn) conn->drop(seq);
}

// Fills `call` from an EVAL/EVALSHA reply.
void take_reply(const redisReply* r, Call& call) {
  RedisReply& out = call.reply;
  out.integers.clear();
  out.error.clear();
  out.ok = false;
  switch (r->type) {
    case REDIS_REPLY_ERROR:
      out.error.assign(r->str, r->len);
      call.noscript = out.error.rfind("NOSCRIPT", 0) == 0;
      return;
    case REDIS_REPLY_ARRAY:
      out.integers.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) {
        if (r->element[i]->type != REDIS_REPLY_INTEGER) {
          out.integers.clear();
          out.error = "unexpected reply: element " + std::to_string(i) + " is not an integer";
          return;
        }
        out.integers.push_back(r->element[i]->integer);
      }
      out.ok = true;
      return;
    default:
      out.error = "unexpected reply: not an array of integers";
      return;
  }
}

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};

proxy::Task<void> read_loop(std::shared_ptr<Conn> c) {
  std::unique_ptr<char[]> buf(new char[kReadChunk]);
  for (;;) {
    error_code ec;
    std::size_t n =
        co_await c->socket.async_read_some(asio::buffer(buf.get(), kReadChunk), await_ec(ec));
    if (c->closed) co_return;
    if (ec) {
      c->fail(ec == asio::error::eof ? std::string("connection closed by redis")
                                     : "read: " + ec.message());
      co_return;
    }
    if (redisReaderFeed(c->reader, buf.get(), n) != REDIS_OK) {
      c->fail("out of memory reading a reply");
      co_return;
    }
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(c->reader, &raw) != REDIS_OK) {
        c->fail(std::string("protocol error: ") + c->reader->errstr);
        co_return;
      }
      if (raw == nullptr) break;
      std::unique_ptr<redisReply, ReplyFree> reply(static_cast<redisReply*>(raw));
      if (c->fifo.empty()) {
        c->fail("protocol error: a reply nobody asked for");
        co_return;
      }
      Entry e = c->fifo.front();
      c->fifo.pop_front();
      ++c->head_seq;
      if (e.kind == Kind::kCall) {
        take_reply(reply.get(), *e.call);
        complete(e.call);
      } else if (e.kind == Kind::kSetup && reply->type == REDIS_REPLY_ERROR) {
        c->fail(std::string(e.what) + " failed: " + std::string(reply->str, reply->len));
        co_return;
      }
    }
  }
}

// Writes `out` in batches: every command appended while a write is under way
// (or in the same turn of the event loop) goes out in the next one.
proxy::Task<void> write_loop(std::shared_ptr<Conn> c) {
  for (;;) {
    if (c->closed) co_return;
    error_code ec;
    if (c->out.empty()) {
      c->writer_idle = true;
      c->wake.expires_at(Clock::time_point::max());
      co_await c->wake.async_wait(await_ec(ec));
      c->writer_idle = false;
      continue;
    }
    c->writing.swap(c->out);
    co_await asio::async_write(c->socket, asio::buffer(c->writing), await_ec(ec));
    c->writing.clear();
    if (c->closed) co_return;
    if (ec) {
      c->fail("write: " + ec.message());
      co_return;
    }
  }
}

proxy::Task<void> run_conn(std::shared_ptr<Conn> c, tcp::endpoint endpoint, std::string where) {
  // async_connect would reopen a socket closed before this coroutine started.
  if (c->closed) co_return;
  error_code ec;
  co_await c->socket.async_connect(endpoint, await_ec(ec));
  if (c->closed) co_return;
  if (ec) {
    c->fail("connect to " + where + ": " + ec.message());
    co_return;
  }
  c->socket.set_option(tcp::no_delay(true), ec);
  c->connected = true;
  asio::co_spawn(c->socket.get_executor(), read_loop(c), asio::detached);
  co_await write_loop(std::move(c));
}

// Appends one command, RESP-encoded by hiredis (binary-safe).
bool append_command(std::string& out, std::initializer_list<std::string_view> head,
                    const std::vector<std::string>* keys = nullptr,
                    const std::vector<std::string>* args = nullptr) {
  const std::size_t argc = head.size() + (keys ? keys->size() : 0) + (args ? args->size() : 0);
  constexpr std::size_t kInline = 16;
  std::array<const char*, kInline> argv_small;
  std::array<std::size_t, kInline> len_small;
  std::vector<const char*> argv_big;
  std::vector<std::size_t> len_big;
  const char** argv = argv_small.data();
  std::size_t* lens = len_small.data();
  if (argc > kInline) {
    argv_big.resize(argc);
    len_big.resize(argc);
    argv = argv_big.data();
    lens = len_big.data();
  }
  std::size_t i = 0;
  for (std::string_view s : head) {
    argv[i] = s.data();
    lens[i++] = s.size();
  }
  for (const auto* list : {keys, args}) {
    if (list == nullptr) continue;
    for (const std::string& s : *list) {
      argv[i] = s.data();
      lens[i++] = s.size();
    }
  }
  char* cmd = nullptr;
  int n = redisFormatCommandArgv(&cmd, static_cast<int>(argc), argv, lens);
  if (n < 0 || cmd == nullptr) return false;
  out.append(cmd, static_cast<std::size_t>(n));
  redisFreeCommand(cmd);
  return true;
}

std::optional<tcp::endpoint> lookup_name(const std::string& host, uint16_t port,
                                         std::string& error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0) {
    error = "cannot resolve '" + host + "': " + gai_strerror(rc);
    return std::nullopt;
  }
  tcp::endpoint ep;
  if (found->ai_family == AF_INET6) {
    sockaddr_in6 sa;
    std::memcpy(&sa, found->ai_addr, sizeof sa);
    asio::ip::address_v6::bytes_type b;
    std::memcpy(b.data(), &sa.sin6_addr, 16);
    ep = tcp::endpoint(asio::ip::address_v6(b, sa.sin6_scope_id), port);
  } else {
    sockaddr_in sa;
    std::memcpy(&sa, found->ai_addr, sizeof sa);
    ep = tcp::endpoint(asio::ip::address_v4(ntohl(sa.sin_addr.s_addr)), port);
  }
  freeaddrinfo(found);
  return ep;
}

std::string decimal(int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hex_digit(in[i + 1]), lo = hex_digit(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

template <typename T>
bool parse_number(std::string_view s, T& v) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// The client's state, shared with the eval() frames in flight so that the
// client may be destroyed while they wait.
struct RedisClientState {
  RedisClientState(asio::io_context& io, RedisConfig cfg) : io(io), cfg(std::move(cfg)) {
    where = this->cfg.host + ":" + std::to_string(this->cfg.port);
    error_code ec;
    auto address = asio::ip::make_address(this->cfg.host, ec);
    name_ = static_cast<bool>(ec);
    if (!name_) {
      address_ = tcp::endpoint(address, this->cfg.port);
    } else {
      // A name: looked up once here, at startup, before the worker serves;
      // after that only on a thread of its own (see endpoint()).
      std::string error;
      address_ = resolve(this->cfg, error);
    }
  }

  static std::optional<tcp::endpoint> resolve(const RedisConfig& cfg, std::string& error) {
    return cfg.resolver ? cfg.resolver(cfg.host, cfg.port, error)
                        : lookup_name(cfg.host, cfg.port, error);
  }

  // Where to connect. A host name is looked up again on every attempt to
  // connect, on a thread of its own: getaddrinfo blocks (a slow DNS server
  // would stall every request of the worker), and Asio's async resolver
  // would complete on its own thread into this lock-free io_context. The
  // attempt uses the last answer; the fresh one serves the next attempt (a
  // second later at most), so a Redis that moved is found.
  std::optional<tcp::endpoint> endpoint(std::string& error) {
    if (!name_) return address_;
    if (lookup_ && lookup_->done.load(std::memory_order_acquire)) {
      if (lookup_->endpoint) address_ = lookup_->endpoint;
      lookup_error_ = lookup_->endpoint ? std::string() : lookup_->error;
      lookup_.reset();
    }
    if (!lookup_) {
      lookup_ = std::make_shared<Lookup>();
      try {
        std::thread([lookup = lookup_, cfg = cfg] {
          lookup->endpoint = resolve(cfg, lookup->error);
          lookup->done.store(true, std::memory_order_release);
        }).detach();
      } catch (const std::system_error&) {  // no thread to be had: try again next time
        lookup_->error = "cannot look up '" + cfg.host + "': no thread";
        lookup_->done.store(true, std::memory_order_release);
      }
    }
    if (!address_) {
      error = lookup_error_.empty() ? "looking up '" + cfg.host + "'" : lookup_error_;
    }
    return address_;
  }

  // The connection to send on, opened if need be; nullptr (with `error`)
  // when none may be tried now.
  std::shared_ptr<Conn> connection(Clock::time_point now, std::string& error) {
    if (shut) {
      error = "redis client closed";
      return nullptr;
    }
    if (conn && !conn->closed && conn->overdue(now)) {
      conn->fail("no reply for over 1 s");
    }
    if (conn && !conn->closed) return conn;
    conn.reset();
    if (last_attempt && now - *last_attempt < kRetryInterval) {
      error = "redis unavailable";
      return nullptr;
    }
    last_attempt = now;
    auto endpoint = this->endpoint(error);
    if (!endpoint) return nullptr;
    auto c = std::make_shared<Conn>(io.get_executor());
    if (c->reader == nullptr) {
      error = "out of memory";
      return nullptr;
    }
    const auto deadline = now + timeout();
    if (!cfg.password.empty()) {
      append_command(c->out, {"AUTH", cfg.password});
      c->push(nullptr, deadline, Kind::kSetup, "AUTH");
    }
    if (cfg.db != 0) {
      append_command(c->out, {"SELECT", decimal(cfg.db)});
      c->push(nullptr, deadline, Kind::kSetup, "SELECT");
    }
    conn = c;
    asio::co_spawn(io.get_executor(), run_conn(std::move(c), *endpoint, where), asio::detached);
    return conn;
  }

  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(std::max<int64_t>(1, cfg.timeout_ms));
  }

  void shutdown() {
    shut = true;
    if (conn) conn->fail("redis client closed");
    conn.reset();
  }

  asio::io_context& io;
  const RedisConfig cfg;
  std::string where;
  std::shared_ptr<Conn> conn;
  std::optional<Clock::time_point> last_attempt;
  bool last_failed = false;
  bool shut = false;

 private:
  struct Lookup {
    std::atomic<bool> done{false};
    std::optional<tcp::endpoint> endpoint;
    std::string error;
  };
  bool name_ = false;  // cfg.host is a name, not an address
  std::optional<tcp::endpoint> address_;
  std::shared_ptr<Lookup> lookup_;  // in flight, or answered and not read yet
  std::string lookup_error_;
};

}  // namespace

struct RedisClient::Impl {
  std::shared_ptr<RedisClientState> state;
};

RedisClient::RedisClient(asio::io_context& io, RedisConfig config)
    : impl_(
          std::make_unique<Impl>(Impl{std::make_shared<RedisClientState>(io, std::move(config))})) {
}

RedisClient::~RedisClient() { impl_->state->shutdown(); }

bool RedisClient::healthy() const {
  const RedisClientState& s = *impl_->state;
  return s.conn && s.conn->connected && !s.conn->closed && !s.last_failed;
}

proxy::Task<RedisReply> RedisClient::eval(const RedisScript& script,
                                          const std::vector<std::string>& keys,
                                          const std::vector<std::string>& args) {
  std::shared_ptr<RedisClientState> st = impl_->state;  // `this` may go while we wait
  const auto deadline = Clock::now() + st->timeout();
  const std::string numkeys = decimal(static_cast<int64_t>(keys.size()));
  Call call(st->io.get_executor());
  call.timer.expires_at(deadline);
  bool by_sha = true;
  for (;;) {
    std::string error;
    std::shared_ptr<Conn> conn = st->connection(Clock::now(), error);
    if (!conn) {
      call.reply = RedisReply{false, std::move(error), {}};
      break;
    }
    const bool formatted =
        by_sha ? append_command(conn->out, {"EVALSHA", script.sha1, numkeys}, &keys, &args)
               : append_command(conn->out, {"EVAL", script.source, numkeys}, &keys, &args);
    if (!formatted) {
      call.reply = RedisReply{false, "cannot format the command", {}};
      break;
    }
    call.done = false;
    call.noscript = false;
    call.conn = conn;
    call.seq = conn->push(&call, deadline, Kind::kCall);
    conn->kick();
    error_code ec;
    co_await call.timer.async_wait(await_ec(ec));
    if (!call.done) {
      // The deadline passed first. The reply, if it ever comes, is dropped.
      conn->drop(call.seq);
      call.done = true;
      call.reply = RedisReply{false, "timed out", {}};
      if (conn->overdue(Clock::now())) conn->fail("no reply for over 1 s");
      break;
    }
    if (call.noscript && by_sha) {
      by_sha = false;  // this call only: the EVAL loads the script for the next ones
      continue;
    }
    break;
  }
  st->last_failed = !call.reply.ok;
  co_return std::move(call.reply);
}

std::optional<RedisConfig> parse_redis_url(std::string_view url, std::string& error) {
  constexpr std::string_view kScheme = "redis://";
  const auto starts_with_ci = [&](std::string_view prefix) {
    if (url.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(url[i])) != prefix[i]) return false;
    return true;
  };
  if (!starts_with_ci(kScheme)) {
    error = starts_with_ci("rediss://") ? "rediss:// (TLS) is not supported"
                                        : "the URL must start with redis://";
    return std::nullopt;
  }
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) {
    error = "the URL may not have a query or a fragment";
    return std::nullopt;
  }
  RedisConfig cfg;
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);

  if (std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    std::size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      error = "write the password as redis://:password@host";
      return std::nullopt;
    }
    std::string_view user = userinfo.substr(0, colon);
    if (!user.empty() && user != "default") {
      error = "user names other than 'default' are not supported";
      return std::nullopt;
    }
    if (!percent_decode(userinfo.substr(colon + 1), cfg.password)) {
      error = "bad %-escape in the password";
      return std::nullopt;
    }
    if (cfg.password.empty()) {
      error = "empty password";
      return std::nullopt;
    }
  }

  std::string_view port_text;
  bool have_port = false;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "unterminated '[' in the host";
      return std::nullopt;
    }
    cfg.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        error = "unexpected text after ']'";
        return std::nullopt;
      }
      port_text = after.substr(1);
      have_port = true;
    }
  } else {
    std::size_t colon = authority.find(':');
    if (colon != std::string_view::npos &&
        authority.find(':', colon + 1) != std::string_view::npos) {
      error = "write IPv6 addresses in brackets: redis://[::1]:6379";
      return std::nullopt;
    }
    cfg.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      have_port = true;
    }
  }
  if (cfg.host.empty()) {
    error = "missing host";
    return std::nullopt;
  }
  if (have_port) {
    unsigned port = 0;
    if (!parse_number(port_text, port) || port == 0 || port > 65535) {
      error = "bad port '" + std::string(port_text) + "'";
      return std::nullopt;
    }
    cfg.port = static_cast<uint16_t>(port);
  }
  if (!path.empty()) {
    int db = 0;
    if (!parse_number(path, db) || db < 0) {
      error = "bad database number '" + std::string(path) + "'";
      return std::nullopt;
    }
    cfg.db = db;
  }
  error.clear();
  return cfg;
}

RedisScript::RedisScript(std::string src) : source(std::move(src)) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(source.data(), source.size(), md, &n, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  sha1.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    sha1.push_back(kHex[md[i] >> 4]);
    sha1.push_back(kHex[md[i] & 15]);
  }
}

}  // namespace gatehouse::ratelimit
