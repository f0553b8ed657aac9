#include "http/http1_parser.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace gatehouse::http {
namespace {

// RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-"
// / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
struct CharTable {
  bool tchar[256] = {};
  bool field_value[256] = {};  // VCHAR / obs-text / SP / HTAB
  bool target[256] = {};       // visible ASCII except '#'
  bool host[256] = {};         // reg-name, IP-literal and port characters
  constexpr CharTable() {
    for (int c = '0'; c <= '9'; ++c) tchar[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) tchar[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) tchar[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) tchar[static_cast<unsigned char>(c)] = true;
    for (int c = 0x21; c <= 0x7e; ++c) field_value[c] = true;
    for (int c = 0x80; c <= 0xff; ++c) field_value[c] = true;
    field_value[static_cast<unsigned char>(' ')] = true;
    field_value[static_cast<unsigned char>('\t')] = true;
    for (int c = 0x21; c <= 0x7e; ++c) target[c] = true;
    target[static_cast<unsigned char>('#')] = false;
    for (int c = '0'; c <= '9'; ++c) host[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) host[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) host[c] = true;
    for (char c : std::string_view("-._~!$&'()*+,;=:[]%"))
      host[static_cast<unsigned char>(c)] = true;
  }
};
constexpr CharTable kChars;

inline bool is_tchar(char c) { return kChars.tchar[static_cast<unsigned char>(c)]; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
using detail::load8;
using detail::lower;
using detail::lower8;

// Word-at-a-time helpers (eight bytes per step; the byte loops they replace
// were most of the parser's time on a typical head).
constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHigh = 0x8080808080808080ULL;

// Non-zero when some byte is below 0x20 or is 0x7f (exact: never zero when
// one is).
inline uint64_t ctl8(uint64_t w) {
  uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
  uint64_t del = w ^ (kOnes * 0x7f);
  return below_space | ((del - kOnes) & ~del & kHigh);
}

#if defined(__SSE2__)
// Sixteen bytes at a time with SSE2, which every x86-64 CPU has (no -march
// needed); other targets use the word-at-a-time loops alone. Each helper
// returns a 16-bit mask with bit k set for byte k of the block.
inline __m128i load16(const char* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// Bytes below 0x20 or equal to 0x7f (control characters, HTAB included).
inline unsigned ctl16(__m128i v) {
  __m128i below_space = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
  __m128i del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(below_space, del)));
}

// Bytes that are not an ASCII letter, digit or '-': every byte of a usual
// header name passes; anything else (':' included) stops the fast scan.
inline unsigned not_name16(__m128i v) {
  __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));  // A-Z to a-z; no other byte lands there
  __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(folded, _mm_set1_epi8('a' - 1)),
                                 _mm_cmpgt_epi8(_mm_set1_epi8('z' + 1), folded));
  __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                _mm_cmpgt_epi8(_mm_set1_epi8('9' + 1), v));
  __m128i dash = _mm_cmpeq_epi8(v, _mm_set1_epi8('-'));
  __m128i ok = _mm_or_si128(_mm_or_si128(letter, digit), dash);
  return ~static_cast<unsigned>(_mm_movemask_epi8(ok)) & 0xffffu;
}
#endif

// Index of the first byte from p[i] (before p[n]) that is not a tchar.
std::size_t token_end(const char* p, std::size_t i, std::size_t n) {
#if defined(__SSE2__)
  for (; i + 16 <= n; i += 16) {
    if (unsigned stop = not_name16(load16(p + i)); stop != 0) {
      i += static_cast<unsigned>(__builtin_ctz(stop));
      break;
    }
  }
#endif
  while (i < n && is_tchar(p[i])) ++i;
  return i;
}

// Index of the first byte from p[i] (before p[n]) that a field value must
// not hold (RFC 9110 5.5: a CTL other than HTAB), or n. A block with no byte
// below 0x20 and no 0x7f passes whole; in one with any, each such byte is
// checked, since HTAB is allowed.
std::size_t first_non_value(const char* p, std::size_t i, std::size_t n) {
#if defined(__SSE2__)
  for (; i + 16 <= n; i += 16) {
    for (unsigned ctl = ctl16(load16(p + i)); ctl != 0; ctl &= ctl - 1) {
      std::size_t j = i + static_cast<unsigned>(__builtin_ctz(ctl));
      if (p[j] != '\t') return j;
    }
  }
#endif
  for (; i + 8 <= n; i += 8) {
    if (ctl8(load8(p + i)) == 0) continue;
    for (std::size_t j = i; j < i + 8; ++j) {
      if (!kChars.field_value[static_cast<unsigned char>(p[j])]) return j;
    }
  }
  for (; i < n; ++i) {
    if (!kChars.field_value[static_cast<unsigned char>(p[i])]) return i;
  }
  return n;
}

// The index of the CR that ends the field value starting at p[i] (at most n
// bytes are read), or npos for a byte a value must not hold (a CR must start
// the line's CRLF).
std::size_t field_value_end(const char* p, std::size_t i, std::size_t n) {
  std::size_t end = first_non_value(p, i, n);
  return end + 1 < n && p[end] == '\r' && p[end + 1] == '\n' ? end : std::string_view::npos;
}

ParseStatus fail(ParseError& err, int status, std::string_view detail) {
  err.status = status;
  err.detail = detail;
  return ParseStatus::kError;
}

// Takes the next CRLF-terminated line off `rest` (find_head_end guarantees
// every LF is preceded by CR).
std::string_view next_line(std::string_view& rest) {
  std::size_t lf = rest.find('\n');
  std::string_view line = rest.substr(0, lf - 1);
  rest.remove_prefix(lf + 1);
  return line;
}

// RFC 9112 1.2 / 2.3: "HTTP/" DIGIT "." DIGIT.
ParseStatus parse_version(std::string_view v, int& minor, ParseError& err) {
  if (v.size() < 5 || v.substr(0, 5) != "HTTP/") {
    return fail(err, 400, "unknown protocol");
  }
  if (v.size() != 8 || !is_digit(v[5]) || v[6] != '.' || !is_digit(v[7])) {
    return fail(err, 400, "malformed HTTP version");
  }
  if (v[5] != '1' || v[7] > '1') return fail(err, 505, "HTTP version not supported");
  minor = v[7] - '0';
  return ParseStatus::kComplete;
}

bool valid_percent_encoding(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return false;
      if (hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0) return false;
      i += 2;
    }
  }
  return true;
}

void split_path_query(std::string_view pq, RequestHead& out) {
  std::size_t q = pq.find('?');
  if (q == std::string_view::npos) {
    out.path = pq;
  } else {
    out.path = pq.substr(0, q);
    out.query = pq.substr(q + 1);
    out.has_query = true;
  }
}

// RFC 9112 3.2: origin-form, absolute-form, asterisk-form (OPTIONS only);
// authority-form is CONNECT's, which a gateway does not tunnel.
ParseStatus parse_target(std::string_view target, RequestHead& out, ParseError& err) {
  for (char c : target) {
    if (!kChars.target[static_cast<unsigned char>(c)]) {
      return fail(err, 400, "invalid character in request-target");
    }
  }
  if (!valid_percent_encoding(target)) return fail(err, 400, "malformed percent-encoding");
  if (target[0] == '/') {
    split_path_query(target, out);
    return ParseStatus::kComplete;
  }
  if (target == "*") {
    if (out.method != "OPTIONS") return fail(err, 400, "asterisk-form is only for OPTIONS");
    out.path = target;
    return ParseStatus::kComplete;
  }
  std::size_t scheme_end = target.find("://");
  if (scheme_end != std::string_view::npos) {
    std::string_view scheme = target.substr(0, scheme_end);
    if (!iequals(scheme, "http") && !iequals(scheme, "https")) {
      return fail(err, 400, "unsupported scheme in absolute-form");
    }
    std::string_view rest = target.substr(scheme_end + 3);
    std::size_t path_start = rest.find_first_of("/?");
    out.authority = rest.substr(0, path_start);
    if (out.authority.empty() || out.authority.find('@') != std::string_view::npos) {
      return fail(err, 400, "invalid authority in absolute-form");
    }
    if (path_start == std::string_view::npos) {
      out.path = "/";
    } else if (rest[path_start] == '?') {
      out.path = "/";
      out.query = rest.substr(path_start + 1);
      out.has_query = true;
    } else {
      split_path_query(rest.substr(path_start), out);
    }
    return ParseStatus::kComplete;
  }
  return fail(err, 400, "request-target is neither origin-form nor absolute-form");
}

ParseStatus parse_request_line(std::string_view line, RequestHead& out, ParseError& err) {
  std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return fail(err, 400, "malformed request line");
  out.method = line.substr(0, sp1);
  if (!is_token(out.method)) return fail(err, 400, "invalid method");
  std::string_view rest = line.substr(sp1 + 1);
  std::size_t sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) {
    // "GET /" with no version is HTTP/0.9 (RFC 9112 2.3), which we refuse.
    return fail(err, 400, "HTTP/0.9 is not supported");
  }
  out.target = rest.substr(0, sp2);
  if (out.target.empty()) return fail(err, 400, "empty request-target");
  if (ParseStatus s = parse_version(rest.substr(sp2 + 1), out.minor_version, err);
      s != ParseStatus::kComplete) {
    return s;
  }
  if (out.method == "CONNECT") return fail(err, 501, "CONNECT is not supported");
  return parse_target(out.target, out, err);
}

// RFC 9112 5.1/5.2: field-line = field-name ":" OWS field-value OWS; no
// whitespace between name and colon; no obs-fold; no CTLs in values.
template <typename Head>
ParseStatus parse_field_line(std::string_view& rest, Head& out, ParseError& err, bool request) {
  // Takes the line at the front of `rest`, its CRLF included: the value's
  // scan finds the line's end (find_head_end left a CRLF after every line).
  const int bad = request ? 400 : 502;
  const char* p = rest.data();
  const std::size_t n = rest.size();
  if (p[0] == ' ' || p[0] == '\t') return fail(err, bad, "obsolete line folding");
  std::size_t i = token_end(p, 0, n);
  if (i == n || p[i] == '\r') return fail(err, bad, "header line without colon");
  if (p[i] != ':') {
    if (p[i] == ' ' || p[i] == '\t') return fail(err, bad, "whitespace before colon");
    return fail(err, bad, "invalid character in header name");
  }
  if (i == 0) return fail(err, bad, "empty header name");
  std::size_t end = field_value_end(p, i + 1, n);
  if (end == std::string_view::npos) return fail(err, bad, "invalid character in header value");
  if (out.header_count == kMaxHeaders) {
    return fail(err, request ? 431 : 502, "too many header fields");
  }
  out.headers[out.header_count++] =
      Header{std::string_view(p, i), trim_ows(std::string_view(p + i + 1, end - i - 1))};
  rest.remove_prefix(end + 2);
  return ParseStatus::kComplete;
}

// RFC 9112 6.3 step 5: Content-Length must be a single decimal number; a list,
// a sign or a repeat is a smuggling vector and refused outright.
ParseStatus apply_content_length(std::string_view v, HeadFacts& facts, bool& seen, ParseError& err,
                                 int bad) {
  if (seen) return fail(err, bad, "repeated Content-Length");
  seen = true;
  if (v.empty() || v.size() > 18) return fail(err, bad, "invalid Content-Length");
  uint64_t n = 0;
  for (char c : v) {
    if (!is_digit(c)) return fail(err, bad, "invalid Content-Length");
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  facts.content_length = n;
  return ParseStatus::kComplete;
}

bool known_coding(std::string_view t) {
  return iequals(t, "gzip") || iequals(t, "x-gzip") || iequals(t, "deflate") ||
         iequals(t, "compress") || iequals(t, "x-compress");
}

// RFC 9112 6.1 / 6.3: only a single, final "chunked" is accepted.
ParseStatus apply_transfer_encoding(std::string_view v, bool& seen, bool& chunked, ParseError& err,
                                    int bad) {
  if (seen) return fail(err, bad, "repeated Transfer-Encoding");
  seen = true;
  int items = 0;
  int chunked_count = 0;
  bool chunked_last = false;
  bool malformed = false;
  bool unknown = false;
  for_each_list_item(v, [&](std::string_view t) {
    ++items;
    if (!is_token(t)) {
      malformed = true;
      return;
    }
    chunked_last = iequals(t, "chunked");
    if (chunked_last) {
      ++chunked_count;
    } else if (!known_coding(t)) {
      unknown = true;
    }
  });
  if (malformed) return fail(err, bad, "malformed Transfer-Encoding");
  if (unknown) return fail(err, bad == 400 ? 501 : bad, "unknown transfer coding");
  if (chunked_count > 1) return fail(err, bad, "chunked applied more than once");
  if (!chunked_last) return fail(err, bad, "Transfer-Encoding must end with chunked");
  if (items > 1) return fail(err, bad == 400 ? 501 : bad, "unsupported transfer coding");
  chunked = true;
  return ParseStatus::kComplete;
}

void apply_connection(std::string_view v, HeadFacts& facts) {
  ++facts.connection_header_count;
  facts.connection_tokens = v;
  // The usual single token, without splitting the list.
  if (iequals(v, "keep-alive")) {
    facts.connection_keep_alive = true;
    return;
  }
  if (iequals(v, "close")) {
    facts.connection_close = true;
    return;
  }
  for_each_list_item(v, [&](std::string_view t) {
    if (iequals(t, "close")) facts.connection_close = true;
    if (iequals(t, "keep-alive")) facts.connection_keep_alive = true;
  });
}

// Header facts shared by requests and responses. `bad` is the status for
// malformed framing: 400 from a client, 502 from an upstream.
template <typename Head>
ParseStatus analyze_framing(Head& out, ParseError& err, int bad, bool http10) {
  bool cl_seen = false, te_seen = false, chunked = false;
  for (std::size_t i = 0; i < out.header_count; ++i) {
    const Header& h = out.headers[i];
    ParseStatus s = ParseStatus::kComplete;
    if (h.name.size() == 14 && iequals(h.name, "content-length")) {
      s = apply_content_length(h.value, out.facts, cl_seen, err, bad);
    } else if (h.name.size() == 17 && iequals(h.name, "transfer-encoding")) {
      // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
      if (http10) return fail(err, bad, "Transfer-Encoding on HTTP/1.0");
      s = apply_transfer_encoding(h.value, te_seen, chunked, err, bad);
    } else if (h.name.size() == 10 && iequals(h.name, "connection")) {
      apply_connection(h.value, out.facts);
    }
    if (s != ParseStatus::kComplete) return s;
  }
  if (cl_seen && te_seen) return fail(err, bad, "both Content-Length and Transfer-Encoding");
  if (chunked) {
    out.facts.body = BodyKind::kChunked;
  } else if (cl_seen) {
    out.facts.body = out.facts.content_length ? BodyKind::kLength : BodyKind::kNone;
  }
  return ParseStatus::kComplete;
}

bool valid_host(std::string_view h) {
  if (h.empty()) return false;
  for (char c : h)
    if (!kChars.host[static_cast<unsigned char>(c)]) return false;
  return true;
}

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' ||
              c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

ParseStatus analyze_request(RequestHead& out, ParseError& err) {
  int host_count = 0;
  for (std::size_t i = 0; i < out.header_count; ++i) {
    const Header& h = out.headers[i];
    if (h.name.size() == 4 && iequals(h.name, "host")) {
      if (++host_count > 1) return fail(err, 400, "repeated Host");
      if (!valid_host(h.value)) return fail(err, 400, "invalid Host");
      out.host = h.value;
    } else if (h.name.size() == 6 && iequals(h.name, "expect")) {
      if (!iequals(h.value, "100-continue")) return fail(err, 417, "unsupported expectation");
      out.expect_continue = true;
    } else if (h.name.size() == 12 && iequals(h.name, "x-request-id")) {
      if (valid_request_id(h.value)) out.request_id = h.value;
    }
  }
  if (host_count == 0 && out.minor_version == 1) return fail(err, 400, "missing Host");
  if (!out.authority.empty()) {
    // RFC 9112 3.2.2: the authority wins over Host. We route on it, but the
    // Host field is forwarded as sent, so a mismatch would let a request be
    // routed for one host and served by the upstream as another: refuse it.
    if (!valid_host(out.authority)) return fail(err, 400, "invalid authority in absolute-form");
    if (host_count == 1 && !iequals(out.host, out.authority)) {
      return fail(err, 400, "Host does not match absolute-form authority");
    }
    out.host = out.authority;
  }
  if (out.minor_version == 0) out.expect_continue = false;  // RFC 9110 10.1.1
  ParseStatus s = analyze_framing(out, err, 400, out.minor_version == 0);
  if (s != ParseStatus::kComplete) return s;
  out.keep_alive = out.minor_version == 1
                       ? !out.facts.connection_close
                       : (out.facts.connection_keep_alive && !out.facts.connection_close);
  return ParseStatus::kComplete;
}

}  // namespace

bool is_token(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v)
    if (!is_tchar(c)) return false;
  return true;
}

bool is_field_value(std::string_view v) {
  return first_non_value(v.data(), 0, v.size()) == v.size();
}

void RequestHead::reset() {
  method = target = path = query = authority = host = request_id = {};
  has_query = false;
  minor_version = 1;
  header_count = 0;
  facts = HeadFacts{};
  expect_continue = false;
  keep_alive = true;
  head_size = 0;
  fields_end = nullptr;
}

void ResponseHead::reset() {
  status = 0;
  minor_version = 1;
  reason = {};
  header_count = 0;
  facts = HeadFacts{};
  keep_alive = true;
  head_size = 0;
  fields_end = nullptr;
}

bool iequals(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  if (n >= 8) {
    // Whole words, the last one overlapping the one before when n is not a
    // multiple of eight.
    for (std::size_t i = 0;; i += 8) {
      if (i + 8 > n) i = n - 8;
      if (lower8(load8(a.data() + i)) != lower8(load8(b.data() + i))) return false;
      if (i + 8 == n) return true;
    }
  }
  for (std::size_t i = 0; i < n; ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool is_hop_by_hop(std::string_view name, std::string_view connection_tokens) {
  switch (name.size()) {
    case 2:
      if (iequals(name, "te")) return true;
      break;
    case 7:
      if (iequals(name, "trailer") || iequals(name, "upgrade")) return true;
      break;
    case 10:
      if (iequals(name, "connection") || iequals(name, "keep-alive")) return true;
      break;
    case 16:
      if (iequals(name, "proxy-connection")) return true;
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) return true;
      break;
    case 18:
      if (iequals(name, "proxy-authenticate")) return true;
      break;
    case 19:
      if (iequals(name, "proxy-authorization")) return true;
      break;
  }
  if (connection_tokens.empty()) return false;
  bool listed = false;
  for_each_list_item(connection_tokens, [&](std::string_view t) {
    if (iequals(t, name)) listed = true;
  });
  return listed;
}

HopByHop::HopByHop(const Header* headers, std::size_t count) { scan(headers, count); }

void HopByHop::scan(const Header* headers, std::size_t count) {
  for (std::size_t i = 0; i < count && !overflow_; ++i) {
    if (iequals(headers[i].name, "connection")) add(headers[i].value);
  }
}

void HopByHop::add(std::string_view connection_value) {
  if (count_ == kMaxConnectionFields) {
    overflow_ = true;
    return;
  }
  connection_[count_++] = connection_value;
  for_each_list_item(connection_value, [&](std::string_view t) {
    listed_lengths_ |= t.size() < 64 ? uint64_t{1} << t.size() : uint64_t{1} << 63;
  });
}

bool HopByHop::drops_by_name(std::string_view name) const {
  if (is_hop_by_hop(name, std::string_view())) return true;
  // Only a name as long as some listed token can be listed ("keep-alive",
  // the usual one, is hop-by-hop anyway): most names skip the list.
  std::size_t bit = name.size() < 64 ? name.size() : 63;
  if ((listed_lengths_ >> bit & 1) != 0) {
    for (std::size_t i = 0; i < count_; ++i) {
      if (is_hop_by_hop(name, connection_[i])) return true;
    }
  }
  return overflow_;
}

namespace {

// What the LF at data[lf] means: 0 (a line ended, go on), the head's size
// (the empty line that ends it), or kBareLf.
inline std::size_t at_lf(const char* data, std::size_t lf) {
  // RFC 9112 2.2 allows a bare LF; we do not: it is how parsers disagree.
  if (lf == 0 || data[lf - 1] != '\r') return kBareLf;
  if (lf >= 3 && data[lf - 2] == '\n' && data[lf - 3] == '\r') return lf + 1;
  return 0;
}

}  // namespace

std::size_t find_head_end(const char* data, std::size_t size, std::size_t& scanned) {
  std::size_t i = scanned;
#if defined(__SSE2__)
  // A head's lines are short: one 16-byte compare finds every LF in a block,
  // where memchr per line paid its call and set-up for each few bytes.
  for (; i + 16 <= size; i += 16) {
    unsigned lfs = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_cmpeq_epi8(load16(data + i), _mm_set1_epi8('\n'))));
    for (; lfs != 0; lfs &= lfs - 1) {
      if (std::size_t r = at_lf(data, i + static_cast<unsigned>(__builtin_ctz(lfs))); r != 0) {
        if (r != kBareLf) scanned = r;
        return r;
      }
    }
  }
#endif
  while (i < size) {
    const void* p = std::memchr(data + i, '\n', size - i);
    if (p == nullptr) break;
    std::size_t lf = static_cast<const char*>(p) - data;
    if (std::size_t r = at_lf(data, lf); r != 0) {
      if (r != kBareLf) scanned = r;
      return r;
    }
    i = lf + 1;
  }
  scanned = size;
  return 0;
}

ParseStatus check_request_line(const char* data, std::size_t size, ParseError& err) {
  const void* lf = std::memchr(data, '\n', size);
  if (lf == nullptr) return ParseStatus::kIncomplete;
  std::size_t len = static_cast<const char*>(lf) - data;
  if (len == 0 || data[len - 1] != '\r') return fail(err, 400, "bare LF in request head");
  RequestHead scratch;
  return parse_request_line(std::string_view(data, len - 1), scratch, err);
}

ParseStatus parse_request_head(const char* data, std::size_t size, RequestHead& out,
                               ParseError& err) {
  out.reset();
  std::string_view rest(data, size - 2);  // drop the final empty line's CRLF
  out.head_size = size;
  ParseStatus s = parse_request_line(next_line(rest), out, err);
  if (s != ParseStatus::kComplete) return s;
  while (!rest.empty()) {
    s = parse_field_line(rest, out, err, true);
    if (s != ParseStatus::kComplete) return s;
  }
  out.fields_end = data + size - 2;
  return analyze_request(out, err);
}

ParseStatus parse_response_head(const char* data, std::size_t size, ResponseHead& out,
                                ParseError& err) {
  out.reset();
  std::string_view rest(data, size - 2);
  out.head_size = size;
  std::string_view line = next_line(rest);
  // status-line = HTTP-version SP status-code SP [ reason-phrase ]
  if (line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' ')) {
    return fail(err, 502, "malformed status line");
  }
  ParseStatus s = parse_version(line.substr(0, 8), out.minor_version, err);
  if (s != ParseStatus::kComplete) return fail(err, 502, "malformed status line");
  if (!is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]) || line[9] == '0') {
    return fail(err, 502, "malformed status code");
  }
  out.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (out.status > 599) return fail(err, 502, "malformed status code");
  out.reason = line.size() > 13 ? line.substr(13) : std::string_view();
  // RFC 9112 4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ). It is
  // relayed to the client, so a CR or NUL here would reach it verbatim.
  for (char c : out.reason) {
    if (!kChars.field_value[static_cast<unsigned char>(c)]) {
      return fail(err, 502, "invalid character in reason phrase");
    }
  }
  while (!rest.empty()) {
    s = parse_field_line(rest, out, err, false);
    if (s != ParseStatus::kComplete) return s;
  }
  out.fields_end = data + size - 2;
  s = analyze_framing(out, err, 502, out.minor_version == 0);
  if (s != ParseStatus::kComplete) return s;
  if (out.facts.body == BodyKind::kNone && out.facts.content_length == 0) {
    bool has_length = false;
    for (std::size_t i = 0; i < out.header_count; ++i) {
      if (iequals(out.headers[i].name, "content-length")) has_length = true;
    }
    if (!has_length) out.facts.body = BodyKind::kUntilClose;
  }
  out.keep_alive = out.minor_version == 1
                       ? !out.facts.connection_close
                       : (out.facts.connection_keep_alive && !out.facts.connection_close);
  return ParseStatus::kComplete;
}

BodyKind response_body_kind(const ResponseHead& head, bool request_was_head) {
  if (request_was_head || head.status < 200 || head.status == 204 || head.status == 304) {
    return BodyKind::kNone;
  }
  return head.facts.body;
}

ChunkedDecoder::Result ChunkedDecoder::fail(std::string_view why) {
  error_ = why;
  return Result::kError;
}

ChunkedDecoder::Result ChunkedDecoder::feed(const char* data, std::size_t size,
                                            std::size_t& consumed, uint64_t& payload) {
  return run(data, size, consumed, payload, nullptr, nullptr);
}

ChunkedDecoder::Result ChunkedDecoder::decode(char* data, std::size_t size, std::size_t& consumed,
                                              uint64_t& payload, char* out, std::size_t& out_len) {
  return run(data, size, consumed, payload, out, &out_len);
}

ChunkedDecoder::Result ChunkedDecoder::run(const char* data, std::size_t size,
                                           std::size_t& consumed, uint64_t& payload, char* out,
                                           std::size_t* out_len) {
  // Limits on framing lines: a chunk line or trailer section is a few bytes in
  // practice; unbounded ones are a memory/time attack.
  constexpr std::size_t kMaxLine = 4096;
  constexpr std::size_t kMaxTrailers = 16384;
  std::size_t i = 0;
  while (i < size) {
    char c = data[i];
    switch (state_) {
      case State::kSize: {
        // size_digits_ is -1 once BWS has followed the size: RFC 9112 7.1.1
        // allows only more BWS, ";" or CRLF there. "5 6" is not size 5 with
        // an extension; it would be forwarded as sent, so it is refused.
        int v = hex_value(c);
        if (v >= 0 && size_digits_ >= 0) {
          // 15 hex digits = 2^60 bytes: anything longer is an overflow attempt.
          if (++size_digits_ > 15) return fail("chunk size overflow");
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
        } else if (size_digits_ == 0) {
          return fail("malformed chunk size");
        } else if (c == ' ' || c == '\t') {
          size_digits_ = -1;
          if (++line_bytes_ > kMaxLine) return fail("chunk extension too long");
        } else if (c == ';') {
          state_ = State::kExtension;
        } else if (c == '\r') {
          state_ = State::kSizeLf;
        } else {
          return fail("malformed chunk size");
        }
        ++i;
        break;
      }
      case State::kExtension:
        if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (!kChars.field_value[static_cast<unsigned char>(c)]) {
          return fail("invalid character in chunk extension");
        } else if (++line_bytes_ > kMaxLine) {
          return fail("chunk extension too long");
        }
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n') return fail("chunk size line not ended by CRLF");
        ++i;
        line_bytes_ = 0;
        size_digits_ = 0;
        state_ = remaining_ == 0 ? State::kTrailerStart : State::kData;
        break;
      case State::kData: {
        std::size_t n = size - i;
        if (n > remaining_) n = static_cast<std::size_t>(remaining_);
        remaining_ -= n;
        payload += n;
        if (out != nullptr) {
          std::memmove(out + *out_len, data + i, n);
          *out_len += n;
        }
        i += n;
        if (remaining_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (c != '\r') return fail("chunk data not followed by CRLF");
        state_ = State::kDataLf;
        ++i;
        break;
      case State::kDataLf:
        if (c != '\n') return fail("chunk data not followed by CRLF");
        state_ = State::kSize;
        ++i;
        break;
      case State::kTrailerStart:
        if (c == '\r') {
          state_ = State::kFinalLf;
        } else if (is_tchar(c)) {
          state_ = State::kTrailerName;
          if (trailers_ != nullptr) trailers_->push_back(c);
        } else {
          return fail("malformed trailer field");
        }
        ++i;
        ++trailer_bytes_;
        break;
      case State::kTrailerName:
        // Same rules as a header line: a token, then the colon, nothing between.
        if (c == ':') {
          state_ = State::kTrailerLine;
        } else if (!is_tchar(c)) {
          return fail("malformed trailer field");
        }
        if (++trailer_bytes_ > kMaxTrailers) return fail("trailer section too large");
        if (trailers_ != nullptr) trailers_->push_back(c);
        ++i;
        break;
      case State::kTrailerLine:
        if (c == '\r') {
          state_ = State::kTrailerLf;
        } else if (!kChars.field_value[static_cast<unsigned char>(c)]) {
          return fail("invalid character in trailer field");
        }
        if (++trailer_bytes_ > kMaxTrailers) return fail("trailer section too large");
        if (trailers_ != nullptr) trailers_->push_back(c);
        ++i;
        break;
      case State::kTrailerLf:
        if (c != '\n') return fail("trailer line not ended by CRLF");
        state_ = State::kTrailerStart;
        if (trailers_ != nullptr) trailers_->push_back(c);
        ++i;
        break;
      case State::kFinalLf:
        if (c != '\n') return fail("chunked body not ended by CRLF");
        ++i;
        state_ = State::kDone;
        consumed = i;
        return Result::kDone;
      case State::kDone:
        consumed = i;
        return Result::kDone;
    }
  }
  consumed = i;
  return state_ == State::kDone ? Result::kDone : Result::kNeedMore;
}

}  // namespace gatehouse::http
