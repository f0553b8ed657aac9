// Access log: workers append JSON lines to their own buffer (no lock, no
// syscall per request) and hand the whole buffer to a background writer
// thread a few times a second; only that thread touches the file.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gatehouse::observability {

class AccessLogWriter {
 public:
  // fd: where lines go (1 for stdout, or an opened file); -1: logging off.
  explicit AccessLogWriter(int fd);
  ~AccessLogWriter();
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  bool enabled() const { return fd_ >= 0; }
  // Takes `lines` (leaving it empty, with a recycled buffer's capacity).
  void submit(std::string& lines);
  // Writes everything submitted so far and stops the thread.
  void stop();

 private:
  void run();
  int fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> pending_;
  std::vector<std::string> spare_;
  bool stopping_ = false;
  std::thread thread_;
};

// Opens the configured destination: "stdout", "off" or a file path (appended).
int open_access_log(const std::string& kind_or_path, bool off, bool to_stdout);

}  // namespace gatehouse::observability
