// What the server codec (clients' HTTP/2) and the client codec (HTTP/2 to a
// backend) do the same way around an nghttp2 session: header pairs, trailers,
// the data provider that reads an HTTP/1.1 message's body, feeding HTTP/1.1
// bytes into a MessageReader, DATA frames re-chunked for the pipeline, and
// draining the session's output. The codecs differ in what a stream holds and
// what they tell their handler; those parts come in as callbacks.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http2/message_reader.h"

namespace gatehouse::http2::detail {

// RFC 9113 6.9.2: the connection window starts at 65535 and can only grow
// by WINDOW_UPDATE; a smaller setting would make a conforming peer fail.
inline constexpr uint32_t kMinConnectionWindow = 65535;

inline std::string_view as_view(const uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

// nghttp2 copies names and values on submit (no NO_COPY flags here), so
// views into buffers that die right after the call are fine.
inline nghttp2_nv make_nv(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

// Chunked trailers become a trailing HEADERS frame with END_STREAM (how
// gRPC's grpc-status travels); fields HTTP/2 forbids in trailers are left
// out. False when there is nothing to send (or nghttp2 refused it).
inline bool submit_trailers(nghttp2_session* session, int32_t id, std::string_view trailers,
                            std::vector<nghttp2_nv>& nva) {
  nva.clear();
  for_each_field_line(trailers, [&](std::string_view name, std::string_view value) {
    if (!is_forbidden_trailer(name)) nva.push_back(make_nv(name, value));
  });
  return !nva.empty() && nghttp2_submit_trailer(session, id, nva.data(), nva.size()) == 0;
}

// The body of a data provider's read callback over the message `m`:
// `trailers()` submits the trailers (true if it did), `writable()` runs when a
// blocked writer's message has room again.
template <typename SubmitTrailers, typename Writable>
ssize_t read_message_body(MessageReader& m, bool& blocked, uint8_t* buf, std::size_t length,
                          uint32_t* data_flags, SubmitTrailers&& trailers, Writable&& writable) {
  std::size_t n = m.take(buf, length);
  if (m.complete() && m.buffered() == 0) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (trailers()) *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
  } else if (n == 0) {
    return NGHTTP2_ERR_DEFERRED;
  }
  if (blocked && m.has_room()) {
    blocked = false;
    writable();
  }
  return static_cast<ssize_t>(n);
}

// Feeds HTTP/1.1 bytes from the pipeline into `m`: `start()` runs each time
// a head is complete (false stops: the stream is gone) and `fail()` when
// the bytes are malformed. Returns how many bytes `m` took, or nullopt after
// a stop or a failure (the stream is over: the caller counts every byte as
// taken, so the pipeline does not wait, and resumes nothing).
template <typename Start, typename Fail>
std::optional<std::size_t> feed_message(MessageReader& m, std::string_view bytes, Start&& start,
                                        Fail&& fail) {
  std::size_t total = 0;
  while (total < bytes.size()) {
    std::size_t used = 0;
    MessageReader::Status st = m.read(bytes.substr(total), used);
    total += used;
    if (st == MessageReader::Status::kError) {
      fail();
      return std::nullopt;
    }
    if (st == MessageReader::Status::kMore) break;
    if (!start()) return std::nullopt;
  }
  return total;
}

// A DATA frame's payload as one HTTP/1.1 chunk, built in `scratch`.
inline std::string_view as_chunk(std::string& scratch, const uint8_t* data, std::size_t len) {
  scratch.clear();
  append_chunk_size(scratch, len);
  scratch.append(as_view(data, len)).append("\r\n");
  return scratch;
}

// Appends the session's pending frames to `out`, up to about `max_bytes`.
// False when nghttp2 failed (the connection is done).
inline bool drain_output(nghttp2_session* session, std::string& out, std::size_t max_bytes) {
  std::size_t before = out.size();
  while (out.size() - before < max_bytes) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session, &data);
    if (n < 0) return false;
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace gatehouse::http2::detail
