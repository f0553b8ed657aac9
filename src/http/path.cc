#include "http/path.h"

namespace gatehouse::http {
namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Appends `raw` to `out` with unreserved escapes decoded and the others'
// hex digits upper-cased (RFC 3986 6.2.2.1 / 6.2.2.2).
void decode_unreserved(std::string_view raw, std::string& out) {
  constexpr char kHex[] = "0123456789ABCDEF";
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%' || i + 2 >= raw.size()) {
      out.push_back(raw[i]);
      continue;
    }
    int hi = hex(raw[i + 1]), lo = hex(raw[i + 2]);
    if (hi < 0 || lo < 0) {
      out.push_back(raw[i]);
      continue;
    }
    char d = static_cast<char>(hi * 16 + lo);
    if (is_unreserved(d)) {
      out.push_back(d);
    } else {
      out.push_back('%');
      out.push_back(kHex[hi]);
      out.push_back(kHex[lo]);
    }
    i += 2;
  }
}

}  // namespace

void normalize_path(std::string_view raw, std::string& out) {
  out.clear();
  decode_unreserved(raw, out);
  // RFC 3986 5.2.4 remove_dot_segments, in place: `w` is the output end.
  std::size_t w = 0;
  std::size_t r = 0;
  const std::size_t n = out.size();
  std::string& s = out;
  while (r < n) {
    // s[r] is '/' (paths start with '/'; every later segment follows one).
    std::size_t end = s.find('/', r + 1);
    if (end == std::string::npos) end = n;
    std::size_t len = end - r - 1;  // segment length without the slash
    bool dot = len == 1 && s[r + 1] == '.';
    bool dotdot = len == 2 && s[r + 1] == '.' && s[r + 2] == '.';
    if (dot || dotdot) {
      if (dotdot) {
        while (w > 0 && s[w - 1] != '/') --w;  // drop the last output segment
        if (w > 0) --w;                        // and its slash
      }
      if (end == n) s[w++] = '/';  // "/a/." -> "/a/"
    } else {
      for (std::size_t i = r; i < end; ++i) s[w++] = s[i];
    }
    r = end;
  }
  s.resize(w);
  if (s.empty()) s.push_back('/');
}

bool has_dot_segment(std::string_view path) {
  std::size_t i = 0;
  while (true) {
    std::size_t slash = path.find('/', i);
    std::string_view seg = path.substr(i, slash == std::string_view::npos ? path.npos : slash - i);
    if (seg == "." || seg == "..") return true;
    if (slash == std::string_view::npos) return false;
    i = slash + 1;
  }
}

}  // namespace gatehouse::http
