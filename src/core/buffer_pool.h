// Per-worker free list of fixed-size I/O buffers. Connections take a buffer
// only while a message is in flight and give it back when idle, so idle
// keep-alive connections hold no buffer memory. Single-threaded by design.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace gatehouse::core {

class BufferPool;

// A pooled buffer; returns itself to its pool when destroyed.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Buffer&& o) noexcept : pool_(o.pool_), data_(std::move(o.data_)) { o.pool_ = nullptr; }
  Buffer& operator=(Buffer&& o) noexcept;
  ~Buffer() { release(); }

  char* data() { return data_.get(); }
  explicit operator bool() const { return data_ != nullptr; }
  void release();

 private:
  friend class BufferPool;
  Buffer(BufferPool* pool, std::unique_ptr<char[]> data) : pool_(pool), data_(std::move(data)) {}
  BufferPool* pool_ = nullptr;
  std::unique_ptr<char[]> data_;
};

class BufferPool {
 public:
  BufferPool(std::size_t buffer_size, std::size_t max_free)
      : size_(buffer_size), max_free_(max_free) {}
  std::size_t buffer_size() const { return size_; }

  // Frees all but `keep` idle buffers (memory goes back to malloc).
  void shrink(std::size_t keep) {
    if (free_.size() > keep) free_.resize(keep);
  }

  Buffer take() {
    if (free_.empty()) return Buffer(this, std::unique_ptr<char[]>(new char[size_]));
    Buffer b(this, std::move(free_.back()));
    free_.pop_back();
    return b;
  }

 private:
  friend class Buffer;
  void give_back(std::unique_ptr<char[]> data) {
    if (free_.size() < max_free_) free_.push_back(std::move(data));
  }
  std::size_t size_;
  std::size_t max_free_;
  std::vector<std::unique_ptr<char[]>> free_;
};

inline Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    release();
    pool_ = o.pool_;
    data_ = std::move(o.data_);
    o.pool_ = nullptr;
  }
  return *this;
}

inline void Buffer::release() {
  if (data_ && pool_) pool_->give_back(std::move(data_));
  data_.reset();
  pool_ = nullptr;
}

}  // namespace gatehouse::core
