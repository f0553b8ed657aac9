#include "tls/socket_bio.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace gatehouse::tls {
namespace {

class SocketBioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0);
    fcntl(fds_[0], F_SETFL, fcntl(fds_[0], F_GETFL) | O_NONBLOCK);
    bio_ = new_socket_bio(fds_[0]);
    ASSERT_NE(bio_, nullptr);
  }
  void TearDown() override {
    BIO_free(bio_);
    close(fds_[0]);
    if (fds_[1] >= 0) close(fds_[1]);
  }
  std::string read(std::size_t max) {
    std::string out(max, '\0');
    std::size_t got = 0;
    if (BIO_read_ex(bio_, out.data(), max, &got) != 1) return "<none>";
    out.resize(got);
    return out;
  }
  int fds_[2] = {-1, -1};
  BIO* bio_ = nullptr;
};

TEST_F(SocketBioTest, StagedBytesComeBeforeTheSocket) {
  ASSERT_EQ(write(fds_[1], "socket", 6), 6);
  char staged[] = "staged";
  stage(bio_, staged, 6);
  EXPECT_EQ(staged_bytes(bio_), 6u);
  EXPECT_EQ(read(4), "stag");
  EXPECT_EQ(staged_bytes(bio_), 2u);
  EXPECT_EQ(read(100), "ed");  // a read never mixes the two sources
  EXPECT_EQ(staged_bytes(bio_), 0u);
  EXPECT_EQ(read(100), "socket");
}

TEST_F(SocketBioTest, EmptySocketAsksForARetryNotAnEnd) {
  EXPECT_EQ(read(10), "<none>");
  EXPECT_TRUE(BIO_should_retry(bio_));
  EXPECT_TRUE(BIO_should_read(bio_));
  EXPECT_EQ(BIO_eof(bio_), 0);
}

TEST_F(SocketBioTest, PeerCloseIsEof) {
  close(fds_[1]);
  fds_[1] = -1;
  EXPECT_EQ(read(10), "<none>");
  EXPECT_FALSE(BIO_should_retry(bio_));
  EXPECT_EQ(BIO_eof(bio_), 1);
}

TEST_F(SocketBioTest, KeepStagedCopiesTheRestSoTheCallerMayReuseItsBuffer) {
  char buf[16];
  std::memcpy(buf, "abcdefgh", 8);
  stage(bio_, buf, 8);
  EXPECT_EQ(read(3), "abc");
  keep_staged(bio_);
  std::memset(buf, 'X', sizeof buf);
  EXPECT_EQ(read(2), "de");
  keep_staged(bio_);  // already the BIO's own copy: still intact
  EXPECT_EQ(read(100), "fgh");
  EXPECT_EQ(staged_bytes(bio_), 0u);
  keep_staged(bio_);  // nothing staged: nothing to do
  EXPECT_EQ(read(100), "<none>");
}

TEST_F(SocketBioTest, WritesGoToThePeerAndAFullSocketAsksForARetry) {
  std::size_t written = 0;
  ASSERT_EQ(BIO_write_ex(bio_, "hello", 5, &written), 1);
  EXPECT_EQ(written, 5u);
  char in[8] = {};
  ASSERT_EQ(::read(fds_[1], in, sizeof in), 5);
  EXPECT_STREQ(in, "hello");
  std::string big(1 << 20, 'x');
  int r = 1;
  for (int i = 0; i < 64 && r == 1; ++i) r = BIO_write_ex(bio_, big.data(), big.size(), &written);
  ASSERT_EQ(r, 0);
  EXPECT_TRUE(BIO_should_retry(bio_));
  EXPECT_TRUE(BIO_should_write(bio_));
  EXPECT_EQ(BIO_flush(bio_), 1);
}

TEST_F(SocketBioTest, ReportsItsDescriptor) {
  int fd = -1;
  EXPECT_EQ(BIO_get_fd(bio_, &fd), fds_[0]);
  EXPECT_EQ(fd, fds_[0]);
}

}  // namespace
}  // namespace gatehouse::tls
