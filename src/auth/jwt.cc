// Hide every OpenSSL declaration deprecated in 3.0, so that a low-level
// RSA_*/EC_KEY_* call cannot creep back in: everything goes through EVP.
#define OPENSSL_NO_DEPRECATED
#include "auth/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <set>

namespace gatehouse::auth {
namespace {

using json = nlohmann::json;

// RFC 7518 3.3: RSA keys of at least 2048 bits. The upper bound is OpenSSL's
// own (OPENSSL_RSA_MAX_MODULUS_BITS); refusing it here gives a clear error.
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 16384;

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
struct OpenSslFree {
  void operator()(void* p) const { OPENSSL_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM_free>>;

// OpenSSL reports failures on a per-thread error queue. An entry left behind
// makes a later SSL_get_error() on the same worker thread misreport a healthy
// TLS connection, so every entry point drops what it added.
class ErrorQueueMark {
 public:
  ErrorQueueMark() { ERR_set_mark(); }
  ~ErrorQueueMark() { ERR_pop_to_mark(); }
  ErrorQueueMark(const ErrorQueueMark&) = delete;
  ErrorQueueMark& operator=(const ErrorQueueMark&) = delete;
};

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Indexed by JwtAlg.
constexpr std::string_view kAlgNames[] = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
                                          "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"};

bool is_rsa_alg(JwtAlg alg) { return alg >= JwtAlg::kRS256 && alg <= JwtAlg::kPS512; }
bool is_pss(JwtAlg alg) { return alg >= JwtAlg::kPS256 && alg <= JwtAlg::kPS512; }

// nullptr for EdDSA, which hashes internally (RFC 8037 3.1).
const EVP_MD* digest_for(JwtAlg alg) {
  switch (alg) {
    case JwtAlg::kHS256:
    case JwtAlg::kRS256:
    case JwtAlg::kPS256:
    case JwtAlg::kES256:
      return EVP_sha256();
    case JwtAlg::kHS384:
    case JwtAlg::kRS384:
    case JwtAlg::kPS384:
    case JwtAlg::kES384:
      return EVP_sha384();
    case JwtAlg::kHS512:
    case JwtAlg::kRS512:
    case JwtAlg::kPS512:
      return EVP_sha512();
    case JwtAlg::kEdDSA:
      break;
  }
  return nullptr;
}

// RFC 7518 3.2: "A key of the same size as the hash output or larger MUST be
// used with this algorithm."
std::size_t min_hmac_key_bytes(JwtAlg alg) {
  return static_cast<std::size_t>(EVP_MD_get_size(digest_for(alg)));
}

// The algorithms a key type can verify, before any JWK "alg" pin. Keeping HS*
// and the asymmetric families apart is what defeats key confusion (RFC 8725
// 2.1, 3.1): an RSA public key must never be used as an HMAC secret.
bool type_fits(KeyType type, JwtAlg alg) {
  switch (type) {
    case KeyType::kHmac:
      return is_hmac(alg);
    case KeyType::kRsa:
      return is_rsa_alg(alg);
    case KeyType::kEcP256:
      return alg == JwtAlg::kES256;
    case KeyType::kEcP384:
      return alg == JwtAlg::kES384;
    case KeyType::kEd25519:
      return alg == JwtAlg::kEdDSA;
  }
  return false;
}

// Coordinate (and r, s) size in bytes; RFC 7518 3.4 and 6.2.1.2.
std::size_t ec_field_bytes(KeyType type) { return type == KeyType::kEcP384 ? 48 : 32; }

// RFC 7518 3.4: the JWS signature is r || s, each exactly the field size;
// OpenSSL verifies the DER SEQUENCE of two INTEGERs. Empty on bad input.
std::string ecdsa_der(std::string_view sig, std::size_t field_bytes) {
  if (sig.size() != 2 * field_bytes) return {};
  const int n = static_cast<int>(field_bytes);
  BnPtr r(BN_bin2bn(bytes(sig), n, nullptr));
  BnPtr s(BN_bin2bn(bytes(sig) + n, n, nullptr));
  EcdsaSigPtr es(ECDSA_SIG_new());
  if (!r || !s || !es || ECDSA_SIG_set0(es.get(), r.get(), s.get()) != 1) return {};
  r.release();  // owned by `es` now
  s.release();
  int len = i2d_ECDSA_SIG(es.get(), nullptr);
  if (len <= 0) return {};
  std::string der(static_cast<std::size_t>(len), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(es.get(), &out) != len) return {};
  return der;
}

bool bad(std::string* error, std::string why) {
  if (error) *error = std::move(why);
  return false;
}

// Admits only the public keys we verify with, and says why the others fail.
std::optional<KeyType> classify(EVP_PKEY* pkey, std::string* error) {
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    int bits = EVP_PKEY_get_bits(pkey);
    if (bits < kMinRsaBits || bits > kMaxRsaBits) {
      bad(error, "RSA key of " + std::to_string(bits) + " bits: " + std::to_string(kMinRsaBits) +
                     " to " + std::to_string(kMaxRsaBits) + " required (RFC 7518 3.3)");
      return std::nullopt;
    }
    BIGNUM* n_raw = nullptr;
    BIGNUM* e_raw = nullptr;
    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n_raw);
    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e_raw);
    BnPtr n(n_raw), e(e_raw);
    // An even modulus or an exponent of 1 (or an even one) is no RSA key: with
    // e = 1 every message is its own signature.
    if (!n || !e || !BN_is_odd(n.get()) || !BN_is_odd(e.get()) || BN_is_one(e.get()) ||
        BN_num_bits(e.get()) > 64) {
      bad(error, "RSA key with an invalid modulus or public exponent");
      return std::nullopt;
    }
    return KeyType::kRsa;
  }
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[64] = {};
    std::size_t len = 0;
    std::optional<KeyType> type;
    if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &len) == 1) {
      if (std::strcmp(group, "prime256v1") == 0) type = KeyType::kEcP256;
      if (std::strcmp(group, "secp384r1") == 0) type = KeyType::kEcP384;
    }
    if (!type) {
      bad(error, std::string("unsupported EC curve \"") + group + "\": only P-256 and P-384");
      return std::nullopt;
    }
    // The point must lie on the curve and not be the identity (SEC 1 3.2.2.1):
    // d2i_PUBKEY accepts the point at infinity.
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
    if (!ctx || EVP_PKEY_public_check(ctx.get()) != 1) {
      bad(error, "EC public key is not a valid point of its curve");
      return std::nullopt;
    }
    return type;
  }
  if (EVP_PKEY_is_a(pkey, "ED25519")) return KeyType::kEd25519;
  const char* name = EVP_PKEY_get0_type_name(pkey);
  bad(error, std::string("unsupported key type \"") + (name ? name : "?") +
                 "\": RSA, EC P-256/P-384 or Ed25519 expected");
  return std::nullopt;
}

PkeyPtr pkey_from_params(const char* key_type, OSSL_PARAM_BLD* bld) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, key_type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return nullptr;
  }
  return PkeyPtr(pkey);
}

const json* member(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it == obj.end() ? nullptr : &*it;
}

const std::string* string_member(const json& obj, const char* name) {
  const json* v = member(obj, name);
  return v && v->is_string() ? &v->get_ref<const std::string&>() : nullptr;
}

// A required base64url member of a JWK (RFC 7518 6: all are base64url).
std::optional<std::string> b64_member(const json& jwk, const char* name, std::string* error) {
  const std::string* s = string_member(jwk, name);
  std::optional<std::string> out = s ? base64url_decode(*s) : std::nullopt;
  if (!out || out->empty()) {
    bad(error, std::string("JWK member \"") + name + "\" missing or not base64url");
    return std::nullopt;
  }
  return out;
}

// RFC 7518 6.3.1: n and e, unsigned big-endian.
PkeyPtr rsa_from_jwk(const json& jwk, std::string* error) {
  auto n = b64_member(jwk, "n", error);
  auto e = n ? b64_member(jwk, "e", error) : std::nullopt;
  if (!e) return nullptr;
  BnPtr bn_n(BN_bin2bn(bytes(*n), static_cast<int>(n->size()), nullptr));
  BnPtr bn_e(BN_bin2bn(bytes(*e), static_cast<int>(e->size()), nullptr));
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    bad(error, "cannot build the RSA key");
    return nullptr;
  }
  PkeyPtr pkey = pkey_from_params("RSA", bld.get());
  if (!pkey) bad(error, "cannot build the RSA key");
  return pkey;
}

// RFC 7518 6.2.1: x and y, each exactly the field size; OpenSSL takes the
// SEC 1 uncompressed point 0x04 || x || y.
PkeyPtr ec_from_jwk(const json& jwk, std::string* error) {
  const std::string* crv = string_member(jwk, "crv");
  const char* group = nullptr;
  if (crv && *crv == "P-256") group = "prime256v1";
  if (crv && *crv == "P-384") group = "secp384r1";
  if (!group) {
    bad(error,
        "unsupported EC curve \"" + (crv ? *crv : std::string()) + "\": only P-256 and P-384");
    return nullptr;
  }
  auto x = b64_member(jwk, "x", error);
  auto y = x ? b64_member(jwk, "y", error) : std::nullopt;
  if (!y) return nullptr;
  const std::size_t field = ec_field_bytes(*crv == "P-384" ? KeyType::kEcP384 : KeyType::kEcP256);
  if (x->size() != field || y->size() != field) {
    bad(error,
        "EC coordinates must be exactly " + std::to_string(field) + " bytes (RFC 7518 6.2.1.2)");
    return nullptr;
  }
  std::string point = "\x04" + *x + *y;
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    bad(error, "cannot build the EC key");
    return nullptr;
  }
  PkeyPtr pkey = pkey_from_params("EC", bld.get());
  if (!pkey) bad(error, "EC public key is not a valid point of its curve");
  return pkey;
}

// RFC 8037 2: kty OKP, crv Ed25519, x the 32-byte public key. X25519 is for
// key agreement and Ed448 is not supported.
PkeyPtr okp_from_jwk(const json& jwk, std::string* error) {
  const std::string* crv = string_member(jwk, "crv");
  if (!crv || *crv != "Ed25519") {
    bad(error, "unsupported OKP curve \"" + (crv ? *crv : std::string()) + "\": only Ed25519");
    return nullptr;
  }
  auto x = b64_member(jwk, "x", error);
  if (!x) return nullptr;
  if (x->size() != 32) {
    bad(error, "Ed25519 public key must be 32 bytes (RFC 8037 2)");
    return nullptr;
  }
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, x->data(),
                                               x->size()) != 1) {
    bad(error, "cannot build the Ed25519 key");
    return nullptr;
  }
  PkeyPtr pkey = pkey_from_params("ED25519", bld.get());
  if (!pkey) bad(error, "cannot build the Ed25519 key");
  return pkey;
}

// Checks the JWK members every key type shares (RFC 7517 4). Refuses keys
// marked for anything but signature verification, private keys, and "alg"
// values we do not verify.
bool check_common_members(const json& jwk, std::optional<JwtAlg>& alg, std::string* error) {
  if (const json* use = member(jwk, "use"); use && !(use->is_string() && *use == "sig")) {
    return bad(error, "JWK \"use\" is not \"sig\" (RFC 7517 4.2)");
  }
  if (const json* ops = member(jwk, "key_ops")) {
    bool verify = false;
    if (ops->is_array()) {
      for (const json& op : *ops) verify = verify || (op.is_string() && op == "verify");
    }
    if (!verify) return bad(error, "JWK \"key_ops\" does not include \"verify\" (RFC 7517 4.3)");
  }
  if (const json* kid = member(jwk, "kid"); kid && !kid->is_string()) {
    return bad(error, "JWK \"kid\" is not a string");
  }
  // A private key has no business in a verification key set: whoever holds
  // the set could mint tokens. RFC 7518 6.2.2.1, 6.3.2.1; RFC 8037 2.
  if (member(jwk, "d")) return bad(error, "JWK holds a private key (\"d\")");
  if (const json* a = member(jwk, "alg")) {
    alg = a->is_string() ? parse_alg(a->get_ref<const std::string&>()) : std::nullopt;
    if (!alg) return bad(error, "JWK \"alg\" is not a supported JWS algorithm");
  }
  return true;
}

// RFC 7515 4 and RFC 7519 4: header parameter and claim names MUST be unique,
// and a parser must either refuse duplicates or keep the last one. We refuse
// them (at every depth, which costs the same): an upstream that reads the
// first one would otherwise see a different token than we verified.
// A UTF-8 byte order mark is refused too (RFC 8259 8.1: not part of a JSON
// text), though nlohmann::json would skip it.
bool parse_object(std::string_view text, json& out) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") return false;
  std::vector<std::set<std::string>> names;  // per enclosing object
  bool duplicate = false;
  json::parser_callback_t on_event = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      names.emplace_back();
    } else if (event == json::parse_event_t::object_end && !names.empty()) {
      names.pop_back();
    } else if (event == json::parse_event_t::key && !names.empty() && parsed.is_string() &&
               !names.back().insert(parsed.get_ref<const std::string&>()).second) {
      duplicate = true;
    }
    return true;
  };
  out = json::parse(text.begin(), text.end(), on_event, /*allow_exceptions=*/false);
  return !duplicate && out.is_object();
}

// A NumericDate (RFC 7519 2): any JSON number, fractions allowed.
bool is_numeric_date(const json* v) {
  return v->is_number() && (!v->is_number_float() || std::isfinite(v->get<double>()));
}

// Compares a NumericDate with whole seconds `t` exactly (no int64 -> double
// rounding, no overflow): -1, 0 or 1.
int compare_date(const json& v, int64_t t) {
  auto cmp = [](int64_t a, int64_t b) { return (a > b) - (a < b); };
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    return u > static_cast<uint64_t>(INT64_MAX) ? 1 : cmp(static_cast<int64_t>(u), t);
  }
  if (v.is_number_integer()) return cmp(v.get<int64_t>(), t);
  double d = v.get<double>();
  if (d >= 0x1p63) return 1;
  if (d < -0x1p63) return -1;
  double whole = std::floor(d);
  int c = cmp(static_cast<int64_t>(whole), t);
  return c != 0 ? c : (d > whole ? 1 : 0);
}

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

bool valid_audience(const json* aud) {
  if (aud->is_string()) return true;
  if (!aud->is_array()) return false;
  for (const json& a : *aud) {
    if (!a.is_string()) return false;
  }
  return true;
}

bool audience_contains(const json& aud, const std::string& want) {
  if (aud.is_string()) return aud.get_ref<const std::string&>() == want;
  for (const json& a : aud) {
    if (a.get_ref<const std::string&>() == want) return true;
  }
  return false;
}

constexpr char kBase64UrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// -1 for every byte outside the base64url alphabet: '=', '+', '/',
// whitespace and NUL included.
struct Base64UrlTable {
  int8_t value[256] = {};
  constexpr Base64UrlTable() {
    for (auto& v : value) v = -1;
    for (int i = 0; i < 64; ++i) value[static_cast<unsigned char>(kBase64UrlAlphabet[i])] = i;
  }
};
constexpr Base64UrlTable kBase64Url;

}  // namespace

std::optional<JwtAlg> parse_alg(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kAlgNames); ++i) {
    if (kAlgNames[i] == name) return static_cast<JwtAlg>(i);
  }
  return std::nullopt;
}

std::string_view alg_name(JwtAlg alg) {
  auto i = static_cast<std::size_t>(alg);
  return i < std::size(kAlgNames) ? kAlgNames[i] : std::string_view("?");
}

bool is_hmac(JwtAlg alg) { return alg <= JwtAlg::kHS512; }

Key::~Key() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

// `new` because the constructor is private (make_shared cannot reach it); the
// shared_ptr owns the key from the first line.
std::shared_ptr<const Key> Key::from_secret(std::string secret, std::string kid) {
  std::shared_ptr<Key> key(new Key());
  key->type_ = KeyType::kHmac;
  key->secret_ = std::move(secret);
  key->kid_ = std::move(kid);
  return key;
}

std::shared_ptr<const Key> Key::from_pem(std::string_view pem, std::string kid,
                                         std::string* error) {
  ErrorQueueMark mark;
  // Refused outright rather than reduced to its public half: a private key in
  // a verifier's config is a leak to fix, not a convenience.
  if (pem.find("PRIVATE KEY-----") != std::string_view::npos) {
    bad(error, "PEM holds a private key: give the public key or the certificate");
    return nullptr;
  }
  if (pem.size() > INT_MAX) {
    bad(error, "PEM too large");
    return nullptr;
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  char* name_raw = nullptr;
  char* header_raw = nullptr;
  unsigned char* data_raw = nullptr;
  long len = 0;
  if (!bio || PEM_read_bio(bio.get(), &name_raw, &header_raw, &data_raw, &len) != 1) {
    bad(error, "no PEM block found");
    return nullptr;
  }
  std::unique_ptr<char, OpenSslFree> name(name_raw), header(header_raw);
  std::unique_ptr<unsigned char, OpenSslFree> data(data_raw);
  const unsigned char* p = data.get();
  PkeyPtr pkey;
  if (std::strcmp(name.get(), "PUBLIC KEY") == 0) {
    pkey.reset(d2i_PUBKEY(nullptr, &p, len));
  } else if (std::strcmp(name.get(), "CERTIFICATE") == 0) {
    // The certificate only carries the key: no chain, dates or usage checks.
    X509Ptr cert(d2i_X509(nullptr, &p, len));
    if (cert) pkey.reset(X509_get_pubkey(cert.get()));
  } else {
    bad(error, std::string("unsupported PEM block \"") + name.get() +
                   "\": PUBLIC KEY or CERTIFICATE expected");
    return nullptr;
  }
  if (!pkey || p != data.get() + len) {
    bad(error, std::string("cannot decode the PEM ") + name.get());
    return nullptr;
  }
  std::optional<KeyType> type = classify(pkey.get(), error);
  if (!type) return nullptr;
  std::shared_ptr<Key> key(new Key());
  key->type_ = *type;
  key->kid_ = std::move(kid);
  key->pkey_ = pkey.release();
  return key;
}

std::shared_ptr<const Key> Key::from_jwk(const nlohmann::json& jwk, std::string* error,
                                         bool allow_oct) {
  ErrorQueueMark mark;
  if (!jwk.is_object()) {
    bad(error, "JWK is not a JSON object");
    return nullptr;
  }
  const std::string* kty = string_member(jwk, "kty");
  if (!kty) {
    bad(error, "JWK \"kty\" missing or not a string");
    return nullptr;
  }
  std::optional<JwtAlg> alg;
  if (!check_common_members(jwk, alg, error)) return nullptr;

  std::shared_ptr<Key> key(new Key());
  if (const std::string* kid = string_member(jwk, "kid")) key->kid_ = *kid;
  key->alg_ = alg;
  if (*kty == "oct") {
    // Symmetric keys are opt-in: a JWKS is public by nature, and a published
    // HMAC secret lets anyone mint tokens.
    if (!allow_oct) {
      bad(error, "JWK kty \"oct\" (shared secret) is not allowed here");
      return nullptr;
    }
    auto k = b64_member(jwk, "k", error);
    if (!k) return nullptr;
    if (k->size() < min_hmac_key_bytes(alg.value_or(JwtAlg::kHS256)) || (alg && !is_hmac(*alg))) {
      bad(error, "oct key shorter than its HMAC hash output or alg not HS* (RFC 7518 3.2)");
      return nullptr;
    }
    key->type_ = KeyType::kHmac;
    key->secret_ = std::move(*k);
    return key;
  }
  PkeyPtr pkey;
  if (*kty == "RSA") {
    pkey = rsa_from_jwk(jwk, error);
  } else if (*kty == "EC") {
    pkey = ec_from_jwk(jwk, error);
  } else if (*kty == "OKP") {
    pkey = okp_from_jwk(jwk, error);
  } else {
    bad(error, "unsupported JWK kty \"" + *kty + "\"");
    return nullptr;
  }
  std::optional<KeyType> type = pkey ? classify(pkey.get(), error) : std::nullopt;
  if (!type) return nullptr;
  // RFC 8725 3.1: the key decides the algorithm. An "alg" the key type cannot
  // carry (ES256 on an RSA key) is a broken JWK, not a hint to ignore.
  if (alg && !type_fits(*type, *alg)) {
    bad(error, "JWK \"alg\" " + std::string(alg_name(*alg)) + " does not match its key type");
    return nullptr;
  }
  key->type_ = *type;
  key->pkey_ = pkey.release();
  return key;
}

bool Key::accepts(JwtAlg alg) const {
  if (alg_ && *alg_ != alg) return false;
  if (!type_fits(type_, alg)) return false;
  return type_ != KeyType::kHmac || secret_.size() >= min_hmac_key_bytes(alg);
}

bool Key::verify(JwtAlg alg, std::string_view signing_input, std::string_view signature) const {
  if (!accepts(alg)) return false;
  ErrorQueueMark mark;
  if (type_ == KeyType::kHmac) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(digest_for(alg), secret_.data(), static_cast<int>(secret_.size()),
              bytes(signing_input), signing_input.size(), mac, &mac_len)) {
      return false;
    }
    // Constant time, so that timing does not reveal how many leading bytes of
    // a forged MAC were right.
    return signature.size() == mac_len && CRYPTO_memcmp(mac, signature.data(), mac_len) == 0;
  }
  auto* pkey = static_cast<EVP_PKEY*>(pkey_);
  std::string der;
  if (type_ == KeyType::kRsa) {
    // RFC 8017 8.1.2 / 8.2.2 step 1: the signature is exactly k bytes.
    // OpenSSL's PSS path also takes one with its leading zero bytes dropped,
    // which would give a signature two encodings.
    if (signature.size() != static_cast<std::size_t>(EVP_PKEY_get_size(pkey))) return false;
  } else if (type_ == KeyType::kEcP256 || type_ == KeyType::kEcP384) {
    der = ecdsa_der(signature, ec_field_bytes(type_));
    if (der.empty()) return false;
    signature = der;
  } else if (signature.size() != 64) {  // Ed25519, RFC 8032 5.1.7
    return false;
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, digest_for(alg), nullptr, pkey) != 1) {
    return false;
  }
  // RFC 7518 3.5: MGF1 with the same hash, salt as long as the hash output.
  // OpenSSL then also refuses signatures made with any other salt length.
  if (is_pss(alg) && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
                      EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, digest_for(alg)) != 1)) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(signing_input),
                          signing_input.size()) == 1;
}

const Key* KeySet::find(std::string_view kid) const {
  if (kid.empty()) return keys.size() == 1 ? keys.front().get() : nullptr;
  for (const auto& key : keys) {
    if (key && key->kid() == kid) return key.get();
  }
  // A lone key configured without a kid (an HMAC secret, one PEM file)
  // verifies whatever kid the token names: the kid only picks among keys.
  if (keys.size() == 1 && keys.front() && keys.front()->kid().empty()) return keys.front().get();
  return nullptr;
}

std::optional<KeySet> parse_jwks(std::string_view text, std::string* error,
                                 std::vector<std::string>* skipped) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  const json* keys = doc.is_object() ? member(doc, "keys") : nullptr;
  if (!keys || !keys->is_array()) {
    bad(error, "not a JWK Set: a JSON object with a \"keys\" array expected (RFC 7517 5)");
    return std::nullopt;
  }
  KeySet set;
  // RFC 7517 5: keys we do not understand are ignored, not fatal, so that an
  // identity provider adding an encryption or Ed448 key does not lock us out.
  for (std::size_t i = 0; i < keys->size(); ++i) {
    const json& jwk = (*keys)[i];
    std::string why;
    if (auto key = Key::from_jwk(jwk, &why)) {
      set.keys.push_back(std::move(key));
    } else if (skipped) {
      const std::string* kid = jwk.is_object() ? string_member(jwk, "kid") : nullptr;
      skipped->push_back("key " + std::to_string(i) + (kid ? " (kid \"" + *kid + "\")" : "") +
                         ": " + why);
    }
  }
  return set;
}

std::optional<std::string> base64url_decode(std::string_view in) {
  // A lone trailing character carries 6 bits, less than a byte: never valid.
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = kBase64Url.value[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = ((acc << 6) | static_cast<uint32_t>(v)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // RFC 4648 3.5: the unused low bits of the last character must be zero, so
  // that every byte string has exactly one encoding and a token cannot be
  // altered without changing what is signed.
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = ((acc << 8) | c) & 0xffff;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64UrlAlphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kBase64UrlAlphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

std::string_view jwt_error_name(JwtError e) {
  switch (e) {
    case JwtError::kNone:
      return "none";
    case JwtError::kTooLarge:
      return "too_large";
    case JwtError::kMalformed:
      return "malformed";
    case JwtError::kBadAlgorithm:
      return "bad_algorithm";
    case JwtError::kCritical:
      return "critical";
    case JwtError::kUnknownKey:
      return "unknown_key";
    case JwtError::kKeyMismatch:
      return "key_mismatch";
    case JwtError::kBadSignature:
      return "bad_signature";
    case JwtError::kExpired:
      return "expired";
    case JwtError::kNotYetValid:
      return "not_yet_valid";
    case JwtError::kIssuedInFuture:
      return "issued_in_future";
    case JwtError::kBadClaimType:
      return "bad_claim_type";
    case JwtError::kBadIssuer:
      return "bad_issuer";
    case JwtError::kBadAudience:
      return "bad_audience";
  }
  return "unknown";
}

std::optional<DecodedJwt> decode_jwt(std::string_view token, const std::vector<JwtAlg>& allowed,
                                     JwtError& error) {
  auto fail = [&](JwtError e) -> std::optional<DecodedJwt> {
    error = e;
    return std::nullopt;
  };
  error = JwtError::kNone;
  if (token.size() > kMaxTokenBytes) return fail(JwtError::kTooLarge);
  // RFC 7515 7.1: exactly three parts. Five would be a JWE (RFC 7516 7.1),
  // which we do not decrypt; anything after the signature is garbage.
  std::size_t dot1 = token.find('.');
  std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return fail(JwtError::kMalformed);
  }
  auto header = base64url_decode(token.substr(0, dot1));
  auto payload = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto signature = base64url_decode(token.substr(dot2 + 1));
  // An empty signature is an Unsecured JWS (RFC 7515 A.5), never accepted.
  if (!header || !payload || !signature || signature->empty()) return fail(JwtError::kMalformed);

  DecodedJwt out;
  // RFC 7515 4 / RFC 7519 7.2 steps 3-4 and 10: both must be JSON objects.
  if (!parse_object(*header, out.header) || !parse_object(*payload, out.claims)) {
    return fail(JwtError::kMalformed);
  }
  if (const json* kid = member(out.header, "kid")) {
    if (!kid->is_string()) return fail(JwtError::kMalformed);
    out.kid = kid->get_ref<const std::string&>();
  }
  // RFC 8725 3.1: the verifier's allow-list decides, the token only names
  // one of its entries. "none" is not in our vocabulary at all.
  const std::string* alg_text = string_member(out.header, "alg");
  std::optional<JwtAlg> alg = alg_text ? parse_alg(*alg_text) : std::nullopt;
  if (!alg || std::find(allowed.begin(), allowed.end(), *alg) == allowed.end()) {
    return fail(JwtError::kBadAlgorithm);
  }
  out.alg = *alg;
  // RFC 7515 4.1.11: a recipient MUST reject a token whose "crit" lists an
  // extension it does not understand; we understand none. jku, x5u, jwk and
  // x5c (4.1.2-4.1.6) are never read: keys come from our KeySet only.
  if (member(out.header, "crit")) return fail(JwtError::kCritical);
  out.signing_input = token.substr(0, dot2);
  out.signature = std::move(*signature);
  return out;
}

JwtError check_claims(const nlohmann::json& claims, const ClaimsPolicy& policy, int64_t now) {
  if (!claims.is_object()) return JwtError::kMalformed;
  const json* exp = member(claims, "exp");
  const json* nbf = member(claims, "nbf");
  const json* iat = member(claims, "iat");
  const json* iss = member(claims, "iss");
  const json* sub = member(claims, "sub");
  const json* aud = member(claims, "aud");
  // RFC 7519 4.1: NumericDate for exp/nbf/iat, StringOrURI for iss/sub, a
  // string or an array of strings for aud. A wrong type is refused rather than
  // skipped: "exp": "0" must not mean "no expiry".
  for (const json* date : {exp, nbf, iat}) {
    if (date && !is_numeric_date(date)) return JwtError::kBadClaimType;
  }
  if ((iss && !iss->is_string()) || (sub && !sub->is_string()) || (aud && !valid_audience(aud))) {
    return JwtError::kBadClaimType;
  }
  if (!exp && policy.require_exp) return JwtError::kBadClaimType;

  const int64_t skew = std::max<int64_t>(policy.skew_seconds, 0);
  // RFC 7519 4.1.4: not accepted "on or after" exp, so exp + skew <= now
  // fails. 4.1.5: not accepted before nbf. iat has no such rule in the RFC;
  // a token issued in the future is a clock or forgery problem either way.
  if (exp && compare_date(*exp, saturating_add(now, -skew)) <= 0) return JwtError::kExpired;
  if (nbf && compare_date(*nbf, saturating_add(now, skew)) > 0) return JwtError::kNotYetValid;
  if (iat && compare_date(*iat, saturating_add(now, skew)) > 0) return JwtError::kIssuedInFuture;

  // RFC 7519 4.1.1, 4.1.3: case-sensitive string comparison.
  if (!policy.issuer.empty() && (!iss || iss->get_ref<const std::string&>() != policy.issuer)) {
    return JwtError::kBadIssuer;
  }
  if (!policy.audience.empty() && (!aud || !audience_contains(*aud, policy.audience))) {
    return JwtError::kBadAudience;
  }
  return JwtError::kNone;
}

JwtError verify_jwt(std::string_view token, const std::vector<JwtAlg>& allowed, const KeySet& keys,
                    const ClaimsPolicy& policy, int64_t now, DecodedJwt& out) {
  JwtError error = JwtError::kNone;
  std::optional<DecodedJwt> decoded = decode_jwt(token, allowed, error);
  if (!decoded) return error;
  const Key* key = keys.find(decoded->kid);
  if (!key) return JwtError::kUnknownKey;
  if (!key->accepts(decoded->alg)) {
    // RFC 7517 4.5 lets keys of different types share a kid; take the one
    // that fits this alg, if any.
    key = nullptr;
    for (const auto& k : keys.keys) {
      if (k && !decoded->kid.empty() && k->kid() == decoded->kid && k->accepts(decoded->alg)) {
        key = k.get();
        break;
      }
    }
    if (!key) return JwtError::kKeyMismatch;
  }
  if (!key->verify(decoded->alg, decoded->signing_input, decoded->signature)) {
    return JwtError::kBadSignature;
  }
  if (JwtError e = check_claims(decoded->claims, policy, now); e != JwtError::kNone) return e;
  out = std::move(*decoded);
  return JwtError::kNone;
}

}  // namespace gatehouse::auth
