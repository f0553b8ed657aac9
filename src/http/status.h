#pragma once

#include <string>
#include <string_view>

namespace gatehouse::http {

// RFC 9110 15 reason phrases; "Unknown" for codes it does not name.
std::string_view reason_phrase(int status);

// Appends "HTTP/1.1 SSS reason\r\n"; an empty `reason` takes the standard phrase.
void append_status_line(std::string& out, int status, std::string_view reason);

}  // namespace gatehouse::http
