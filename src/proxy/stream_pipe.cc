#include "proxy/stream_pipe.h"

#include <algorithm>
#include <cstring>

namespace gatehouse::proxy {

namespace asio = boost::asio;
using boost::system::error_code;

StreamPipeBase::StreamPipeBase(asio::io_context& io) : signal_(io) {
  signal_.expires_at(asio::steady_timer::time_point::max());
}

Task<std::size_t> StreamPipeBase::read_some(asio::mutable_buffer b, error_code& ec) {
  while (true) {
    std::size_t n = read_now(b.data(), b.size(), ec);
    if (n > 0 || ec) co_return n;
    error_code wec;
    co_await signal_.async_wait(await_ec(wec));
  }
}

std::size_t StreamPipeBase::read_now(void* p, std::size_t n, error_code& ec) {
  if (take_cancel(ec)) return 0;
  std::size_t avail = in_.size() - in_off_;
  if (avail == 0) {
    ec = input_end();
    return 0;
  }
  std::size_t k = std::min(n, avail);
  std::memcpy(p, in_.data() + in_off_, k);
  in_off_ += k;
  if (in_off_ == in_.size()) {
    in_.clear();
    in_off_ = 0;
  }
  consumed(k);
  return k;
}

bool StreamPipeBase::try_write(asio::const_buffer* bufs, std::size_t n, error_code& ec) {
  if (take_cancel(ec)) return false;
  if (output_closed()) {
    ec = asio::error::connection_reset;
    return false;
  }
  bool all = true;
  for (std::size_t i = 0; i < n && all; ++i) {
    while (bufs[i].size() != 0) {
      std::size_t k =
          send(std::string_view(static_cast<const char*>(bufs[i].data()), bufs[i].size()));
      bufs[i] += k;
      if (k == 0) {
        all = false;
        break;
      }
    }
  }
  kick();
  return all;
}

Task<std::size_t> StreamPipeBase::write(std::vector<asio::const_buffer> bufs, error_code& ec) {
  std::size_t total = 0;
  for (const auto& b : bufs) total += b.size();
  while (!try_write(bufs.data(), bufs.size(), ec)) {
    if (ec) co_return 0;
    error_code wec;
    co_await signal_.async_wait(await_ec(wec));
  }
  co_return total;
}

bool StreamPipeBase::take_cancel(error_code& ec) {
  if (!cancelled_) return false;
  cancelled_ = false;
  ec = asio::error::operation_aborted;
  return true;
}

void StreamPipeBase::cancel() {
  cancelled_ = true;
  wake();
}

}  // namespace gatehouse::proxy
