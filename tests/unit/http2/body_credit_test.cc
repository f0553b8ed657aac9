#include "http2/body_credit.h"

#include <gtest/gtest.h>

namespace gatehouse::http2 {
namespace {

TEST(BodyCreditTest, RawBodyIsCreditedByteForByte) {
  BodyCredit c;
  c.delivered(100, 100);
  EXPECT_EQ(c.consume(40), 40u);
  EXPECT_EQ(c.consume(60), 60u);
  EXPECT_EQ(c.outstanding(), 0u);
}

TEST(BodyCreditTest, FramingIsCreditedInProportionAndInFullAtTheEnd) {
  BodyCredit c;
  c.delivered(10, 5);  // "5\r\nhello\r\n"
  c.delivered(5, 0);   // "0\r\n\r\n"
  uint64_t total = 0;
  for (int i = 0; i < 14; ++i) {
    total += c.consume(1);
    EXPECT_LE(total, 5u);
  }
  total += c.consume(1);
  EXPECT_EQ(total, 5u);
  EXPECT_EQ(c.outstanding(), 0u);
}

TEST(BodyCreditTest, OverConsumeCreditsOnlyWhatWasDelivered) {
  BodyCredit c;
  c.delivered(10, 8);
  EXPECT_EQ(c.consume(1000), 8u);
  EXPECT_EQ(c.consume(10), 0u);
}

TEST(BodyCreditTest, HugeCountsDoNotOverflow) {
  BodyCredit c;
  c.delivered(uint64_t{1} << 40, (uint64_t{1} << 31) - 1);
  uint64_t credit = c.consume(uint64_t{1} << 39);
  EXPECT_EQ(credit, ((uint64_t{1} << 31) - 1) / 2);
}

}  // namespace
}  // namespace gatehouse::http2
