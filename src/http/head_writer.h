// Writes a message head into a std::string without a library call per piece.
//
// libstdc++ declares std::string an extern template, so each append() is an
// out-of-line call (capacity check, then memcpy) that the compiler cannot
// inline; a proxied head is about fifteen short pieces, and those calls were
// a fifth of the instructions spent building heads (callgrind, bench/NOTES.md).
// The writer grows the string once to a generous size, copies each piece with
// inlined moves, and trims the string to what was written when it is done.
// It has the append/push_back subset of std::string that the head helpers
// (append_field, append_kept_fields, append_status_line) use, so they take
// either.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace gatehouse::http {

class HeadWriter {
 public:
  // Writes after what `out` holds; `expect` is a guess of the bytes to come
  // (more are taken as needed, at one resize each).
  HeadWriter(std::string& out, std::size_t expect) : out_(out) { open(out.size(), expect); }
  ~HeadWriter() { finish(); }
  HeadWriter(const HeadWriter&) = delete;
  HeadWriter& operator=(const HeadWriter&) = delete;

  [[gnu::always_inline]] HeadWriter& append(std::string_view v) {
    if (static_cast<std::size_t>(end_ - p_) < v.size()) grow(v.size());
    copy(p_, v.data(), v.size());
    p_ += v.size();
    return *this;
  }
  [[gnu::always_inline]] HeadWriter& append(const char* s, std::size_t n) {
    return append(std::string_view(s, n));
  }
  [[gnu::always_inline]] HeadWriter& push_back(char c) {
    if (p_ == end_) grow(1);
    *p_++ = c;
    return *this;
  }

  // Trims the string to what was written; the writer must not be used after.
  void finish() {
    if (p_ == nullptr) return;
    out_.resize(static_cast<std::size_t>(p_ - out_.data()));
    p_ = end_ = nullptr;
  }

 private:
  void open(std::size_t at, std::size_t room) {
    out_.resize(at + room);
    p_ = out_.data() + at;
    end_ = out_.data() + out_.size();
  }
  void grow(std::size_t need) {
    std::size_t at = static_cast<std::size_t>(p_ - out_.data());
    open(at, need + out_.size());
  }
  // Pieces are mostly under 16 bytes: two overlapping moves copy them
  // without a call; longer ones go to memcpy.
  [[gnu::always_inline]] static void copy(char* d, const char* s, std::size_t n) {
    if (n >= 8 && n <= 16) {
      uint64_t a, b;
      std::memcpy(&a, s, 8);
      std::memcpy(&b, s + n - 8, 8);
      std::memcpy(d, &a, 8);
      std::memcpy(d + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
      uint32_t a, b;
      std::memcpy(&a, s, 4);
      std::memcpy(&b, s + n - 4, 4);
      std::memcpy(d, &a, 4);
      std::memcpy(d + n - 4, &b, 4);
    } else if (n != 0 && n < 4) {
      d[0] = s[0];
      d[n / 2] = s[n / 2];
      d[n - 1] = s[n - 1];
    } else if (n > 16) {
      std::memcpy(d, s, n);
    }
  }

  std::string& out_;
  char* p_ = nullptr;
  char* end_ = nullptr;
};

}  // namespace gatehouse::http
