# Asio 1.74's epoll reactor reads a socket speculatively before it waits:
# every async_read_some first calls recv(). After a read that came from an
# epoll event Asio keeps speculating, because its receive operation reports
# the socket "exhausted" only when recv() returned 0 bytes. On a proxy's
# request/response traffic the next read on a socket always comes before the
# peer has answered, so each read paid a recv() that returned EAGAIN: 2 of
# the 6 system calls per proxied request (bench/NOTES.md, "Speculative
# reads"). The patch:
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
# Asio offers no option for this, and the code lives in internal headers;
# rather than carry copies of them, configure writes the patched headers from
# the installed ones into the build tree, ahead of the system include path.
# If an installed header lacks the expected text (another Boost version), no
# header is patched, and the build says so: Asio then behaves as shipped.
option(GATEHOUSE_ASIO_PATCH "Patch Asio's reactor to end speculative reads on short reads" ON)

find_path(GATEHOUSE_ASIO_INCLUDE_DIR boost/asio/detail/reactive_socket_recv_op.hpp)
set(_asio_dir "${GATEHOUSE_ASIO_INCLUDE_DIR}/boost/asio/detail")
set(_asio_patch_dir "${CMAKE_BINARY_DIR}/asio-patch")
set(_asio_files reactive_socket_recv_op.hpp epoll_reactor.hpp impl/epoll_reactor.ipp)
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
    message(WARNING "Asio reactor patch not applied: ${_asio_dir}/${f} differs from Boost 1.74's")
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

if(_asio_ok)
  foreach(f IN LISTS _asio_files)
    string(MAKE_C_IDENTIFIER "${f}" _id)
    file(WRITE "${_asio_patch_dir}/boost/asio/detail/${f}" "${_text_${_id}}")
  endforeach()
  include_directories(BEFORE SYSTEM "${_asio_patch_dir}")
  message(STATUS "Asio reactor patch applied: short reads end speculative reads")
endif()
# Configure again when an installed header changes (a Boost update).
foreach(f IN LISTS _asio_files)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_asio_dir}/${f}")
endforeach()
