// A throw-away redis-server for the tests that need a real Redis: a child
// process on a free loopback port, killed when the object goes (and with the
// test process, even if it crashes), plus a blocking hiredis connection for
// checking what the code under test left in it; and run_until, which turns
// an io_context until a condition holds.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace gatehouse::ratelimit::test {

inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  socklen_t len = sizeof sa;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    sa.sin_port = 0;
  ::close(fd);
  return ntohs(sa.sin_port);
}

// A redis-server child process on 127.0.0.1:port (it dies with the test
// process even if the test crashes).
class RedisServer {
 public:
  explicit RedisServer(std::vector<std::string> extra = {}, std::string password = {})
      : port_(free_port()), extra_(std::move(extra)), password_(std::move(password)) {}
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }

  bool start() {
    std::vector<std::string> args = {"/usr/bin/redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--daemonize",
                                     "no"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    if (!password_.empty()) {
      args.push_back("--requirepass");
      args.push_back(password_);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    if (pid_ < 0) return false;
    for (int i = 0; i < 300; ++i) {  // up to 3 s
      if (!command({"PING"}).empty()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }

  // One command on a fresh blocking connection (with AUTH and SELECT db when
  // asked); the reply as text: "" when unreachable, "ERR:..." for errors,
  // arrays joined with ','.
  std::string command(std::vector<std::string> args, int db = 0) {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (c == nullptr) return "";
    std::string out;
    if (!c->err) {
      if (!password_.empty()) run(c, {"AUTH", password_});
      if (db != 0) run(c, {"SELECT", std::to_string(db)});
      out = run(c, args);
    }
    redisFree(c);
    return out;
  }

 private:
  static std::string text(const redisReply* r) {
    switch (r->type) {
      case REDIS_REPLY_INTEGER:
        return std::to_string(r->integer);
      case REDIS_REPLY_ERROR:
        return "ERR:" + std::string(r->str, r->len);
      case REDIS_REPLY_NIL:
        return "nil";
      case REDIS_REPLY_ARRAY: {
        std::string s;
        for (std::size_t i = 0; i < r->elements; ++i) {
          if (i) s += ',';
          s += text(r->element[i]);
        }
        return s;
      }
      default:
        return std::string(r->str, r->len);
    }
  }
  static std::string run(redisContext* c, const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (r == nullptr) return "";
    std::string s = text(r);
    freeReplyObject(r);
    return s;
  }

  uint16_t port_;
  std::vector<std::string> extra_;
  std::string password_;
  pid_t pid_ = -1;
};

// Runs `io` until `done()` or `limit` has passed.
inline void run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < end) {
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(5));
  }
}

}  // namespace gatehouse::ratelimit::test
