#pragma once

#include <string_view>

namespace gatehouse::http {

// RFC 9110 15 reason phrases; "Unknown" for codes it does not name.
std::string_view reason_phrase(int status);

}  // namespace gatehouse::http
