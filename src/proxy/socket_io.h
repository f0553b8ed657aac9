// Small I/O helpers shared by the two halves of Session (session.cc and
// session_forward.cc).
#pragma once

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/redirect_error.hpp>

#include "proxy/task.h"

namespace gatehouse::proxy {

// `co_await op(..., await_ec(ec))`: errors become values, never exceptions.
inline auto await_ec(boost::system::error_code& ec) {
  return boost::asio::redirect_error(use_task, ec);
}

// Writes what the socket takes right now (sockets are in non-blocking mode)
// and advances `bufs` past it. True when everything went out; false with
// `ec` clear when the rest must wait for the socket (async_write it). Almost
// every write on the request path completes here: no Asio operation, no
// coroutine frame, no trip through the scheduler (see bench/NOTES.md).
template <std::size_t N>
bool try_write_all(Socket& socket, std::array<boost::asio::const_buffer, N>& bufs,
                   boost::system::error_code& ec) {
  std::size_t total = boost::asio::buffer_size(bufs);
  // One non-empty buffer goes out through Asio's single-buffer path, send(2):
  // unlike sendmsg(2) the kernel copies in no message header or iovec array.
  std::size_t filled = 0;
  const boost::asio::const_buffer* one = nullptr;
  for (const boost::asio::const_buffer& b : bufs) {
    if (b.size() == 0) continue;
    ++filled;
    one = &b;
  }
  std::size_t n = filled == 1 ? socket.write_some(*one, ec) : socket.write_some(bufs, ec);
  if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
    ec = {};
    n = 0;
  }
  if (ec) return false;
  if (n == total) return true;
  for (boost::asio::const_buffer& b : bufs) {
    std::size_t k = std::min(n, b.size());
    b += k;
    n -= k;
  }
  return false;
}

}  // namespace gatehouse::proxy
