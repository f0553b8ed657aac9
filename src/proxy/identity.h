// The trusted headers the gateway hands to services (docs/auth.md): who the
// caller is, and the signature that proves the request came through here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/plugin.h"

namespace gatehouse::proxy {

// X-User-ID's value for this identity ("" when none is sent).
std::string_view identity_user_id(const Identity& id);

// X-Consumer, X-Consumer-Tier, X-User-ID, X-User-Role, X-Auth-Verified (or
// X-Anonymous-Consumer) and claims_to_headers, as "Name: value\r\n" lines.
void append_identity_headers(std::string& out, const Identity& id);

// The string X-Gateway-Signature signs: t, method, target, request id and
// user id, one per line, joined by "\n" with no trailing newline.
std::string signature_base(int64_t t, std::string_view method, std::string_view target,
                           std::string_view request_id, std::string_view user_id);

// "X-Gateway-Signature: t=<t>,v1=<hex HMAC-SHA256(secret, base)>\r\n".
void append_signature(std::string& out, std::string_view secret, int64_t t, std::string_view method,
                      std::string_view target, std::string_view request_id,
                      std::string_view user_id);

// Appends `query` without its `name` parameters (a credential the service
// must not see), keeping every other parameter as written.
void append_query_without(std::string& out, std::string_view query, std::string_view name);

}  // namespace gatehouse::proxy
