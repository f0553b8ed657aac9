// gRPC-Web (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md):
// the pure parts of the translation the `grpc_web` plugin asks for. The
// engine runs it (src/proxy/session_grpc_web.cc) with these pieces:
// content types, streaming base64 for the text mode and the trailer frame.
// No I/O, no yaml: the proxy includes this header.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gatehouse::plugins::grpc_web {

enum class Mode : uint8_t { kNone, kBinary, kText };

// A request's gRPC-Web content type: binary or text, and its message format
// suffix (an index into "", "+proto", "+json", "+thrift").
struct ContentType {
  Mode mode = Mode::kNone;
  uint8_t suffix = 0;
};

// application/grpc-web, application/grpc-web-text, each optionally with
// +proto, +json or +thrift (case-insensitive; parameters after ';' are
// ignored). Anything else, application/grpc included: Mode::kNone.
ContentType parse_content_type(std::string_view value);

// What goes upstream: application/grpc with the same suffix.
std::string_view upstream_content_type(ContentType type);
// What goes back to the client: the request's type (grpc-web or
// grpc-web-text, same suffix). Mode::kNone: application/grpc.
std::string_view client_content_type(ContentType type);

// True for a gRPC response's content type (application/grpc, optionally
// +suffix or ;params), false for gRPC-Web ones and anything else.
bool is_grpc_content_type(std::string_view value);

// Streaming base64 encoder (RFC 4648 alphabet, '=' padding).
class Base64Encoder {
 public:
  // Appends the encoding of `data`; up to 2 trailing bytes wait for more.
  void update(std::string_view data, std::string& out);
  // Appends the waiting bytes, padded; the encoder starts afresh. Calling it
  // per flush gives concatenated padded segments, which gRPC-Web allows.
  void finish(std::string& out);

 private:
  unsigned char pending_[2] = {0, 0};
  uint8_t pending_len_ = 0;
};

// Streaming base64 decoder for gRPC-Web-text bodies: input in any pieces;
// several padded segments may follow one another; ASCII whitespace is
// skipped.
class Base64Decoder {
 public:
  // Appends the bytes decoded from `text`. False on a character outside the
  // alphabet or misplaced padding (the decoder is then unusable).
  bool update(std::string_view text, std::string& out);
  // The input ended: true when it ended on a segment boundary. An unpadded
  // final quantum of 2 or 3 characters is accepted and decoded.
  bool finish(std::string& out);

 private:
  uint32_t bits_ = 0;
  uint8_t chars_ = 0;    // characters of the current quantum (before padding)
  uint8_t padding_ = 0;  // '=' seen in the current quantum
  bool failed_ = false;
};

// Appends the gRPC-Web trailer frame for `fields`, HTTP/1 field lines as a
// chunked trailer section holds them ("Name: value\r\n"...): flag byte 0x80,
// 4-byte big-endian length, then "name:value\r\n" per field (lower-case
// name, no whitespace around the value).
void append_trailer_frame(std::string& out, std::string_view fields);

}  // namespace gatehouse::plugins::grpc_web
