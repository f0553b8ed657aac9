#include "proxy/plugin.h"

namespace gatehouse::proxy {

bool HeaderEdits::drops(std::string_view name) const {
  for (const auto& [n, v] : set)
    if (http::iequals(n, name)) return true;
  for (const std::string& n : remove)
    if (http::iequals(n, name)) return true;
  return false;
}

}  // namespace gatehouse::proxy
