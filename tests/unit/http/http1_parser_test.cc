#include "http/http1_parser.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::http {
namespace {

using namespace std::string_literals;

// Holds the bytes a parsed head points into, as the connection buffer would.
class RequestParse {
 public:
  explicit RequestParse(std::string raw) : raw_(std::move(raw)), head_(new RequestHead()) {
    std::size_t scanned = 0;
    head_size_ = find_head_end(raw_.data(), raw_.size(), scanned);
    if (head_size_ == 0 || head_size_ == kBareLf) return;
    status_ = parse_request_head(raw_.data(), head_size_, *head_, err_);
    parsed_ = true;
  }
  bool ok() const { return parsed_ && status_ == ParseStatus::kComplete; }
  // The status the gateway answers with, or 0 when the head is accepted.
  int rejection() const { return parsed_ && status_ == ParseStatus::kError ? err_.status : 0; }
  const RequestHead& head() const { return *head_; }
  const ParseError& err() const { return err_; }
  std::size_t head_size() const { return head_size_; }

 private:
  std::string raw_;
  std::unique_ptr<RequestHead> head_;
  ParseError err_;
  ParseStatus status_ = ParseStatus::kIncomplete;
  std::size_t head_size_ = 0;
  bool parsed_ = false;
};

class ResponseParse {
 public:
  explicit ResponseParse(std::string raw) : raw_(std::move(raw)), head_(new ResponseHead()) {
    std::size_t scanned = 0;
    std::size_t size = find_head_end(raw_.data(), raw_.size(), scanned);
    if (size == 0 || size == kBareLf) return;
    status_ = parse_response_head(raw_.data(), size, *head_, err_);
    parsed_ = true;
  }
  bool ok() const { return parsed_ && status_ == ParseStatus::kComplete; }
  int rejection() const { return parsed_ && status_ == ParseStatus::kError ? err_.status : 0; }
  const ResponseHead& head() const { return *head_; }

 private:
  std::string raw_;
  std::unique_ptr<ResponseHead> head_;
  ParseError err_;
  ParseStatus status_ = ParseStatus::kIncomplete;
  bool parsed_ = false;
};

// A GET with Host and the given extra header lines (each ending in CRLF).
std::string get_with(std::string_view fields) {
  return "GET / HTTP/1.1\r\nHost: example.com\r\n"s + std::string(fields) + "\r\n";
}
std::string post_with(std::string_view fields) {
  return "POST /upload HTTP/1.1\r\nHost: example.com\r\n"s + std::string(fields) + "\r\n";
}
std::string request_line(std::string_view line) {
  return std::string(line) + "\r\nHost: example.com\r\n\r\n";
}
std::string response_with(std::string_view status_line, std::string_view fields) {
  return std::string(status_line) + "\r\n" + std::string(fields) + "\r\n";
}

// ---------------------------------------------------------------------------
// Request line and request-target (RFC 9112 3)

TEST(Http1ParserRequestLine, ParsesOriginFormGet) {
  RequestParse p("GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n");
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().method, "GET");
  EXPECT_EQ(p.head().target, "/index.html");
  EXPECT_EQ(p.head().path, "/index.html");
  EXPECT_FALSE(p.head().has_query);
  EXPECT_EQ(p.head().minor_version, 1);
  EXPECT_EQ(p.head().host, "example.com");
  EXPECT_EQ(p.head().header_count, 1u);
  EXPECT_EQ(p.head().facts.body, BodyKind::kNone);
  EXPECT_EQ(p.head().head_size, p.head_size());
}

TEST(Http1ParserRequestLine, ParsesPostWithContentLength) {
  RequestParse p(post_with("Content-Length: 5\r\n"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().method, "POST");
  EXPECT_EQ(p.head().facts.body, BodyKind::kLength);
  EXPECT_EQ(p.head().facts.content_length, 5u);
}

TEST(Http1ParserRequestLine, ParsesChunkedPost) {
  RequestParse p(post_with("Transfer-Encoding: chunked\r\n"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().facts.body, BodyKind::kChunked);
}

TEST(Http1ParserRequestLine, ParsesHttp10Request) {
  RequestParse p("GET / HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().minor_version, 0);
}

TEST(Http1ParserRequestLine, ParsesAbsoluteFormIntoAuthorityPathAndQuery) {
  RequestParse p("GET http://example.com:8080/a/b?x=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().authority, "example.com:8080");
  EXPECT_EQ(p.head().path, "/a/b");
  EXPECT_EQ(p.head().query, "x=1");
  EXPECT_TRUE(p.head().has_query);
  EXPECT_EQ(p.head().host, "example.com:8080");
}

TEST(Http1ParserRequestLine, AbsoluteFormWithoutPathHasRootPath) {
  RequestParse p("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().path, "/");
  EXPECT_FALSE(p.head().has_query);
}

TEST(Http1ParserRequestLine, AbsoluteFormWithOnlyQueryHasRootPath) {
  RequestParse p("GET http://example.com?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().authority, "example.com");
  EXPECT_EQ(p.head().path, "/");
  EXPECT_EQ(p.head().query, "x=1");
}

TEST(Http1ParserRequestLine, AcceptsHttpsSchemeInAnyCase) {
  RequestParse p("GET HTTPS://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_TRUE(p.ok()) << p.err().detail;
}

TEST(Http1ParserRequestLine, AbsoluteFormOnHttp10WithoutHostUsesAuthority) {
  RequestParse p("GET http://example.com/ HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().host, "example.com");
}

TEST(Http1ParserRequestLine, AcceptsHostMatchingAuthorityInAnotherCase) {
  RequestParse p("GET http://Example.COM/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().host, "Example.COM");
}

TEST(Http1ParserRequestLine, RejectsHostDifferentFromAbsoluteFormAuthority) {
  // Routed on the authority while the upstream would see the Host field.
  RequestParse p("GET http://public.example/ HTTP/1.1\r\nHost: admin.internal\r\n\r\n");
  EXPECT_EQ(p.rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsAbsoluteFormAuthorityWithInvalidCharacters) {
  RequestParse p("GET http://exa{mple.com/ HTTP/1.0\r\n\r\n");
  EXPECT_EQ(p.rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsAbsoluteFormWithUserinfo) {
  RequestParse p("GET http://user@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(p.rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsAbsoluteFormWithEmptyAuthority) {
  RequestParse p(request_line("GET http:///a HTTP/1.1"));
  EXPECT_EQ(p.rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsAbsoluteFormWithUnsupportedScheme) {
  RequestParse p(request_line("GET ftp://example.com/ HTTP/1.1"));
  EXPECT_EQ(p.rejection(), 400);
}

TEST(Http1ParserRequestLine, AcceptsAsteriskFormForOptions) {
  RequestParse p(request_line("OPTIONS * HTTP/1.1"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().path, "*");
}

TEST(Http1ParserRequestLine, RejectsAsteriskFormForGet) {
  EXPECT_EQ(RequestParse(request_line("GET * HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsRelativeTarget) {
  EXPECT_EQ(RequestParse(request_line("GET foo HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsAuthorityFormForGet) {
  EXPECT_EQ(RequestParse(request_line("GET example.com:443 HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsConnectWith501) {
  EXPECT_EQ(RequestParse(request_line("CONNECT example.com:443 HTTP/1.1")).rejection(), 501);
}

TEST(Http1ParserRequestLine, RejectsHttp09RequestWithoutVersion) {
  EXPECT_EQ(RequestParse(request_line("GET /")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsUnknownProtocol) {
  EXPECT_EQ(RequestParse(request_line("GET / FOO/1.1")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsLowerCaseProtocolName) {
  // RFC 9112 2.3: HTTP-name is case-sensitive.
  EXPECT_EQ(RequestParse(request_line("GET / http/1.1")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsHttp20With505) {
  EXPECT_EQ(RequestParse(request_line("GET / HTTP/2.0")).rejection(), 505);
}

TEST(Http1ParserRequestLine, RejectsHttp12With505) {
  EXPECT_EQ(RequestParse(request_line("GET / HTTP/1.2")).rejection(), 505);
}

TEST(Http1ParserRequestLine, RejectsHttp09VersionWith505) {
  EXPECT_EQ(RequestParse(request_line("GET / HTTP/0.9")).rejection(), 505);
}

TEST(Http1ParserRequestLine, RejectsMultiDigitMinorVersion) {
  EXPECT_EQ(RequestParse(request_line("GET / HTTP/1.10")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsVersionWithoutMinor) {
  EXPECT_EQ(RequestParse(request_line("GET / HTTP/1")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsDoubleSpaceBeforeTarget) {
  EXPECT_EQ(RequestParse(request_line("GET  / HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsSpaceAfterVersion) {
  EXPECT_EQ(RequestParse(request_line("GET / HTTP/1.1 ")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsLeadingSpaceBeforeMethod) {
  EXPECT_EQ(RequestParse(request_line(" GET / HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsTabAsSeparator) {
  EXPECT_EQ(RequestParse(request_line("GET\t/ HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsMethodWithNonTokenCharacter) {
  EXPECT_EQ(RequestParse(request_line("GE(T / HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsFragmentInTarget) {
  EXPECT_EQ(RequestParse(request_line("GET /a#b HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsDelInTarget) {
  EXPECT_EQ(RequestParse(request_line("GET /a\x7f HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsNonAsciiByteInTarget) {
  EXPECT_EQ(RequestParse(request_line("GET /caf\xc3\xa9 HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserRequestLine, RejectsEmptyRequestLine) {
  // Leading empty lines are skipped by the caller, not the parser.
  EXPECT_EQ(RequestParse("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").rejection(), 400);
}

// ---------------------------------------------------------------------------
// Percent-encoding and query (RFC 3986 2.1, 3.4)

TEST(Http1ParserTarget, KeepsValidPercentEncodingRaw) {
  RequestParse p(request_line("GET /a%2Fb%7e HTTP/1.1"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().path, "/a%2Fb%7e");
}

TEST(Http1ParserTarget, RejectsPercentWithOneHexDigit) {
  EXPECT_EQ(RequestParse(request_line("GET /a%2 HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserTarget, RejectsPercentAtEndOfTarget) {
  EXPECT_EQ(RequestParse(request_line("GET /a% HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserTarget, RejectsPercentWithNonHexDigits) {
  EXPECT_EQ(RequestParse(request_line("GET /a%zz/b HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserTarget, RejectsMalformedPercentEncodingInQuery) {
  EXPECT_EQ(RequestParse(request_line("GET /a?x=%g1 HTTP/1.1")).rejection(), 400);
}

TEST(Http1ParserTarget, SplitsPathAndQuery) {
  RequestParse p(request_line("GET /a/b?x=1&y HTTP/1.1"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().path, "/a/b");
  EXPECT_EQ(p.head().query, "x=1&y");
  EXPECT_TRUE(p.head().has_query);
}

TEST(Http1ParserTarget, EmptyQueryAfterQuestionMarkIsPresent) {
  RequestParse p(request_line("GET /a? HTTP/1.1"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().path, "/a");
  EXPECT_EQ(p.head().query, "");
  EXPECT_TRUE(p.head().has_query);
}

TEST(Http1ParserTarget, QueryKeepsLaterQuestionMarks) {
  RequestParse p(request_line("GET /a?b?c HTTP/1.1"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().path, "/a");
  EXPECT_EQ(p.head().query, "b?c");
}

// ---------------------------------------------------------------------------
// Field lines (RFC 9112 5)

TEST(Http1ParserFields, TrimsOwsAroundValue) {
  RequestParse p(get_with("X-A: \t v a \t\r\n"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  ASSERT_EQ(p.head().header_count, 2u);
  EXPECT_EQ(p.head().headers[1].name, "X-A");
  EXPECT_EQ(p.head().headers[1].value, "v a");
}

TEST(Http1ParserFields, AcceptsEmptyValue) {
  RequestParse p(get_with("X-Empty:\r\n"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().headers[1].value, "");
}

TEST(Http1ParserFields, AcceptsObsTextInValue) {
  RequestParse p(get_with("X-Name: caf\xc3\xa9\r\n"));
  EXPECT_TRUE(p.ok()) << p.err().detail;
}

TEST(Http1ParserFields, RejectsObsFold) {
  EXPECT_EQ(RequestParse(get_with("X-A: one\r\n two\r\n")).rejection(), 400);
}

TEST(Http1ParserFields, RejectsWhitespaceBeforeFirstField) {
  // RFC 9112 2.2: whitespace between the start-line and the first field.
  EXPECT_EQ(RequestParse("GET / HTTP/1.1\r\n Host: a\r\n\r\n").rejection(), 400);
}

TEST(Http1ParserFields, RejectsSpaceBeforeColon) {
  EXPECT_EQ(RequestParse(get_with("Content-Length : 5\r\n")).rejection(), 400);
}

TEST(Http1ParserFields, RejectsTabBeforeColon) {
  EXPECT_EQ(RequestParse(get_with("Transfer-Encoding\t: chunked\r\n")).rejection(), 400);
}

TEST(Http1ParserFields, RejectsLineWithoutColon) {
  EXPECT_EQ(RequestParse(get_with("X-A\r\n")).rejection(), 400);
}

TEST(Http1ParserFields, RejectsEmptyFieldName) {
  EXPECT_EQ(RequestParse(get_with(": v\r\n")).rejection(), 400);
}

TEST(Http1ParserFields, RejectsNonTokenCharacterInName) {
  EXPECT_EQ(RequestParse(get_with("X(A): v\r\n")).rejection(), 400);
}

TEST(Http1ParserFields, RejectsSpaceInsideName) {
  EXPECT_EQ(RequestParse(get_with("X A: v\r\n")).rejection(), 400);
}

TEST(Http1ParserFields, RejectsBareCrInValue) {
  EXPECT_EQ(RequestParse(get_with("X-A: a\rb\r\n")).rejection(), 400);
}

TEST(Http1ParserFields, RejectsCrBeforeLineEnd) {
  EXPECT_EQ(RequestParse(get_with("X-A: a\r\r\n")).rejection(), 400);
}

TEST(Http1ParserFields, RejectsNulInValue) {
  EXPECT_EQ(RequestParse(get_with("X-A: a\0b\r\n"s)).rejection(), 400);
}

TEST(Http1ParserFields, RejectsControlCharacterInValue) {
  EXPECT_EQ(RequestParse(get_with("X-A: a\x01"
                                  "b\r\n"))
                .rejection(),
            400);
}

TEST(Http1ParserFields, RejectsDelInValue) {
  EXPECT_EQ(RequestParse(get_with("X-A: a\x7f\r\n")).rejection(), 400);
}

TEST(Http1ParserFields, AcceptsExactlyMaxHeaders) {
  std::string fields;
  for (std::size_t i = 1; i < kMaxHeaders; ++i) fields += "X-" + std::to_string(i) + ": v\r\n";
  RequestParse p(get_with(fields));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().header_count, kMaxHeaders);
}

TEST(Http1ParserFields, RejectsMoreThanMaxHeadersWith431) {
  std::string fields;
  for (std::size_t i = 0; i < kMaxHeaders; ++i) fields += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(RequestParse(get_with(fields)).rejection(), 431);
}

// ---------------------------------------------------------------------------
// Host (RFC 9112 3.2)

TEST(Http1ParserHost, RejectsMissingHostOnHttp11) {
  EXPECT_EQ(RequestParse("GET / HTTP/1.1\r\n\r\n").rejection(), 400);
}

TEST(Http1ParserHost, AcceptsMissingHostOnHttp10) {
  RequestParse p("GET / HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().host, "");
}

TEST(Http1ParserHost, RejectsRepeatedHost) {
  EXPECT_EQ(RequestParse(get_with("Host: example.com\r\n")).rejection(), 400);
}

TEST(Http1ParserHost, RejectsEmptyHost) {
  EXPECT_EQ(RequestParse("GET / HTTP/1.1\r\nHost:\r\n\r\n").rejection(), 400);
}

TEST(Http1ParserHost, RejectsHostWithSlash) {
  EXPECT_EQ(RequestParse("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n").rejection(), 400);
}

TEST(Http1ParserHost, RejectsHostWithInnerSpace) {
  EXPECT_EQ(RequestParse("GET / HTTP/1.1\r\nHost: a b\r\n\r\n").rejection(), 400);
}

TEST(Http1ParserHost, AcceptsIpv6LiteralWithPort) {
  RequestParse p("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().host, "[::1]:8080");
}

TEST(Http1ParserHost, MatchesHostNameCaseInsensitively) {
  RequestParse p("GET / HTTP/1.1\r\nhOsT: example.com\r\n\r\n");
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().host, "example.com");
}

// ---------------------------------------------------------------------------
// Content-Length (RFC 9110 8.6, RFC 9112 6.3)

TEST(Http1ParserContentLength, ZeroMeansNoBody) {
  RequestParse p(post_with("Content-Length: 0\r\n"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().facts.body, BodyKind::kNone);
  EXPECT_EQ(p.head().facts.content_length, 0u);
}

TEST(Http1ParserContentLength, AcceptsLeadingOwsBecauseItIsNotPartOfTheValue) {
  RequestParse p(post_with("Content-Length:  5\r\n"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().facts.content_length, 5u);
}

TEST(Http1ParserContentLength, AcceptsTrailingOws) {
  RequestParse p(post_with("Content-Length: 5 \t\r\n"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().facts.content_length, 5u);
}

TEST(Http1ParserContentLength, AcceptsLeadingZeros) {
  RequestParse p(post_with("Content-Length: 007\r\n"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().facts.content_length, 7u);
}

TEST(Http1ParserContentLength, RejectsContentLengthWithTransferEncoding) {
  EXPECT_EQ(
      RequestParse(post_with("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")).rejection(),
      400);
}

TEST(Http1ParserContentLength, RejectsTransferEncodingWithContentLength) {
  EXPECT_EQ(
      RequestParse(post_with("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")).rejection(),
      400);
}

TEST(Http1ParserContentLength, RejectsRepeatedContentLengthEvenWhenEqual) {
  EXPECT_EQ(RequestParse(post_with("Content-Length: 5\r\nContent-Length: 5\r\n")).rejection(), 400);
}

TEST(Http1ParserContentLength, RejectsDifferingContentLengths) {
  EXPECT_EQ(RequestParse(post_with("Content-Length: 5\r\nContent-Length: 6\r\n")).rejection(), 400);
}

TEST(Http1ParserContentLength, RejectsListValue) {
  EXPECT_EQ(RequestParse(post_with("Content-Length: 5, 5\r\n")).rejection(), 400);
}

TEST(Http1ParserContentLength, RejectsPlusSign) {
  EXPECT_EQ(RequestParse(post_with("Content-Length: +5\r\n")).rejection(), 400);
}

TEST(Http1ParserContentLength, RejectsNegativeValue) {
  EXPECT_EQ(RequestParse(post_with("Content-Length: -1\r\n")).rejection(), 400);
}

TEST(Http1ParserContentLength, RejectsHexValue) {
  EXPECT_EQ(RequestParse(post_with("Content-Length: 0x5\r\n")).rejection(), 400);
}

TEST(Http1ParserContentLength, RejectsInnerSpace) {
  EXPECT_EQ(RequestParse(post_with("Content-Length: 5 5\r\n")).rejection(), 400);
}

TEST(Http1ParserContentLength, RejectsEmptyValue) {
  EXPECT_EQ(RequestParse(post_with("Content-Length:\r\n")).rejection(), 400);
}

TEST(Http1ParserContentLength, Accepts18Digits) {
  RequestParse p(post_with("Content-Length: 999999999999999999\r\n"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().facts.content_length, 999999999999999999u);
}

TEST(Http1ParserContentLength, Rejects19Digits) {
  EXPECT_EQ(RequestParse(post_with("Content-Length: 1000000000000000000\r\n")).rejection(), 400);
}

TEST(Http1ParserContentLength, RejectsValueOverflowingUint64) {
  EXPECT_EQ(RequestParse(post_with("Content-Length: 18446744073709551621\r\n")).rejection(), 400);
}

TEST(Http1ParserContentLength, MatchesNameCaseInsensitively) {
  RequestParse p(post_with("content-LENGTH: 3\r\n"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().facts.content_length, 3u);
}

// ---------------------------------------------------------------------------
// Transfer-Encoding (RFC 9112 6.1, 6.3)

TEST(Http1ParserTransferEncoding, MatchesChunkedCaseInsensitively) {
  RequestParse p(post_with("transfer-encoding: Chunked\r\n"));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_EQ(p.head().facts.body, BodyKind::kChunked);
}

TEST(Http1ParserTransferEncoding, RejectsGzipAloneWith400) {
  // RFC 9112 6.3 (4): chunked is not the final coding, so the body length
  // cannot be determined: the server MUST answer 400.
  EXPECT_EQ(RequestParse(post_with("Transfer-Encoding: gzip\r\n")).rejection(), 400);
}

TEST(Http1ParserTransferEncoding, RejectsGzipThenChunkedWith501) {
  EXPECT_EQ(RequestParse(post_with("Transfer-Encoding: gzip, chunked\r\n")).rejection(), 501);
}

TEST(Http1ParserTransferEncoding, RejectsChunkedThenGzipWith400) {
  EXPECT_EQ(RequestParse(post_with("Transfer-Encoding: chunked, gzip\r\n")).rejection(), 400);
}

TEST(Http1ParserTransferEncoding, RejectsChunkedTwiceWith400) {
  EXPECT_EQ(RequestParse(post_with("Transfer-Encoding: chunked, chunked\r\n")).rejection(), 400);
}

TEST(Http1ParserTransferEncoding, RejectsRepeatedTransferEncodingField) {
  EXPECT_EQ(RequestParse(post_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"))
                .rejection(),
            400);
}

TEST(Http1ParserTransferEncoding, RejectsUnknownCodingWith501) {
  EXPECT_EQ(RequestParse(post_with("Transfer-Encoding: foo, chunked\r\n")).rejection(), 501);
}

TEST(Http1ParserTransferEncoding, RejectsEmptyListElement) {
  EXPECT_EQ(RequestParse(post_with("Transfer-Encoding: chunked,\r\n")).rejection(), 400);
}

TEST(Http1ParserTransferEncoding, RejectsQuotedCoding) {
  EXPECT_EQ(RequestParse(post_with("Transfer-Encoding: \"chunked\"\r\n")).rejection(), 400);
}

TEST(Http1ParserTransferEncoding, RejectsEmptyValue) {
  EXPECT_EQ(RequestParse(post_with("Transfer-Encoding:\r\n")).rejection(), 400);
}

TEST(Http1ParserTransferEncoding, RejectsTransferEncodingOnHttp10) {
  EXPECT_EQ(RequestParse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").rejection(), 400);
}

// ---------------------------------------------------------------------------
// Connection and persistence (RFC 9112 9.3)

TEST(Http1ParserConnection, Http11KeepsAliveByDefault) {
  RequestParse p(get_with(""));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p.head().keep_alive);
}

TEST(Http1ParserConnection, Http11ConnectionCloseDisablesKeepAlive) {
  RequestParse p(get_with("Connection: close\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p.head().keep_alive);
  EXPECT_TRUE(p.head().facts.connection_close);
}

TEST(Http1ParserConnection, FindsCloseInListCaseInsensitively) {
  RequestParse p(get_with("Connection: x-trace , Close\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p.head().keep_alive);
}

TEST(Http1ParserConnection, Http10ClosesByDefault) {
  RequestParse p("GET / HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p.head().keep_alive);
}

TEST(Http1ParserConnection, Http10KeepAliveTokenKeepsAlive) {
  RequestParse p("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p.head().keep_alive);
}

TEST(Http1ParserConnection, Http10CloseWinsOverKeepAlive) {
  RequestParse p("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p.head().keep_alive);
}

TEST(Http1ParserConnection, RecordsConnectionTokens) {
  RequestParse p(get_with("Connection: x-a, x-b\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().facts.connection_tokens, "x-a, x-b");
  EXPECT_EQ(p.head().facts.connection_header_count, 1);
}

TEST(Http1ParserConnection, CountsRepeatedConnectionFields) {
  RequestParse p(get_with("Connection: x-a\r\nConnection: x-b\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().facts.connection_header_count, 2);
}

// ---------------------------------------------------------------------------
// Expect (RFC 9110 10.1.1)

TEST(Http1ParserExpect, Records100Continue) {
  RequestParse p(post_with("Content-Length: 5\r\nExpect: 100-continue\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p.head().expect_continue);
}

TEST(Http1ParserExpect, Matches100ContinueCaseInsensitively) {
  RequestParse p(post_with("Content-Length: 5\r\nExpect: 100-Continue\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p.head().expect_continue);
}

TEST(Http1ParserExpect, RejectsOtherExpectationWith417) {
  EXPECT_EQ(RequestParse(post_with("Expect: 200-ok\r\n")).rejection(), 417);
}

TEST(Http1ParserExpect, Ignores100ContinueOnHttp10) {
  RequestParse p("POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p.head().expect_continue);
}

// ---------------------------------------------------------------------------
// X-Request-Id

TEST(Http1ParserRequestId, KeepsValidRequestId) {
  RequestParse p(get_with("X-Request-Id: abc-123_x.y:Z\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().request_id, "abc-123_x.y:Z");
}

TEST(Http1ParserRequestId, IgnoresRequestIdWithDisallowedCharacter) {
  RequestParse p(get_with("X-Request-Id: abc/123\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().request_id, "");
}

TEST(Http1ParserRequestId, IgnoresEmptyRequestId) {
  RequestParse p(get_with("X-Request-Id:\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().request_id, "");
}

TEST(Http1ParserRequestId, Accepts128CharacterRequestId) {
  std::string id(128, 'a');
  RequestParse p(get_with("X-Request-Id: " + id + "\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().request_id, id);
}

TEST(Http1ParserRequestId, IgnoresRequestIdLongerThan128Characters) {
  RequestParse p(get_with("X-Request-Id: " + std::string(129, 'a') + "\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().request_id, "");
}

// ---------------------------------------------------------------------------
// find_head_end (RFC 9112 2.2)

TEST(Http1ParserFindHeadEnd, ReturnsSizeThroughEmptyLine) {
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  std::size_t scanned = 0;
  EXPECT_EQ(find_head_end(head.data(), head.size(), scanned), head.size());
}

TEST(Http1ParserFindHeadEnd, ReturnsZeroWhenIncomplete) {
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r";
  std::size_t scanned = 0;
  EXPECT_EQ(find_head_end(head.data(), head.size(), scanned), 0u);
}

TEST(Http1ParserFindHeadEnd, StopsAtFirstHeadWhenRequestsArePipelined) {
  std::string first = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
  std::string both = first + "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
  std::size_t scanned = 0;
  EXPECT_EQ(find_head_end(both.data(), both.size(), scanned), first.size());
}

TEST(Http1ParserFindHeadEnd, RefusesBareLfEndingRequestLine) {
  std::string head = "GET / HTTP/1.1\nHost: a\r\n\r\n";
  std::size_t scanned = 0;
  EXPECT_EQ(find_head_end(head.data(), head.size(), scanned), kBareLf);
}

TEST(Http1ParserFindHeadEnd, RefusesBareLfEndingField) {
  std::string head = "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n";
  std::size_t scanned = 0;
  EXPECT_EQ(find_head_end(head.data(), head.size(), scanned), kBareLf);
}

TEST(Http1ParserFindHeadEnd, RefusesBareLfAsEmptyLine) {
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\n";
  std::size_t scanned = 0;
  EXPECT_EQ(find_head_end(head.data(), head.size(), scanned), kBareLf);
}

TEST(Http1ParserFindHeadEnd, RefusesLfAtStart) {
  std::string head = "\nGET / HTTP/1.1\r\n\r\n";
  std::size_t scanned = 0;
  EXPECT_EQ(find_head_end(head.data(), head.size(), scanned), kBareLf);
}

TEST(Http1ParserFindHeadEnd, ByteByByteArrivalFindsSameEnd) {
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n";
  std::string all = head + "tail";
  std::size_t scanned = 0;
  for (std::size_t n = 1; n < head.size(); ++n) {
    ASSERT_EQ(find_head_end(all.data(), n, scanned), 0u) << "at " << n;
    ASSERT_LE(scanned, n);
  }
  EXPECT_EQ(find_head_end(all.data(), all.size(), scanned), head.size());
}

TEST(Http1ParserFindHeadEnd, RefusesBareLfArrivingInLaterRead) {
  std::string data = "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n";
  std::size_t scanned = 0;
  ASSERT_EQ(find_head_end(data.data(), 20, scanned), 0u);
  EXPECT_EQ(find_head_end(data.data(), data.size(), scanned), kBareLf);
}

// ---------------------------------------------------------------------------
// is_hop_by_hop (RFC 9110 7.6.1)

TEST(Http1ParserHopByHop, RecognisesStandardHopByHopFields) {
  for (std::string_view name :
       {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding",
        "UPGRADE", "Proxy-Authenticate", "Proxy-Authorization"}) {
    EXPECT_TRUE(is_hop_by_hop(name, "")) << name;
  }
}

TEST(Http1ParserHopByHop, EndToEndFieldIsNotHopByHop) {
  EXPECT_FALSE(is_hop_by_hop("Content-Type", ""));
  EXPECT_FALSE(is_hop_by_hop("Host", "close"));
}

TEST(Http1ParserHopByHop, FieldListedInConnectionIsHopByHop) {
  EXPECT_TRUE(is_hop_by_hop("X-Secret", "close, x-secret"));
}

TEST(Http1ParserHopByHop, ConnectionListingMatchesWholeNamesOnly) {
  EXPECT_FALSE(is_hop_by_hop("X-Sec", "x-secret"));
  EXPECT_FALSE(is_hop_by_hop("X-Secret-2", "x-secret"));
}

TEST(Http1ParserHopByHop, ConnectionListingToleratesOws) {
  EXPECT_TRUE(is_hop_by_hop("X-B", "x-a ,\tX-B\t"));
}

// ---------------------------------------------------------------------------
// Response head (RFC 9112 4, 6.3)

TEST(Http1ParserResponse, ParsesStatusLine) {
  ResponseParse p(response_with("HTTP/1.1 404 Not Found Here", "Content-Length: 0\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().status, 404);
  EXPECT_EQ(p.head().reason, "Not Found Here");
  EXPECT_EQ(p.head().minor_version, 1);
}

TEST(Http1ParserResponse, AcceptsEmptyReasonPhrase) {
  ResponseParse p(response_with("HTTP/1.1 204 ", ""));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().status, 204);
  EXPECT_EQ(p.head().reason, "");
}

TEST(Http1ParserResponse, AcceptsStatusLineWithoutReasonOrSpace) {
  ResponseParse p(response_with("HTTP/1.0 200", ""));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().status, 200);
  EXPECT_EQ(p.head().minor_version, 0);
}

TEST(Http1ParserResponse, RejectsTwoDigitStatusWith502) {
  EXPECT_EQ(ResponseParse(response_with("HTTP/1.1 20 OK", "")).rejection(), 502);
}

TEST(Http1ParserResponse, RejectsFourDigitStatusWith502) {
  EXPECT_EQ(ResponseParse(response_with("HTTP/1.1 2000 OK", "")).rejection(), 502);
}

TEST(Http1ParserResponse, RejectsStatusBelow100With502) {
  EXPECT_EQ(ResponseParse(response_with("HTTP/1.1 099 Odd", "")).rejection(), 502);
}

TEST(Http1ParserResponse, RejectsStatusAbove599With502) {
  EXPECT_EQ(ResponseParse(response_with("HTTP/1.1 600 Odd", "")).rejection(), 502);
}

TEST(Http1ParserResponse, RejectsNonDigitStatusWith502) {
  EXPECT_EQ(ResponseParse(response_with("HTTP/1.1 2x0 OK", "")).rejection(), 502);
}

TEST(Http1ParserResponse, RejectsDoubleSpaceBeforeStatusWith502) {
  EXPECT_EQ(ResponseParse(response_with("HTTP/1.1  200 OK", "")).rejection(), 502);
}

TEST(Http1ParserResponse, RejectsUnsupportedVersionWith502) {
  EXPECT_EQ(ResponseParse(response_with("HTTP/2.0 200 OK", "")).rejection(), 502);
}

TEST(Http1ParserResponse, RejectsNonHttpStatusLineWith502) {
  EXPECT_EQ(ResponseParse(response_with("ICY 200 OK", "")).rejection(), 502);
}

TEST(Http1ParserResponse, RejectsControlCharacterInReasonWith502) {
  // The reason phrase is relayed to the client; a bare CR must not be.
  EXPECT_EQ(ResponseParse(response_with("HTTP/1.1 200 O\rK", "")).rejection(), 502);
}

TEST(Http1ParserResponse, RejectsMalformedFieldWith502) {
  EXPECT_EQ(ResponseParse(response_with("HTTP/1.1 200 OK", "X-A: a\r\n b\r\n")).rejection(), 502);
}

TEST(Http1ParserResponse, RejectsTooManyFieldsWith502) {
  std::string fields;
  for (std::size_t i = 0; i <= kMaxHeaders; ++i) fields += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(ResponseParse(response_with("HTTP/1.1 200 OK", fields)).rejection(), 502);
}

TEST(Http1ParserResponse, RejectsContentLengthWithTransferEncodingWith502) {
  EXPECT_EQ(ResponseParse(response_with("HTTP/1.1 200 OK",
                                        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"))
                .rejection(),
            502);
}

TEST(Http1ParserResponse, RejectsUnknownTransferCodingWith502) {
  EXPECT_EQ(ResponseParse(response_with("HTTP/1.1 200 OK", "Transfer-Encoding: foo, chunked\r\n"))
                .rejection(),
            502);
}

TEST(Http1ParserResponse, ContentLengthGivesLengthBody) {
  ResponseParse p(response_with("HTTP/1.1 200 OK", "Content-Length: 12\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().facts.body, BodyKind::kLength);
  EXPECT_EQ(p.head().facts.content_length, 12u);
}

TEST(Http1ParserResponse, ZeroContentLengthGivesNoBody) {
  ResponseParse p(response_with("HTTP/1.1 200 OK", "Content-Length: 0\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().facts.body, BodyKind::kNone);
}

TEST(Http1ParserResponse, ChunkedGivesChunkedBody) {
  ResponseParse p(response_with("HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().facts.body, BodyKind::kChunked);
}

TEST(Http1ParserResponse, NoFramingMeansBodyUntilClose) {
  ResponseParse p(response_with("HTTP/1.1 200 OK", "Content-Type: text/plain\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.head().facts.body, BodyKind::kUntilClose);
  EXPECT_EQ(response_body_kind(p.head(), false), BodyKind::kUntilClose);
}

TEST(Http1ParserResponse, ResponseToHeadHasNoBody) {
  ResponseParse p(response_with("HTTP/1.1 200 OK", "Content-Length: 12\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(response_body_kind(p.head(), true), BodyKind::kNone);
}

TEST(Http1ParserResponse, InformationalResponseHasNoBody) {
  ResponseParse p(response_with("HTTP/1.1 100 Continue", ""));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(response_body_kind(p.head(), false), BodyKind::kNone);
}

TEST(Http1ParserResponse, NoContentResponseHasNoBody) {
  ResponseParse p(response_with("HTTP/1.1 204 No Content", ""));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(response_body_kind(p.head(), false), BodyKind::kNone);
}

TEST(Http1ParserResponse, NotModifiedHasNoBodyDespiteContentLength) {
  ResponseParse p(response_with("HTTP/1.1 304 Not Modified", "Content-Length: 100\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(response_body_kind(p.head(), false), BodyKind::kNone);
}

TEST(Http1ParserResponse, OtherStatusKeepsHeaderFraming) {
  ResponseParse p(response_with("HTTP/1.1 205 Reset Content", "Transfer-Encoding: chunked\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(response_body_kind(p.head(), false), BodyKind::kChunked);
}

TEST(Http1ParserResponse, Http11KeepsAliveByDefault) {
  ResponseParse p(response_with("HTTP/1.1 200 OK", "Content-Length: 0\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p.head().keep_alive);
}

TEST(Http1ParserResponse, ConnectionCloseDisablesKeepAlive) {
  ResponseParse p(response_with("HTTP/1.1 200 OK", "Content-Length: 0\r\nConnection: close\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p.head().keep_alive);
}

TEST(Http1ParserResponse, Http10KeepsAliveOnlyWhenAsked) {
  ResponseParse closes(response_with("HTTP/1.0 200 OK", "Content-Length: 0\r\n"));
  ResponseParse stays(
      response_with("HTTP/1.0 200 OK", "Content-Length: 0\r\nConnection: keep-alive\r\n"));
  ASSERT_TRUE(closes.ok());
  ASSERT_TRUE(stays.ok());
  EXPECT_FALSE(closes.head().keep_alive);
  EXPECT_TRUE(stays.head().keep_alive);
}

// ---------------------------------------------------------------------------
// ChunkedDecoder (RFC 9112 7.1)

struct Decoded {
  ChunkedDecoder::Result result;
  std::size_t consumed = 0;  // total over all feeds; 0 on error, where it is unspecified
  uint64_t payload = 0;
  bool operator==(const Decoded&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Decoded& d) {
  return os << "{result=" << static_cast<int>(d.result) << " consumed=" << d.consumed
            << " payload=" << d.payload << "}";
}

// Feeds `body` in pieces of `piece` bytes until the decoder is done or fails.
Decoded decode(std::string_view body, std::size_t piece = std::string_view::npos) {
  ChunkedDecoder dec;
  Decoded d{ChunkedDecoder::Result::kNeedMore};
  std::size_t off = 0;
  while (off < body.size()) {
    std::size_t n = std::min(piece, body.size() - off);
    std::size_t consumed = 0;
    d.result = dec.feed(body.data() + off, n, consumed, d.payload);
    if (d.result == ChunkedDecoder::Result::kError) {
      d.consumed = 0;
      return d;
    }
    d.consumed += consumed;
    if (d.result == ChunkedDecoder::Result::kDone) return d;
    EXPECT_EQ(consumed, n) << "a piece was cut short without kDone";
    off += n;
  }
  return d;
}

constexpr auto kDone = ChunkedDecoder::Result::kDone;
constexpr auto kNeedMore = ChunkedDecoder::Result::kNeedMore;
constexpr auto kError = ChunkedDecoder::Result::kError;

TEST(ChunkedDecoder, DecodesSingleChunk) {
  std::string body = "5\r\nhello\r\n0\r\n\r\n";
  EXPECT_EQ(decode(body), (Decoded{kDone, body.size(), 5}));
}

TEST(ChunkedDecoder, DecodesSeveralChunksWithHexSizes) {
  std::string body = "A\r\n0123456789\r\nf\r\n0123456789abcde\r\n0\r\n\r\n";
  EXPECT_EQ(decode(body), (Decoded{kDone, body.size(), 25}));
}

TEST(ChunkedDecoder, DecodesEmptyBody) {
  std::string body = "0\r\n\r\n";
  EXPECT_EQ(decode(body), (Decoded{kDone, body.size(), 0}));
}

TEST(ChunkedDecoder, AcceptsLeadingZerosInSize) {
  std::string body = "005\r\nhello\r\n000\r\n\r\n";
  EXPECT_EQ(decode(body), (Decoded{kDone, body.size(), 5}));
}

TEST(ChunkedDecoder, ByteByByteFeedingEqualsWholeFeeding) {
  const std::vector<std::string> bodies = {
      "5\r\nhello\r\n0\r\n\r\n",
      "3;a=b\r\nabc\r\n0;last\r\nX-T: v\r\n\r\n",
      "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\nNEXT",
      "5\r\nhello\r\n0\r\n",
      "5\r\nhelloX\r\n",
      "zz\r\n",
      "0\r\n\rX",
      "4 ;x\r\nabcd\r\n0\r\n\r\n",
  };
  for (const std::string& body : bodies) {
    Decoded whole = decode(body);
    for (std::size_t piece : {1, 2, 3, 7}) {
      EXPECT_EQ(decode(body, piece), whole) << "piece " << piece << " of " << body;
    }
  }
}

TEST(ChunkedDecoder, CountsOnlyDataBytesAsPayload) {
  std::string body = "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX: y\r\n\r\n";
  Decoded d = decode(body);
  EXPECT_EQ(d.result, kDone);
  EXPECT_EQ(d.payload, 5u);
}

TEST(ChunkedDecoder, AcceptsChunkExtensions) {
  std::string body = "5;name=value;flag\r\nhello\r\n0;x=\"q s\"\r\n\r\n";
  EXPECT_EQ(decode(body), (Decoded{kDone, body.size(), 5}));
}

TEST(ChunkedDecoder, AcceptsWhitespaceBeforeExtension) {
  std::string body = "5 \t;a=b\r\nhello\r\n0\r\n\r\n";
  EXPECT_EQ(decode(body), (Decoded{kDone, body.size(), 5}));
}

TEST(ChunkedDecoder, RejectsHexDigitAfterWhitespaceInSize) {
  // "5 6" is not size 5 followed by an extension.
  EXPECT_EQ(decode("5 6\r\nhello\r\n0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsGarbageAfterWhitespaceInSize) {
  EXPECT_EQ(decode("5 x\r\nhello\r\n0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsBareLfInExtension) {
  EXPECT_EQ(decode("5;a\nhello\r\n0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsControlCharacterInExtension) {
  EXPECT_EQ(decode("5;a\x01\r\nhello\r\n0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsOverlongExtension) {
  std::string body = "5;" + std::string(5000, 'a') + "\r\nhello\r\n0\r\n\r\n";
  EXPECT_EQ(decode(body).result, kError);
}

TEST(ChunkedDecoder, AcceptsTrailers) {
  std::string body = "5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: two words\r\n\r\n";
  EXPECT_EQ(decode(body), (Decoded{kDone, body.size(), 5}));
}

TEST(ChunkedDecoder, RejectsFoldedTrailerLine) {
  EXPECT_EQ(decode("0\r\nX-A: 1\r\n folded\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsBareLfInTrailer) {
  EXPECT_EQ(decode("0\r\nX-A: 1\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsOversizedTrailerSection) {
  std::string body = "0\r\n";
  for (int i = 0; i < 200; ++i)
    body += "X-" + std::to_string(i) + ": " + std::string(100, 'v') + "\r\n";
  body += "\r\n";
  EXPECT_EQ(decode(body).result, kError);
}

TEST(ChunkedDecoder, RejectsNonHexSize) {
  EXPECT_EQ(decode("zz\r\nhello\r\n0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsEmptySize) {
  EXPECT_EQ(decode("\r\nhello\r\n0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsHexPrefixInSize) {
  EXPECT_EQ(decode("0x5\r\nhello\r\n0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsSignedSize) {
  EXPECT_EQ(decode("+5\r\nhello\r\n0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, Accepts15HexDigitSize) {
  EXPECT_EQ(decode("fffffffffffffff\r\nabc"), (Decoded{kNeedMore, 20, 3}));
}

TEST(ChunkedDecoder, Rejects16HexDigitSize) {
  EXPECT_EQ(decode("1000000000000000\r\nabc").result, kError);
}

TEST(ChunkedDecoder, Rejects17HexDigitSizeThatWouldOverflow) {
  EXPECT_EQ(decode("10000000000000005\r\nhello\r\n0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsSizeLineEndedByBareCr) {
  EXPECT_EQ(decode("5\rhello\r\n0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsSizeLineEndedByBareLf) {
  EXPECT_EQ(decode("5\nhello\r\n0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsDataLongerThanSize) {
  EXPECT_EQ(decode("5\r\nhelloX\r\n0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsDataFollowedByBareLf) {
  EXPECT_EQ(decode("5\r\nhello\n0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, RejectsDataFollowedByCrWithoutLf) {
  EXPECT_EQ(decode("5\r\nhello\rX0\r\n\r\n").result, kError);
}

TEST(ChunkedDecoder, NeedsMoreWithoutFinalCrlf) {
  std::string body = "5\r\nhello\r\n0\r\n";
  EXPECT_EQ(decode(body), (Decoded{kNeedMore, body.size(), 5}));
}

TEST(ChunkedDecoder, RejectsLastChunkEndedByCrWithoutLf) {
  EXPECT_EQ(decode("5\r\nhello\r\n0\r\n\rX").result, kError);
}

TEST(ChunkedDecoder, ConsumedStopsAtEndOfBody) {
  std::string body = "5\r\nhello\r\n0\r\n\r\n";
  std::string next = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(decode(body + next), (Decoded{kDone, body.size(), 5}));
}

TEST(ChunkedDecoder, ConsumedStopsAtEndOfBodyInsideALaterPiece) {
  std::string body = "5\r\nhello\r\n0\r\nT: 1\r\n\r\n";
  std::string next = "GET / HTTP/1.1\r\n";
  for (std::size_t piece : {1, 4, 9}) {
    EXPECT_EQ(decode(body + next, piece), (Decoded{kDone, body.size(), 5})) << piece;
  }
}

TEST(ChunkedDecoder, FeedAfterDoneConsumesNothing) {
  ChunkedDecoder dec;
  std::string body = "0\r\n\r\n";
  std::size_t consumed = 0;
  uint64_t payload = 0;
  ASSERT_EQ(dec.feed(body.data(), body.size(), consumed, payload), kDone);
  EXPECT_TRUE(dec.done());
  std::string more = "GET";
  consumed = 99;
  EXPECT_EQ(dec.feed(more.data(), more.size(), consumed, payload), kDone);
  EXPECT_EQ(consumed, 0u);
}

TEST(ChunkedDecoder, ReportsErrorReason) {
  ChunkedDecoder dec;
  std::string body = "zz\r\n";
  std::size_t consumed = 0;
  uint64_t payload = 0;
  ASSERT_EQ(dec.feed(body.data(), body.size(), consumed, payload), kError);
  EXPECT_FALSE(dec.error().empty());
  EXPECT_FALSE(dec.done());
}

}  // namespace
}  // namespace gatehouse::http

namespace gatehouse::http {
namespace {

TEST(HopByHop, DropsNamesListedInEveryConnectionField) {
  Header headers[] = {{"Connection", "x-one"},
                      {"X-One", "1"},
                      {"Connection", "X-Two, keep-alive"},
                      {"X-Two", "2"},
                      {"X-Three", "3"}};
  HopByHop filter(headers, 5);
  EXPECT_TRUE(filter.drops("x-one"));
  EXPECT_TRUE(filter.drops("X-TWO"));
  EXPECT_TRUE(filter.drops("Keep-Alive"));
  EXPECT_TRUE(filter.drops("Connection"));
  EXPECT_TRUE(filter.drops("TE"));
  EXPECT_FALSE(filter.drops("X-Three"));
}

TEST(HopByHop, ListedNamesOfAnyLengthAreDroppedAndOthersOfTheSameLengthKept) {
  std::string long_a(70, 'a'), long_b(80, 'b'), long_c(64, 'c');
  std::string listing = " x-q , " + long_a + ",\t" + long_b + " ";
  Header headers[] = {{"Connection", listing}};
  HopByHop filter(headers, 1);
  EXPECT_TRUE(filter.drops("X-Q"));
  EXPECT_FALSE(filter.drops("X-R"));  // same length as a listed name
  EXPECT_TRUE(filter.drops(long_a));
  EXPECT_TRUE(filter.drops(long_b));
  EXPECT_FALSE(filter.drops(long_c));  // as long as none, but past the length bitmap
  EXPECT_FALSE(filter.drops("x-qq"));
}

// drops() answers from a bitmap of lengths first: every fixed hop-by-hop
// name, in any case, must still be dropped, and names of other lengths kept.
TEST(HopByHop, EveryFixedNameIsDroppedPastTheLengthBitmap) {
  HopByHop filter(static_cast<const Header*>(nullptr), 0);
  for (std::string_view name :
       {"TE", "Trailer", "Upgrade", "Connection", "Keep-Alive", "Proxy-Connection",
        "Transfer-Encoding", "Proxy-Authenticate", "Proxy-Authorization"}) {
    EXPECT_TRUE(filter.drops(name)) << name;
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_TRUE(filter.drops(lower)) << name;
  }
  for (std::size_t len = 0; len < 70; ++len) {
    EXPECT_FALSE(filter.drops(std::string(len, 'x'))) << len;
  }
}

// A parsed head's filter takes the parser's count of Connection fields; it
// must drop exactly what the filter built by scanning the fields drops.
TEST(HopByHop, FilterOfAParsedHeadAgreesWithTheScanningOne) {
  for (std::string fields :
       {"X-A: 1\r\n"s, "Connection: x-a\r\nX-A: 1\r\nX-B: 2\r\n"s,
        "Connection: close, X-B\r\nX-A: 1\r\nX-B: 2\r\n"s,
        "Connection: x-a\r\nConnection: x-b\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n"s,
        "Connection: keep-alive\r\nKeep-Alive: 5\r\nX-Request-Id: r\r\n"s}) {
    RequestParse p(get_with(fields));
    ASSERT_TRUE(p.ok()) << fields;
    HopByHop parsed(p.head());
    HopByHop scanned(p.head().headers, p.head().header_count);
    for (std::string_view name :
         {"host", "x-a", "x-b", "x-c", "keep-alive", "connection", "x-request-id", "close", "te"}) {
      EXPECT_EQ(parsed.drops(name), scanned.drops(name)) << fields << " " << name;
    }
  }
  RequestParse two(get_with("Connection: x-a\r\nConnection: x-b\r\n"));
  ASSERT_TRUE(two.ok());
  HopByHop filter(two.head());
  EXPECT_TRUE(filter.drops("X-A"));
  EXPECT_TRUE(filter.drops("X-B"));
  EXPECT_FALSE(filter.drops("X-C"));
}

TEST(HopByHop, WithoutConnectionDropsOnlyTheFixedList) {
  Header headers[] = {{"X-A", "1"}};
  HopByHop filter(headers, 1);
  EXPECT_TRUE(filter.drops("transfer-encoding"));
  EXPECT_TRUE(filter.drops("proxy-authorization"));
  EXPECT_FALSE(filter.drops("x-a"));
}

}  // namespace
}  // namespace gatehouse::http

namespace gatehouse::http {
namespace {

TEST(Http1ParserResponse, RejectsTransferEncodingOnHttp10ResponseWith502) {
  // RFC 9112 6.1: the framing of an HTTP/1.0 message with Transfer-Encoding is faulty.
  ResponseHead head;
  ParseError err;
  std::string r = "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(parse_response_head(r.data(), r.size(), head, err), ParseStatus::kError);
  EXPECT_EQ(err.status, 502);
}

TEST(ChunkedDecoderTrailers, RejectsWhitespaceBeforeColonInTrailer) {
  ChunkedDecoder d;
  std::string body = "0\r\nX-A : 1\r\n\r\n";
  std::size_t consumed = 0;
  uint64_t payload = 0;
  EXPECT_EQ(d.feed(body.data(), body.size(), consumed, payload), ChunkedDecoder::Result::kError);
}

TEST(ChunkedDecoderTrailers, RejectsTrailerLineWithoutColon) {
  ChunkedDecoder d;
  std::string body = "0\r\nX-A\r\n\r\n";
  std::size_t consumed = 0;
  uint64_t payload = 0;
  EXPECT_EQ(d.feed(body.data(), body.size(), consumed, payload), ChunkedDecoder::Result::kError);
}

}  // namespace
}  // namespace gatehouse::http

namespace gatehouse::http {
namespace {

// is_field_value checks eight bytes at a time and falls back to one at a time
// for a word holding any byte below 0x20 or 0x7f: every such byte must be
// caught wherever it sits, and HTAB and obs-text must pass anywhere.
TEST(FieldValue, RefusesEveryControlCharacterAtEveryOffset) {
  for (std::size_t len : {1u, 7u, 8u, 9u, 16u, 23u, 40u}) {
    std::string v(len, 'a');
    EXPECT_TRUE(is_field_value(v)) << len;
    for (std::size_t at = 0; at < len; ++at) {
      for (int c = 0; c < 0x20; ++c) {
        std::string bad = v;
        bad[at] = static_cast<char>(c);
        EXPECT_EQ(is_field_value(bad), c == '\t') << "len " << len << " at " << at << " c " << c;
      }
      std::string del = v;
      del[at] = '\x7f';
      EXPECT_FALSE(is_field_value(del)) << "len " << len << " at " << at;
    }
  }
}

TEST(FieldValue, AcceptsSpaceTabVisibleAndObsTextBytes) {
  std::string all;
  for (int c = 0x20; c <= 0xff; ++c) {
    if (c != 0x7f) all.push_back(static_cast<char>(c));
  }
  all += "\t \t";
  EXPECT_TRUE(is_field_value(all));
  // Bytes just above each limit, packed into whole words.
  EXPECT_TRUE(is_field_value("\x20\x21\x7e\x80\x81\xfe\xff\x20\x7e\x80\x20\x20\x21\x22\x23\x24"));
}

TEST(FieldValue, HeaderWithADeleteDeepInTheValueIsRefused) {
  RequestParse p(
      get_with("X-Long: 0123456789abcdef0123456789\x7f"
               "abc\r\n"));
  EXPECT_EQ(p.rejection(), 400);
}

// append_kept_fields copies kept lines as they arrived, one copy per run.
std::string kept(const RequestHead& head, std::initializer_list<std::string_view> drop) {
  std::string out;
  append_kept_fields(out, head, [&](const Header& h) {
    for (std::string_view d : drop) {
      if (iequals(h.name, d)) return false;
    }
    return true;
  });
  return out;
}

TEST(AppendKeptFields, CopiesKeptLinesAsTheyArrivedAroundDroppedOnes) {
  RequestParse p(get_with("A: 1\r\nB:2  \r\nC:   3\r\nD: 4\r\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(kept(p.head(), {}), "Host: example.com\r\nA: 1\r\nB:2  \r\nC:   3\r\nD: 4\r\n");
  EXPECT_EQ(kept(p.head(), {"host"}), "A: 1\r\nB:2  \r\nC:   3\r\nD: 4\r\n");
  EXPECT_EQ(kept(p.head(), {"b"}), "Host: example.com\r\nA: 1\r\nC:   3\r\nD: 4\r\n");
  EXPECT_EQ(kept(p.head(), {"d"}), "Host: example.com\r\nA: 1\r\nB:2  \r\nC:   3\r\n");
  EXPECT_EQ(kept(p.head(), {"host", "b", "d"}), "A: 1\r\nC:   3\r\n");
  EXPECT_EQ(kept(p.head(), {"host", "a", "b", "c", "d"}), "");
}

TEST(AppendKeptFields, WritesFieldByFieldWhenTheHeadIsNotParsedText) {
  RequestHead head;
  head.headers[0] = Header{"Host", "example.com"};
  head.headers[1] = Header{"X-A", "1"};
  head.headers[2] = Header{"X-B", "2"};
  head.header_count = 3;
  EXPECT_EQ(kept(head, {"x-a"}), "Host: example.com\r\nX-B: 2\r\n");
}

TEST(AppendKeptFields, ResponseHeadLinesEndAtTheEmptyLine) {
  ResponseParse p(response_with("HTTP/1.1 200 OK", "Server: x\r\nContent-Length: 0\r\n"));
  ASSERT_TRUE(p.ok());
  std::string out;
  append_kept_fields(out, p.head(), [](const Header&) { return true; });
  EXPECT_EQ(out, "Server: x\r\nContent-Length: 0\r\n");
}

}  // namespace
}  // namespace gatehouse::http

namespace gatehouse::http {
namespace {

// iequals compares eight bytes at a time from eight bytes on: case must fold
// at every offset, and only A-Z fold (the bytes just outside the letter
// ranges, and obs-text, must not).
TEST(Iequals, FoldsOnlyAsciiLettersAtEveryOffset) {
  for (std::size_t len = 1; len <= 20; ++len) {
    std::string a(len, 'k');
    for (std::size_t at = 0; at < len; ++at) {
      std::string b = a;
      b[at] = 'K';
      EXPECT_TRUE(iequals(a, b)) << len << " " << at;
      for (auto [x, y] : {std::pair{'@', '`'},
                          {'[', '{'},
                          {'Z', 'z'},
                          {'A', 'a'},
                          {'\xc1', '\xe1'},
                          {'-', '\r'},
                          {'0', '\x10'}}) {
        std::string c = a, d = a;
        c[at] = x;
        d[at] = y;
        bool letters = (x == 'Z' || x == 'A');
        EXPECT_EQ(iequals(c, d), letters) << len << " " << at << " " << int(x) << "/" << int(y);
      }
    }
  }
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_FALSE(iequals("Content-Length", "content-lengtH2"));
  EXPECT_FALSE(iequals("content-length", "content_length"));
}

TEST(FieldLine, ValueEndsAtItsCrlfAndKeepsTabs) {
  RequestParse p(get_with("X-A: one\ttwo  three\t\r\nX-B:\r\nX-C: 0123456789abcdefghij\r\n"));
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p.head().header_count, 4u);
  EXPECT_EQ(p.head().headers[1].value, "one\ttwo  three");
  EXPECT_EQ(p.head().headers[2].value, "");
  EXPECT_EQ(p.head().headers[3].value, "0123456789abcdefghij");
}

TEST(FieldLine, CrInsideAValueIsRefusedWhereverItSits) {
  for (std::size_t at = 0; at < 20; ++at) {
    std::string v(20, 'v');
    v[at] = '\r';
    RequestParse p(get_with("X-A: " + v + "\r\n"));
    EXPECT_EQ(p.rejection(), 400) << at;
  }
}

TEST(FieldLine, NameWithoutColonBeforeTheLineEndIsRefused) {
  RequestParse p(get_with("X-Name-Only\r\n"));
  EXPECT_EQ(p.rejection(), 400);
  EXPECT_EQ(p.err().detail, "header line without colon");
}

}  // namespace
}  // namespace gatehouse::http

namespace gatehouse::http {
namespace {

// find_head_end looks at sixteen bytes at a time: the empty line and a bare LF
// must be found wherever they sit in a block, whether the head arrives whole
// or a byte at a time (`scanned` resuming mid-block).
TEST(Http1ParserFindHeadEnd, FindsTheEndAndBareLfsAtEveryOffset) {
  for (std::size_t pad = 0; pad < 40; ++pad) {
    std::string head = "GET / HTTP/1.1\r\nX: " + std::string(pad, 'v') + "\r\n\r\n";
    std::string all = head + std::string(20, 'b');
    std::size_t scanned = 0;
    EXPECT_EQ(find_head_end(all.data(), all.size(), scanned), head.size()) << pad;
    scanned = 0;
    std::size_t found = 0;
    for (std::size_t n = 1; n <= all.size() && found == 0; ++n) {
      found = find_head_end(all.data(), n, scanned);
      EXPECT_LE(scanned, n);
    }
    EXPECT_EQ(found, head.size()) << pad;
    std::string bare = "GET / HTTP/1.1\r\nX: " + std::string(pad, 'v') + "\nY: z\r\n\r\n";
    scanned = 0;
    EXPECT_EQ(find_head_end(bare.data(), bare.size(), scanned), kBareLf) << pad;
  }
}

// Header names are scanned sixteen bytes at a time for letters, digits and
// '-': the colon, other tchars and refused bytes must be handled at every
// offset of a name of any length.
TEST(FieldLine, NamesOfEveryLengthWithEveryKindOfByteAtEveryOffset) {
  for (std::size_t len = 1; len <= 40; ++len) {
    std::string name(len, 'n');
    {
      RequestParse p(get_with(name + ": v\r\n"));
      ASSERT_TRUE(p.ok()) << len;
      EXPECT_EQ(p.head().headers[1].name, name);
      EXPECT_EQ(p.head().headers[1].value, "v");
    }
    for (std::size_t at = 0; at < len; ++at) {
      for (char c : {'_', '!', '~', '.', 'Z', '9', '-', '|', '`', '^'}) {
        std::string n = name;
        n[at] = c;
        RequestParse p(get_with(n + ":v\r\n"));
        ASSERT_TRUE(p.ok()) << len << " " << at << " " << c;
        EXPECT_EQ(p.head().headers[1].name, n);
      }
      for (char c : {'(', '@', '[', '{', '/', '"', '\x80', '\xff', '\x01', '\x7f'}) {
        std::string n = name;
        n[at] = c;
        RequestParse p(get_with(n + ": v\r\n"));
        EXPECT_EQ(p.rejection(), 400) << len << " " << at << " " << int(c);
      }
      std::string spaced = name;
      spaced.insert(at + 1, " ");
      RequestParse p(get_with(spaced + ": v\r\n"));
      EXPECT_EQ(p.rejection(), 400) << len << " " << at;
    }
  }
}

// Header values sit in blocks with their CRLF and the next line: a tab is
// kept and a control byte refused wherever it sits, and the value ends at
// its own CR.
TEST(FieldLine, ValuesAroundBlockEdgesEndAtTheirOwnCr) {
  for (std::size_t len = 0; len <= 40; ++len) {
    std::string v(len, 'v');
    RequestParse p(get_with("X-A: " + v + "\r\nX-B: after\r\n"));
    ASSERT_TRUE(p.ok()) << len;
    EXPECT_EQ(p.head().headers[1].value, v);
    EXPECT_EQ(p.head().headers[2].value, "after");
    for (std::size_t at = 0; at < len; ++at) {
      std::string t = v;
      t[at] = '\t';
      RequestParse tab(get_with("X-A: w" + t + "w\r\n"));
      ASSERT_TRUE(tab.ok()) << len << " " << at;
      EXPECT_EQ(tab.head().headers[1].value, "w" + t + "w");
      std::string bad = v;
      bad[at] = '\x0b';
      EXPECT_EQ(RequestParse(get_with("X-A: " + bad + "\r\n")).rejection(), 400)
          << len << " " << at;
    }
  }
}

// The literal form of iequals folds the literal at compile time: it must agree
// with the general one for every case mix and near miss.
TEST(Iequals, LiteralFormAgreesWithTheGeneralOne) {
  auto check = [](std::string_view lit, auto literal_equals) {
    std::string s(lit);
    EXPECT_TRUE(literal_equals(s));
    for (std::size_t at = 0; at < s.size(); ++at) {
      std::string up = s;
      up[at] = static_cast<char>(std::toupper(static_cast<unsigned char>(up[at])));
      EXPECT_TRUE(literal_equals(up)) << lit << " " << at;
      for (char c : {'\r', '\x10', '@', '`', '{', '_', '\xe1'}) {
        std::string miss = s;
        miss[at] = c;
        EXPECT_EQ(literal_equals(miss), iequals(std::string_view(miss), lit)) << lit << " " << at;
        EXPECT_FALSE(literal_equals(miss)) << lit << " " << at << " " << int(c);
      }
    }
    EXPECT_FALSE(literal_equals(s + "x"));
    EXPECT_FALSE(literal_equals(s.substr(1)));
  };
  check("te", [](std::string_view a) { return iequals(a, "te"); });
  check("host", [](std::string_view a) { return iequals(a, "host"); });
  check("upgrade", [](std::string_view a) { return iequals(a, "upgrade"); });
  check("x-consum", [](std::string_view a) { return iequals(a, "x-consum"); });
  check("connection", [](std::string_view a) { return iequals(a, "connection"); });
  check("content-length", [](std::string_view a) { return iequals(a, "content-length"); });
  check("x-gateway-signature",
        [](std::string_view a) { return iequals(a, "x-gateway-signature"); });
  check("100-continue", [](std::string_view a) { return iequals(a, "100-continue"); });
  EXPECT_TRUE(iequals(std::string_view("KEEP-ALIVE"), "Keep-Alive"));
  EXPECT_TRUE(iequals(std::string_view(""), ""));
}

}  // namespace
}  // namespace gatehouse::http
