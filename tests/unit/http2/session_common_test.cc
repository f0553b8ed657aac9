// The helpers both HTTP/2 codecs share (src/http2/session_common.h).
#include "http2/session_common.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace gatehouse::http2 {
namespace {

using detail::feed_message;
using detail::read_message_body;

TEST(SessionCommon, FeedMessageStartsEachHeadAndTakesTheBody) {
  MessageReader m(1024);
  int heads = 0;
  bool failed = false;
  std::string bytes = "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
  std::optional<std::size_t> took = feed_message(
      m, bytes,
      [&] {
        ++heads;
        m.begin_body(http::BodyKind::kLength, 5);
        return true;
      },
      [&] { failed = true; });
  EXPECT_EQ(took, bytes.size());
  EXPECT_EQ(heads, 1);
  EXPECT_FALSE(failed);
  EXPECT_TRUE(m.complete());
  EXPECT_EQ(m.buffered(), 5u);
}

TEST(SessionCommon, FeedMessageCountsEverythingTakenWhenTheStreamIsGone) {
  MessageReader m(1024);
  std::string bytes = "GET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
  int heads = 0;
  std::optional<std::size_t> took = feed_message(
      m, bytes,
      [&] {
        ++heads;
        return false;
      },
      [] { FAIL() << "no failure expected"; });
  EXPECT_EQ(took, std::nullopt);  // the stream is over: the caller counts every byte as taken
  EXPECT_EQ(heads, 1);
}

TEST(SessionCommon, FeedMessageReportsAMalformedMessageOnce) {
  MessageReader m(32);  // smaller than the head below
  std::string bytes = "GET /" + std::string(100, 'a') + " HTTP/1.1\r\n\r\n";
  int failures = 0;
  std::optional<std::size_t> took = feed_message(
      m, bytes, [] { return true; }, [&] { ++failures; });
  EXPECT_EQ(failures, 1);
  EXPECT_EQ(took, std::nullopt);
}

TEST(SessionCommon, FeedMessageStopsAtAFullBodyBuffer) {
  MessageReader m(64);
  std::string bytes = "GET / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b');
  bool failed = false;
  std::optional<std::size_t> took = feed_message(
      m, bytes,
      [&] {
        m.begin_body(http::BodyKind::kLength, 100);
        return true;
      },
      [&] { failed = true; });
  EXPECT_FALSE(failed);
  ASSERT_TRUE(took.has_value());
  EXPECT_LT(*took, bytes.size());  // the caller marks the stream blocked
  EXPECT_FALSE(m.has_room());
  EXPECT_EQ(m.buffered(), 64u);
}

TEST(SessionCommon, ReadMessageBodyDefersThenEndsWithEofAndTrailers) {
  MessageReader m(1024);
  m.begin_body(http::BodyKind::kLength, 3);
  bool blocked = false;
  uint8_t buf[16];
  uint32_t flags = 0;
  int trailer_calls = 0;
  auto trailers = [&] {
    ++trailer_calls;
    return true;
  };
  EXPECT_EQ(read_message_body(m, blocked, buf, sizeof buf, &flags, trailers, [] {}),
            NGHTTP2_ERR_DEFERRED);
  EXPECT_EQ(flags, 0u);

  std::size_t used = 0;
  m.read("abc", used);
  EXPECT_EQ(read_message_body(m, blocked, buf, sizeof buf, &flags, trailers, [] {}), 3);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 3), "abc");
  EXPECT_EQ(flags, NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM);
  EXPECT_EQ(trailer_calls, 1);
}

TEST(SessionCommon, ReadMessageBodyWakesABlockedWriterOnceThereIsRoom) {
  MessageReader m(4);
  m.begin_body(http::BodyKind::kLength, 8);
  std::size_t used = 0;
  m.read("01234567", used);
  ASSERT_EQ(used, 4u);
  bool blocked = true;
  int woken = 0;
  uint8_t buf[2];
  uint32_t flags = 0;
  EXPECT_EQ(read_message_body(
                m, blocked, buf, sizeof buf, &flags, [] { return false; }, [&] { ++woken; }),
            2);
  EXPECT_FALSE(blocked);
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(flags, 0u);  // not complete yet
}

TEST(SessionCommon, AsChunkFramesAPayloadAsOneHttp1Chunk) {
  std::string scratch = "old";
  const uint8_t data[] = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r',
                          'l', 'd', '!', '!', '!', '!', '!', '!'};
  EXPECT_EQ(detail::as_chunk(scratch, data, sizeof data), "11\r\nhello world!!!!!!\r\n");
}

TEST(SessionCommon, DrainOutputHandsOverTheSessionsFrames) {
  nghttp2_session_callbacks* cbs = nullptr;
  ASSERT_EQ(nghttp2_session_callbacks_new(&cbs), 0);
  nghttp2_session* session = nullptr;
  ASSERT_EQ(nghttp2_session_client_new(&session, cbs, nullptr), 0);
  nghttp2_session_callbacks_del(cbs);
  ASSERT_EQ(nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0), 0);
  std::string out = "x";
  EXPECT_TRUE(detail::drain_output(session, out, 1 << 16));
  // The client preface, then an empty SETTINGS frame (9-byte frame header).
  EXPECT_EQ(out.substr(1, 24), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  EXPECT_EQ(out.size(), 1u + 24u + 9u);
  std::size_t before = out.size();
  EXPECT_TRUE(detail::drain_output(session, out, 1 << 16));
  EXPECT_EQ(out.size(), before);  // nothing more queued
  nghttp2_session_del(session);
}

}  // namespace
}  // namespace gatehouse::http2
