#include "http/path.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace gatehouse::http {
namespace {

std::string normalized(std::string_view raw) {
  std::string out;
  normalize_path(raw, out);
  return out;
}

// ---------------------------------------------------------------------------
// Dot segments (RFC 3986 5.2.4)

TEST(PathNormalize, KeepsNormalPathUnchanged) { EXPECT_EQ(normalized("/a/b/c"), "/a/b/c"); }

TEST(PathNormalize, KeepsRoot) { EXPECT_EQ(normalized("/"), "/"); }

TEST(PathNormalize, RemovesSingleDotSegment) { EXPECT_EQ(normalized("/a/./b"), "/a/b"); }

TEST(PathNormalize, DoubleDotRemovesPreviousSegment) { EXPECT_EQ(normalized("/a/b/../c"), "/a/c"); }

TEST(PathNormalize, ResolvesMixedDotSegments) { EXPECT_EQ(normalized("/a/./b/../c"), "/a/c"); }

TEST(PathNormalize, DoubleDotAtRootStaysAtRoot) { EXPECT_EQ(normalized("/../x"), "/x"); }

TEST(PathNormalize, DoubleDotsBeyondRootStayAtRoot) {
  EXPECT_EQ(normalized("/a/../../../b"), "/b");
}

TEST(PathNormalize, DoubleDotRemovingOnlySegmentLeavesRoot) { EXPECT_EQ(normalized("/a/.."), "/"); }

TEST(PathNormalize, TrailingDotKeepsTrailingSlash) { EXPECT_EQ(normalized("/a/."), "/a/"); }

TEST(PathNormalize, TrailingDoubleDotKeepsTrailingSlash) {
  EXPECT_EQ(normalized("/a/b/.."), "/a/");
}

TEST(PathNormalize, LoneDotBecomesRoot) { EXPECT_EQ(normalized("/."), "/"); }

TEST(PathNormalize, LoneDoubleDotBecomesRoot) { EXPECT_EQ(normalized("/.."), "/"); }

TEST(PathNormalize, KeepsDotsInsideSegments) {
  EXPECT_EQ(normalized("/a/.b/c../.../..d"), "/a/.b/c../.../..d");
}

TEST(PathNormalize, KeepsEmptySegments) { EXPECT_EQ(normalized("/a//b/"), "/a//b/"); }

TEST(PathNormalize, DoubleDotRemovesEmptySegment) { EXPECT_EQ(normalized("/a//../b"), "/a/b"); }

TEST(PathNormalize, CannotClimbOutOfPrefixWithDoubleDot) {
  EXPECT_EQ(normalized("/public/../admin/users"), "/admin/users");
}

// ---------------------------------------------------------------------------
// Percent-encoding (RFC 3986 6.2.2.1, 6.2.2.2)

TEST(PathNormalize, DecodesEncodedTilde) { EXPECT_EQ(normalized("/%7Euser"), "/~user"); }

TEST(PathNormalize, DecodesLowerCaseEncodedTilde) { EXPECT_EQ(normalized("/%7euser"), "/~user"); }

TEST(PathNormalize, DecodesEncodedUnreservedLettersDigitsAndMarks) {
  EXPECT_EQ(normalized("/%41%62%30%2D%5F%2E"), "/Ab0-_.");
}

TEST(PathNormalize, RemovesDecodedDoubleDotSegment) { EXPECT_EQ(normalized("/a/%2e%2e/b"), "/b"); }

TEST(PathNormalize, RemovesPartlyEncodedDoubleDotSegment) {
  EXPECT_EQ(normalized("/a/b/.%2E/c"), "/a/c");
}

TEST(PathNormalize, RemovesDecodedSingleDotSegment) { EXPECT_EQ(normalized("/a/%2E/b"), "/a/b"); }

TEST(PathNormalize, KeepsEncodedSlash) { EXPECT_EQ(normalized("/a%2Fb"), "/a%2Fb"); }

TEST(PathNormalize, UpperCasesHexOfKeptEscape) { EXPECT_EQ(normalized("/a%2fb"), "/a%2Fb"); }

TEST(PathNormalize, UpperCasesHexOfNonAsciiEscapes) {
  EXPECT_EQ(normalized("/caf%c3%a9"), "/caf%C3%A9");
}

TEST(PathNormalize, EncodedSlashDoesNotSplitDotSegments) {
  // "..%2F.." is one segment, not two ".." segments.
  EXPECT_EQ(normalized("/a/..%2f../b"), "/a/..%2F../b");
}

TEST(PathNormalize, DecodesOnlyOnce) { EXPECT_EQ(normalized("/%252e%252e/x"), "/%252e%252e/x"); }

TEST(PathNormalize, KeepsEncodedPercent) { EXPECT_EQ(normalized("/100%25"), "/100%25"); }

TEST(PathNormalize, OverwritesPreviousOutput) {
  std::string out = "/left/over/from/an/earlier/request";
  normalize_path("/x", out);
  EXPECT_EQ(out, "/x");
}

TEST(PathNormalize, IsIdempotent) {
  for (std::string_view raw : {"/a/./b/../c", "/%2e%2e/%7e/%2f", "/a//../b/.", "/x/%2E%2e/..",
                               "/a/..%2F../b", "/%41/%25/%c3%a9"}) {
    std::string once = normalized(raw);
    EXPECT_EQ(normalized(once), once) << raw;
  }
}

// ---------------------------------------------------------------------------
// has_dot_segment

TEST(PathHasDotSegment, DetectsInnerDotSegment) { EXPECT_TRUE(has_dot_segment("/a/./b")); }

TEST(PathHasDotSegment, DetectsInnerDoubleDotSegment) { EXPECT_TRUE(has_dot_segment("/a/../b")); }

TEST(PathHasDotSegment, DetectsTrailingDotSegments) {
  EXPECT_TRUE(has_dot_segment("/a/."));
  EXPECT_TRUE(has_dot_segment("/a/.."));
}

TEST(PathHasDotSegment, IgnoresDotsInsideSegments) {
  EXPECT_FALSE(has_dot_segment("/a/.b/c./.../..d"));
}

TEST(PathHasDotSegment, IgnoresPlainPath) {
  EXPECT_FALSE(has_dot_segment("/a/b/"));
  EXPECT_FALSE(has_dot_segment("/"));
}

TEST(PathHasDotSegment, DoesNotDecodeEscapes) { EXPECT_FALSE(has_dot_segment("/a/%2e%2e/b")); }

TEST(PathHasDotSegment, NormalizedPathHasNone) {
  for (std::string_view raw : {"/a/./b/../c", "/..", "/a/.", "/%2e/%2E%2e/x", "/a//./../b"}) {
    EXPECT_FALSE(has_dot_segment(normalized(raw))) << raw;
  }
}

}  // namespace
}  // namespace gatehouse::http
