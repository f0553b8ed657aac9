#include "config/duration.h"

#include <gtest/gtest.h>

namespace gatehouse::config {
namespace {

using std::chrono::milliseconds;

milliseconds parse_ok(std::string_view text) {
  std::string error;
  const auto duration = parse_duration(text, error);
  EXPECT_TRUE(duration.has_value()) << text << ": " << error;
  return duration.value_or(milliseconds(-1));
}

std::string parse_error(std::string_view text) {
  std::string error;
  EXPECT_FALSE(parse_duration(text, error).has_value()) << text;
  return error;
}

TEST(Duration, ParsesEachUnit) {
  EXPECT_EQ(parse_ok("250ms"), milliseconds(250));
  EXPECT_EQ(parse_ok("10s"), milliseconds(10'000));
  EXPECT_EQ(parse_ok("1m"), milliseconds(60'000));
  EXPECT_EQ(parse_ok("1h"), milliseconds(3'600'000));
  EXPECT_EQ(parse_ok("30d"), milliseconds(30LL * 24 * 3600 * 1000));
  EXPECT_EQ(parse_ok("1.5d"), milliseconds(36LL * 3600 * 1000));
}

TEST(Duration, ParsesZero) { EXPECT_EQ(parse_ok("0s"), milliseconds(0)); }

TEST(Duration, ParsesFractionThatIsWholeMilliseconds) {
  EXPECT_EQ(parse_ok("1.5s"), milliseconds(1500));
  EXPECT_EQ(parse_ok("0.25m"), milliseconds(15'000));
  EXPECT_EQ(parse_ok("1.000s"), milliseconds(1000));
}

TEST(Duration, RejectsFractionOfAMillisecond) {
  EXPECT_EQ(parse_error("0.5ms"), "duration must be a whole number of milliseconds");
  EXPECT_EQ(parse_error("1.0005s"), "duration must be a whole number of milliseconds");
}

TEST(Duration, RejectsNumberWithoutUnit) {
  EXPECT_EQ(parse_error("10"), "duration needs a unit (ms, s, m, h, d)");
  EXPECT_EQ(parse_error("1.5"), "duration needs a unit (ms, s, m, h, d)");
}

TEST(Duration, RejectsUnknownUnit) {
  EXPECT_EQ(parse_error("5w"), "unknown duration unit 'w' (use ms, s, m, h, d)");
  EXPECT_EQ(parse_error("10sec"), "unknown duration unit 'sec' (use ms, s, m, h, d)");
}

TEST(Duration, RejectsCompoundDuration) {
  EXPECT_EQ(parse_error("1m30s"), "duration takes a single unit, such as 90s for 1m30s");
}

TEST(Duration, RejectsTextThatIsNotANumberAndUnit) {
  const std::string expected = "expected a number and a unit, such as 250ms, 10s, 1.5m or 1h";
  EXPECT_EQ(parse_error("-1s"), expected);
  EXPECT_EQ(parse_error("s"), expected);
  EXPECT_EQ(parse_error(".5s"), expected);
  EXPECT_EQ(parse_error("1.s"), expected);
  EXPECT_EQ(parse_error(" 1s"), expected);
}

TEST(Duration, RejectsEmptyText) { EXPECT_EQ(parse_error(""), "duration is empty"); }

TEST(Duration, RejectsValuesTooLongToHold) {
  EXPECT_EQ(parse_error("9999999999h"), "duration is too long");
  EXPECT_EQ(parse_ok("999999999h"), milliseconds(999'999'999LL * 3'600'000));
}

}  // namespace
}  // namespace gatehouse::config
