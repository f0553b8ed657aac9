// Durations in the config: a decimal number and one unit, "250ms", "10s",
// "1.5m", "1h", "30d". Units: ms, s, m, h, d. A fraction is allowed as long as the
// result is a whole number of milliseconds ("1.5s" yes, "0.5ms" no). A bare
// number is rejected because "timeout: 30" reads as seconds to one operator
// and as milliseconds to the next. Compound forms ("1m30s") are not accepted.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace gatehouse::config {

// The duration, or nullopt with `error` set to a message that does not repeat
// the input ("duration needs a unit (ms, s, m, h, d)").
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::string& error);

}  // namespace gatehouse::config
