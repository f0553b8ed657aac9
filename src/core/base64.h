// The base64 alphabet (RFC 4648 section 4) and its two primitives, shared by
// the whole-string codec (auth/crypto.cc: Basic credentials) and the
// streaming one (plugins/grpc/grpc_web_codec.cc: gRPC-Web text bodies).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace gatehouse::core {

inline constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// A character's 6-bit value, or -1 outside the alphabet ('=' included).
constexpr int base64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Appends the four characters for 1 to 3 bytes, '='-padded.
inline void append_base64_quantum(const unsigned char* in, std::size_t n, std::string& out) {
  uint32_t v = static_cast<uint32_t>(in[0]) << 16;
  if (n > 1) v |= static_cast<uint32_t>(in[1]) << 8;
  if (n > 2) v |= in[2];
  out.push_back(kBase64Alphabet[(v >> 18) & 63]);
  out.push_back(kBase64Alphabet[(v >> 12) & 63]);
  out.push_back(n > 1 ? kBase64Alphabet[(v >> 6) & 63] : '=');
  out.push_back(n > 2 ? kBase64Alphabet[v & 63] : '=');
}

}  // namespace gatehouse::core
