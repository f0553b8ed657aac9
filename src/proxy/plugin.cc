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

namespace gatehouse::proxy {

Task<bool> Plugin::on_request_async(const RequestContext& ctx, LocalReply& reply) const {
  co_return on_request(ctx, reply);
}

}  // namespace gatehouse::proxy
