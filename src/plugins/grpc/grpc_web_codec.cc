#include "plugins/grpc/grpc_web_codec.h"

#include "core/base64.h"
#include "http/http1_parser.h"

namespace gatehouse::plugins::grpc_web {

namespace {

constexpr std::string_view kSuffixes[] = {"", "+proto", "+json", "+thrift"};
constexpr std::string_view kUpstream[] = {"application/grpc", "application/grpc+proto",
                                          "application/grpc+json", "application/grpc+thrift"};
constexpr std::string_view kBinary[] = {"application/grpc-web", "application/grpc-web+proto",
                                        "application/grpc-web+json", "application/grpc-web+thrift"};
constexpr std::string_view kText[] = {
    "application/grpc-web-text", "application/grpc-web-text+proto",
    "application/grpc-web-text+json", "application/grpc-web-text+thrift"};

// The media type without parameters and surrounding whitespace.
std::string_view media_type(std::string_view v) {
  if (std::size_t semi = v.find(';'); semi != std::string_view::npos) v = v.substr(0, semi);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

bool starts_with_ci(std::string_view v, std::string_view prefix) {
  return v.size() >= prefix.size() && http::iequals(v.substr(0, prefix.size()), prefix);
}

}  // namespace

ContentType parse_content_type(std::string_view value) {
  std::string_view v = media_type(value);
  constexpr std::string_view kWeb = "application/grpc-web";
  if (!starts_with_ci(v, kWeb)) return {};
  v.remove_prefix(kWeb.size());
  Mode mode = Mode::kBinary;
  if (starts_with_ci(v, "-text")) {
    mode = Mode::kText;
    v.remove_prefix(5);
  }
  for (std::size_t i = 0; i < std::size(kSuffixes); ++i) {
    if (http::iequals(v, kSuffixes[i])) return {mode, static_cast<uint8_t>(i)};
  }
  return {};
}

std::string_view upstream_content_type(ContentType type) {
  return kUpstream[type.suffix < std::size(kUpstream) ? type.suffix : 0];
}

std::string_view client_content_type(ContentType type) {
  std::size_t i = type.suffix < std::size(kSuffixes) ? type.suffix : 0;
  switch (type.mode) {
    case Mode::kBinary:
      return kBinary[i];
    case Mode::kText:
      return kText[i];
    case Mode::kNone:
      break;
  }
  return kUpstream[0];
}

bool is_grpc_content_type(std::string_view value) {
  std::string_view v = media_type(value);
  constexpr std::string_view kGrpc = "application/grpc";
  if (!starts_with_ci(v, kGrpc)) return false;
  v.remove_prefix(kGrpc.size());
  return v.empty() || v.front() == '+';
}

void Base64Encoder::update(std::string_view data, std::string& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  out.reserve(out.size() + (pending_len_ + n) / 3 * 4 + 4);
  // First complete the quantum that waits.
  while (pending_len_ > 0 && n > 0) {
    if (pending_len_ == 1) {
      pending_[1] = *p++;
      --n;
      pending_len_ = 2;
      continue;
    }
    unsigned char q[3] = {pending_[0], pending_[1], *p++};
    --n;
    core::append_base64_quantum(q, 3, out);
    pending_len_ = 0;
  }
  for (; n >= 3; p += 3, n -= 3) core::append_base64_quantum(p, 3, out);
  while (n > 0) {
    pending_[pending_len_++] = *p++;
    --n;
  }
}

void Base64Encoder::finish(std::string& out) {
  if (pending_len_ > 0) core::append_base64_quantum(pending_, pending_len_, out);
  pending_len_ = 0;
}

bool Base64Decoder::update(std::string_view text, std::string& out) {
  auto fail = [this] {
    failed_ = true;
    return false;
  };
  if (failed_) return false;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '=') {
      // Padding ends a quantum of 2 ("xx==") or 3 ("xxx=") characters.
      if (chars_ < 2 || chars_ + padding_ >= 4) return fail();
      ++padding_;
      if (chars_ + padding_ == 4) {
        uint32_t v = bits_ << (6 * (4 - chars_));
        out.push_back(static_cast<char>(v >> 16));
        if (chars_ == 3) out.push_back(static_cast<char>(v >> 8));
        bits_ = 0;
        chars_ = padding_ = 0;
      }
      continue;
    }
    int v = core::base64_value(c);
    if (v < 0 || padding_ > 0) return fail();
    bits_ = (bits_ << 6) | static_cast<uint32_t>(v);
    if (++chars_ == 4) {
      out.push_back(static_cast<char>(bits_ >> 16));
      out.push_back(static_cast<char>(bits_ >> 8));
      out.push_back(static_cast<char>(bits_));
      bits_ = 0;
      chars_ = 0;
    }
  }
  return true;
}

bool Base64Decoder::finish(std::string& out) {
  if (failed_ || padding_ > 0 || chars_ == 1) return false;
  if (chars_ > 1) {
    uint32_t v = bits_ << (6 * (4 - chars_));
    out.push_back(static_cast<char>(v >> 16));
    if (chars_ == 3) out.push_back(static_cast<char>(v >> 8));
  }
  bits_ = 0;
  chars_ = 0;
  return true;
}

void append_trailer_frame(std::string& out, std::string_view fields) {
  std::size_t start = out.size();
  out.append(5, '\0');
  while (!fields.empty()) {
    std::size_t eol = fields.find("\r\n");
    std::string_view line = fields.substr(0, eol);
    fields.remove_prefix(eol == std::string_view::npos ? fields.size() : eol + 2);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    for (char c : name) out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
    out.push_back(':');
    out.append(value).append("\r\n");
  }
  auto len = static_cast<uint32_t>(out.size() - start - 5);
  out[start] = static_cast<char>(0x80);
  out[start + 1] = static_cast<char>(len >> 24);
  out[start + 2] = static_cast<char>(len >> 16);
  out[start + 3] = static_cast<char>(len >> 8);
  out[start + 4] = static_cast<char>(len);
}

}  // namespace gatehouse::plugins::grpc_web
