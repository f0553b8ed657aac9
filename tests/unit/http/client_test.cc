#include "http/client.h"

#include <gtest/gtest.h>

#include <string>

namespace gatehouse::http {
namespace {

std::optional<HttpUrl> url_ok(std::string_view text) {
  std::string error;
  auto url = parse_http_url(text, error);
  EXPECT_TRUE(url.has_value()) << text << ": " << error;
  EXPECT_TRUE(error.empty()) << error;
  return url;
}

std::string url_error(std::string_view text) {
  std::string error;
  auto url = parse_http_url(text, error);
  EXPECT_FALSE(url.has_value()) << text;
  EXPECT_FALSE(error.empty()) << text;
  return error;
}

TEST(HttpClientUrl, HostPortTargetAndDefaults) {
  auto url = url_ok("http://127.0.0.1:7000/.well-known/jwks.json?x=1");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 7000);
  EXPECT_EQ(url->authority, "127.0.0.1:7000");
  EXPECT_EQ(url->target, "/.well-known/jwks.json?x=1");
  {  // DefaultsPortAndPath
    auto url = url_ok("http://auth.example.com");
    ASSERT_TRUE(url);
    EXPECT_EQ(url->host, "auth.example.com");
    EXPECT_EQ(url->port, 80);
    EXPECT_EQ(url->authority, "auth.example.com");
    EXPECT_EQ(url->target, "/");
  }
  {  // QueryWithoutPathGetsSlash
    auto url = url_ok("http://h:81?a=b");
    ASSERT_TRUE(url);
    EXPECT_EQ(url->port, 81);
    EXPECT_EQ(url->target, "/?a=b");
  }
}

TEST(HttpClientUrl, FragmentDroppedAndSchemeCaseInsensitive) {
  auto a = url_ok("http://h/p?q=1#frag");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->target, "/p?q=1");
  auto b = url_ok("http://h#frag");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->authority, "h");
  EXPECT_EQ(b->target, "/");
  {  // SchemeIsCaseInsensitive
    auto url = url_ok("HTTP://Example.com/");
    ASSERT_TRUE(url);
    EXPECT_EQ(url->host, "Example.com");
  }
}

TEST(HttpClientUrl, Ipv6LiteralWithAndWithoutPort) {
  auto a = url_ok("http://[::1]:8080/x");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 8080);
  EXPECT_EQ(a->authority, "[::1]:8080");
  auto b = url_ok("http://[fe80::2]/");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "fe80::2");
  EXPECT_EQ(b->port, 80);
}

TEST(HttpClientUrl, RefusesOtherSchemesUserinfoAndMissingHost) {
  EXPECT_NE(url_error("https://auth.example.com/jwks").find("https"), std::string::npos);
  EXPECT_EQ(url_error("ftp://h/"), "the URL must start with http://");
  EXPECT_EQ(url_error("h:80/"), "the URL must start with http://");
  EXPECT_EQ(url_error(""), "the URL must start with http://");
  {  // RefusesUserinfoAndMissingHost
    EXPECT_EQ(url_error("http://user:pw@h/"), "the URL needs a host and no user info");
    EXPECT_EQ(url_error("http:///path"), "the URL needs a host and no user info");
    EXPECT_EQ(url_error("http://:80/"), "the URL needs a host (IPv6 addresses in brackets)");
    EXPECT_EQ(url_error("http://[]:80/"), "the URL needs a host (IPv6 addresses in brackets)");
    EXPECT_EQ(url_error("http://host:80:90/"), "the URL needs a host (IPv6 addresses in brackets)");
    EXPECT_EQ(url_error("http://::1/"), "the URL needs a host (IPv6 addresses in brackets)");
  }
}

TEST(HttpClientUrl, RefusesBadPortsAndControlCharacters) {
  for (const char* u : {"http://h:0/", "http://h:65536/", "http://h:http/", "http://h:80x/",
                        "http://h:-1/", "http://[::1]x/", "http://[::1]:0/"}) {
    EXPECT_EQ(url_error(u), "bad port in the URL") << u;
  }
  EXPECT_EQ(url_error("http://[::1/"), "unclosed '[' in the URL's host");
  {  // RefusesSpacesAndControlsInPath
    EXPECT_EQ(url_error("http://h/a b"), "the URL's path has a space or control character");
    EXPECT_EQ(url_error("http://h/a\r\nX: y"), "the URL's path has a space or control character");
    EXPECT_EQ(url_error("http://h/a\x7f"), "the URL's path has a space or control character");
  }
}

TEST(HttpClientRequest, ContentLengthOnlyForBodiesAndPost) {
  auto url = url_ok("http://127.0.0.1:7000/jwks?x=1");
  ASSERT_TRUE(url);
  EXPECT_EQ(client_request("GET", *url, "Accept: application/json\r\n", ""),
            "GET /jwks?x=1 HTTP/1.1\r\n"
            "Host: 127.0.0.1:7000\r\n"
            "Connection: close\r\n"
            "User-Agent: gatehouse\r\n"
            "Accept: application/json\r\n"
            "\r\n");
  {  // PostCarriesBodyAndLength
    auto url = url_ok("http://idp/introspect");
    ASSERT_TRUE(url);
    EXPECT_EQ(client_request("POST", *url, "", "token=abc"),
              "POST /introspect HTTP/1.1\r\nHost: idp\r\nConnection: close\r\n"
              "User-Agent: gatehouse\r\nContent-Length: 9\r\n\r\ntoken=abc");
    const std::string empty = client_request("POST", *url, "", "");
    EXPECT_NE(empty.find("\r\nContent-Length: 0\r\n\r\n"), std::string::npos);
  }
}

ClientResponse parse_ok(std::string_view raw) {
  ClientResponse out;
  std::string error;
  EXPECT_TRUE(parse_client_response(raw, out, error)) << error;
  return out;
}

std::string parse_error(std::string_view raw) {
  ClientResponse out;
  std::string error;
  EXPECT_FALSE(parse_client_response(raw, out, error));
  return error;
}

TEST(HttpClientResponse, ContentLengthFramesTheBody) {
  ClientResponse r =
      parse_ok("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello++");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
}

TEST(HttpClientResponse, ChunkedBodyIsDecoded) {
  ClientResponse r = parse_ok(
      "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, "hello world");
}

TEST(HttpClientResponse, BodyUntilCloseTakesEverything) {
  ClientResponse r = parse_ok("HTTP/1.0 200 OK\r\nServer: x\r\n\r\n{\"keys\":[]}\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"keys\":[]}\r\n");
}

TEST(HttpClientResponse, InterimResponsesAreSkipped) {
  ClientResponse r = parse_ok(
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
      "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "no");
}

TEST(HttpClientResponse, NoBodyStatuses) {
  ClientResponse r = parse_ok("HTTP/1.1 204 No Content\r\n\r\nstray");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.body, "");
  ClientResponse r2 = parse_ok("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n");
  EXPECT_EQ(r2.status, 304);
  EXPECT_EQ(r2.body, "");
}

TEST(HttpClientResponse, MalformedResponses) {
  EXPECT_EQ(parse_error(""), "incomplete response head");
  EXPECT_EQ(parse_error("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"), "incomplete response head");
  EXPECT_EQ(parse_error("HTTP/1.1 200 OK\nContent-Length: 0\n\n"), "bare LF in response head");
  EXPECT_EQ(parse_error("garbage\r\n\r\n"), "invalid response head");
  EXPECT_EQ(parse_error("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"),
            "response body shorter than its Content-Length");
  EXPECT_EQ(parse_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
            "bad or incomplete chunked response body");
  EXPECT_EQ(parse_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            "bad or incomplete chunked response body");
  // Only interim responses, no final one.
  EXPECT_EQ(parse_error("HTTP/1.1 100 Continue\r\n\r\n"), "incomplete response head");
}

}  // namespace
}  // namespace gatehouse::http
