#include "http/head_writer.h"

#include <gtest/gtest.h>

#include <string>

#include "http/http1_parser.h"
#include "http/status.h"

namespace gatehouse::http {
namespace {

std::string pattern(std::size_t n, char first) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(first + i % 23));
  return s;
}

// Pieces of every length take the inline copies (under 4, 4-7, 8-16) or
// memcpy; each must land whole, in order, after what the string held.
TEST(HeadWriter, PiecesOfEveryLengthLandInOrderAfterTheExistingBytes) {
  for (std::size_t n = 0; n <= 40; ++n) {
    for (std::size_t expect : {0u, 1u, 7u, 64u}) {
      std::string out = "head:";
      std::string want = out;
      {
        HeadWriter w(out, expect);
        for (int k = 0; k < 5; ++k) {
          std::string piece = pattern(n, static_cast<char>('a' + k));
          w.append(piece);
          want += piece;
          w.push_back('|');
          want += '|';
        }
      }
      EXPECT_EQ(out, want) << n << " " << expect;
    }
  }
}

TEST(HeadWriter, FinishTrimsOnceAndTheStringCanBeUsedAgain) {
  std::string out;
  HeadWriter w(out, 4096);
  w.append("GET / HTTP/1.1\r\n").append(std::string_view("Host: a\r\n"));
  w.finish();
  EXPECT_EQ(out, "GET / HTTP/1.1\r\nHost: a\r\n");
  out.append("X: y\r\n");
  w.finish();  // a second finish (and the destructor) leave the string alone
  EXPECT_EQ(out, "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n");
  HeadWriter tail(out, 2);
  tail.append("\r\n");
  tail.finish();
  EXPECT_EQ(out, "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n");
}

// The head helpers write the same bytes into a writer as into a string.
TEST(HeadWriter, HeadHelpersWriteTheSameBytesAsIntoAString) {
  std::string direct;
  append_status_line(direct, 404, {});
  append_field(direct, "Content-Type", "application/json");
  std::string via;
  {
    HeadWriter w(via, 1);
    append_status_line(w, 404, {});
    append_field(w, "Content-Type", "application/json");
  }
  EXPECT_EQ(via, direct);
  EXPECT_EQ(via, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n");
}

}  // namespace
}  // namespace gatehouse::http
