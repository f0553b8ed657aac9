// Maps body bytes a pipeline has processed back to the HTTP/2 DATA bytes
// that carried them, for flow-control credit (RFC 9113 5.2).
//
// The codecs hand pipelines HTTP/1.1 bytes, which outnumber the DATA
// payload that carried them (chunk framing, a head, a last chunk with
// trailers), but a pipeline reports progress in its own bytes. Credit is
// granted in proportion and in full once everything delivered is consumed:
// never early (the peer could outrun the pipeline), never lost (the window
// would shrink for good). O(1) state, whatever the number of frames.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gatehouse::http2 {

class BodyCredit {
 public:
  // `http1_bytes` were handed to the pipeline, carried by `h2_bytes` of DATA payload.
  void delivered(std::size_t http1_bytes, std::size_t h2_bytes) {
    http1_ += http1_bytes;
    h2_ += h2_bytes;
  }
  // The pipeline processed `http1_bytes` more: returns the HTTP/2 bytes to credit.
  uint64_t consume(std::size_t http1_bytes) {
    if (http1_bytes >= http1_) {
      uint64_t credit = h2_;
      http1_ = 0;
      h2_ = 0;
      return credit;
    }
    // 128-bit product: h2_ is bounded by the window (< 2^31) but http1_ is not.
    auto credit = static_cast<uint64_t>(static_cast<unsigned __int128>(h2_) * http1_bytes / http1_);
    h2_ -= credit;
    http1_ -= http1_bytes;
    return credit;
  }
  // HTTP/2 bytes delivered and not credited yet (owed to the connection
  // window when the stream closes early).
  uint64_t outstanding() const { return h2_; }

 private:
  uint64_t http1_ = 0;
  uint64_t h2_ = 0;
};

}  // namespace gatehouse::http2
