// demo-backend: the echo backend behind the demo, the e2e tests and the
// benchmarks. Its behaviour is a contract: docs/contracts.md, "Demo backend".
//
// One blocking thread per connection. That is slower than an event loop, but
// every request reads top to bottom, and a slow or vanished client costs one
// parked thread, never the others. Bodies of any size stream through fixed
// buffers in both directions; nothing a client sends is kept beyond its head.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

// A request head (request line + header fields) larger than this is refused
// with 431; it bounds the per-connection read buffer too.
constexpr std::size_t kMaxHeadBytes = 64 * 1024;
// Longest chunk-size line (with extensions) of a chunked request body.
constexpr std::size_t kMaxChunkLineBytes = 4096;
// Longest trailer field line after a chunked body; all of them together are
// bounded by kMaxHeadBytes.
constexpr std::size_t kMaxTrailerLineBytes = 16 * 1024;
// `size=N` bodies are sent from one shared block of 'x' this large.
constexpr std::size_t kFillBytes = 256 * 1024;
// A connection that neither sends nor accepts a byte for this long is given
// up, so a vanished peer does not hold its thread forever.
constexpr int kSocketTimeoutSeconds = 300;
// After a response that closes the connection, unread input is drained for at
// most this long before close(), so that the kernel does not answer it with a
// RST that could destroy the response in flight (RFC 9112 section 9.6).
constexpr int kLingerSeconds = 2;
constexpr const char* kDefaultName = "demo-backend";

const std::string& fill_block() {
  static const std::string block(kFillBytes, 'x');
  return block;
}

// ---------------------------------------------------------------------------
// Small text helpers

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// tchar from RFC 9110 section 5.6.2.
bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// field-value characters (RFC 9110 section 5.5): visible ASCII, SP, HTAB and
// obs-text; never CR, LF, NUL or other controls.
bool is_field_value(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7F);
  });
}

// True when a comma-separated list (Connection, Transfer-Encoding) holds `token`.
bool list_contains(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    if (iequals(trim_ows(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::optional<uint64_t> parse_decimal(std::string_view s) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Query strings use form encoding: %XX escapes, and '+' for a space.
// A malformed escape is kept as written.
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629 table 3:
// no overlong forms, no surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = at(i);
  std::size_t n;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  }
  return n;
}

// A JSON string (RFC 8259 section 7). Header values may carry bytes that are
// not UTF-8 (obs-text); JSON text must be UTF-8, so each such byte becomes
// U+FFFD, as Go's encoding/json does.
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      std::size_t n = utf8_sequence_length(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s, i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char escape[8];
          std::snprintf(escape, sizeof escape, "\\u%04x", c);
          out += escape;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

struct ReasonPhrase {
  int status;
  const char* text;
};

constexpr ReasonPhrase kReasonPhrases[] = {
    {100, "Continue"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {413, "Content Too Large"},
    {417, "Expectation Failed"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char* reason_phrase(int status) {
  for (const ReasonPhrase& phrase : kReasonPhrases) {
    if (phrase.status == status) return phrase.text;
  }
  return "Status";  // the reason phrase is optional text (RFC 9112 section 4)
}

// IMF-fixdate (RFC 9110 section 5.6.7); an origin server with a clock must
// send Date.
std::string http_date() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[64];
  std::size_t n = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(text, n);
}

// ---------------------------------------------------------------------------
// Sockets

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Writes every byte of `iov` or fails (peer gone, send timeout). MSG_NOSIGNAL
// keeps a vanished reader from raising SIGPIPE, which is ignored as well.
bool send_all(int fd, iovec* iov, std::size_t count) {
  while (count > 0) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    ssize_t sent = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    auto left = static_cast<std::size_t>(sent);
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return true;
}

iovec as_iovec(std::string_view s) { return iovec{const_cast<char*>(s.data()), s.size()}; }

bool send_text(int fd, std::string_view text) {
  iovec iov = as_iovec(text);
  return send_all(fd, &iov, 1);
}

// The outcome of reading part of a request: go on, stop silently (the peer
// closed, reset or timed out), or reject with `status` and close.
struct ReadResult {
  int status = 0;  // 0: ok, -1: connection lost, otherwise an HTTP status
  const char* detail = "";

  bool ok() const { return status == 0; }
  bool lost() const { return status < 0; }
  static ReadResult lost_connection() { return {-1, ""}; }
  static ReadResult reject(int status, const char* detail) { return {status, detail}; }
};

// Buffered reads from one client. The buffer is exactly as large as the
// biggest request head allowed; body bytes pass through it and are dropped.
class ClientReader {
 public:
  explicit ClientReader(int fd) : fd_(fd), buf_(kMaxHeadBytes) {}

  // Reads up to and including the empty line that ends a request head. The
  // view stays valid until the next call. Empty lines before the request line
  // are skipped (RFC 9112 section 2.2); bare LF line ends are accepted.
  ReadResult read_head(std::string_view& head) {
    std::size_t scanned = 0;  // bytes after begin_ already searched for the end
    bool started = false;
    while (true) {
      while (!started && begin_ < end_ && (buf_[begin_] == '\r' || buf_[begin_] == '\n')) {
        ++begin_;
      }
      started = started || begin_ < end_;
      if (std::size_t n = head_length(scanned)) {
        head = std::string_view(buf_.data() + begin_, n);
        begin_ += n;
        return {};
      }
      scanned = end_ - begin_;
      if (end_ - begin_ >= buf_.size()) {
        return ReadResult::reject(431, "request head larger than 64 KiB");
      }
      if (!fill()) return ReadResult::lost_connection();
    }
  }

  // Reads one line (without its line end) of at most `limit` bytes, line end
  // included; `limit` must be below kMaxHeadBytes.
  ReadResult read_line(std::string_view& line, std::size_t limit) {
    std::size_t scanned = 0;
    while (true) {
      const char* start = buf_.data() + begin_;
      const void* lf = std::memchr(start + scanned, '\n', end_ - begin_ - scanned);
      if (lf != nullptr) {
        std::size_t n = static_cast<const char*>(lf) - start;
        if (n + 1 > limit) return ReadResult::reject(400, "line too long in chunked body");
        line = std::string_view(start, n);
        begin_ += n + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        return {};
      }
      scanned = end_ - begin_;
      if (scanned >= limit) return ReadResult::reject(400, "line too long in chunked body");
      if (!fill()) return ReadResult::lost_connection();
    }
  }

  // Reads and drops exactly `n` bytes.
  ReadResult discard(uint64_t n) {
    while (n > 0) {
      if (begin_ == end_ && !fill()) return ReadResult::lost_connection();
      std::size_t take = static_cast<std::size_t>(std::min<uint64_t>(n, end_ - begin_));
      begin_ += take;
      n -= take;
    }
    return {};
  }

 private:
  // Length of a complete head at begin_ (through "\n\r\n" or "\n\n"), or 0.
  std::size_t head_length(std::size_t scanned) const {
    std::size_t from = begin_ + (scanned > 2 ? scanned - 2 : 0);
    for (std::size_t i = from; i < end_; ++i) {
      if (buf_[i] != '\n') continue;
      if (i + 1 < end_ && buf_[i + 1] == '\n') return i + 2 - begin_;
      if (i + 2 < end_ && buf_[i + 1] == '\r' && buf_[i + 2] == '\n') return i + 3 - begin_;
    }
    return 0;
  }

  // Appends what the socket has; false on end of stream, error or timeout.
  bool fill() {
    if (begin_ == end_) {
      begin_ = end_ = 0;
    } else if (begin_ > 0 && end_ == buf_.size()) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    while (true) {
      ssize_t n = ::recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
      if (n > 0) {
        end_ += static_cast<std::size_t>(n);
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
  }

  int fd_;
  std::vector<char> buf_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// ---------------------------------------------------------------------------
// Requests

struct Request {
  std::string method;
  std::string path;
  std::string query;
  int minor_version = 1;
  // Lower-case names in order of first appearance; repeats joined with ", ".
  std::vector<std::pair<std::string, std::string>> headers;
  bool keep_alive = true;
  bool chunked = false;
  uint64_t content_length = 0;
  bool expect_continue = false;
};

// What the query string asks for (docs/contracts.md, "Demo backend").
struct Options {
  int status = 200;
  uint64_t delay_ms = 0;
  std::optional<uint64_t> size;
  bool chunked = false;
  bool early_hints = false;
  bool close = false;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Splits the request target into path and query. The absolute form
// ("http://host/p?q", RFC 9112 section 3.2.2) loses its scheme and authority.
void split_target(std::string_view target, Request& request) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() && iequals(target.substr(0, scheme.size()), scheme)) {
      target.remove_prefix(scheme.size());
      std::size_t slash = target.find_first_of("/?");
      target = slash == std::string_view::npos ? std::string_view() : target.substr(slash);
      break;
    }
  }
  std::size_t question = target.find('?');
  std::string_view path = target.substr(0, question);
  request.path = path.empty() ? std::string_view("/") : path;
  if (question != std::string_view::npos) request.query = std::string(target.substr(question + 1));
}

ReadResult parse_request_line(std::string_view line, Request& request) {
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return ReadResult::reject(400, "malformed request line");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return ReadResult::reject(400, "malformed method");
  if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) {
        return static_cast<unsigned char>(c) > 0x20 && c != 0x7F;
      })) {
    return ReadResult::reject(400, "malformed request target");
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return ReadResult::reject(400, "malformed HTTP version");
  }
  if (version[5] != '1') return ReadResult::reject(505, "only HTTP/1.0 and HTTP/1.1 are served");
  request.method = std::string(method);
  request.minor_version = version[7] == '0' ? 0 : 1;
  split_target(target, request);
  return {};
}

void add_header(std::vector<std::pair<std::string, std::string>>& headers,
                std::unordered_map<std::string, std::size_t>& index, std::string name,
                std::string_view value) {
  auto [it, inserted] = index.try_emplace(name, headers.size());
  if (inserted) {
    headers.emplace_back(std::move(name), std::string(value));
  } else {
    std::string& joined = headers[it->second].second;
    joined += ", ";
    joined += value;
  }
}

// Sets framing and connection handling from the parsed header fields. Refuses
// what a request smuggler would send (RFC 9112 section 6.3): Content-Length
// together with Transfer-Encoding, conflicting lengths, or a transfer coding
// that does not end in chunked.
ReadResult apply_framing(Request& request) {
  const std::string* content_length = nullptr;
  const std::string* transfer_encoding = nullptr;
  const std::string* connection = nullptr;
  const std::string* expect = nullptr;
  for (const auto& [name, value] : request.headers) {
    if (name == "content-length") content_length = &value;
    if (name == "transfer-encoding") transfer_encoding = &value;
    if (name == "connection") connection = &value;
    if (name == "expect") expect = &value;
  }
  if (transfer_encoding != nullptr) {
    if (content_length != nullptr) {
      return ReadResult::reject(400, "both Content-Length and Transfer-Encoding");
    }
    std::string_view codings = *transfer_encoding;
    std::size_t last_comma = codings.rfind(',');
    std::string_view last =
        trim_ows(last_comma == std::string_view::npos ? codings : codings.substr(last_comma + 1));
    if (!iequals(last, "chunked")) {
      return ReadResult::reject(400, "Transfer-Encoding does not end in chunked");
    }
    request.chunked = true;
    if (request.minor_version == 0) request.keep_alive = false;  // RFC 9112 section 6.1
  } else if (content_length != nullptr) {
    // Repeated fields arrive joined as "n, n"; every member must agree.
    std::optional<uint64_t> length;
    std::string_view list = *content_length;
    while (true) {
      std::size_t comma = list.find(',');
      std::optional<uint64_t> n = parse_decimal(trim_ows(list.substr(0, comma)));
      if (!n || (length && *length != *n)) return ReadResult::reject(400, "invalid Content-Length");
      length = n;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
    request.content_length = *length;
  }
  if (connection != nullptr) {
    if (list_contains(*connection, "close")) request.keep_alive = false;
    if (request.minor_version == 0 && list_contains(*connection, "keep-alive")) {
      request.keep_alive = !request.chunked;
    }
  }
  if (expect != nullptr) {
    if (!iequals(trim_ows(*expect), "100-continue")) {
      return ReadResult::reject(417, "only Expect: 100-continue is understood");
    }
    // RFC 9110 section 10.1.1: an HTTP/1.0 client gets no 100 Continue.
    request.expect_continue = request.minor_version == 1;
  }
  return {};
}

ReadResult parse_request(std::string_view head, Request& request) {
  request.keep_alive = true;
  bool first = true;
  std::unordered_map<std::string, std::size_t> index;
  while (!head.empty()) {
    std::size_t lf = head.find('\n');
    std::string_view line = head.substr(0, lf);
    head.remove_prefix(lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the end of the head
    if (line.find('\r') != std::string_view::npos) return ReadResult::reject(400, "bare CR");
    if (first) {
      first = false;
      if (ReadResult r = parse_request_line(line, request); !r.ok()) return r;
      request.keep_alive = request.minor_version == 1;
      continue;
    }
    // Folded lines (obs-fold) and whitespace before the colon are refused,
    // as RFC 9112 sections 5.1 and 5.2 allow.
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
      return ReadResult::reject(400, "malformed header field");
    }
    std::string_view value = trim_ows(line.substr(colon + 1));
    if (!is_field_value(value)) return ReadResult::reject(400, "invalid header field value");
    add_header(request.headers, index, to_lower(line.substr(0, colon)), value);
  }
  return apply_framing(request);
}

bool parse_flag(std::string_view value, bool& flag) {
  if (value == "1" || value == "true" || value.empty()) {
    flag = true;
  } else if (value == "0" || value == "false") {
    flag = false;
  } else {
    return false;
  }
  return true;
}

// Unknown parameters are ignored, so callers may add cache-busters and the like.
ReadResult parse_options(std::string_view query, Options& options) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    std::size_t eq = pair.find('=');
    std::string key = percent_decode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
    if (key == "status") {
      std::optional<uint64_t> status = parse_decimal(value);
      if (!status || *status < 200 || *status > 599) {
        return ReadResult::reject(400, "status must be 200 to 599");
      }
      options.status = static_cast<int>(*status);
    } else if (key == "delay_ms") {
      std::optional<uint64_t> delay = parse_decimal(value);
      if (!delay) return ReadResult::reject(400, "delay_ms must be a number");
      options.delay_ms = *delay;
    } else if (key == "size") {
      options.size = parse_decimal(value);
      if (!options.size) return ReadResult::reject(400, "size must be a number");
    } else if (key == "chunked" || key == "early_hints" || key == "close") {
      bool& flag = key == "chunked"       ? options.chunked
                   : key == "early_hints" ? options.early_hints
                                          : options.close;
      if (!parse_flag(value, flag)) return ReadResult::reject(400, "flags must be 1 or 0");
    } else if (key == "header") {
      std::size_t colon = value.find(':');
      if (colon == std::string::npos) return ReadResult::reject(400, "header must be NAME:VALUE");
      std::string_view name = std::string_view(value).substr(0, colon);
      std::string_view field = trim_ows(std::string_view(value).substr(colon + 1));
      if (!is_token(name) || !is_field_value(field)) {
        return ReadResult::reject(400, "header must be NAME:VALUE");
      }
      options.headers.emplace_back(std::string(name), std::string(field));
    }
  }
  return {};
}

// chunked-body (RFC 9112 section 7.1): sizes in hex, extensions and trailer
// fields read and ignored, data counted and dropped.
ReadResult read_chunked_body(ClientReader& reader, uint64_t& body_bytes) {
  while (true) {
    std::string_view line;
    if (ReadResult r = reader.read_line(line, kMaxChunkLineBytes); !r.ok()) return r;
    std::string_view digits = line.substr(0, line.find_first_of("; \t"));
    if (digits.empty() || digits.size() > 15) return ReadResult::reject(400, "bad chunk size");
    uint64_t size = 0;
    for (char c : digits) {
      int v = hex_value(c);
      if (v < 0) return ReadResult::reject(400, "bad chunk size");
      size = size * 16 + static_cast<uint64_t>(v);
    }
    if (size == 0) break;
    if (ReadResult r = reader.discard(size); !r.ok()) return r;
    body_bytes += size;
    if (ReadResult r = reader.read_line(line, 2); !r.ok()) {
      return r.lost() ? r : ReadResult::reject(400, "chunk data longer than its size");
    }
    if (!line.empty()) return ReadResult::reject(400, "chunk data longer than its size");
  }
  std::size_t trailer_bytes = 0;
  while (true) {
    std::string_view line;
    if (ReadResult r = reader.read_line(line, kMaxTrailerLineBytes); !r.ok()) return r;
    if (line.empty()) return {};
    trailer_bytes += line.size();
    if (trailer_bytes > kMaxHeadBytes) return ReadResult::reject(431, "trailer section too large");
  }
}

ReadResult read_body(ClientReader& reader, const Request& request, uint64_t& body_bytes) {
  body_bytes = 0;
  if (request.chunked) return read_chunked_body(reader, body_bytes);
  body_bytes = request.content_length;
  return reader.discard(request.content_length);
}

// ---------------------------------------------------------------------------
// Responses

std::string echo_body(const std::string& name, const Request& request, uint64_t body_bytes) {
  std::string json = "{\"backend\": ";
  append_json_string(json, name);
  json += ", \"method\": ";
  append_json_string(json, request.method);
  json += ", \"path\": ";
  append_json_string(json, request.path);
  json += ", \"query\": ";
  append_json_string(json, request.query);
  json += ", \"headers\": {";
  bool first = true;
  for (const auto& [header, value] : request.headers) {
    if (!first) json += ", ";
    first = false;
    append_json_string(json, header);
    json += ": ";
    append_json_string(json, value);
  }
  json += "}, \"body_bytes\": ";
  json += std::to_string(body_bytes);
  json += "}\n";
  return json;
}

enum class Framing { kNone, kContentLength, kChunked, kUntilClose };

struct ResponseHead {
  int status = 200;
  Framing framing = Framing::kContentLength;
  uint64_t content_length = 0;
  bool keep_alive = true;
  bool http10_keep_alive = false;  // an HTTP/1.0 client asked to keep the connection
};

std::string format_head(const std::string& name, const ResponseHead& response,
                        const std::vector<std::pair<std::string, std::string>>& extra) {
  std::string head = "HTTP/1.1 ";
  head += std::to_string(response.status);
  head += ' ';
  head += reason_phrase(response.status);
  head += "\r\nDate: ";
  head += http_date();
  head += "\r\nX-Backend: ";
  head += name;
  head += "\r\n";
  bool has_content_type = false;
  for (const auto& [field, value] : extra) {
    has_content_type = has_content_type || iequals(field, "content-type");
    head += field;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  if (!has_content_type) head += "Content-Type: application/json\r\n";
  if (response.framing == Framing::kContentLength) {
    head += "Content-Length: " + std::to_string(response.content_length) + "\r\n";
  } else if (response.framing == Framing::kChunked) {
    head += "Transfer-Encoding: chunked\r\n";
  }
  if (!response.keep_alive) {
    head += "Connection: close\r\n";
  } else if (response.http10_keep_alive) {
    head += "Connection: keep-alive\r\n";
  }
  head += "\r\n";
  return head;
}

std::string chunk_size_line(uint64_t size) {
  char line[32];
  int n = std::snprintf(line, sizeof line, "%llx\r\n", static_cast<unsigned long long>(size));
  return std::string(line, static_cast<std::size_t>(n));
}

// Head and body in one gather write.
bool send_with_body(int fd, const std::string& head, std::string_view body, Framing framing) {
  if (framing != Framing::kChunked) {
    iovec iov[2] = {as_iovec(head), as_iovec(body)};
    return send_all(fd, iov, 2);
  }
  std::string size_line = chunk_size_line(body.size());
  iovec iov[4] = {as_iovec(head), as_iovec(size_line), as_iovec(body), as_iovec("\r\n0\r\n\r\n")};
  return send_all(fd, iov, 4);
}

// `size` bytes of 'x' from the shared block, so a 1 GiB body costs no memory.
bool send_fill(int fd, uint64_t size, Framing framing) {
  const std::string& block = fill_block();
  while (size > 0) {
    std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(size, block.size()));
    std::string_view data(block.data(), n);
    bool sent;
    if (framing == Framing::kChunked) {
      std::string size_line = chunk_size_line(n);
      iovec iov[3] = {as_iovec(size_line), as_iovec(data), as_iovec("\r\n")};
      sent = send_all(fd, iov, 3);
    } else {
      iovec iov = as_iovec(data);
      sent = send_all(fd, &iov, 1);
    }
    if (!sent) return false;
    size -= n;
  }
  return framing != Framing::kChunked || send_text(fd, "0\r\n\r\n");
}

bool send_error(int fd, const std::string& name, const ReadResult& error) {
  std::string body = "{\"backend\": ";
  append_json_string(body, name);
  body += ", \"error\": ";
  append_json_string(body, error.detail);
  body += "}\n";
  ResponseHead response;
  response.status = error.status;
  response.content_length = body.size();
  response.keep_alive = false;
  return send_with_body(fd, format_head(name, response, {}), body, Framing::kContentLength);
}

// How the body is delimited. 204 and 304 never have one (RFC 9110 sections
// 15.3.5 and 15.4.5), not even a Content-Length.
void choose_framing(const Request& request, const Options& options, uint64_t length,
                    ResponseHead& response) {
  if (options.status == 204 || options.status == 304) {
    response.framing = Framing::kNone;
  } else if (options.chunked && request.minor_version == 1) {
    response.framing = Framing::kChunked;
  } else if (options.chunked) {
    // An HTTP/1.0 client cannot read chunked; end the body by closing instead.
    response.framing = Framing::kUntilClose;
    response.keep_alive = false;
    response.http10_keep_alive = false;
  } else {
    response.framing = Framing::kContentLength;
    response.content_length = length;
  }
}

// Answers one fully read request. Returns false when the connection must end.
bool respond(int fd, const std::string& name, const Request& request, const Options& options,
             uint64_t body_bytes) {
  if (options.early_hints && request.minor_version == 1) {
    // RFC 9110 section 15.2: no 1xx for an HTTP/1.0 client.
    if (!send_text(
            fd, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n")) {
      return false;
    }
  }
  if (options.delay_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(options.delay_ms));
  }

  ResponseHead response;
  response.status = options.status;
  response.keep_alive = request.keep_alive;
  for (const auto& [field, value] : options.headers) {
    if (iequals(field, "connection") && list_contains(value, "close")) response.keep_alive = false;
  }
  response.http10_keep_alive = request.minor_version == 0 && response.keep_alive;

  std::string body;
  if (!options.size) body = echo_body(name, request, body_bytes);
  const uint64_t length = options.size ? *options.size : body.size();
  choose_framing(request, options, length, response);

  std::string head = format_head(name, response, options.headers);
  if (response.framing == Framing::kNone || request.method == "HEAD") {
    return send_text(fd, head) && response.keep_alive;
  }
  if (!options.size) return send_with_body(fd, head, body, response.framing) && response.keep_alive;
  return send_text(fd, head) && send_fill(fd, length, response.framing) && response.keep_alive;
}

// Half-closes, then drains what the client still sends for a moment, so that
// the response is not lost to a RST (see kLingerSeconds).
void lingering_close(int fd) {
  ::shutdown(fd, SHUT_WR);
  timeval timeout{kLingerSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kLingerSeconds);
  char scratch[16384];
  while (std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::recv(fd, scratch, sizeof scratch, 0);
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
}

void serve_connection(int fd, const std::string& name) {
  ClientReader reader(fd);
  while (true) {
    std::string_view head;
    ReadResult result = reader.read_head(head);
    Request request;
    if (result.ok()) result = parse_request(head, request);
    if (result.lost()) return;
    if (!result.ok()) {
      if (send_error(fd, name, result)) lingering_close(fd);
      return;
    }

    Options options;
    ReadResult bad_options = parse_options(request.query, options);
    if (request.expect_continue && (request.chunked || request.content_length > 0) &&
        !send_text(fd, "HTTP/1.1 100 Continue\r\n\r\n")) {
      return;
    }
    uint64_t body_bytes = 0;
    result = read_body(reader, request, body_bytes);
    if (result.lost()) return;
    if (!result.ok()) {
      if (send_error(fd, name, result)) lingering_close(fd);
      return;
    }
    if (!bad_options.ok()) {
      if (send_error(fd, name, bad_options)) lingering_close(fd);
      return;
    }
    if (options.close) return;
    if (!respond(fd, name, request, options, body_bytes)) {
      lingering_close(fd);
      return;
    }
  }
}

void connection_thread(int fd, std::string name) {
  FileDescriptor socket(fd);
  try {
    serve_connection(fd, name);
  } catch (const std::exception& e) {
    // Out of memory or threads: lose this connection, keep the server.
    std::fprintf(stderr, "demo-backend: connection dropped: %s\n", e.what());
  }
}

void configure_client_socket(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  timeval timeout{kSocketTimeoutSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

// ---------------------------------------------------------------------------
// Listening

struct ListenAddress {
  std::string host;
  std::string port;
};

// "HOST:PORT" or "[V6]:PORT".
std::optional<ListenAddress> parse_listen(std::string_view text) {
  ListenAddress address;
  std::size_t colon;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    address.host = std::string(text.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    address.host = std::string(text.substr(0, colon));
  }
  address.port = std::string(text.substr(colon + 1));
  std::optional<uint64_t> port = parse_decimal(address.port);
  if (address.host.empty() || !port || *port > 65535) return std::nullopt;
  return address;
}

std::string describe(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "";
  if (addr.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(addr);
    ::inet_ntop(AF_INET6, &v6.sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(v6.sin6_port));
  }
  const auto& v4 = reinterpret_cast<const sockaddr_in&>(addr);
  ::inet_ntop(AF_INET, &v4.sin_addr, host, sizeof host);
  return std::string(host) + ":" + std::to_string(ntohs(v4.sin_port));
}

// Returns a listening socket, or -1 after printing why not.
int open_listener(const ListenAddress& address) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(address.host.c_str(), address.port.c_str(), &hints, &found); rc != 0) {
    std::fprintf(stderr, "demo-backend: %s: %s\n", address.host.c_str(), ::gai_strerror(rc));
    return -1;
  }
  int error = 0;
  int fd = -1;
  for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
      error = errno;
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) {
    std::fprintf(stderr, "demo-backend: cannot listen on %s:%s: %s\n", address.host.c_str(),
                 address.port.c_str(), std::strerror(error));
  }
  return fd;
}

[[noreturn]] void accept_forever(int listener, const std::string& name) {
  while (true) {
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors or memory: wait for connections to finish instead
      // of spinning. Anything else (an aborted handshake) concerns one client.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      continue;
    }
    configure_client_socket(fd);
    try {
      std::thread(connection_thread, fd, name).detach();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "demo-backend: cannot start a thread: %s\n", e.what());
      ::close(fd);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

int usage(const char* problem) {
  if (problem != nullptr) std::fprintf(stderr, "demo-backend: %s\n", problem);
  std::fprintf(stderr, "usage: demo-backend --listen HOST:PORT [--name NAME]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<ListenAddress> listen;
  std::string name = kDefaultName;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    if (std::size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if ((arg == "--listen" || arg == "--name") && i + 1 < argc) {
      value = argv[++i];
    }
    if (arg == "--help" || arg == "-h") return usage(nullptr);
    if (arg == "--listen") {
      listen = parse_listen(value);
      if (!listen) return usage("--listen wants HOST:PORT or [IPV6]:PORT");
    } else if (arg == "--name") {
      if (value.empty() || !is_field_value(value)) return usage("--name wants a printable name");
      name = std::string(value);
    } else {
      return usage(("unknown argument " + std::string(arg)).c_str());
    }
  }
  if (!listen) return usage("--listen is required");

  std::signal(SIGPIPE, SIG_IGN);
  int listener = open_listener(*listen);
  if (listener < 0) return 1;
  sockaddr_storage bound{};
  socklen_t bound_size = sizeof bound;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&bound), &bound_size);
  std::printf("listening on %s\n", describe(bound).c_str());
  std::fflush(stdout);
  accept_forever(listener, name);
}
