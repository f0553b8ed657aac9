// Small cryptographic helpers for credentials, on OpenSSL 3 and libxcrypt.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gatehouse::auth {

using Sha256 = std::array<uint8_t, 32>;

Sha256 sha256(std::string_view data);
// 64 lower- or upper-case hex digits; nullopt otherwise.
std::optional<Sha256> parse_sha256_hex(std::string_view hex);
std::string to_hex(const uint8_t* data, std::size_t size);

// HMAC-SHA256 of `message` under `key`, as 64 lower-case hex digits.
std::string hmac_sha256_hex(std::string_view key, std::string_view message);
// Keyed hash for cache keys that must not hold a credential in the clear.
Sha256 hmac_sha256(std::string_view key, std::string_view message);

// Compares in time that depends only on the lengths (CRYPTO_memcmp).
bool constant_time_equal(std::string_view a, std::string_view b);

// True when crypt(3) recognises `hash` as a setting it can verify against
// (yescrypt "$y$", bcrypt "$2b$", sha512-crypt "$6$", ...); legacy DES and
// other weak methods are refused.
bool crypt_hash_supported(std::string_view hash);
// crypt(3) of `password` with `hash` as the setting, compared constant-time.
// Costs what the hash method costs (milliseconds for yescrypt): callers cache.
bool crypt_verify(std::string_view password, const std::string& hash);

// Standard base64 (RFC 4648 section 4, padding required), as Basic auth uses.
std::optional<std::string> base64_decode(std::string_view in);
std::string base64_encode(std::string_view in);

// application/x-www-form-urlencoded value (RFC 6749 appendix B).
std::string form_urlencode(std::string_view in);

// `n` random bytes from OpenSSL's CSPRNG.
std::string random_bytes(std::size_t n);

}  // namespace gatehouse::auth
