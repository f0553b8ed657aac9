# Two patches to Asio 1.74 (Boost 1.74, Debian 12), neither of which Asio
# offers as an option; the code lives in internal headers, so rather than
# carry copies of them, configure writes the patched headers from the
# installed ones into the build tree, ahead of the system include path. If an
# installed header lacks the expected text (another Boost version), no header
# is patched, and the build says so: Asio then behaves as shipped.
#
# 1. Speculative reads. Asio's epoll reactor reads a socket speculatively
# before it waits: every async_read_some first calls recv(). After a read that
# came from an epoll event Asio keeps speculating, because its receive
# operation reports the socket "exhausted" only when recv() returned 0 bytes.
# On a proxy's request/response traffic the next read on a socket always comes
# before the peer has answered, so each read paid a recv() that returned
# EAGAIN: 2 of the 6 system calls per proxied request (bench/NOTES.md,
# "Speculative reads"). The patch:
#  - a short read (fewer bytes than asked, no error, not MSG_PEEK) reports
#    the socket exhausted: it was drained, and with edge-triggered epoll any
#    later byte raises a new event, so the next read waits for that event
#    instead of calling recv() first;
#  - except once the peer's FIN has arrived: sockets are registered with
#    EPOLLRDHUP, and after it reads keep speculating, so data and FIN that
#    arrive together still end in a read of 0 (end of stream) and not in a
#    wait for an event that will not come. (nginx keeps the same state from
#    EPOLLRDHUP: its pending_eof.)
#
# 2. Recycled memory. Asio recycles the memory of coroutine frames and of its
# operations through a per-thread cache of one block per kind, of at most
# 1020 bytes. A proxied request runs a chain of nine frames (the session parks
# between requests without any, so that idle connections hold no memory), two
# of them larger than 1020 bytes, and 64 sessions interleave: nine malloc/free
# pairs per request, 15% of the worker's user time in glibc's allocator
# (bench/NOTES.md, "Coroutine frames"). The patch routes every block Asio
# recycles through one per-thread cache: a LIFO free list per 64-byte size
# class up to 4 KiB, each holding at most 128 KiB and 512 blocks. A block
# records its class in a 16-byte header, so it may be freed on any thread or
# outside the event loop.
# Builds with AddressSanitizer keep no blocks, so that it still sees every use
# after free. A general-purpose allocator (jemalloc, tcmalloc) gave the same
# speed but kept freed memory: five times nginx's RSS per idle connection.

option(GATEHOUSE_ASIO_PATCH "Patch Asio: short reads end speculative reads; a wider per-thread recycling cache" ON)

find_path(GATEHOUSE_ASIO_INCLUDE_DIR boost/asio/detail/reactive_socket_recv_op.hpp)
set(_asio_dir "${GATEHOUSE_ASIO_INCLUDE_DIR}/boost/asio/detail")
set(_asio_patch_dir "${CMAKE_BINARY_DIR}/asio-patch")
set(_asio_files reactive_socket_recv_op.hpp epoll_reactor.hpp impl/epoll_reactor.ipp thread_info_base.hpp)
file(REMOVE_RECURSE "${_asio_patch_dir}")

# asio_edit(FILE OLD NEW): replaces the exact text OLD of an installed header
# (it must occur) in the copy being patched. (Named arguments keep the
# semicolons of C++ intact, which a CMake list would split on.)
function(asio_edit f old new)
  if(NOT _asio_ok)
    return()
  endif()
  string(MAKE_C_IDENTIFIER "${f}" id)
  if(NOT DEFINED _text_${id})
    file(READ "${_asio_dir}/${f}" text)
  else()
    set(text "${_text_${id}}")
  endif()
  string(FIND "${text}" "${old}" at)
  if(at EQUAL -1)
    message(WARNING "Asio patch not applied: ${_asio_dir}/${f} differs from Boost 1.74's")
    set(_asio_ok FALSE PARENT_SCOPE)
    return()
  endif()
  string(REPLACE "${old}" "${new}" text "${text}")
  set(_text_${id} "${text}" PARENT_SCOPE)
endfunction()

set(_asio_ok FALSE)
if(GATEHOUSE_ASIO_PATCH AND GATEHOUSE_ASIO_INCLUDE_DIR)
  set(_asio_ok TRUE)
endif()
# 1. Speculative reads (see the top of this file).
asio_edit(reactive_socket_recv_op.hpp
  [=[
        if (o->bytes_transferred_ == 0)
          result = done_and_exhausted;]=]
  [=[
        if (o->bytes_transferred_ == 0
            || (!o->ec_ && (o->flags_ & socket_base::message_peek) == 0
              && o->bytes_transferred_ < boost::asio::buffer_size(o->buffers_)))
          result = done_and_exhausted; // gatehouse: short read]=])
asio_edit(epoll_reactor.hpp
  [=[
    bool try_speculative_[max_ops];
    bool shutdown_;]=]
  [=[
    bool try_speculative_[max_ops];
    bool shutdown_;
    bool peer_closed_ = false; // gatehouse: EPOLLRDHUP seen]=])
asio_edit(impl/epoll_reactor.ipp
  [=[
    for (int i = 0; i < max_ops; ++i)
      descriptor_data->try_speculative_[i] = true;
  }

  epoll_event ev = { 0, { 0 } };
  ev.events = EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLPRI | EPOLLET;]=]
  [=[
    for (int i = 0; i < max_ops; ++i)
      descriptor_data->try_speculative_[i] = true;
    descriptor_data->peer_closed_ = false;
  }

  epoll_event ev = { 0, { 0 } };
  ev.events = EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLPRI | EPOLLET | EPOLLRDHUP;]=])
asio_edit(impl/epoll_reactor.ipp
  [=[
          if (status == reactor_op::done_and_exhausted)
            if (descriptor_data->registered_events_ != 0)]=]
  [=[
          if (status == reactor_op::done_and_exhausted)
            if (descriptor_data->registered_events_ != 0
                && !descriptor_data->peer_closed_)]=])
asio_edit(impl/epoll_reactor.ipp
  [=[
  static const int flag[max_ops] = { EPOLLIN, EPOLLOUT, EPOLLPRI };
  for (int j = max_ops - 1; j >= 0; --j)]=]
  [=[
  static const int flag[max_ops] = { EPOLLIN, EPOLLOUT, EPOLLPRI };
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
    peer_closed_ = true;
  for (int j = max_ops - 1; j >= 0; --j)]=])
asio_edit(impl/epoll_reactor.ipp
  [=[
          if (status == reactor_op::done_and_exhausted)
          {
            try_speculative_[j] = false;
            break;
          }]=]
  [=[
          if (status == reactor_op::done_and_exhausted)
          {
            if (!peer_closed_)
              try_speculative_[j] = false;
            break;
          }]=])

# 2. Recycled memory (see the top of this file).
asio_edit(thread_info_base.hpp
  [=[
class thread_info_base
  : private noncopyable
{]=]
  [=[
// gatehouse: per-thread cache of the blocks Asio recycles: coroutine frames,
// operations, handlers (cmake/AsioPatch.cmake). Hand-written because it is
// Asio's own recycling widened: one LIFO free list per 64-byte size class,
// bounded, no locks (a thread only touches its own).
class gatehouse_block_cache
  : private noncopyable
{
public:
  // Each class keeps at most budget bytes and at most 512 blocks: 512 of
  // 64-256 bytes, 32 of 4 KiB. A worker uses a dozen classes or so.
  enum { header = 16, granule = 64, classes = 64, budget = 128 * 1024 };

  gatehouse_block_cache()
  {
    for (int c = 0; c < classes; ++c)
    {
      head_[c] = 0;
      count_[c] = 0;
    }
  }

  ~gatehouse_block_cache()
  {
    for (int c = 0; c < classes; ++c)
    {
      while (void* block = head_[c])
      {
        std::memcpy(&head_[c], block, sizeof(void*));
        release(block);
      }
    }
  }

  static void* allocate(gatehouse_block_cache* cache, std::size_t size)
  {
    // Class 0 would be a block too small for the free list's link.
    std::size_t c = size == 0 ? 1 : (size + granule - 1) / granule;
    if (cache && c < classes && cache->head_[c])
    {
      void* const block = cache->head_[c];
      std::memcpy(&cache->head_[c], block, sizeof(void*));
      --cache->count_[c];
      return block;
    }
    unsigned char* const mem = static_cast<unsigned char*>(
        ::operator new(c * granule + header));
    std::memcpy(mem, &c, sizeof(c));
    return mem + header;
  }

  static void deallocate(gatehouse_block_cache* cache, void* block)
  {
    std::size_t c;
    std::memcpy(&c, static_cast<unsigned char*>(block) - header, sizeof(c));
#if !defined(__SANITIZE_ADDRESS__)
    if (cache && c < classes
        && cache->count_[c] < 512 && cache->count_[c] * c * granule < budget)
    {
      std::memcpy(block, &cache->head_[c], sizeof(void*));
      cache->head_[c] = block;
      ++cache->count_[c];
      return;
    }
#endif
    release(block);
  }

private:
  static void release(void* block)
  {
    ::operator delete(static_cast<unsigned char*>(block) - header);
  }

  void* head_[classes];
  unsigned short count_[classes];
};

class thread_info_base
  : private noncopyable
{]=])
asio_edit(thread_info_base.hpp
  [=[
  template <typename Purpose>
  static void* allocate(Purpose, thread_info_base* this_thread,
      std::size_t size)
  {
    std::size_t chunks = (size + chunk_size - 1) / chunk_size;

    if (this_thread && this_thread->reusable_memory_[Purpose::mem_index])
    {
      void* const pointer = this_thread->reusable_memory_[Purpose::mem_index];
      this_thread->reusable_memory_[Purpose::mem_index] = 0;

      unsigned char* const mem = static_cast<unsigned char*>(pointer);
      if (static_cast<std::size_t>(mem[0]) >= chunks)
      {
        mem[size] = mem[0];
        return pointer;
      }

      ::operator delete(pointer);
    }

    void* const pointer = ::operator new(chunks * chunk_size + 1);
    unsigned char* const mem = static_cast<unsigned char*>(pointer);
    mem[size] = (chunks <= UCHAR_MAX) ? static_cast<unsigned char>(chunks) : 0;
    return pointer;
  }

  template <typename Purpose>
  static void deallocate(Purpose, thread_info_base* this_thread,
      void* pointer, std::size_t size)
  {
    if (size <= chunk_size * UCHAR_MAX)
    {
      if (this_thread && this_thread->reusable_memory_[Purpose::mem_index] == 0)
      {
        unsigned char* const mem = static_cast<unsigned char*>(pointer);
        mem[0] = mem[size];
        this_thread->reusable_memory_[Purpose::mem_index] = pointer;
        return;
      }
    }

    ::operator delete(pointer);
  }

]=]
  [=[
  // gatehouse: every block Asio recycles (coroutine frames, operations,
  // handlers) comes from the thread's cache.
  template <typename Purpose>
  static void* allocate(Purpose, thread_info_base* this_thread,
      std::size_t size)
  {
    return gatehouse_block_cache::allocate(
        this_thread ? &this_thread->block_cache_ : 0, size);
  }

  template <typename Purpose>
  static void deallocate(Purpose, thread_info_base* this_thread,
      void* pointer, std::size_t)
  {
    gatehouse_block_cache::deallocate(
        this_thread ? &this_thread->block_cache_ : 0, pointer);
  }

]=])
asio_edit(thread_info_base.hpp
  [=[
  void* reusable_memory_[max_mem_index];
]=]
  [=[
  void* reusable_memory_[max_mem_index];
  gatehouse_block_cache block_cache_;
]=])
asio_edit(thread_info_base.hpp
  [=[
#include <climits>]=]
  [=[
#include <climits>
#include <cstring>]=])

if(_asio_ok)
  foreach(f IN LISTS _asio_files)
    string(MAKE_C_IDENTIFIER "${f}" _id)
    file(WRITE "${_asio_patch_dir}/boost/asio/detail/${f}" "${_text_${_id}}")
  endforeach()
  include_directories(BEFORE SYSTEM "${_asio_patch_dir}")
  # Raised whenever the set of patched headers changes: the new compile flags
  # make an existing build tree recompile (its dependency files still name
  # the installed headers the patch now shadows).
  add_compile_definitions(GATEHOUSE_ASIO_PATCH_LEVEL=2)
  message(STATUS "Asio patch applied: short reads end speculative reads; recycling cache")
endif()
# Configure again when an installed header changes (a Boost update).
foreach(f IN LISTS _asio_files)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_asio_dir}/${f}")
endforeach()
