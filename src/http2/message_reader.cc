#include "http2/message_reader.h"

#include <algorithm>
#include <cstring>

namespace gatehouse::http2 {
namespace {

// Bounds on framing text: a chunk-size line or a trailer section is a few
// bytes in practice; unbounded ones are a memory and time attack (the same
// limits as http::ChunkedDecoder).
constexpr std::size_t kMaxChunkLine = 4096;
constexpr std::size_t kMaxTrailerSection = 16384;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Lowercases the names of the field lines (not the start line) in place;
// the parser's views then see lowercase names, which HTTP/2 requires.
void lowercase_field_names(std::string& head) {
  std::size_t i = head.find('\n');
  while (i != std::string::npos && i + 1 < head.size()) {
    std::size_t j = i + 1;
    while (j < head.size() && head[j] != ':' && head[j] != '\r') {
      head[j] = to_lower(head[j]);
      ++j;
    }
    i = head.find('\n', j);
  }
}

}  // namespace

MessageReader::Status MessageReader::fail(std::string_view why) {
  phase_ = Phase::kFailed;
  error_ = why;
  return Status::kError;
}

MessageReader::Status MessageReader::read(std::string_view in, std::size_t& used) {
  used = 0;
  while (used < in.size()) {
    std::string_view rest = in.substr(used);
    std::size_t room = max_ - std::min(max_, buffered());
    std::size_t n = 0;
    switch (phase_) {
      case Phase::kHead: {
        Status s = read_head(rest, n);
        used += n;
        if (s != Status::kMore) return s;
        break;
      }
      case Phase::kHeadReady:
        return Status::kHead;
      case Phase::kLength:
        n = std::min<uint64_t>({rest.size(), room, remaining_});
        if (n == 0) return Status::kMore;
        append_payload(rest.data(), n);
        remaining_ -= n;
        used += n;
        if (remaining_ == 0) phase_ = Phase::kDone;
        break;
      case Phase::kUntilClose:
        n = std::min(rest.size(), room);
        if (n == 0) return Status::kMore;
        append_payload(rest.data(), n);
        used += n;
        break;
      case Phase::kChunked:
        // Input is bounded by the payload room: the payload of a chunk never
        // outgrows the bytes that carry it.
        if (room == 0) return Status::kMore;
        used += read_chunked(rest.substr(0, room));
        if (phase_ == Phase::kFailed) return Status::kError;
        break;
      case Phase::kDone:
        used = in.size();
        return Status::kMore;
      case Phase::kFailed:
        return Status::kError;
    }
  }
  return Status::kMore;
}

MessageReader::Status MessageReader::read_head(std::string_view in, std::size_t& used) {
  // Appends in slices so that a head arriving with a large body behind it
  // costs at most one slice of needless copying, not max_ bytes.
  constexpr std::size_t kSlice = 1024;
  used = 0;
  while (used < in.size()) {
    std::size_t n = std::min({kSlice, max_ - std::min(max_, head_.size()), in.size() - used});
    if (n == 0) return fail("message head too large");
    std::size_t old = head_.size();
    head_.append(in.data() + used, n);
    std::size_t end = http::find_head_end(head_.data(), head_.size(), head_scanned_);
    if (end == http::kBareLf) return fail("bare LF in message head");
    if (end != 0) {
      head_.resize(end);
      used += end - old;
      lowercase_field_names(head_);
      phase_ = Phase::kHeadReady;
      return Status::kHead;
    }
    used += n;
  }
  if (head_.size() >= max_) return fail("message head too large");
  return Status::kMore;
}

void MessageReader::begin_body(http::BodyKind kind, uint64_t length) {
  std::string().swap(head_);  // the head lives in the HPACK encoder now
  head_scanned_ = 0;
  switch (kind) {
    case http::BodyKind::kNone:
      phase_ = Phase::kDone;
      break;
    case http::BodyKind::kLength:
      remaining_ = length;
      phase_ = length == 0 ? Phase::kDone : Phase::kLength;
      break;
    case http::BodyKind::kChunked:
      remaining_ = 0;
      chunk_ = Chunk::kSize;
      phase_ = Phase::kChunked;
      break;
    case http::BodyKind::kUntilClose:
      phase_ = Phase::kUntilClose;
      break;
  }
}

void MessageReader::await_head() {
  head_.clear();
  head_scanned_ = 0;
  phase_ = Phase::kHead;
}

void MessageReader::set_complete_body(std::string_view payload) {
  std::string().swap(head_);
  buf_.assign(payload);
  pos_ = 0;
  phase_ = Phase::kDone;
}

bool MessageReader::end_of_input() {
  if (phase_ == Phase::kUntilClose) phase_ = Phase::kDone;
  return phase_ == Phase::kDone;
}

void MessageReader::append_payload(const char* data, std::size_t n) {
  // Keeps the buffer within about max_ bytes: drained bytes at the front go
  // before it would grow past that.
  if (pos_ > 0 && buf_.size() + n > max_) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, n);
}

std::size_t MessageReader::take(uint8_t* out, std::size_t max) {
  std::size_t n = std::min(max, buffered());
  std::memcpy(out, buf_.data() + pos_, n);
  pos_ += n;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return n;
}

std::size_t MessageReader::chunk_error(std::string_view why, std::size_t at) {
  fail(why);
  return at;
}

std::size_t MessageReader::read_chunked(std::string_view in) {
  // RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF;
  // last-chunk = 1*"0" [ chunk-ext ] CRLF, then trailer-section CRLF.
  std::size_t i = 0;
  while (i < in.size()) {
    char c = in[i];
    switch (chunk_) {
      case Chunk::kSize: {
        // size_digits_ is -1 once whitespace followed the size: only more
        // whitespace, ";" or CRLF may come ("5 6" is refused, not size 5).
        int v = hex_value(c);
        if (v >= 0 && size_digits_ >= 0) {
          // 15 hex digits = 2^60 bytes: anything longer is an overflow attempt.
          if (++size_digits_ > 15) return chunk_error("chunk size overflow", i);
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
        } else if (size_digits_ == 0) {
          return chunk_error("malformed chunk size", i);
        } else if (c == ' ' || c == '\t') {
          size_digits_ = -1;
          if (++line_bytes_ > kMaxChunkLine) return chunk_error("chunk extension too long", i);
        } else if (c == ';') {
          chunk_ = Chunk::kExtension;
        } else if (c == '\r') {
          chunk_ = Chunk::kSizeLf;
        } else {
          return chunk_error("malformed chunk size", i);
        }
        ++i;
        break;
      }
      case Chunk::kExtension:
        if (c == '\r') {
          chunk_ = Chunk::kSizeLf;
        } else if (!http::is_field_value(std::string_view(&c, 1))) {
          return chunk_error("invalid character in chunk extension", i);
        } else if (++line_bytes_ > kMaxChunkLine) {
          return chunk_error("chunk extension too long", i);
        }
        ++i;
        break;
      case Chunk::kSizeLf:
        if (c != '\n') return chunk_error("chunk size line not ended by CRLF", i);
        ++i;
        line_bytes_ = 0;
        size_digits_ = 0;
        if (remaining_ == 0) {
          chunk_ = Chunk::kTrailer;
          trailer_line_start_ = trailers_.size();
        } else {
          chunk_ = Chunk::kData;
        }
        break;
      case Chunk::kData: {
        std::size_t n = std::min<uint64_t>(in.size() - i, remaining_);
        append_payload(in.data() + i, n);
        remaining_ -= n;
        i += n;
        if (remaining_ == 0) chunk_ = Chunk::kDataCr;
        break;
      }
      case Chunk::kDataCr:
        if (c != '\r') return chunk_error("chunk data not followed by CRLF", i);
        chunk_ = Chunk::kDataLf;
        ++i;
        break;
      case Chunk::kDataLf:
        if (c != '\n') return chunk_error("chunk data not followed by CRLF", i);
        chunk_ = Chunk::kSize;
        ++i;
        break;
      case Chunk::kTrailer: {
        const void* lf = std::memchr(in.data() + i, '\n', in.size() - i);
        std::size_t n =
            lf != nullptr ? static_cast<const char*>(lf) - (in.data() + i) + 1 : in.size() - i;
        if (trailers_.size() + n > kMaxTrailerSection) {
          return chunk_error("trailer section too large", i);
        }
        trailers_.append(in.data() + i, n);
        i += n;
        if (lf != nullptr && (!end_trailer_line() || phase_ == Phase::kDone)) return i;
        break;
      }
    }
  }
  return i;
}

bool MessageReader::end_trailer_line() {
  std::string_view line(trailers_.data() + trailer_line_start_,
                        trailers_.size() - trailer_line_start_);
  if (line.size() < 2 || line[line.size() - 2] != '\r') {
    fail("trailer line not ended by CRLF");
    return false;
  }
  if (line.size() == 2) {  // the empty line ending the message
    trailers_.resize(trailer_line_start_);
    phase_ = Phase::kDone;
    return true;
  }
  line.remove_suffix(2);
  // RFC 9112 5.1 rules, as for header lines: a token, the colon right after
  // it (no obs-fold, no whitespace before the colon), a clean value.
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || !http::is_token(line.substr(0, colon)) ||
      !http::is_field_value(line.substr(colon + 1))) {
    fail("malformed trailer field");
    return false;
  }
  for (std::size_t k = 0; k < colon; ++k) {
    trailers_[trailer_line_start_ + k] = to_lower(trailers_[trailer_line_start_ + k]);
  }
  trailer_line_start_ = trailers_.size();
  return true;
}

bool is_forbidden_trailer(std::string_view name) {
  static constexpr std::string_view kForbidden[] = {
      // framing and connection (RFC 9110 6.5.1, 7.6.1)
      "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection",
      "upgrade", "te", "trailer",
      // routing, content processing and authentication (RFC 9110 6.5.1)
      "host", "content-encoding", "content-type", "content-range", "authorization",
      "proxy-authorization", "proxy-authenticate", "www-authenticate"};
  return std::find(std::begin(kForbidden), std::end(kForbidden), name) != std::end(kForbidden);
}

void append_chunk_size(std::string& out, std::size_t size) {
  char digits[2 * sizeof(std::size_t)];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[size & 0xf];
    size >>= 4;
  } while (size != 0);
  while (n > 0) out.push_back(digits[--n]);
  out.append("\r\n");
}

}  // namespace gatehouse::http2
