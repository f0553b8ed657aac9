// JSON Web Tokens (RFC 7519) signed with JWS compact serialization (RFC 7515)
// and the keys that verify them (JWK, RFC 7517), through OpenSSL 3.
//
// Strict by design: a token is refused unless it is exactly three base64url
// (unpadded) parts, a JSON object header with a pinned algorithm, and a
// signature that verifies with a key of the matching type. Headers that would
// make us fetch or trust a key from the token itself (jku, x5u, jwk, x5c) are
// ignored, never used.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::auth {

inline constexpr std::size_t kMaxTokenBytes = 8192;

enum class JwtAlg : uint8_t {
  kHS256,
  kHS384,
  kHS512,
  kRS256,
  kRS384,
  kRS512,
  kPS256,
  kPS384,
  kPS512,
  kES256,
  kES384,
  kEdDSA,
};

// "RS256" -> kRS256; nullopt for anything else, "none" included.
std::optional<JwtAlg> parse_alg(std::string_view name);
std::string_view alg_name(JwtAlg alg);
bool is_hmac(JwtAlg alg);

enum class KeyType : uint8_t { kHmac, kRsa, kEcP256, kEcP384, kEd25519 };

// A verification key. Immutable once built; safe to share between threads.
class Key {
 public:
  ~Key();
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;

  // An HMAC secret (HS256/384/512). accepts() is false for an HS* algorithm
  // whose hash output is longer than the secret (RFC 7518 3.2): 32 bytes for
  // HS256, 48 for HS384, 64 for HS512.
  static std::shared_ptr<const Key> from_secret(std::string secret, std::string kid = {});
  // A PEM public key (SubjectPublicKeyInfo) or certificate: RSA (>= 2048
  // bits), EC P-256/P-384, Ed25519. nullptr and `error` set when unusable.
  static std::shared_ptr<const Key> from_pem(std::string_view pem, std::string kid,
                                             std::string* error);
  // One JWK object (kty RSA, EC or OKP/Ed25519; "oct" only when allow_oct).
  // Keys with "use" other than "sig", "key_ops" without "verify", a private
  // part ("d") or an "alg" their type cannot verify are refused.
  static std::shared_ptr<const Key> from_jwk(const nlohmann::json& jwk, std::string* error,
                                             bool allow_oct = false);

  KeyType type() const { return type_; }
  const std::string& kid() const { return kid_; }
  // The JWK "alg" member when present: the key then verifies only that one.
  std::optional<JwtAlg> alg() const { return alg_; }
  // True when this key may verify a token of `alg` (type match; HMAC tokens
  // never verify against RSA/EC/OKP keys and the other way round; a JWK
  // "alg" pins it).
  bool accepts(JwtAlg alg) const;
  // Verifies `signature` (raw bytes, base64url-decoded; ES* in JWS r||s form)
  // over `signing_input`. Constant-time for HMAC. False when !accepts(alg).
  bool verify(JwtAlg alg, std::string_view signing_input, std::string_view signature) const;

 private:
  Key() = default;
  KeyType type_ = KeyType::kHmac;
  std::string kid_;
  std::optional<JwtAlg> alg_;
  std::string secret_;    // kHmac
  void* pkey_ = nullptr;  // EVP_PKEY*, owned
};

// A set of keys, as served by a JWKS endpoint.
struct KeySet {
  std::vector<std::shared_ptr<const Key>> keys;
  // The key with this kid; when `kid` is empty and the set holds exactly one
  // key, that key; when the set is one key without a kid, that key whatever
  // `kid` is. nullptr otherwise.
  const Key* find(std::string_view kid) const;
};

// Parses a JWKS document {"keys": [...]}. Keys that cannot be used (unknown
// kty or crv, use != sig, RSA < 2048 bits, bad members) are skipped and
// described in `skipped`; nullopt (with `error`) when the document itself is
// not a JWKS.
std::optional<KeySet> parse_jwks(std::string_view json, std::string* error,
                                 std::vector<std::string>* skipped = nullptr);

// Strict unpadded base64url (RFC 4648 section 5, RFC 7515 section 2): no '=',
// no whitespace, no characters outside the alphabet, non-zero leftover bits
// refused. nullopt on any violation.
std::optional<std::string> base64url_decode(std::string_view in);
std::string base64url_encode(std::string_view in);

// Why a token was refused (for logs and metrics; clients only ever see
// "invalid token").
enum class JwtError : uint8_t {
  kNone,
  kTooLarge,      // over kMaxTokenBytes
  kMalformed,     // not three parts, bad base64url, header/payload not a JSON object (or with
                  // duplicate member names at any depth), empty signature, kid not a string,
                  // trailing bytes
  kBadAlgorithm,  // alg missing, "none", unknown, or not in the allowed list
  kCritical,      // a "crit" header (no extension is understood)
  kUnknownKey,    // no key with the token's kid
  kKeyMismatch,   // the key cannot verify this alg (key confusion)
  kBadSignature,
  kExpired,         // exp + skew <= now
  kNotYetValid,     // nbf - skew > now
  kIssuedInFuture,  // iat - skew > now
  kBadClaimType,    // exp/nbf/iat not numbers, iss/sub not strings, aud not string/array of
                    // strings; also exp missing when ClaimsPolicy::require_exp
  kBadIssuer,
  kBadAudience,
};
std::string_view jwt_error_name(JwtError e);  // "expired", "bad_signature", ...

// A structurally valid token whose signature has NOT been checked yet.
struct DecodedJwt {
  JwtAlg alg = JwtAlg::kRS256;
  std::string kid;                 // empty when the header has none
  std::string_view signing_input;  // "header.payload", a view into the token
  std::string signature;           // raw bytes
  nlohmann::json header;
  nlohmann::json claims;  // a JSON object
};

// Decodes and checks structure and algorithm (must be in `allowed`).
std::optional<DecodedJwt> decode_jwt(std::string_view token, const std::vector<JwtAlg>& allowed,
                                     JwtError& error);

struct ClaimsPolicy {
  std::string issuer;    // empty: not checked
  std::string audience;  // empty: not checked; else must equal aud or be in the aud array
  int64_t skew_seconds = 30;
  bool require_exp = false;  // a token without exp is then refused with kBadClaimType
};

// Checks exp/nbf/iat (when present, or exp when required) against `now`
// (unix seconds) with skew, then iss and aud.
JwtError check_claims(const nlohmann::json& claims, const ClaimsPolicy& policy, int64_t now);

// decode_jwt + key lookup in `keys` by kid + Key::accepts + verify +
// check_claims. On success returns kNone and fills `out`; on failure `out` is
// left untouched. When the kid's first key cannot verify the alg, another key
// with the same kid that can is used (RFC 7517 4.5: kids may be shared across
// key types).
JwtError verify_jwt(std::string_view token, const std::vector<JwtAlg>& allowed, const KeySet& keys,
                    const ClaimsPolicy& policy, int64_t now, DecodedJwt& out);

}  // namespace gatehouse::auth
