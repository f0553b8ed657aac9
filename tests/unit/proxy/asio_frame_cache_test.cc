// The configure-time patch of Asio's coroutine frame recycling
// (cmake/AsioPatch.cmake, part 2): frames of any size up to 4 KiB come back
// from a per-thread cache instead of the global allocator, and a frame made
// or destroyed outside the event loop still goes back where it came from.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdlib>
#include <new>

#if !defined(__SANITIZE_ADDRESS__)
// Counts this binary's global allocations, only on a thread that asked for
// it (AddressSanitizer builds keep the global operator new: they intercept it,
// and the cache keeps nothing there).
namespace {
thread_local bool g_counting = false;
thread_local long g_allocations = 0;
}  // namespace

void* operator new(std::size_t size) {
  if (g_counting) ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

// Coroutines whose frames are about 150, 1200 and 2300 bytes: the buffers
// live across a suspension point, so they are part of the frame. Stock Asio
// recycles none above 1020 bytes.
awaitable<int> inner() {
  volatile char pad[2200];
  pad[0] = 1;
  co_await asio::post(co_await asio::this_coro::executor, use_awaitable);
  co_return pad[0];
}

awaitable<int> middle() {
  volatile char pad[1100];
  pad[0] = 2;
  int v = co_await inner();
  co_return v + pad[0];
}

awaitable<void> outer(int& sum) {
  int v = co_await middle();
  sum += v;
}

TEST(AsioFrameCache, NestedCoroutineChainsReuseTheirFrames) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer builds cache no frames";
#else
  asio::io_context io;
  int sum = 0;
  long allocations_in_last_rounds = 0;
  constexpr int kRounds = 20, kConcurrent = 16;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        for (int round = 0; round < kRounds; ++round) {
          if (round == kRounds / 2) {
            g_allocations = 0;
            g_counting = true;
          }
          // kConcurrent chains in flight at once, as sessions are.
          for (int i = 0; i < kConcurrent; ++i) asio::co_spawn(io, outer(sum), asio::detached);
          while (sum < (round + 1) * kConcurrent * 3) {
            co_await asio::post(io, use_awaitable);
          }
        }
        g_counting = false;
        allocations_in_last_rounds = g_allocations;
      },
      asio::detached);
  io.run();
  EXPECT_EQ(sum, kRounds * kConcurrent * 3);
  // Each chain makes three frames (plus co_spawn's own); once the cache is
  // warm, far fewer than one global allocation per chain.
  constexpr long kChains = (kRounds / 2) * kConcurrent;
  EXPECT_LT(allocations_in_last_rounds, kChains / 4)
      << "global allocations for " << kChains << " coroutine chains";
#endif
}

TEST(AsioFrameCache, FramesMadeOrDestroyedOutsideTheLoopAreFreedSafely) {
  int sum = 0;
  {
    asio::io_context io;
    // Made here, outside run(): no thread cache; it ends inside run(), so
    // its frame is freed into the loop's cache.
    awaitable<void> made_outside = outer(sum);
    asio::co_spawn(io, std::move(made_outside), asio::detached);
    // Made inside run() and never finished: destroyed with the io_context,
    // outside run(), when no thread cache exists any more.
    asio::steady_timer never(io, std::chrono::hours(1));
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          co_await middle();
          co_await never.async_wait(use_awaitable);
        },
        asio::detached);
    io.run_for(std::chrono::milliseconds(50));
    EXPECT_EQ(sum, 3);
  }
  // A loop that runs again starts with the blocks of the first (each run()
  // has its own cache, released when it returns).
  asio::io_context again;
  asio::co_spawn(again, outer(sum), asio::detached);
  again.run();
  EXPECT_EQ(sum, 6);
}

}  // namespace
