// Strict HTTP/1.1 message-head parser and chunked-body decoder (RFC 9112).
//
// Written by hand rather than taken from a library: the gateway must reject
// every ambiguous message (request smuggling vectors) instead of guessing,
// parse in place with no allocation, and report a status per rejection.
// llhttp/picohttpparser are lenient where we must not be, and are not in
// Debian 12 as well-kept -dev packages. Every rule cites the RFC section.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace gatehouse::http {

struct Header {
  std::string_view name;
  std::string_view value;
};

inline constexpr std::size_t kMaxHeaders = 100;

enum class BodyKind : uint8_t { kNone, kLength, kChunked, kUntilClose };

// Why a message was refused: the status to answer with and a short detail
// for the problem body, the access log and the rejection counter.
struct ParseError {
  int status = 0;
  std::string_view detail;
};

enum class ParseStatus : uint8_t { kComplete, kIncomplete, kError };

// Header-derived facts common to requests and responses.
struct HeadFacts {
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool connection_close = false;
  bool connection_keep_alive = false;
  std::string_view connection_tokens;  // raw Connection value(s) if one header
  int connection_header_count = 0;
};

struct RequestHead {
  std::string_view method;
  std::string_view target;  // the request-target as sent
  std::string_view path;    // raw path (absolute-form: the path part); no query
  std::string_view query;   // without '?'; empty when none
  bool has_query = false;
  std::string_view authority;  // absolute-form only
  int minor_version = 1;       // HTTP/1.x
  Header headers[kMaxHeaders];
  std::size_t header_count = 0;
  std::string_view host;  // Host header (or absolute-form authority)
  std::string_view request_id;
  HeadFacts facts;
  bool expect_continue = false;
  bool keep_alive = true;     // after Connection/version rules
  std::size_t head_size = 0;  // bytes of the head, including the final CRLF CRLF
  // Where the last field line ends (its CRLF included), when the fields were
  // parsed from text still in place: see append_kept_fields.
  const char* fields_end = nullptr;

  // Back to the default state without touching the header array (3 KiB that
  // the next parse overwrites anyway): heads are reused per request.
  void reset();
};

struct ResponseHead {
  int status = 0;
  int minor_version = 1;
  std::string_view reason;
  Header headers[kMaxHeaders];
  std::size_t header_count = 0;
  HeadFacts facts;
  bool keep_alive = true;
  std::size_t head_size = 0;
  const char* fields_end = nullptr;  // as in RequestHead

  void reset();
};

// Finds the end of a head ("\r\n\r\n") in data[0, size). `scanned` carries the
// search position across calls so bytes are looked at about once. Returns the
// head size, 0 when not complete yet, or kBareLf when a line ends in a bare
// LF (refused: RFC 9112 2.2 allows it, but it is where parsers disagree).
inline constexpr std::size_t kBareLf = static_cast<std::size_t>(-1);
std::size_t find_head_end(const char* data, std::size_t size, std::size_t& scanned);

// While a head is incomplete: refuses early a request line that can never
// become valid (HTTP/0.9 "GET /", an unknown protocol...) instead of waiting
// for the rest of a head that will not come. kIncomplete: no full line yet.
ParseStatus check_request_line(const char* data, std::size_t size, ParseError& err);

// Parses a complete request head of `size` bytes (as found by find_head_end).
ParseStatus parse_request_head(const char* data, std::size_t size, RequestHead& out,
                               ParseError& err);

// Parses a complete response head. Bodies: `request_method_head` and 1xx/204/304
// are the caller's business (see response_body_kind).
ParseStatus parse_response_head(const char* data, std::size_t size, ResponseHead& out,
                                ParseError& err);

// RFC 9112 6.3: how the response body is framed, given the request.
BodyKind response_body_kind(const ResponseHead& head, bool request_was_head);

// RFC 9110 5.6.2: a non-empty run of tchar (header names, methods, codings).
bool is_token(std::string_view s);

// RFC 9110 5.5: only VCHAR, obs-text, SP and HTAB; no CR, LF, NUL or other
// control characters (which would let a value smuggle in another header).
bool is_field_value(std::string_view s);

// Case-insensitive ASCII comparison for header names and tokens.
bool iequals(std::string_view a, std::string_view b);

namespace detail {
inline uint64_t load8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

// ASCII lower case of every byte of a word; other bytes unchanged.
constexpr uint64_t lower8(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  uint64_t low7 = w & ~kHigh;
  uint64_t above_z = low7 + kOnes * (0x7f - 'Z');  // high bit set when byte > 'Z'
  uint64_t from_a = low7 + kOnes * (0x80 - 'A');   // high bit set when byte >= 'A'
  uint64_t upper = (from_a ^ above_z) & ~w & kHigh;
  return w | (upper >> 2);
}

constexpr char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
}  // namespace detail

// The same against a string literal (iequals(name, "content-length")), the
// usual case on the hot path: inlined with the length known, the literal's
// side folds to constants and only `a` is lowered, a word at a time.
template <std::size_t N>
inline bool iequals(std::string_view a, const char (&literal)[N]) {
  constexpr std::size_t n = N - 1;
  if (a.size() != n) return false;
  const char* p = a.data();
  if constexpr (n >= 8) {
    for (std::size_t i = 0;; i += 8) {
      if (i + 8 > n) i = n - 8;  // the last word overlaps the one before
      if (detail::lower8(detail::load8(p + i)) != detail::lower8(detail::load8(literal + i)))
        return false;
      if (i + 8 == n) return true;
    }
  } else {
    for (std::size_t i = 0; i < n; ++i)
      if (detail::lower(p[i]) != detail::lower(literal[i])) return false;
    return true;
  }
}

// Without leading and trailing SP and HTAB (RFC 9110 5.6.3, OWS).
inline std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Splits a comma-separated list (RFC 9110 5.6.1); calls f(token) per element,
// trimmed, empty elements included so that callers can reject them where
// they matter.
template <typename F>
void for_each_list_item(std::string_view v, F&& f) {
  while (true) {
    std::size_t comma = v.find(',');
    f(trim_ows(v.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    v.remove_prefix(comma + 1);
  }
}

// True when `name` is hop-by-hop (RFC 9110 7.6.1) or listed in `connection`.
bool is_hop_by_hop(std::string_view name, std::string_view connection_tokens);

// The hop-by-hop filter for one message: the fixed list plus the names listed
// in every Connection field of that message (there may be several).
class HopByHop {
 public:
  HopByHop(const Header* headers, std::size_t count);
  // From a parsed head, whose Connection fields the parser counted: with none
  // or one (the usual cases) the fields need no second scan.
  template <typename Head>
  explicit HopByHop(const Head& head) {
    if (head.fields_end == nullptr || head.facts.connection_header_count > 1) {
      scan(head.headers, head.header_count);
    } else if (head.facts.connection_header_count == 1) {
      add(head.facts.connection_tokens);
    }
  }

  // Inline for the usual name, which no rule can match by its length alone.
  bool drops(std::string_view name) const {
    std::size_t bit = name.size() < 64 ? name.size() : 63;
    if (((kFixedLengths | listed_lengths_) >> bit & 1) == 0) return overflow_;
    return drops_by_name(name);
  }

 private:
  // Lengths of the names is_hop_by_hop always drops: te, trailer, upgrade,
  // connection, keep-alive, proxy-connection, transfer-encoding,
  // proxy-authenticate, proxy-authorization.
  static constexpr uint64_t kFixedLengths =
      uint64_t{1} << 2 | uint64_t{1} << 7 | uint64_t{1} << 10 | uint64_t{1} << 16 |
      uint64_t{1} << 17 | uint64_t{1} << 18 | uint64_t{1} << 19;
  void scan(const Header* headers, std::size_t count);
  void add(std::string_view connection_value);
  bool drops_by_name(std::string_view name) const;

  static constexpr std::size_t kMaxConnectionFields = 8;
  std::string_view connection_[kMaxConnectionFields];
  std::size_t count_ = 0;
  uint64_t listed_lengths_ = 0;  // bit n: a listed token has n bytes (63: 63 or more)
  bool overflow_ = false;        // more Connection fields than we track: drop all non-essential
};

// Appends "name: value\r\n".
// Out: std::string or HeadWriter.
template <typename Out>
inline void append_field(Out& out, std::string_view name, std::string_view value) {
  using namespace std::string_view_literals;
  out.append(name).append(": "sv).append(value).append("\r\n"sv);
}

// Appends the field lines of `head` for which keep(header) is true. Lines
// parsed from text still in place (fields_end set) are copied as they arrived,
// each run of consecutive kept lines in one copy; their bytes were validated
// by the parser (a value's surrounding whitespace is forwarded as sent, which
// RFC 9110 5.5 lets a recipient ignore). Other heads are written field by
// field.
template <typename Out, typename Head, typename Keep>
void append_kept_fields(Out& out, const Head& head, Keep&& keep) {
  const Header* h = head.headers;
  const std::size_t n = head.header_count;
  if (head.fields_end == nullptr) {
    for (std::size_t i = 0; i < n; ++i) {
      if (keep(h[i])) append_field(out, h[i].name, h[i].value);
    }
    return;
  }
  const char* run = nullptr;  // first byte of the current run of kept lines
  for (std::size_t i = 0; i < n; ++i) {
    if (keep(h[i])) {
      if (run == nullptr) run = h[i].name.data();
    } else if (run != nullptr) {
      out.append(run, static_cast<std::size_t>(h[i].name.data() - run));
      run = nullptr;
    }
  }
  if (run != nullptr) out.append(run, static_cast<std::size_t>(head.fields_end - run));
}

// Incremental validator of chunked transfer coding (RFC 9112 7.1). Feed it the
// raw bytes in order; it reports how many of them belong to the body (framing
// included, so the caller can pass validated bytes through unchanged), and
// how many are payload.
class ChunkedDecoder {
 public:
  enum class Result : uint8_t { kNeedMore, kDone, kError };

  // Consumes up to `size` bytes. `consumed` is how many bytes belong to the
  // chunked body (less than size only when kDone: the rest is the next
  // message). `payload` gains the payload bytes among them.
  Result feed(const char* data, std::size_t size, std::size_t& consumed, uint64_t& payload);
  // Same, and also copies the payload bytes to `out` (which may alias data:
  // the payload never runs ahead of the input), appending at out[out_len].
  Result decode(char* data, std::size_t size, std::size_t& consumed, uint64_t& payload, char* out,
                std::size_t& out_len);
  std::string_view error() const { return error_; }
  bool done() const { return state_ == State::kDone; }
  // From now on, appends the trailer section's field lines to *out as they
  // pass ("Name: value\r\n" each, as received; null: stop). gRPC-Web turns
  // them into its trailer frame.
  void capture_trailers(std::string* out) { trailers_ = out; }

 private:
  enum class State : uint8_t {
    kSize,
    kExtension,
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kTrailerStart,
    kTrailerName,
    kTrailerLine,
    kTrailerLf,
    kFinalLf,
    kDone,
  };
  Result fail(std::string_view why);
  Result run(const char* data, std::size_t size, std::size_t& consumed, uint64_t& payload,
             char* out, std::size_t* out_len);

  State state_ = State::kSize;
  uint64_t remaining_ = 0;
  int size_digits_ = 0;
  std::size_t line_bytes_ = 0;  // bytes on the current size/extension/trailer line
  std::size_t trailer_bytes_ = 0;
  std::string_view error_;
  std::string* trailers_ = nullptr;
};

}  // namespace gatehouse::http
