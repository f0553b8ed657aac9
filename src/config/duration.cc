#include "config/duration.h"

#include <cstdint>

namespace gatehouse::config {
namespace {

// Nine digits keep every product below 2^63 even in hours
// (999'999'999 d = 8.6e16 ms), so the arithmetic needs no overflow checks.
constexpr std::size_t kMaxDigits = 9;

constexpr std::string_view kExpected =
    "expected a number and a unit, such as 250ms, 10s, 1.5m or 1h";

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Consumes leading digits of `text`; returns how many.
std::size_t digit_count(std::string_view text) {
  std::size_t n = 0;
  while (n < text.size() && is_digit(text[n])) ++n;
  return n;
}

int64_t to_integer(std::string_view digits) {
  int64_t value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  return value;
}

std::optional<int64_t> unit_millis(std::string_view unit) {
  if (unit == "ms") return 1;
  if (unit == "s") return 1000;
  if (unit == "m") return 60 * 1000;
  if (unit == "h") return 60 * 60 * 1000;
  if (unit == "d") return 24 * 60 * 60 * 1000;
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::string& error) {
  const std::size_t whole_len = digit_count(text);
  if (whole_len == 0) {
    error = text.empty() ? "duration is empty" : std::string(kExpected);
    return std::nullopt;
  }
  std::string_view whole = text.substr(0, whole_len);
  std::string_view rest = text.substr(whole_len);
  std::string_view fraction;
  if (!rest.empty() && rest.front() == '.') {
    fraction = rest.substr(1, digit_count(rest.substr(1)));
    if (fraction.empty()) {
      error = std::string(kExpected);
      return std::nullopt;
    }
    rest = rest.substr(1 + fraction.size());
  }
  if (rest.empty()) {
    error = "duration needs a unit (ms, s, m, h, d)";
    return std::nullopt;
  }
  const std::optional<int64_t> unit = unit_millis(rest);
  if (!unit && rest.find_first_of("0123456789") != std::string_view::npos) {
    error = "duration takes a single unit, such as 90s for 1m30s";
    return std::nullopt;
  }
  if (!unit) {
    error = "unknown duration unit '" + std::string(rest) + "' (use ms, s, m, h, d)";
    return std::nullopt;
  }
  if (whole.size() > kMaxDigits || fraction.size() > kMaxDigits) {
    error = "duration is too long";
    return std::nullopt;
  }
  int64_t scale = 1;
  for (std::size_t i = 0; i < fraction.size(); ++i) scale *= 10;
  const int64_t fraction_scaled = to_integer(fraction) * *unit;
  if (fraction_scaled % scale != 0) {
    error = "duration must be a whole number of milliseconds";
    return std::nullopt;
  }
  return std::chrono::milliseconds(to_integer(whole) * *unit + fraction_scaled / scale);
}

}  // namespace gatehouse::config
