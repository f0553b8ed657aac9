#include "core/buffer_pool.h"

#include <gtest/gtest.h>

namespace gatehouse::core {
namespace {

TEST(BufferPool, ReusesReleasedBuffers) {
  BufferPool pool(1024, 4);
  Buffer a = pool.take();
  char* first = a.data();
  a.release();
  Buffer b = pool.take();
  EXPECT_EQ(b.data(), first);
}

TEST(BufferPool, KeepsAtMostMaxFreeBuffers) {
  BufferPool pool(64, 1);
  Buffer a = pool.take();
  Buffer b = pool.take();
  char* pa = a.data();
  a.release();
  b.release();  // the pool is full: this one is freed
  Buffer c = pool.take();
  EXPECT_EQ(c.data(), pa);
}

TEST(BufferPool, MovedFromBufferIsEmpty) {
  BufferPool pool(64, 2);
  Buffer a = pool.take();
  Buffer b = std::move(a);
  EXPECT_FALSE(a);
  EXPECT_TRUE(b);
}

}  // namespace
}  // namespace gatehouse::core
