// libFuzzer target for the HTTP/1 head parser, the chunked decoder and path
// normalization: everything a client or an upstream controls before routing.
//
// Besides crashes and sanitizer reports it checks invariants that, broken,
// would mean a smuggling or routing bug: accepted heads never carry two
// Content-Lengths or CL with TE, views stay inside the input, the early
// request-line check never refuses what the full parser accepts, chunked
// decoding does not depend on how the bytes were split, and a normalized path
// starts with '/' and has no dot segment.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"
#include "http/path.h"

namespace {

using namespace gatehouse::http;

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "invariant broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

// Piece sizes for incremental feeding, derived from the input so that a
// crashing input replays exactly.
class Splitter {
 public:
  Splitter(const uint8_t* data, std::size_t size) {
    state_ = 0xcbf29ce484222325ull;
    for (std::size_t i = 0; i < size; ++i) state_ = (state_ ^ data[i]) * 0x100000001b3ull;
    if (state_ == 0) state_ = 1;
  }
  std::size_t next(std::size_t left) {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    // Mostly small pieces (where boundaries fall inside framing), sometimes big.
    std::size_t n = (state_ & 7) == 0 ? 1 + (state_ >> 8) % 4096 : 1 + (state_ >> 8) % 8;
    return n < left ? n : left;
  }

 private:
  uint64_t state_;
};

bool inside(std::string_view v, const char* base, std::size_t size) {
  if (v.empty()) return true;
  return v.data() >= base && v.data() + v.size() <= base + size;
}

bool has_ctl(std::string_view v) {
  for (char c : v) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return true;
  }
  return false;
}

void check_path(std::string_view path) {
  static std::string out, again;
  normalize_path(path, out);
  FUZZ_CHECK(!out.empty() && out[0] == '/');
  FUZZ_CHECK(!has_dot_segment(out));
  normalize_path(out, again);
  FUZZ_CHECK(again == out);  // idempotent: routing and upstream see the same path
}

void check_headers(const Header* headers, std::size_t count, const char* base, std::size_t size) {
  FUZZ_CHECK(count <= kMaxHeaders);
  for (std::size_t i = 0; i < count; ++i) {
    FUZZ_CHECK(!headers[i].name.empty());
    FUZZ_CHECK(inside(headers[i].name, base, size));
    FUZZ_CHECK(inside(headers[i].value, base, size));
    FUZZ_CHECK(!has_ctl(headers[i].name) && !has_ctl(headers[i].value));
    if (!headers[i].value.empty()) {
      FUZZ_CHECK(headers[i].value.front() != ' ' && headers[i].value.front() != '\t');
      FUZZ_CHECK(headers[i].value.back() != ' ' && headers[i].value.back() != '\t');
    }
  }
}

// Framing facts of an accepted message must be unambiguous.
void check_framing(const Header* headers, std::size_t count, const HeadFacts& facts) {
  int cl = 0, te = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (iequals(headers[i].name, "content-length")) {
      ++cl;
      for (char c : headers[i].value) FUZZ_CHECK(c >= '0' && c <= '9');
    }
    if (iequals(headers[i].name, "transfer-encoding")) ++te;
  }
  FUZZ_CHECK(cl <= 1 && te <= 1 && !(cl && te));
  if (te) FUZZ_CHECK(facts.body == BodyKind::kChunked);
  if (facts.body == BodyKind::kChunked) FUZZ_CHECK(te == 1);
  if (facts.body == BodyKind::kLength) FUZZ_CHECK(cl == 1 && facts.content_length > 0);
}

void check_request(const char* base, std::size_t size, std::size_t head_size) {
  auto head = std::make_unique<RequestHead>();
  ParseError err;
  ParseStatus s = parse_request_head(base, head_size, *head, err);
  FUZZ_CHECK(s == ParseStatus::kComplete || s == ParseStatus::kError);

  // The early check must agree with the full parse on the request line.
  ParseError early_err;
  ParseStatus early = check_request_line(base, size, early_err);
  FUZZ_CHECK(early != ParseStatus::kIncomplete);  // the head has a complete first line
  if (early == ParseStatus::kError) {
    FUZZ_CHECK(s == ParseStatus::kError && err.status == early_err.status);
  }

  if (s == ParseStatus::kError) {
    FUZZ_CHECK(err.status >= 400 && err.status <= 599 && !err.detail.empty());
    return;
  }
  const RequestHead& h = *head;
  FUZZ_CHECK(h.head_size == head_size);
  FUZZ_CHECK(h.minor_version == 0 || h.minor_version == 1);
  FUZZ_CHECK(!h.method.empty() && inside(h.method, base, head_size));
  FUZZ_CHECK(!h.target.empty() && inside(h.target, base, head_size));
  FUZZ_CHECK(inside(h.query, base, head_size));
  FUZZ_CHECK(inside(h.authority, base, head_size));
  FUZZ_CHECK(inside(h.host, base, head_size));
  FUZZ_CHECK(inside(h.request_id, base, head_size));
  FUZZ_CHECK(!h.path.empty());
  // Absolute-form without a path gets a static "/".
  FUZZ_CHECK(inside(h.path, base, head_size) || (h.path == "/" && !h.authority.empty()));
  if (h.minor_version == 1) FUZZ_CHECK(!h.host.empty());
  if (!h.has_query) FUZZ_CHECK(h.query.empty());
  FUZZ_CHECK(h.method != "CONNECT");
  check_headers(h.headers, h.header_count, base, head_size);
  check_framing(h.headers, h.header_count, h.facts);
  if (h.minor_version == 0) FUZZ_CHECK(h.facts.body != BodyKind::kChunked && !h.expect_continue);
  if (h.path == "*") {
    FUZZ_CHECK(h.method == "OPTIONS");
  } else {
    FUZZ_CHECK(h.path[0] == '/');
    check_path(h.path);
  }
}

void check_response(const char* base, std::size_t head_size) {
  auto head = std::make_unique<ResponseHead>();
  ParseError err;
  ParseStatus s = parse_response_head(base, head_size, *head, err);
  FUZZ_CHECK(s == ParseStatus::kComplete || s == ParseStatus::kError);
  if (s == ParseStatus::kError) {
    FUZZ_CHECK(err.status == 502 && !err.detail.empty());
    return;
  }
  const ResponseHead& h = *head;
  FUZZ_CHECK(h.status >= 100 && h.status <= 599);
  FUZZ_CHECK(h.head_size == head_size);
  FUZZ_CHECK(inside(h.reason, base, head_size) && !has_ctl(h.reason));
  check_headers(h.headers, h.header_count, base, head_size);
  check_framing(h.headers, h.header_count, h.facts);
  for (bool was_head : {false, true}) {
    BodyKind k = response_body_kind(h, was_head);
    if (was_head || h.status < 200 || h.status == 204 || h.status == 304) {
      FUZZ_CHECK(k == BodyKind::kNone);
    } else {
      FUZZ_CHECK(k == h.facts.body);
    }
  }
}

struct Chunked {
  ChunkedDecoder::Result result = ChunkedDecoder::Result::kNeedMore;
  std::size_t consumed = 0;
  uint64_t payload = 0;
};

// Feeds `body` to a decoder in pieces (`split` null: all at once). With
// `out`, decodes in place into the same buffer (the aliasing case) or into
// `out` when it is a separate buffer, and returns the decoded length too.
Chunked run_chunked(char* body, std::size_t size, Splitter* split, char* out,
                    std::size_t* out_len) {
  ChunkedDecoder dec;
  Chunked r;
  std::size_t off = 0;
  while (off < size) {
    std::size_t n = split ? split->next(size - off) : size - off;
    std::size_t consumed = 0;
    uint64_t before = r.payload;
    std::size_t out_before = out_len ? *out_len : 0;
    r.result = out ? dec.decode(body + off, n, consumed, r.payload, out, *out_len)
                   : dec.feed(body + off, n, consumed, r.payload);
    if (out) FUZZ_CHECK(*out_len - out_before == r.payload - before);
    if (r.result == ChunkedDecoder::Result::kError) {
      FUZZ_CHECK(!dec.error().empty() && !dec.done());
      return r;
    }
    FUZZ_CHECK(consumed <= n);
    FUZZ_CHECK(r.payload - before <= consumed);
    r.consumed += consumed;
    if (r.result == ChunkedDecoder::Result::kDone) {
      FUZZ_CHECK(dec.done());
      std::size_t again = 123;
      uint64_t p = r.payload;
      FUZZ_CHECK(dec.feed(body + off, n, again, p) == ChunkedDecoder::Result::kDone);
      FUZZ_CHECK(again == 0 && p == r.payload);
      return r;
    }
    FUZZ_CHECK(consumed == n);  // only kDone leaves bytes for the next message
    off += n;
  }
  return r;
}

void check_chunked(const char* data, std::size_t size, Splitter& split) {
  if (size == 0) return;  // and memcmp below never sees a null vector buffer
  std::vector<char> whole_buf(data, data + size);
  Chunked whole = run_chunked(whole_buf.data(), size, nullptr, nullptr, nullptr);
  FUZZ_CHECK(whole.payload <= size);

  std::vector<char> piece_buf(data, data + size);
  Chunked pieces = run_chunked(piece_buf.data(), size, &split, nullptr, nullptr);
  FUZZ_CHECK(pieces.result == whole.result && pieces.payload == whole.payload);
  if (whole.result != ChunkedDecoder::Result::kError) FUZZ_CHECK(pieces.consumed == whole.consumed);

  // Decoding into a separate buffer, whole.
  std::vector<char> src(data, data + size);
  std::vector<char> out(size + 1);
  std::size_t out_len = 0;
  Chunked copied = run_chunked(src.data(), size, nullptr, out.data(), &out_len);
  FUZZ_CHECK(copied.result == whole.result && copied.payload == whole.payload);
  FUZZ_CHECK(out_len == whole.payload);
  FUZZ_CHECK(std::memcmp(src.data(), data, size) == 0);  // input left alone

  // Decoding in place, in pieces: same bytes out.
  std::vector<char> in_place(data, data + size);
  std::size_t in_place_len = 0;
  Chunked aliased = run_chunked(in_place.data(), size, &split, in_place.data(), &in_place_len);
  FUZZ_CHECK(aliased.result == whole.result && aliased.payload == whole.payload);
  FUZZ_CHECK(in_place_len == out_len);
  FUZZ_CHECK(std::memcmp(in_place.data(), out.data(), out_len) == 0);
}

// find_head_end must give the same answer however the bytes arrive.
std::size_t check_head_end(const char* data, std::size_t size, Splitter& split) {
  std::size_t scanned = 0;
  const std::size_t once = find_head_end(data, size, scanned);
  FUZZ_CHECK(once == kBareLf || once <= size);
  if (once != 0 && once != kBareLf) {
    FUZZ_CHECK(once >= 4 && std::memcmp(data + once - 4, "\r\n\r\n", 4) == 0);
  }
  scanned = 0;
  std::size_t n = 0;
  std::size_t got = 0;
  while (n < size) {
    n += split.next(size - n);
    got = find_head_end(data, n, scanned);
    FUZZ_CHECK(scanned <= n);
    if (got != 0) break;
  }
  FUZZ_CHECK(got == once);
  return once;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, std::size_t size) {
  const char* data = reinterpret_cast<const char*>(bytes);
  Splitter split(bytes, size);

  std::size_t head_size = check_head_end(data, size, split);
  std::size_t body_start = 0;
  if (head_size != 0 && head_size != kBareLf) {
    check_request(data, size, head_size);
    check_response(data, head_size);
    body_start = head_size;
  }
  check_chunked(data + body_start, size - body_start, split);
  return 0;
}
