#include "http/client.h"

#include <charconv>

#include "http/http1_parser.h"

namespace gatehouse::http {

std::optional<HttpUrl> parse_http_url(std::string_view url, std::string& error) {
  constexpr std::string_view kScheme = "http://";
  if (url.size() < kScheme.size() || !iequals(url.substr(0, kScheme.size()), kScheme)) {
    error = url.starts_with("https://") ? "https URLs are not supported yet; use http:// on a "
                                          "trusted network or loopback"
                                        : "the URL must start with http://";
    return std::nullopt;
  }
  url.remove_prefix(kScheme.size());
  std::size_t end = url.find_first_of("/?#");
  std::string_view authority = url.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view() : url.substr(end);
  if (std::size_t hash = rest.find('#'); hash != std::string_view::npos)
    rest = rest.substr(0, hash);
  if (authority.empty() || authority.find('@') != std::string_view::npos) {
    error = "the URL needs a host and no user info";
    return std::nullopt;
  }
  HttpUrl out;
  out.authority = std::string(authority);
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "unclosed '[' in the URL's host";
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        error = "bad port in the URL";
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else if (std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty() || (authority.front() != '[' && host.find(':') != std::string_view::npos)) {
    error = "the URL needs a host (IPv6 addresses in brackets)";
    return std::nullopt;
  }
  out.host = std::string(host);
  if (!port.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535) {
      error = "bad port in the URL";
      return std::nullopt;
    }
    out.port = static_cast<uint16_t>(value);
  }
  if (rest.empty() || rest.front() == '?') out.target.push_back('/');
  out.target.append(rest);
  for (char c : out.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      error = "the URL's path has a space or control character";
      return std::nullopt;
    }
  }
  return out;
}

std::string client_request(std::string_view method, const HttpUrl& url,
                           std::string_view extra_headers, std::string_view body) {
  std::string out;
  out.reserve(128 + url.target.size() + extra_headers.size() + body.size());
  out.append(method).append(" ").append(url.target).append(" HTTP/1.1\r\nHost: ");
  out.append(url.authority).append("\r\nConnection: close\r\nUser-Agent: gatehouse\r\n");
  out.append(extra_headers);
  if (!body.empty() || method == "POST") {
    out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  out.append("\r\n").append(body);
  return out;
}

bool parse_client_response(std::string_view raw, ClientResponse& out, std::string& error) {
  // Interim 1xx responses are skipped; the final one counts.
  for (;;) {
    std::size_t scanned = 0;
    std::size_t head_size = find_head_end(raw.data(), raw.size(), scanned);
    if (head_size == 0 || head_size == kBareLf) {
      error = head_size == 0 ? "incomplete response head" : "bare LF in response head";
      return false;
    }
    ResponseHead head;
    ParseError err;
    if (parse_response_head(raw.data(), head_size, head, err) != ParseStatus::kComplete) {
      error = "invalid response head";
      return false;
    }
    raw.remove_prefix(head_size);
    if (head.status >= 100 && head.status < 200) continue;
    out.status = head.status;
    switch (response_body_kind(head, false)) {
      case BodyKind::kNone:
        out.body.clear();
        return true;
      case BodyKind::kLength:
        if (raw.size() < head.facts.content_length) {
          error = "response body shorter than its Content-Length";
          return false;
        }
        out.body.assign(raw.substr(0, head.facts.content_length));
        return true;
      case BodyKind::kChunked: {
        std::string copy(raw);
        ChunkedDecoder decoder;
        std::size_t consumed = 0;
        uint64_t payload = 0;
        std::size_t out_len = 0;
        auto r = decoder.decode(copy.data(), copy.size(), consumed, payload, copy.data(), out_len);
        if (r != ChunkedDecoder::Result::kDone) {
          error = "bad or incomplete chunked response body";
          return false;
        }
        copy.resize(out_len);
        out.body = std::move(copy);
        return true;
      }
      default:
        out.body.assign(raw);
        return true;
    }
  }
}

}  // namespace gatehouse::http
