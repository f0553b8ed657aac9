// Turning token claims (JWT payloads, introspection answers) into the
// identity handed to services: scopes, roles, claims_to_headers.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins::auth {

struct ClaimMapping {
  std::vector<std::pair<std::string, std::string>> to_headers;  // header name, claim name
  std::vector<std::string> required_scopes;
  std::string roles_claim;  // empty: none
};

// Reads `claims_to_headers` (a map) into `out.to_headers`.
bool read_claims_to_headers(const YAML::Node& node, const Report& report, ClaimMapping& out);

// A claim as a header value: strings as they are, numbers and booleans as
// JSON, arrays of strings joined by ','. nullopt when absent, of another
// shape, or not a valid field value (a CR/LF would inject a header).
std::optional<std::string> claim_text(const nlohmann::json& claims, const std::string& name);

// The token's scopes from "scope" (space separated, RFC 8693 / RFC 7662) or
// "scp" (string or array).
std::vector<std::string> token_scopes(const nlohmann::json& claims);

// What a verified token gives: filled from the claims once, cached, and
// copied into the request's identity on every use.
struct TokenIdentity {
  bool scope_ok = true;
  const gatehouse::auth::Consumer* consumer = nullptr;
  std::string user_id;
  std::string role;
  std::vector<std::string> roles;
  std::vector<std::pair<std::string, std::string>> headers;
  int64_t valid_until_s = 0;  // cache horizon (unix seconds)
  std::shared_ptr<const nlohmann::json> claims;
};

// Fills `out` from the claims; false when a mapped value is unusable.
// `subject_claims` are tried in order for X-User-ID when no mapping names it.
bool identity_from_claims(const nlohmann::json& claims, const ClaimMapping& mapping,
                          std::initializer_list<const char*> subject_claims, TokenIdentity& out);

void apply(const TokenIdentity& from, proxy::Identity& to);

// 403 insufficient_scope with the RFC 6750 challenge.
void refuse_scope(proxy::LocalReply& reply, const std::vector<std::string>& required);

// The bearer-token plugins (jwt, oauth2_introspection) decide alike once a
// token is verified. `plugin` names them in the access log's detail.
// A verified token: 403 when a required scope is missing, else its identity
// goes to the request. True when the request may go on.
bool accept_token(const proxy::RequestContext& ctx, proxy::LocalReply& reply,
                  const TokenIdentity& identity, const ClaimMapping& mapping,
                  std::string_view plugin);
// 401 invalid_token (RFC 6750); `why` goes to the access log. Returns false.
bool refuse_invalid_token(const proxy::RequestContext& ctx, proxy::LocalReply& reply,
                          std::string_view plugin, std::string_view why);
// A client must never set what a claim would: the mapped headers (and, with
// `hide`, the token itself) are removed from every request going upstream.
void strip_claim_headers(const ClaimMapping& mapping, bool hide, proxy::HeaderEdits& edits);

}  // namespace gatehouse::plugins::auth
