// The executor, socket and coroutine types every worker-side piece names.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace gatehouse::proxy {

// A worker's I/O objects name its io_context's executor type directly rather
// than Asio's type-erased any_io_executor: the erasure (copies, prefer and
// execute through function pointers) was ~6% of user time per request.
using Executor = boost::asio::io_context::executor_type;
using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;
using Acceptor = boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, Executor>;
template <typename T>
using Task = boost::asio::awaitable<T, Executor>;
inline constexpr boost::asio::use_awaitable_t<Executor> use_task;

}  // namespace gatehouse::proxy
