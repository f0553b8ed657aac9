#include "observability/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace gatehouse::observability {

AccessLogWriter::AccessLogWriter(int fd) : fd_(fd) {
  if (fd_ >= 0) thread_ = std::thread([this] { run(); });
}

AccessLogWriter::~AccessLogWriter() { stop(); }

void AccessLogWriter::submit(std::string& lines) {
  if (lines.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  pending_.push_back(std::move(lines));
  lines.clear();
  if (!spare_.empty()) {
    lines = std::move(spare_.back());
    spare_.pop_back();
    lines.clear();
  }
  cv_.notify_one();
}

void AccessLogWriter::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (fd_ > 2) close(fd_);
}

void AccessLogWriter::run() {
  std::vector<std::string> batch;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      batch.swap(pending_);
      if (batch.empty() && stopping_) return;
    }
    for (std::string& chunk : batch) {
      const char* p = chunk.data();
      std::size_t left = chunk.size();
      while (left > 0) {
        ssize_t n = write(fd_, p, left);
        if (n < 0) {
          if (errno == EINTR) continue;
          break;  // a full disk must not take the gateway down with it
        }
        p += n;
        left -= static_cast<std::size_t>(n);
      }
      chunk.clear();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (std::string& chunk : batch) {
        if (spare_.size() < 16) spare_.push_back(std::move(chunk));
      }
    }
    batch.clear();
  }
}

int open_access_log(const std::string& path, bool off, bool to_stdout) {
  if (off) return -1;
  if (to_stdout) return 1;
  return open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

}  // namespace gatehouse::observability
