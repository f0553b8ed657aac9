#pragma once

#include <string>
#include <string_view>

namespace gatehouse::http {

// RFC 9110 15 reason phrases; "Unknown" for codes it does not name.
std::string_view reason_phrase(int status);

// Appends "HTTP/1.1 SSS reason\r\n"; an empty `reason` takes the standard phrase.
// Out: std::string or HeadWriter.
template <typename Out>
void append_status_line(Out& out, int status, std::string_view reason) {
  char line[] = "HTTP/1.1 000 ";
  line[9] = static_cast<char>('0' + status / 100 % 10);
  line[10] = static_cast<char>('0' + status / 10 % 10);
  line[11] = static_cast<char>('0' + status % 10);
  out.append(line, sizeof line - 1);
  out.append(reason.empty() ? reason_phrase(status) : reason).append("\r\n", 2);
}

}  // namespace gatehouse::http
