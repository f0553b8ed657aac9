// Incremental reader of one HTTP/1.1 message that an HTTP/2 stream will carry.
//
// Both codecs translate HTTP/1.1 bytes produced by the gateway's pipeline
// (responses for the server codec, requests for the client codec) into
// HTTP/2 frames: one head, the body payload with its HTTP/1.1 framing
// removed, and the trailer fields of a chunked body. The bytes arrive in
// arbitrary pieces, so this reader buffers a head until it is complete and
// body payload until nghttp2 pulls it, both within one bound: a slow peer
// makes read() take fewer bytes, never buffer more.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/http1_parser.h"

namespace gatehouse::http2 {

class MessageReader {
 public:
  enum class Status : uint8_t {
    kMore,   // every byte it could take was taken: feed more, or retry after take()
    kHead,   // a head is complete in head(): parse it, then begin_body() or await_head()
    kError,  // malformed message; error() says why
  };

  // `max_buffered` bounds the head and, separately, the undrained payload.
  explicit MessageReader(std::size_t max_buffered) : max_(max_buffered) {}

  // Takes bytes from `in`; `used` says how many. Stops right after a head.
  // Bytes after a complete message are taken and dropped: one HTTP/2 stream
  // carries exactly one message.
  Status read(std::string_view in, std::size_t& used);

  // After kHead: the raw head ending in CRLF CRLF, header names already
  // lowercased (HTTP/2 requires lowercase names, RFC 9113 8.2.1).
  std::string& head() { return head_; }
  // Starts the body of the head just read; kNone completes the message.
  void begin_body(http::BodyKind kind, uint64_t length);
  // The head just read was interim (1xx): the next bytes start another head.
  void await_head();
  // The message is exactly `payload` (a locally generated response).
  void set_complete_body(std::string_view payload);
  // The writer has finished: a close-delimited body ends here. False when the
  // message is incomplete (truncated).
  bool end_of_input();

  bool head_seen() const { return phase_ != Phase::kHead && phase_ != Phase::kHeadReady; }
  bool complete() const { return phase_ == Phase::kDone; }
  bool failed() const { return phase_ == Phase::kFailed; }
  std::string_view error() const { return error_; }

  // Undrained payload.
  std::size_t buffered() const { return buf_.size() - pos_; }
  // Whether read() would take a body byte now.
  bool has_room() const { return buffered() < max_; }
  // Moves up to `max` payload bytes to `out`; returns how many.
  std::size_t take(uint8_t* out, std::size_t max);

  // The trailer section of a chunked body: "name: value\r\n" lines (names
  // lowercased), empty when there was none. Complete once complete().
  std::string& trailers() { return trailers_; }

 private:
  enum class Phase : uint8_t { kHead, kHeadReady, kLength, kChunked, kUntilClose, kDone, kFailed };
  enum class Chunk : uint8_t { kSize, kExtension, kSizeLf, kData, kDataCr, kDataLf, kTrailer };

  Status read_head(std::string_view in, std::size_t& used);
  // Decodes chunked framing from `in` (whose size is already bounded by the
  // payload room); returns how many bytes it took, or sets kFailed.
  std::size_t read_chunked(std::string_view in);
  std::size_t chunk_error(std::string_view why, std::size_t at);
  bool end_trailer_line();
  void append_payload(const char* data, std::size_t n);
  Status fail(std::string_view why);

  std::size_t max_;
  Phase phase_ = Phase::kHead;
  Chunk chunk_ = Chunk::kSize;
  std::string head_;
  std::size_t head_scanned_ = 0;
  uint64_t remaining_ = 0;  // content-length left, or bytes left in the current chunk
  int size_digits_ = 0;     // -1 once whitespace followed the chunk size
  std::size_t line_bytes_ = 0;
  std::string buf_;  // payload; [pos_, size) is undrained
  std::size_t pos_ = 0;
  std::string trailers_;
  std::size_t trailer_line_start_ = 0;
  std::string_view error_;
};

// Calls f(name, value) for each "name: value\r\n" line of a head's field
// section or of MessageReader::trailers() (already validated, so the parsing
// here is simple: the first colon ends the name, OWS around the value goes).
template <typename F>
void for_each_field_line(std::string_view lines, F&& f) {
  while (!lines.empty()) {
    std::size_t eol = lines.find("\r\n");
    std::string_view line = lines.substr(0, eol);
    lines.remove_prefix(eol == std::string_view::npos ? lines.size() : eol + 2);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    f(line.substr(0, colon), value);
  }
}

// RFC 9110 6.5.1: fields that describe framing, routing or the connection
// must not be taken from a trailer section; hop-by-hop fields (RFC 9110
// 7.6.1, RFC 9113 8.2.2) must not cross into HTTP/2 at all. Names are lowercase.
bool is_forbidden_trailer(std::string_view name);

// Appends "<hex>\r\n" for a chunk of `size` bytes.
void append_chunk_size(std::string& out, std::size_t size);

}  // namespace gatehouse::http2
