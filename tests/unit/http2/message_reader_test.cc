#include "http2/message_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace gatehouse::http2 {
namespace {

using Status = MessageReader::Status;

std::string drain(MessageReader& r) {
  std::string out(r.buffered(), '\0');
  r.take(reinterpret_cast<uint8_t*>(out.data()), out.size());
  return out;
}

// Feeds `in` whole; after a head, starts the body as `kind`.
Status feed(MessageReader& r, std::string_view in, http::BodyKind kind, uint64_t length = 0) {
  std::size_t used = 0;
  Status s = r.read(in, used);
  if (s != Status::kHead) return s;
  r.begin_body(kind, length);
  std::size_t more = 0;
  s = r.read(in.substr(used), more);
  if (s != Status::kError) {
    EXPECT_EQ(used + more, in.size());
  }
  return s;
}

TEST(MessageReaderTest, StopsRightAfterTheHeadAndLowercasesNames) {
  MessageReader r(4096);
  std::string in = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-ID: AbC\r\n\r\nbody";
  std::size_t used = 0;
  ASSERT_EQ(r.read(in, used), Status::kHead);
  EXPECT_EQ(used, in.size() - 4);
  EXPECT_EQ(r.head(), "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-id: AbC\r\n\r\n");
}

TEST(MessageReaderTest, HeadSplitAnywhere) {
  std::string in = "HTTP/1.1 204 No Content\r\nA: b\r\n\r\n";
  for (std::size_t cut = 1; cut < in.size(); ++cut) {
    MessageReader r(4096);
    std::size_t used = 0;
    ASSERT_EQ(r.read(std::string_view(in).substr(0, cut), used), Status::kMore) << cut;
    EXPECT_EQ(used, cut);
    ASSERT_EQ(r.read(std::string_view(in).substr(cut), used), Status::kHead) << cut;
    EXPECT_EQ(r.head(), "HTTP/1.1 204 No Content\r\na: b\r\n\r\n");
  }
}

TEST(MessageReaderTest, RefusesBareLfAndOversizeHeads) {
  MessageReader bare(4096);
  std::size_t used = 0;
  EXPECT_EQ(bare.read("HTTP/1.1 200 OK\nA: b\r\n\r\n", used), Status::kError);
  MessageReader small(64);
  EXPECT_EQ(small.read("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a'), used), Status::kError);
  EXPECT_EQ(small.error(), "message head too large");
}

TEST(MessageReaderTest, ContentLengthBodyEndsAtLengthAndDropsTheRest) {
  MessageReader r(4096);
  EXPECT_EQ(feed(r, "HTTP/1.1 200 OK\r\n\r\nhello world", http::BodyKind::kLength, 5),
            Status::kMore);
  EXPECT_TRUE(r.complete());
  EXPECT_EQ(drain(r), "hello");
}

TEST(MessageReaderTest, BufferedPayloadIsBounded) {
  MessageReader r(32);  // bounds the head, and then the undrained payload
  std::size_t used = 0;
  ASSERT_EQ(r.read("HTTP/1.1 200 OK\r\n\r\n", used), Status::kHead);
  r.begin_body(http::BodyKind::kUntilClose, 0);
  std::string body = "0123456789abcdefghijklmnopqrstuvwxyz";
  EXPECT_EQ(r.read(body, used), Status::kMore);
  EXPECT_EQ(used, 32u);
  EXPECT_FALSE(r.has_room());
  uint8_t two[2];
  EXPECT_EQ(r.take(two, 2), 2u);
  EXPECT_EQ(r.read(std::string_view(body).substr(32), used), Status::kMore);
  EXPECT_EQ(used, 2u);
  EXPECT_EQ(drain(r), body.substr(2, 32));
  EXPECT_FALSE(r.complete());
  EXPECT_TRUE(r.end_of_input());
  EXPECT_TRUE(r.complete());
}

TEST(MessageReaderTest, ChunkedBodyWithExtensionsAndTrailers) {
  MessageReader r(4096);
  EXPECT_EQ(feed(r,
                 "HTTP/1.1 200 OK\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\n"
                 "Grpc-Status: 0\r\nx-b:  v  \r\n\r\n",
                 http::BodyKind::kChunked),
            Status::kMore);
  EXPECT_TRUE(r.complete());
  EXPECT_EQ(drain(r), "Wikipedia");
  EXPECT_EQ(r.trailers(), "grpc-status: 0\r\nx-b:  v  \r\n");
  std::string seen;
  for_each_field_line(r.trailers(), [&](std::string_view n, std::string_view v) {
    seen.append(n).append("=").append(v).append(";");
  });
  EXPECT_EQ(seen, "grpc-status=0;x-b=v;");
}

TEST(MessageReaderTest, ChunkedBodyFedByteByByte) {
  MessageReader r(4096);
  std::size_t used = 0;
  ASSERT_EQ(r.read("HTTP/1.1 200 OK\r\n\r\n", used), Status::kHead);
  r.begin_body(http::BodyKind::kChunked, 0);
  std::string body = "3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nt: 1\r\n\r\n";
  for (char c : body) {
    ASSERT_EQ(r.read(std::string_view(&c, 1), used), Status::kMore);
    ASSERT_EQ(used, 1u);
  }
  EXPECT_TRUE(r.complete());
  EXPECT_EQ(drain(r), "abc0123456789abcdef");
  EXPECT_EQ(r.trailers(), "t: 1\r\n");
}

TEST(MessageReaderTest, RefusesMalformedChunking) {
  for (const char* bad :
       {"x\r\n", "5 6\r\nhello\r\n", "3\r\nabcX\r\n", "3\r\nabc\r\n0\r\nbad line\r\n\r\n",
        "3\r\nabc\r\n0\r\n folded: x\r\n\r\n", "1234567890123456\r\n"}) {
    MessageReader r(4096);
    EXPECT_EQ(feed(r, std::string("HTTP/1.1 200 OK\r\n\r\n") + bad, http::BodyKind::kChunked),
              Status::kError)
        << bad;
  }
}

TEST(MessageReaderTest, TrailerSectionIsBounded) {
  MessageReader r(1 << 20);
  std::string big = "0\r\n";
  for (int i = 0; i < 1000; ++i) big += "x-field-" + std::to_string(i) + ": 0123456789\r\n";
  EXPECT_EQ(feed(r, "HTTP/1.1 200 OK\r\n\r\n" + big + "\r\n", http::BodyKind::kChunked),
            Status::kError);
  EXPECT_EQ(r.error(), "trailer section too large");
}

TEST(MessageReaderTest, InterimHeadThenFinalHead) {
  MessageReader r(4096);
  std::string in = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
  std::size_t used = 0;
  ASSERT_EQ(r.read(in, used), Status::kHead);
  EXPECT_EQ(r.head(), "HTTP/1.1 100 Continue\r\n\r\n");
  r.await_head();
  std::size_t more = 0;
  ASSERT_EQ(r.read(std::string_view(in).substr(used), more), Status::kHead);
  EXPECT_EQ(r.head(), "HTTP/1.1 200 OK\r\n\r\n");
}

TEST(MessageReaderTest, ChunkSizeIsLowercaseHex) {
  std::string out;
  append_chunk_size(out, 0);
  append_chunk_size(out, 255);
  append_chunk_size(out, 16384);
  EXPECT_EQ(out, "0\r\nff\r\n4000\r\n");
}

TEST(MessageReaderTest, ForbiddenTrailers) {
  EXPECT_TRUE(is_forbidden_trailer("content-length"));
  EXPECT_TRUE(is_forbidden_trailer("transfer-encoding"));
  EXPECT_TRUE(is_forbidden_trailer("host"));
  EXPECT_FALSE(is_forbidden_trailer("grpc-status"));
  EXPECT_FALSE(is_forbidden_trailer("server-timing"));
}

}  // namespace
}  // namespace gatehouse::http2
