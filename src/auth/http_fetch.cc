#include "auth/http_fetch.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/clock.h"

namespace gatehouse::auth {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Waits for `events` on fd until the deadline; false on timeout or error.
bool wait_for(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    int64_t left = deadline_ms - core::monotonic_ms();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

bool http_fetch(const http::HttpUrl& url, std::string_view method, std::string_view extra_headers,
                std::string_view body, int64_t timeout_ms, http::ClientResponse& out,
                std::string& error) {
  const int64_t deadline = core::monotonic_ms() + timeout_ms;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* found = nullptr;
  std::string port = std::to_string(url.port);
  if (int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    error = "cannot resolve " + url.host + ": " + gai_strerror(rc);
    return false;
  }
  Fd sock;
  error = "cannot connect to " + url.authority;
  for (addrinfo* a = found; a != nullptr && sock.fd < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS && wait_for(fd, POLLOUT, deadline)) {
      int so_error = 0;
      socklen_t len = sizeof so_error;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      rc = so_error == 0 ? 0 : -1;
      if (so_error != 0) error += std::string(": ") + std::strerror(so_error);
    }
    if (rc == 0) {
      sock.fd = fd;
    } else {
      ::close(fd);
    }
  }
  ::freeaddrinfo(found);
  if (sock.fd < 0) return false;

  const std::string request = http::client_request(method, url, extra_headers, body);
  std::size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(sock.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(sock.fd, POLLOUT, deadline)) {
        error = "timed out sending to " + url.authority;
        return false;
      }
    } else {
      error = "send to " + url.authority + " failed";
      return false;
    }
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(sock.fd, buf, sizeof buf, 0);
    if (n > 0) {
      raw.append(buf, static_cast<std::size_t>(n));
      if (raw.size() > http::kMaxClientResponseBytes) {
        error = "response from " + url.authority + " larger than 1 MiB";
        return false;
      }
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait_for(sock.fd, POLLIN, deadline)) {
        error = "timed out waiting for " + url.authority;
        return false;
      }
    } else {
      error = "reading from " + url.authority + " failed";
      return false;
    }
  }
  std::string why;
  if (!http::parse_client_response(raw, out, why)) {
    error = "bad response from " + url.authority + ": " + why;
    return false;
  }
  return true;
}

}  // namespace gatehouse::auth
