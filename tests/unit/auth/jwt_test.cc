#include "auth/jwt.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::auth {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------
// Test-only OpenSSL helpers: key generation, export to PEM/JWK, a signer.

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey rsa_keygen(std::size_t bits) { return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits)); }
Pkey ec_keygen(const char* curve) { return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve)); }
Pkey ed25519_keygen() { return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")); }

// Generated once: RSA key generation is slow, under ASan even more so.
EVP_PKEY* rsa_key() {
  static Pkey key = rsa_keygen(2048);
  return key.get();
}
EVP_PKEY* p256_key() {
  static Pkey key = ec_keygen("P-256");
  return key.get();
}
EVP_PKEY* p384_key() {
  static Pkey key = ec_keygen("P-384");
  return key.get();
}
EVP_PKEY* ed25519_key() {
  static Pkey key = ed25519_keygen();
  return key.get();
}

const std::string kSecret64(64, 'k');  // long enough for HS512 (RFC 7518 3.2)

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string public_pem(EVP_PKEY* pkey) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, pkey);
  std::string pem = bio_text(bio);
  BIO_free(bio);
  return pem;
}

std::string private_pem(EVP_PKEY* pkey) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  std::string pem = bio_text(bio);
  BIO_free(bio);
  return pem;
}

// A self-signed certificate carrying `pkey`.
std::string certificate_pem(EVP_PKEY* pkey) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, pkey);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("jwt-test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  const EVP_MD* md = EVP_PKEY_is_a(pkey, "ED25519") ? nullptr : EVP_sha256();
  X509_sign(cert, pkey, md);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  std::string pem = bio_text(bio);
  BIO_free(bio);
  X509_free(cert);
  return pem;
}

std::string bn_param(EVP_PKEY* pkey, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(pkey, name, &bn);
  std::string out(static_cast<std::size_t>(pad > 0 ? pad : BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

json rsa_jwk(EVP_PKEY* pkey, std::string kid = "rsa") {
  return {{"kty", "RSA"},
          {"kid", kid},
          {"use", "sig"},
          {"n", base64url_encode(bn_param(pkey, OSSL_PKEY_PARAM_RSA_N))},
          {"e", base64url_encode(bn_param(pkey, OSSL_PKEY_PARAM_RSA_E))}};
}

json ec_jwk(EVP_PKEY* pkey, std::string kid = "ec") {
  const bool p384 = EVP_PKEY_get_bits(pkey) == 384;
  const int field = p384 ? 48 : 32;
  return {{"kty", "EC"},
          {"kid", kid},
          {"crv", p384 ? "P-384" : "P-256"},
          {"x", base64url_encode(bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, field))},
          {"y", base64url_encode(bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, field))}};
}

json okp_jwk(EVP_PKEY* pkey, std::string kid = "ed") {
  std::string raw(32, '\0');
  std::size_t len = raw.size();
  EVP_PKEY_get_raw_public_key(pkey, reinterpret_cast<unsigned char*>(raw.data()), &len);
  return {{"kty", "OKP"}, {"kid", kid}, {"crv", "Ed25519"}, {"x", base64url_encode(raw)}};
}

const EVP_MD* md_for(JwtAlg alg) {
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

bool is_pss_alg(JwtAlg alg) { return alg >= JwtAlg::kPS256 && alg <= JwtAlg::kPS512; }
bool is_es_alg(JwtAlg alg) { return alg == JwtAlg::kES256 || alg == JwtAlg::kES384; }

// Signs like a token issuer would. ES* signatures come back in JWS r || s form
// unless `der` is set.
struct SignOptions {
  int pss_salt = RSA_PSS_SALTLEN_DIGEST;
  bool der = false;
};

std::string sign_raw(JwtAlg alg, EVP_PKEY* pkey, std::string_view secret, std::string_view input,
                     SignOptions opt = {}) {
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (is_hmac(alg)) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(md_for(alg), secret.data(), static_cast<int>(secret.size()), data, input.size(), mac,
         &len);
    return std::string(reinterpret_cast<char*>(mac), len);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EVP_DigestSignInit(ctx, &pctx, md_for(alg), nullptr, pkey);
  if (is_pss_alg(alg)) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, opt.pss_salt);
    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md_for(alg));
  }
  std::size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, data, input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, data, input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (!is_es_alg(alg) || opt.der) return sig;
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  const int field = alg == JwtAlg::kES384 ? 48 : 32;
  std::string rs(static_cast<std::size_t>(2 * field), '\0');
  auto* out = reinterpret_cast<unsigned char*>(rs.data());
  BN_bn2binpad(ECDSA_SIG_get0_r(es), out, field);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), out + field, field);
  ECDSA_SIG_free(es);
  return rs;
}

// header.payload from JSON texts, so that tests can write what a serializer
// never would (duplicate names, non-objects).
std::string signing_input(std::string_view header_text, std::string_view payload_text) {
  return base64url_encode(header_text) + "." + base64url_encode(payload_text);
}

struct Signer {
  JwtAlg alg;
  EVP_PKEY* pkey = nullptr;
  std::string secret;

  std::string raw(std::string_view header_text, std::string_view payload_text,
                  SignOptions opt = {}) const {
    std::string input = signing_input(header_text, payload_text);
    return input + "." + base64url_encode(sign_raw(alg, pkey, secret, input, opt));
  }
  // `header` gets "alg" unless it already has one.
  // A null `claims` (from a `{}` argument) means an empty object.
  std::string token(json header, json claims, SignOptions opt = {}) const {
    if (!header.contains("alg")) header["alg"] = std::string(alg_name(alg));
    if (claims.is_null()) claims = json::object();
    return raw(header.dump(), claims.dump(), opt);
  }
  std::string token(const json& claims = json::object()) const {
    return token(json::object(), claims);
  }
};

Signer hs(JwtAlg alg, std::string secret = kSecret64) { return Signer{alg, nullptr, secret}; }
Signer rs(JwtAlg alg) { return Signer{alg, rsa_key(), {}}; }
Signer es256() { return Signer{JwtAlg::kES256, p256_key(), {}}; }

const std::vector<JwtAlg> kAllAlgs = {
    JwtAlg::kHS256, JwtAlg::kHS384, JwtAlg::kHS512, JwtAlg::kRS256, JwtAlg::kRS384, JwtAlg::kRS512,
    JwtAlg::kPS256, JwtAlg::kPS384, JwtAlg::kPS512, JwtAlg::kES256, JwtAlg::kES384, JwtAlg::kEdDSA};

std::shared_ptr<const Key> jwk_key(const json& jwk, bool allow_oct = false) {
  std::string error;
  auto key = Key::from_jwk(jwk, &error, allow_oct);
  EXPECT_TRUE(key) << error;
  return key;
}

std::shared_ptr<const Key> pem_key(std::string_view pem, std::string kid = {}) {
  std::string error;
  auto key = Key::from_pem(pem, std::move(kid), &error);
  EXPECT_TRUE(key) << error;
  return key;
}

std::string jwk_error(const json& jwk, bool allow_oct = false) {
  std::string error;
  auto key = Key::from_jwk(jwk, &error, allow_oct);
  EXPECT_FALSE(key) << "accepted " << jwk.dump();
  EXPECT_FALSE(error.empty());
  return error;
}

std::string pem_error(std::string_view pem) {
  std::string error;
  auto key = Key::from_pem(pem, "k", &error);
  EXPECT_FALSE(key);
  EXPECT_FALSE(error.empty());
  return error;
}

KeySet set_of(std::shared_ptr<const Key> key) { return KeySet{{std::move(key)}}; }

constexpr int64_t kNow = 1'700'000'000;

JwtError verify(std::string_view token, const KeySet& keys,
                const std::vector<JwtAlg>& allowed = kAllAlgs, const ClaimsPolicy& policy = {},
                int64_t now = kNow) {
  DecodedJwt out;
  return verify_jwt(token, allowed, keys, policy, now, out);
}

JwtError decode_error(std::string_view token, const std::vector<JwtAlg>& allowed = kAllAlgs) {
  JwtError error = JwtError::kNone;
  auto decoded = decode_jwt(token, allowed, error);
  EXPECT_EQ(decoded.has_value(), error == JwtError::kNone);
  return error;
}

// Re-encodes the signature part of `token` after `edit` changed its bytes.
template <typename F>
std::string with_signature(const std::string& token, F&& edit) {
  std::size_t dot = token.rfind('.');
  std::string sig = *base64url_decode(token.substr(dot + 1));
  edit(sig);
  return token.substr(0, dot + 1) + base64url_encode(sig);
}

// ---------------------------------------------------------------------------
// base64url

TEST(Base64UrlTest, EncodesRfc4648Vectors) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url_encode("\xfb\xff\xbf"), "-_-_");  // the URL-safe alphabet
}

TEST(Base64UrlTest, DecodesRfc4648Vectors) {
  EXPECT_EQ(base64url_decode(""), "");
  EXPECT_EQ(base64url_decode("Zg"), "f");
  EXPECT_EQ(base64url_decode("Zm8"), "fo");
  EXPECT_EQ(base64url_decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(base64url_decode("-_-_"), "\xfb\xff\xbf");
}

TEST(Base64UrlTest, RoundTripsEveryLengthAndByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t len = 0; len <= all.size(); ++len) {
    std::string in = all.substr(all.size() - len);
    std::string enc = base64url_encode(in);
    EXPECT_EQ(enc.find_first_of("=+/"), std::string::npos);
    EXPECT_EQ(base64url_decode(enc), in) << len;
  }
}

TEST(Base64UrlTest, RejectsPadding) {
  EXPECT_FALSE(base64url_decode("Zg=="));
  EXPECT_FALSE(base64url_decode("Zg="));
  EXPECT_FALSE(base64url_decode("Zm8="));
  EXPECT_FALSE(base64url_decode("===="));
}

TEST(Base64UrlTest, RejectsStandardAlphabet) {
  EXPECT_FALSE(base64url_decode("+_-_"));
  EXPECT_FALSE(base64url_decode("-/-_"));
}

TEST(Base64UrlTest, RejectsWhitespaceAndControlBytes) {
  EXPECT_FALSE(base64url_decode("Zm9v "));
  EXPECT_FALSE(base64url_decode(" Zm9v"));
  EXPECT_FALSE(base64url_decode("Zm\n9v"));
  EXPECT_FALSE(base64url_decode("Zm9v\r\n"));
  EXPECT_FALSE(base64url_decode("Zm9v\t"));
  EXPECT_FALSE(base64url_decode(std::string_view("Zm\0v", 4)));
  EXPECT_FALSE(base64url_decode("Zm\xc3\xa9v"));
}

TEST(Base64UrlTest, RejectsNonCanonicalTrailingBits) {
  // "f" is Zg: 'g' leaves four zero bits; 'h' sets one of them.
  EXPECT_FALSE(base64url_decode("Zh"));
  EXPECT_FALSE(base64url_decode("Zv"));
  // "fo" is Zm8: '8' leaves two zero bits; '9' sets one.
  EXPECT_FALSE(base64url_decode("Zm9"));
  EXPECT_FALSE(base64url_decode("Zm_"));
}

TEST(Base64UrlTest, RejectsImpossibleLength) {
  EXPECT_FALSE(base64url_decode("Z"));
  EXPECT_FALSE(base64url_decode("Zm9vY"));
}

// ---------------------------------------------------------------------------
// Algorithms

TEST(JwtAlgTest, ParsesEveryNameBack) {
  for (JwtAlg alg : kAllAlgs) EXPECT_EQ(parse_alg(alg_name(alg)), alg) << alg_name(alg);
}

TEST(JwtAlgTest, RefusesNoneAndNearMisses) {
  for (const char* name :
       {"none", "None", "NONE", "", "hs256", "HS256 ", "RS1", "ES512", "Ed25519"}) {
    EXPECT_FALSE(parse_alg(name)) << name;
  }
  EXPECT_FALSE(parse_alg(std::string_view("HS256\0", 6)));
}

TEST(JwtAlgTest, ClassifiesHmac) {
  EXPECT_TRUE(is_hmac(JwtAlg::kHS256));
  EXPECT_TRUE(is_hmac(JwtAlg::kHS512));
  EXPECT_FALSE(is_hmac(JwtAlg::kRS256));
  EXPECT_FALSE(is_hmac(JwtAlg::kEdDSA));
}

TEST(JwtErrorTest, NamesAreDistinct) {
  std::vector<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(JwtError::kBadAudience); ++i) {
    std::string_view name = jwt_error_name(static_cast<JwtError>(i));
    EXPECT_FALSE(name.empty());
    EXPECT_EQ(std::count(names.begin(), names.end(), name), 0) << name;
    names.push_back(name);
  }
  EXPECT_EQ(jwt_error_name(JwtError::kExpired), "expired");
  EXPECT_EQ(jwt_error_name(JwtError::kBadSignature), "bad_signature");
}

// ---------------------------------------------------------------------------
// Keys from JWK

TEST(KeyJwkTest, ParsesRsa) {
  auto key = jwk_key(rsa_jwk(rsa_key(), "r1"));
  ASSERT_TRUE(key);
  EXPECT_EQ(key->type(), KeyType::kRsa);
  EXPECT_EQ(key->kid(), "r1");
  EXPECT_FALSE(key->alg());
}

TEST(KeyJwkTest, ParsesEcP256AndP384) {
  auto p256 = jwk_key(ec_jwk(p256_key()));
  auto p384 = jwk_key(ec_jwk(p384_key()));
  ASSERT_TRUE(p256 && p384);
  EXPECT_EQ(p256->type(), KeyType::kEcP256);
  EXPECT_EQ(p384->type(), KeyType::kEcP384);
}

TEST(KeyJwkTest, ParsesOkpEd25519) {
  auto key = jwk_key(okp_jwk(ed25519_key()));
  ASSERT_TRUE(key);
  EXPECT_EQ(key->type(), KeyType::kEd25519);
}

TEST(KeyJwkTest, ParsesOctOnlyWhenAllowed) {
  json jwk = {{"kty", "oct"}, {"kid", "h"}, {"k", base64url_encode(kSecret64)}};
  EXPECT_NE(jwk_error(jwk).find("oct"), std::string::npos);
  auto key = jwk_key(jwk, /*allow_oct=*/true);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->type(), KeyType::kHmac);
  EXPECT_TRUE(key->accepts(JwtAlg::kHS512));
}

TEST(KeyJwkTest, RefusesShortOctKey) {
  jwk_error({{"kty", "oct"}, {"k", base64url_encode(std::string(31, 'k'))}}, true);
  // 32 bytes do for HS256 but not when the JWK pins HS384.
  jwk_key({{"kty", "oct"}, {"k", base64url_encode(std::string(32, 'k'))}}, true);
  jwk_error({{"kty", "oct"}, {"alg", "HS384"}, {"k", base64url_encode(std::string(32, 'k'))}},
            true);
}

TEST(KeyJwkTest, RefusesSmallRsa) {
  Pkey small = rsa_keygen(1024);
  EXPECT_NE(jwk_error(rsa_jwk(small.get())).find("1024"), std::string::npos);
  EXPECT_NE(pem_error(public_pem(small.get())).find("1024"), std::string::npos);
}

TEST(KeyJwkTest, RefusesRsaExponentOne) {
  json jwk = rsa_jwk(rsa_key());
  jwk["e"] = base64url_encode("\x01");
  jwk_error(jwk);
  jwk["e"] = base64url_encode(std::string_view("\x01\x00\x00", 3));  // even
  jwk_error(jwk);
}

TEST(KeyJwkTest, RefusesUseOtherThanSig) {
  json jwk = rsa_jwk(rsa_key());
  jwk["use"] = "enc";
  jwk_error(jwk);
  jwk["use"] = 1;
  jwk_error(jwk);
  jwk.erase("use");
  jwk_key(jwk);  // "use" is optional
}

TEST(KeyJwkTest, RefusesKeyOpsWithoutVerify) {
  json jwk = ec_jwk(p256_key());
  jwk["key_ops"] = {"encrypt"};
  jwk_error(jwk);
  jwk["key_ops"] = "verify";
  jwk_error(jwk);
  jwk["key_ops"] = {"sign", "verify"};
  jwk_key(jwk);
}

TEST(KeyJwkTest, RefusesAlgMismatchingKeyType) {
  json rsa = rsa_jwk(rsa_key());
  for (const char* alg : {"ES256", "HS256", "EdDSA", "none", "RSA-OAEP"}) {
    rsa["alg"] = alg;
    jwk_error(rsa);
  }
  json ec = ec_jwk(p256_key());
  ec["alg"] = "ES384";
  jwk_error(ec);
  json ec384 = ec_jwk(p384_key());
  ec384["alg"] = "ES256";
  jwk_error(ec384);
  json ed = okp_jwk(ed25519_key());
  ed["alg"] = "ES256";
  jwk_error(ed);
  json oct = {{"kty", "oct"}, {"alg", "RS256"}, {"k", base64url_encode(kSecret64)}};
  jwk_error(oct, true);
}

TEST(KeyJwkTest, AlgPinsTheKey) {
  json jwk = rsa_jwk(rsa_key());
  jwk["alg"] = "PS256";
  auto key = jwk_key(jwk);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->alg(), JwtAlg::kPS256);
  EXPECT_TRUE(key->accepts(JwtAlg::kPS256));
  EXPECT_FALSE(key->accepts(JwtAlg::kRS256));
  EXPECT_FALSE(key->accepts(JwtAlg::kPS384));

  json ed = okp_jwk(ed25519_key());
  ed["alg"] = "EdDSA";
  EXPECT_TRUE(jwk_key(ed)->accepts(JwtAlg::kEdDSA));
}

TEST(KeyJwkTest, RefusesUnsupportedCurves) {
  Pkey p521 = ec_keygen("P-521");
  json jwk = ec_jwk(p256_key());
  jwk["crv"] = "P-521";
  jwk_error(jwk);
  jwk["crv"] = "secp256k1";
  jwk_error(jwk);
  json okp = okp_jwk(ed25519_key());
  for (const char* crv : {"X25519", "Ed448", "ed25519"}) {
    okp["crv"] = crv;
    jwk_error(okp);
  }
  EXPECT_NE(pem_error(public_pem(p521.get())).find("curve"), std::string::npos);
}

TEST(KeyJwkTest, RefusesBadMembers) {
  jwk_error(json::array());
  jwk_error({{"n", "AQAB"}});                    // no kty
  jwk_error({{"kty", "RSA"}});                   // no n, e
  jwk_error({{"kty", "Unknown"}, {"x", "AA"}});  // unknown kty
  json rsa = rsa_jwk(rsa_key());
  rsa["n"] = rsa["n"].get<std::string>() + "=";  // padded
  jwk_error(rsa);
  rsa = rsa_jwk(rsa_key());
  rsa["kid"] = 7;
  jwk_error(rsa);
  json ec = ec_jwk(p256_key());
  ec["x"] = base64url_encode(std::string(31, '\x01'));  // short coordinate
  jwk_error(ec);
  ec = ec_jwk(p256_key());
  ec.erase("y");
  jwk_error(ec);
  json okp = okp_jwk(ed25519_key());
  okp["x"] = base64url_encode(std::string(31, '\x01'));
  jwk_error(okp);
}

TEST(KeyJwkTest, RefusesPointOffTheCurve) {
  json ec = ec_jwk(p256_key());
  std::string y = *base64url_decode(ec["y"].get<std::string>());
  y.back() = static_cast<char>(y.back() ^ 1);
  ec["y"] = base64url_encode(y);
  jwk_error(ec);
}

TEST(KeyJwkTest, RefusesPrivateKeyMembers) {
  json ed = okp_jwk(ed25519_key());
  ed["d"] = base64url_encode(std::string(32, '\x05'));
  jwk_error(ed);
}

// ---------------------------------------------------------------------------
// Keys from PEM

TEST(KeyPemTest, ParsesPublicKeys) {
  auto rsa = pem_key(public_pem(rsa_key()), "r");
  auto p256 = pem_key(public_pem(p256_key()));
  auto p384 = pem_key(public_pem(p384_key()));
  auto ed = pem_key(public_pem(ed25519_key()));
  ASSERT_TRUE(rsa && p256 && p384 && ed);
  EXPECT_EQ(rsa->type(), KeyType::kRsa);
  EXPECT_EQ(rsa->kid(), "r");
  EXPECT_EQ(p256->type(), KeyType::kEcP256);
  EXPECT_EQ(p384->type(), KeyType::kEcP384);
  EXPECT_EQ(ed->type(), KeyType::kEd25519);
}

TEST(KeyPemTest, TakesTheCertificatesKey) {
  auto rsa = pem_key(certificate_pem(rsa_key()));
  auto ec = pem_key(certificate_pem(p256_key()));
  ASSERT_TRUE(rsa && ec);
  EXPECT_EQ(rsa->type(), KeyType::kRsa);
  EXPECT_EQ(ec->type(), KeyType::kEcP256);
  Signer signer = rs(JwtAlg::kRS256);
  EXPECT_EQ(verify(signer.token(), set_of(rsa)), JwtError::kNone);
}

TEST(KeyPemTest, RefusesEcPointAtInfinity) {
  // SubjectPublicKeyInfo for P-256 with the point encoded as the single byte
  // 0x00 (SEC 1 2.3.3): d2i_PUBKEY takes it, the public key check does not.
  EXPECT_NE(pem_error("-----BEGIN PUBLIC KEY-----\nMBkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDAgAA\n"
                      "-----END PUBLIC KEY-----\n")
                .find("point"),
            std::string::npos);
}

TEST(KeyPemTest, RefusesPrivateKeys) {
  EXPECT_NE(pem_error(private_pem(p256_key())).find("private"), std::string::npos);
  pem_error(private_pem(ed25519_key()));
  pem_error("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n");
}

TEST(KeyPemTest, RefusesAnythingElse) {
  pem_error("");
  pem_error("not a pem");
  pem_error("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
  pem_error("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
  // PKCS#1 "RSA PUBLIC KEY" is not SubjectPublicKeyInfo.
  pem_error("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n");
}

// ---------------------------------------------------------------------------
// Key::accepts: which algorithms each key type may verify

TEST(KeyAcceptsTest, MatchesAlgorithmsToKeyTypes) {
  struct Case {
    std::shared_ptr<const Key> key;
    std::vector<JwtAlg> accepted;
  };
  const Case cases[] = {
      {Key::from_secret(kSecret64), {JwtAlg::kHS256, JwtAlg::kHS384, JwtAlg::kHS512}},
      {pem_key(public_pem(rsa_key())),
       {JwtAlg::kRS256, JwtAlg::kRS384, JwtAlg::kRS512, JwtAlg::kPS256, JwtAlg::kPS384,
        JwtAlg::kPS512}},
      {pem_key(public_pem(p256_key())), {JwtAlg::kES256}},
      {pem_key(public_pem(p384_key())), {JwtAlg::kES384}},
      {pem_key(public_pem(ed25519_key())), {JwtAlg::kEdDSA}},
  };
  for (const Case& c : cases) {
    for (JwtAlg alg : kAllAlgs) {
      bool want = std::find(c.accepted.begin(), c.accepted.end(), alg) != c.accepted.end();
      EXPECT_EQ(c.key->accepts(alg), want)
          << "key type " << static_cast<int>(c.key->type()) << " alg " << alg_name(alg);
    }
  }
}

TEST(KeyAcceptsTest, HmacSecretMustBeAsLongAsTheHash) {
  auto key32 = Key::from_secret(std::string(32, 's'));
  EXPECT_TRUE(key32->accepts(JwtAlg::kHS256));
  EXPECT_FALSE(key32->accepts(JwtAlg::kHS384));
  EXPECT_FALSE(key32->accepts(JwtAlg::kHS512));
  auto short_key = Key::from_secret("secret");
  EXPECT_FALSE(short_key->accepts(JwtAlg::kHS256));
  EXPECT_FALSE(Key::from_secret("")->accepts(JwtAlg::kHS256));
}

TEST(KeyAcceptsTest, VerifyIsFalseForAnAlgTheKeyDoesNotAccept) {
  auto key = pem_key(public_pem(rsa_key()));
  std::string input = "a.b";
  std::string sig = sign_raw(JwtAlg::kRS256, rsa_key(), {}, input);
  EXPECT_TRUE(key->verify(JwtAlg::kRS256, input, sig));
  EXPECT_FALSE(key->verify(JwtAlg::kES256, input, sig));
  EXPECT_FALSE(key->verify(JwtAlg::kHS256, input, sig));
}

// ---------------------------------------------------------------------------
// KeySet

TEST(KeySetTest, FindsByKid) {
  KeySet set{{Key::from_secret(kSecret64, "a"), Key::from_secret(kSecret64, "b")}};
  EXPECT_EQ(set.find("b"), set.keys[1].get());
  EXPECT_EQ(set.find("a"), set.keys[0].get());
  EXPECT_EQ(set.find("c"), nullptr);
  EXPECT_EQ(set.find(""), nullptr);  // ambiguous
}

TEST(KeySetTest, EmptyKidFindsTheOnlyKey) {
  KeySet one{{Key::from_secret(kSecret64, "a")}};
  EXPECT_EQ(one.find(""), one.keys[0].get());
  // A lone key without a kid verifies whatever kid the token names.
  KeySet no_kid{{Key::from_secret(kSecret64)}};
  EXPECT_EQ(no_kid.find("a"), no_kid.keys[0].get());
  KeySet two_no_kid{{Key::from_secret(kSecret64), Key::from_secret(kSecret64)}};
  EXPECT_EQ(two_no_kid.find("a"), nullptr);
  EXPECT_EQ(KeySet{}.find(""), nullptr);
}

TEST(KeySetTest, ParsesJwksAndSkipsUnusableKeys) {
  Pkey small = rsa_keygen(1024);
  json enc = ec_jwk(p256_key(), "enc");
  enc["use"] = "enc";
  json doc = {{"keys",
               {rsa_jwk(rsa_key(), "r"),
                ec_jwk(p384_key(), "e"),
                okp_jwk(ed25519_key(), "d"),
                rsa_jwk(small.get(), "small"),
                enc,
                {{"kty", "oct"}, {"kid", "h"}, {"k", base64url_encode(kSecret64)}},
                {{"kty", "OKP"}, {"crv", "X448"}, {"x", "AA"}},
                "not an object"}}};
  std::string error;
  std::vector<std::string> skipped;
  auto set = parse_jwks(doc.dump(), &error, &skipped);
  ASSERT_TRUE(set) << error;
  ASSERT_EQ(set->keys.size(), 3u);
  EXPECT_EQ(set->find("r")->type(), KeyType::kRsa);
  EXPECT_EQ(set->find("e")->type(), KeyType::kEcP384);
  EXPECT_EQ(set->find("d")->type(), KeyType::kEd25519);
  ASSERT_EQ(skipped.size(), 5u);
  EXPECT_NE(skipped[0].find("small"), std::string::npos);
  EXPECT_NE(skipped[1].find("\"enc\""), std::string::npos);
  EXPECT_NE(skipped[2].find("oct"), std::string::npos);
}

TEST(KeySetTest, RefusesDocumentsThatAreNotJwks) {
  for (const char* doc : {"", "{", "[]", "{}", "{\"keys\": {}}", "{\"keys\": \"x\"}", "null"}) {
    std::string error;
    EXPECT_FALSE(parse_jwks(doc, &error)) << doc;
    EXPECT_FALSE(error.empty());
  }
  EXPECT_TRUE(parse_jwks("{\"keys\": []}", nullptr));
}

// ---------------------------------------------------------------------------
// Every algorithm, end to end

class JwtRoundTripTest : public ::testing::TestWithParam<JwtAlg> {
 protected:
  Signer signer() const {
    JwtAlg alg = GetParam();
    if (is_hmac(alg)) return hs(alg);
    if (alg == JwtAlg::kES256) return es256();
    if (alg == JwtAlg::kES384) return Signer{alg, p384_key(), {}};
    if (alg == JwtAlg::kEdDSA) return Signer{alg, ed25519_key(), {}};
    return rs(alg);
  }
  // The verification key, from a JWK (and `kid` "k").
  std::shared_ptr<const Key> key() const {
    JwtAlg alg = GetParam();
    if (is_hmac(alg)) return Key::from_secret(kSecret64, "k");
    EVP_PKEY* pkey = signer().pkey;
    if (is_es_alg(alg)) return jwk_key(ec_jwk(pkey, "k"));
    if (alg == JwtAlg::kEdDSA) return jwk_key(okp_jwk(pkey, "k"));
    return jwk_key(rsa_jwk(pkey, "k"));
  }
};

TEST_P(JwtRoundTripTest, VerifiesAndReturnsTheClaims) {
  json claims = {{"sub", "alice"}, {"exp", kNow + 60}, {"scope", {"a", "b"}}};
  std::string token = signer().token({{"kid", "k"}, {"typ", "JWT"}}, claims);
  DecodedJwt out;
  ASSERT_EQ(verify_jwt(token, {GetParam()}, set_of(key()), {}, kNow, out), JwtError::kNone);
  EXPECT_EQ(out.alg, GetParam());
  EXPECT_EQ(out.kid, "k");
  EXPECT_EQ(out.claims, claims);
  EXPECT_EQ(out.header["typ"], "JWT");
  EXPECT_EQ(out.signing_input, token.substr(0, token.rfind('.')));
}

TEST_P(JwtRoundTripTest, VerifiesWithAPemKey) {
  if (is_hmac(GetParam())) GTEST_SKIP() << "no PEM for HMAC";
  EXPECT_EQ(verify(signer().token(), set_of(pem_key(public_pem(signer().pkey)))), JwtError::kNone);
}

TEST_P(JwtRoundTripTest, RefusesAlteredSignature) {
  std::string token = signer().token({{"kid", "k"}}, {{"sub", "alice"}});
  KeySet keys = set_of(key());
  EXPECT_EQ(verify(with_signature(token, [](std::string& s) { s.back() ^= 0x01; }), keys),
            JwtError::kBadSignature);
  EXPECT_EQ(verify(with_signature(token, [](std::string& s) { s.front() ^= 0x80; }), keys),
            JwtError::kBadSignature);
}

TEST_P(JwtRoundTripTest, RefusesTruncatedOrExtendedSignature) {
  std::string token = signer().token({{"kid", "k"}}, {{"sub", "alice"}});
  KeySet keys = set_of(key());
  EXPECT_EQ(verify(with_signature(token, [](std::string& s) { s.pop_back(); }), keys),
            JwtError::kBadSignature);
  EXPECT_EQ(verify(with_signature(token, [](std::string& s) { s.push_back('\0'); }), keys),
            JwtError::kBadSignature);
  EXPECT_EQ(verify(with_signature(token, [](std::string& s) { s.insert(0, 1, '\0'); }), keys),
            JwtError::kBadSignature);
}

TEST_P(JwtRoundTripTest, RefusesAlteredPayload) {
  std::string token = signer().token({{"kid", "k"}}, {{"sub", "alice"}});
  std::string forged = signer().token({{"kid", "k"}}, {{"sub", "mallory"}});
  std::size_t dot1 = token.find('.'), dot2 = token.rfind('.');
  std::size_t fdot1 = forged.find('.'), fdot2 = forged.rfind('.');
  std::string spliced =
      token.substr(0, dot1) + forged.substr(fdot1, fdot2 - fdot1) + token.substr(dot2);
  EXPECT_EQ(verify(spliced, set_of(key())), JwtError::kBadSignature);
}

INSTANTIATE_TEST_SUITE_P(Jwt, JwtRoundTripTest, ::testing::ValuesIn(kAllAlgs),
                         [](const auto& info) { return std::string(alg_name(info.param)); });

// ---------------------------------------------------------------------------
// Signature encodings

TEST(JwtSignatureTest, RefusesEs256SignatureOfWrongLength) {
  Signer signer = es256();
  std::string token = signer.token();
  KeySet keys = set_of(pem_key(public_pem(p256_key())));
  ASSERT_EQ(verify(token, keys), JwtError::kNone);
  // 63 and 65 bytes; and the 96-byte form of ES384.
  EXPECT_EQ(verify(with_signature(token, [](std::string& s) { s.pop_back(); }), keys),
            JwtError::kBadSignature);
  EXPECT_EQ(verify(with_signature(token, [](std::string& s) { s += '\x01'; }), keys),
            JwtError::kBadSignature);
  EXPECT_EQ(verify(with_signature(token, [](std::string& s) { s.resize(96, '\x01'); }), keys),
            JwtError::kBadSignature);
}

TEST(JwtSignatureTest, RefusesDerEncodedEcdsaSignature) {
  // RFC 7518 3.4: r || s, not the ASN.1 form OpenSSL produces.
  SignOptions der;
  der.der = true;
  std::string token = es256().token(json::object(), json::object(), der);
  EXPECT_EQ(verify(token, set_of(pem_key(public_pem(p256_key())))), JwtError::kBadSignature);
}

TEST(JwtSignatureTest, RefusesZeroEcdsaSignature) {
  std::string token = with_signature(es256().token(), [](std::string& s) { s.assign(64, '\0'); });
  EXPECT_EQ(verify(token, set_of(pem_key(public_pem(p256_key())))), JwtError::kBadSignature);
}

TEST(JwtSignatureTest, RefusesPssWithOtherSaltLength) {
  // RFC 7518 3.5: the salt is as long as the hash; OpenSSL's default is longer.
  SignOptions max_salt;
  max_salt.pss_salt = RSA_PSS_SALTLEN_MAX;
  Signer signer = rs(JwtAlg::kPS256);
  KeySet keys = set_of(pem_key(public_pem(rsa_key())));
  EXPECT_EQ(verify(signer.token(), keys), JwtError::kNone);
  EXPECT_EQ(verify(signer.token(json::object(), json::object(), max_salt), keys),
            JwtError::kBadSignature);
}

TEST(JwtSignatureTest, RefusesSignatureUnderAnotherAlgorithm) {
  // An RS256 signature relabelled RS512 (the header changes, so does the input).
  std::string token = rs(JwtAlg::kRS256).token();
  std::string sig = token.substr(token.rfind('.'));
  std::string relabelled = signing_input(R"({"alg":"RS512"})", "{}") + sig;
  EXPECT_EQ(verify(relabelled, set_of(pem_key(public_pem(rsa_key())))), JwtError::kBadSignature);
}

TEST(JwtSignatureTest, RefusesRsaSignatureWithItsLeadingZeroStripped) {
  // RFC 8017 8.2.2 / 8.1.2: exactly k bytes. OpenSSL's PSS path takes the
  // shorter form too, so one signature in 256 would have a second encoding.
  KeySet keys = set_of(pem_key(public_pem(rsa_key())));
  for (JwtAlg alg : {JwtAlg::kRS256, JwtAlg::kPS256}) {
    Signer signer = rs(alg);
    std::string token;
    auto first_byte = [&] { return (*base64url_decode(token.substr(token.rfind('.') + 1)))[0]; };
    for (int i = 0; i < 5000; ++i) {
      token = signer.token({{"n", i}});
      if (first_byte() == '\0') break;
    }
    ASSERT_EQ(first_byte(), '\0') << alg_name(alg);
    EXPECT_EQ(verify(token, keys), JwtError::kNone);
    EXPECT_EQ(verify(with_signature(token, [](std::string& s) { s.erase(0, 1); }), keys),
              JwtError::kBadSignature)
        << alg_name(alg);
  }
}

TEST(JwtSignatureTest, RefusesEd25519SignatureOfWrongLength) {
  Signer signer{JwtAlg::kEdDSA, ed25519_key(), {}};
  KeySet keys = set_of(pem_key(public_pem(ed25519_key())));
  EXPECT_EQ(verify(with_signature(signer.token(), [](std::string& s) { s.pop_back(); }), keys),
            JwtError::kBadSignature);
}

// ---------------------------------------------------------------------------
// Algorithm and key selection (RFC 8725 2.1, 3.1)

TEST(JwtVerifyTest, RefusesAlgNone) {
  KeySet keys = set_of(Key::from_secret(kSecret64));
  std::string input = signing_input(R"({"alg":"none"})", R"({"sub":"a"})");
  EXPECT_EQ(verify(input + ".", keys), JwtError::kMalformed);  // Unsecured JWS
  EXPECT_EQ(verify(input + ".c2ln", keys), JwtError::kBadAlgorithm);
  for (const char* alg : {"None", "NONE", "nOnE"}) {
    std::string header = std::string(R"({"alg":")") + alg + "\"}";
    EXPECT_EQ(verify(signing_input(header, "{}") + ".c2ln", keys), JwtError::kBadAlgorithm);
  }
}

TEST(JwtVerifyTest, RefusesAlgorithmNotAllowed) {
  std::string token = rs(JwtAlg::kRS256).token();
  KeySet keys = set_of(pem_key(public_pem(rsa_key())));
  EXPECT_EQ(verify(token, keys, {JwtAlg::kES256, JwtAlg::kPS256}), JwtError::kBadAlgorithm);
  EXPECT_EQ(verify(token, keys, {}), JwtError::kBadAlgorithm);
  EXPECT_EQ(verify(token, keys, {JwtAlg::kRS256}), JwtError::kNone);
}

TEST(JwtVerifyTest, RefusesMissingOrNonStringAlg) {
  KeySet keys = set_of(Key::from_secret(kSecret64));
  EXPECT_EQ(verify(hs(JwtAlg::kHS256).raw(R"({"typ":"JWT"})", "{}"), keys),
            JwtError::kBadAlgorithm);
  EXPECT_EQ(verify(hs(JwtAlg::kHS256).raw(R"({"alg":["HS256"]})", "{}"), keys),
            JwtError::kBadAlgorithm);
  EXPECT_EQ(verify(hs(JwtAlg::kHS256).raw(R"({"alg":null})", "{}"), keys), JwtError::kBadAlgorithm);
}

TEST(JwtVerifyTest, RefusesHmacSignedWithThePublicKeyPem) {
  // The classic key confusion: the attacker HMACs with the public key's PEM
  // bytes and hopes the verifier feeds the same bytes to HMAC.
  std::string pem = public_pem(rsa_key());
  std::string token = hs(JwtAlg::kHS256, pem).token({{"kid", "r"}}, {{"sub", "admin"}});
  KeySet pem_set = set_of(pem_key(pem, "r"));
  EXPECT_EQ(verify(token, pem_set), JwtError::kKeyMismatch);
  KeySet jwk_set = set_of(jwk_key(rsa_jwk(rsa_key(), "r")));
  EXPECT_EQ(verify(token, jwk_set), JwtError::kKeyMismatch);
  // Also when the operator allowed only what the attacker used.
  EXPECT_EQ(verify(token, pem_set, {JwtAlg::kHS256}), JwtError::kKeyMismatch);
}

TEST(JwtVerifyTest, RefusesAsymmetricTokenAgainstHmacKey) {
  std::string token = rs(JwtAlg::kRS256).token();
  EXPECT_EQ(verify(token, set_of(Key::from_secret(kSecret64))), JwtError::kKeyMismatch);
}

TEST(JwtVerifyTest, RefusesEcTokenAgainstOtherCurve) {
  std::string token = es256().token();
  EXPECT_EQ(verify(token, set_of(pem_key(public_pem(p384_key())))), JwtError::kKeyMismatch);
}

TEST(JwtVerifyTest, RefusesAlgOtherThanTheJwkPin) {
  json jwk = rsa_jwk(rsa_key(), "r");
  jwk["alg"] = "PS256";
  KeySet keys = set_of(jwk_key(jwk));
  EXPECT_EQ(verify(rs(JwtAlg::kRS256).token({{"kid", "r"}}, {}), keys), JwtError::kKeyMismatch);
  EXPECT_EQ(verify(rs(JwtAlg::kPS256).token({{"kid", "r"}}, {}), keys), JwtError::kNone);
}

TEST(JwtVerifyTest, PicksTheKeyOfTheRightTypeAmongSharedKids) {
  // RFC 7517 4.5: keys of different kty may share a kid.
  KeySet keys{{jwk_key(rsa_jwk(rsa_key(), "same")), jwk_key(ec_jwk(p256_key(), "same"))}};
  EXPECT_EQ(verify(es256().token({{"kid", "same"}}, {}), keys), JwtError::kNone);
  EXPECT_EQ(verify(rs(JwtAlg::kRS256).token({{"kid", "same"}}, {}), keys), JwtError::kNone);
  EXPECT_EQ(verify(Signer{JwtAlg::kEdDSA, ed25519_key(), {}}.token({{"kid", "same"}}, {}), keys),
            JwtError::kKeyMismatch);
}

TEST(JwtVerifyTest, RefusesUnknownKid) {
  KeySet keys = set_of(Key::from_secret(kSecret64, "a"));
  EXPECT_EQ(verify(hs(JwtAlg::kHS256).token({{"kid", "b"}}, {}), keys), JwtError::kUnknownKey);
  EXPECT_EQ(verify(hs(JwtAlg::kHS256).token({{"kid", "a"}}, {}), keys), JwtError::kNone);
}

TEST(JwtVerifyTest, KidlessTokenNeedsASingleKeySet) {
  std::string token = hs(JwtAlg::kHS256).token();
  EXPECT_EQ(verify(token, set_of(Key::from_secret(kSecret64, "a"))), JwtError::kNone);
  KeySet two{{Key::from_secret(kSecret64, "a"), Key::from_secret(kSecret64, "b")}};
  EXPECT_EQ(verify(token, two), JwtError::kUnknownKey);
}

TEST(JwtVerifyTest, RefusesNonStringKid) {
  KeySet keys = set_of(Key::from_secret(kSecret64));
  EXPECT_EQ(verify(hs(JwtAlg::kHS256).token({{"kid", 1}}, {}), keys), JwtError::kMalformed);
  EXPECT_EQ(verify(hs(JwtAlg::kHS256).token({{"kid", nullptr}}, {}), keys), JwtError::kMalformed);
}

TEST(JwtVerifyTest, RefusesCrit) {
  KeySet keys = set_of(Key::from_secret(kSecret64));
  EXPECT_EQ(verify(hs(JwtAlg::kHS256).token({{"crit", {"exp"}}, {"exp", 1}}, {}), keys),
            JwtError::kCritical);
  EXPECT_EQ(verify(hs(JwtAlg::kHS256).token({{"crit", json::array()}}, {}), keys),
            JwtError::kCritical);
  EXPECT_EQ(verify(hs(JwtAlg::kHS256).token({{"b64", false}, {"crit", {"b64"}}}, {}), keys),
            JwtError::kCritical);
}

TEST(JwtVerifyTest, IgnoresEmbeddedKeyHeaders) {
  // The attacker signs with their own key and ships it in the header (jwk),
  // points to it (jku, x5u) or to a chain (x5c). None of it is ever used.
  Pkey attacker = ec_keygen("P-256");
  Signer evil{JwtAlg::kES256, attacker.get(), {}};
  json header = {{"kid", "k"},
                 {"jwk", ec_jwk(attacker.get(), "k")},
                 {"jku", "https://attacker.example/jwks.json"},
                 {"x5u", "https://attacker.example/cert.pem"},
                 {"x5c", {"MIIB"}}};
  KeySet keys = set_of(jwk_key(ec_jwk(p256_key(), "k")));
  EXPECT_EQ(verify(evil.token(header, {{"sub", "admin"}}), keys), JwtError::kBadSignature);
  header.erase("kid");
  EXPECT_EQ(verify(evil.token(header, {{"sub", "admin"}}), keys), JwtError::kBadSignature);
  // The same headers on a token the set's key signed are harmless.
  header["kid"] = "k";
  EXPECT_EQ(verify(es256().token(header, {{"sub", "alice"}}), keys), JwtError::kNone);
}

// ---------------------------------------------------------------------------
// Structure

TEST(JwtDecodeTest, ExposesHeaderClaimsAndSigningInput) {
  std::string token = hs(JwtAlg::kHS384).token({{"kid", "x"}}, {{"sub", "a"}});
  JwtError error = JwtError::kMalformed;
  auto decoded = decode_jwt(token, {JwtAlg::kHS384}, error);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(error, JwtError::kNone);
  EXPECT_EQ(decoded->alg, JwtAlg::kHS384);
  EXPECT_EQ(decoded->kid, "x");
  EXPECT_EQ(decoded->claims["sub"], "a");
  EXPECT_EQ(decoded->header["alg"], "HS384");
  EXPECT_EQ(decoded->signature.size(), 48u);
  EXPECT_EQ(decoded->signing_input.data(), token.data());
  EXPECT_EQ(decoded->signing_input.size(), token.rfind('.'));
}

TEST(JwtDecodeTest, RefusesOversizedToken) {
  Signer signer = hs(JwtAlg::kHS256);
  KeySet keys = set_of(Key::from_secret(kSecret64));
  // Grow a claim until the token is just under, then just over, the limit.
  std::string pad(6000, 'x');
  std::string token = signer.token({{"pad", pad}});
  while (token.size() + 4 <= kMaxTokenBytes) token = signer.token({{"pad", pad += 'x'}});
  ASSERT_LE(token.size(), kMaxTokenBytes);
  EXPECT_EQ(verify(token, keys), JwtError::kNone);
  while (token.size() <= kMaxTokenBytes) token = signer.token({{"pad", pad += 'x'}});
  EXPECT_EQ(verify(token, keys), JwtError::kTooLarge);
  EXPECT_EQ(decode_error(std::string(kMaxTokenBytes + 1, 'a')), JwtError::kTooLarge);
}

TEST(JwtDecodeTest, RefusesWrongNumberOfParts) {
  std::string token = hs(JwtAlg::kHS256).token();
  std::string input = token.substr(0, token.rfind('.'));
  EXPECT_EQ(decode_error(""), JwtError::kMalformed);
  EXPECT_EQ(decode_error("."), JwtError::kMalformed);
  EXPECT_EQ(decode_error(".."), JwtError::kMalformed);
  EXPECT_EQ(decode_error(input), JwtError::kMalformed);
  EXPECT_EQ(decode_error(input.substr(0, input.find('.'))), JwtError::kMalformed);
  EXPECT_EQ(decode_error(token + "."), JwtError::kMalformed);
  EXPECT_EQ(decode_error(token + ".c2ln"), JwtError::kMalformed);
  EXPECT_EQ(decode_error(token + ".a.b"), JwtError::kMalformed);  // JWE-shaped
  EXPECT_EQ(decode_error("." + token), JwtError::kMalformed);
}

TEST(JwtDecodeTest, RefusesTrailingAndLeadingBytes) {
  std::string token = hs(JwtAlg::kHS256).token();
  ASSERT_EQ(decode_error(token), JwtError::kNone);
  for (const char* extra : {" ", "\n", "\r\n", "\t", "=", "==", ","}) {
    EXPECT_EQ(decode_error(token + extra), JwtError::kMalformed) << static_cast<int>(extra[0]);
  }
  EXPECT_EQ(decode_error(token + std::string(1, '\0')), JwtError::kMalformed);
  EXPECT_EQ(decode_error(" " + token), JwtError::kMalformed);
  EXPECT_EQ(decode_error("Bearer " + token), JwtError::kMalformed);
}

TEST(JwtDecodeTest, RefusesBadBase64UrlInAnyPart) {
  std::string token = hs(JwtAlg::kHS256).token({{"sub", "subject"}});
  std::size_t dot1 = token.find('.'), dot2 = token.rfind('.');
  std::string header = token.substr(0, dot1);
  std::string payload = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string sig = token.substr(dot2 + 1);
  auto join = [](const std::string& h, const std::string& p, const std::string& s) {
    return h + "." + p + "." + s;
  };
  ASSERT_EQ(decode_error(join(header, payload, sig)), JwtError::kNone);
  // A 32-byte HMAC encodes to 43 characters, which leaves two spare bits.
  ASSERT_EQ(sig.size(), 43u);
  EXPECT_EQ(decode_error(join(header, payload, sig + "=")), JwtError::kMalformed);
  EXPECT_EQ(decode_error(join(header + "=", payload, sig)), JwtError::kMalformed);
  EXPECT_EQ(decode_error(join(header, payload + " ", sig)), JwtError::kMalformed);
  EXPECT_EQ(decode_error(join(header, payload.substr(0, 4) + "\n" + payload.substr(4), sig)),
            JwtError::kMalformed);
  std::string plus = payload;
  plus[2] = '+';
  EXPECT_EQ(decode_error(join(header, plus, sig)), JwtError::kMalformed);
  std::string slash = sig;
  slash[0] = '/';
  EXPECT_EQ(decode_error(join(header, payload, slash)), JwtError::kMalformed);
  // Same bytes, non-canonical final character: flip one of the spare bits.
  std::string alias = sig;
  const std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  alias.back() = alphabet[alphabet.find(alias.back()) ^ 1];
  EXPECT_EQ(decode_error(join(header, payload, alias)), JwtError::kMalformed);
}

TEST(JwtDecodeTest, RefusesEmptyParts) {
  std::string token = hs(JwtAlg::kHS256).token();
  std::size_t dot1 = token.find('.'), dot2 = token.rfind('.');
  EXPECT_EQ(decode_error(token.substr(0, dot2 + 1)), JwtError::kMalformed);  // no signature
  EXPECT_EQ(decode_error(token.substr(dot1)), JwtError::kMalformed);         // no header
  EXPECT_EQ(decode_error(token.substr(0, dot1 + 1) + token.substr(dot2)),
            JwtError::kMalformed);  // no payload
}

TEST(JwtDecodeTest, RefusesHeaderOrPayloadThatIsNotAJsonObject) {
  Signer signer = hs(JwtAlg::kHS256);
  const std::string header = R"({"alg":"HS256"})";
  for (const char* payload : {"[]", "\"sub\"", "1", "null", "true", "{", "{}x", "{} {}",
                              "{\"a\":1,}", "{'a':1}", "{\"a\":NaN}", "/*c*/{}"}) {
    EXPECT_EQ(decode_error(signer.raw(header, payload)), JwtError::kMalformed) << payload;
  }
  for (const char* h : {"[\"HS256\"]", "\"HS256\"", "{\"alg\":\"HS256\"", ""}) {
    EXPECT_EQ(decode_error(signer.raw(h, "{}")), JwtError::kMalformed) << h;
  }
  EXPECT_EQ(decode_error(signer.raw(header, "{\"s\":\"\xff\"}")), JwtError::kMalformed);
  EXPECT_EQ(decode_error(signer.raw(header, "\xEF\xBB\xBF{}")), JwtError::kMalformed);
  EXPECT_EQ(decode_error(signer.raw(header, " {} ")), JwtError::kNone);  // JSON whitespace
}

TEST(JwtDecodeTest, RefusesDuplicateNames) {
  Signer signer = hs(JwtAlg::kHS256);
  KeySet keys = set_of(Key::from_secret(kSecret64));
  EXPECT_EQ(verify(signer.raw(R"({"alg":"HS256","alg":"none"})", "{}"), keys),
            JwtError::kMalformed);
  EXPECT_EQ(verify(signer.raw(R"({"alg":"HS256","kid":"a","kid":"b"})", "{}"), keys),
            JwtError::kMalformed);
  EXPECT_EQ(verify(signer.raw(R"({"alg":"HS256"})", R"({"sub":"alice","sub":"admin"})"), keys),
            JwtError::kMalformed);
  EXPECT_EQ(verify(signer.raw(R"({"alg":"HS256"})", R"({"a":{"x":1,"x":2}})"), keys),
            JwtError::kMalformed);
  // The same name in different objects is fine.
  EXPECT_EQ(
      verify(signer.raw(R"({"alg":"HS256"})", R"({"x":{"x":1},"y":[{"x":1},{"x":2}]})"), keys),
      JwtError::kNone);
}

TEST(JwtDecodeTest, SurvivesDeepNesting) {
  std::string deep = "{\"a\":" + std::string(2500, '[') + std::string(2500, ']') + "}";
  EXPECT_EQ(decode_error(hs(JwtAlg::kHS256).raw(R"({"alg":"HS256"})", deep)), JwtError::kNone);
}

// ---------------------------------------------------------------------------
// Claims (RFC 7519 4.1)

JwtError claims_error(const json& claims, ClaimsPolicy policy = {}, int64_t now = kNow) {
  return check_claims(claims, policy, now);
}

ClaimsPolicy skew(int64_t seconds) {
  ClaimsPolicy p;
  p.skew_seconds = seconds;
  return p;
}

TEST(JwtClaimsTest, ExpiresAtExpPlusSkew) {
  const int64_t exp = 1000;
  EXPECT_EQ(claims_error({{"exp", exp}}, skew(30), 1029), JwtError::kNone);
  EXPECT_EQ(claims_error({{"exp", exp}}, skew(30), 1030), JwtError::kExpired);
  EXPECT_EQ(claims_error({{"exp", exp}}, skew(0), 999), JwtError::kNone);
  EXPECT_EQ(claims_error({{"exp", exp}}, skew(0), 1000), JwtError::kExpired);  // "on or after"
}

TEST(JwtClaimsTest, AcceptsFractionalExp) {
  EXPECT_EQ(claims_error({{"exp", 1000.5}}, skew(0), 1000), JwtError::kNone);
  EXPECT_EQ(claims_error({{"exp", 1000.5}}, skew(0), 1001), JwtError::kExpired);
  EXPECT_EQ(claims_error({{"exp", 1000.0}}, skew(0), 1000), JwtError::kExpired);
  EXPECT_EQ(claims_error({{"exp", -0.5}}, skew(0), 0), JwtError::kExpired);
}

TEST(JwtClaimsTest, NotValidBeforeNbfMinusSkew) {
  EXPECT_EQ(claims_error({{"nbf", 1000}}, skew(30), 970), JwtError::kNone);
  EXPECT_EQ(claims_error({{"nbf", 1000}}, skew(30), 969), JwtError::kNotYetValid);
  EXPECT_EQ(claims_error({{"nbf", 1000}}, skew(0), 1000), JwtError::kNone);
  EXPECT_EQ(claims_error({{"nbf", 1000}}, skew(0), 999), JwtError::kNotYetValid);
  EXPECT_EQ(claims_error({{"nbf", 1000.5}}, skew(0), 1000), JwtError::kNotYetValid);
}

TEST(JwtClaimsTest, RefusesIatInTheFuture) {
  EXPECT_EQ(claims_error({{"iat", 1000}}, skew(30), 970), JwtError::kNone);
  EXPECT_EQ(claims_error({{"iat", 1000}}, skew(30), 969), JwtError::kIssuedInFuture);
  EXPECT_EQ(claims_error({{"iat", 1}}, skew(0), kNow), JwtError::kNone);  // no maximum age
}

TEST(JwtClaimsTest, TreatsNegativeSkewAsZero) {
  EXPECT_EQ(claims_error({{"exp", 1000}}, skew(-30), 999), JwtError::kNone);
  EXPECT_EQ(claims_error({{"nbf", 1000}}, skew(-30), 1000), JwtError::kNone);
}

TEST(JwtClaimsTest, HandlesExtremeValuesWithoutOverflow) {
  EXPECT_EQ(claims_error({{"exp", 1e300}}), JwtError::kNone);
  EXPECT_EQ(claims_error({{"exp", UINT64_MAX}}), JwtError::kNone);
  EXPECT_EQ(claims_error({{"exp", INT64_MAX}}, skew(0), INT64_MAX), JwtError::kExpired);
  EXPECT_EQ(claims_error({{"exp", 0}}, skew(INT64_MAX), INT64_MIN), JwtError::kNone);
  EXPECT_EQ(claims_error({{"exp", -1e300}}), JwtError::kExpired);
  EXPECT_EQ(claims_error({{"exp", INT64_MIN}}, skew(INT64_MAX), INT64_MIN), JwtError::kExpired);
  EXPECT_EQ(claims_error({{"nbf", 1e300}}, skew(INT64_MAX)), JwtError::kNotYetValid);
  EXPECT_EQ(claims_error({{"nbf", -1e300}}, skew(INT64_MAX), INT64_MIN), JwtError::kNone);
  EXPECT_EQ(claims_error(json::parse(R"({"exp": 1e400})", nullptr, false)), JwtError::kMalformed);
}

TEST(JwtClaimsTest, RefusesWrongClaimTypes) {
  for (const char* claims :
       {R"({"exp":"9999999999"})", R"({"exp":true})", R"({"exp":null})", R"({"exp":[1]})",
        R"({"nbf":"0"})", R"({"iat":{}})", R"({"iss":1})", R"({"iss":["a"]})", R"({"sub":5})",
        R"({"aud":5})", R"({"aud":[1]})", R"({"aud":["a",null]})", R"({"aud":{"a":1}})"}) {
    EXPECT_EQ(claims_error(json::parse(claims)), JwtError::kBadClaimType) << claims;
  }
  EXPECT_EQ(claims_error({{"exp", std::nan("")}}), JwtError::kBadClaimType);
  EXPECT_EQ(claims_error({{"exp", INFINITY}}), JwtError::kBadClaimType);
  EXPECT_EQ(claims_error(json::array()), JwtError::kMalformed);
}

TEST(JwtClaimsTest, TypeErrorsWinOverTimeErrors) {
  EXPECT_EQ(claims_error({{"exp", 1}, {"iss", 2}}), JwtError::kBadClaimType);
}

TEST(JwtClaimsTest, RequireExpReportsBadClaimType) {
  ClaimsPolicy policy;
  policy.require_exp = true;
  EXPECT_EQ(claims_error({{"sub", "a"}}, policy), JwtError::kBadClaimType);
  EXPECT_EQ(claims_error({{"exp", kNow + 1}}, policy), JwtError::kNone);
  EXPECT_EQ(claims_error({{"sub", "a"}}), JwtError::kNone);
}

TEST(JwtClaimsTest, ChecksIssuer) {
  ClaimsPolicy policy;
  policy.issuer = "https://idp.example";
  EXPECT_EQ(claims_error({{"iss", "https://idp.example"}}, policy), JwtError::kNone);
  EXPECT_EQ(claims_error({{"iss", "https://IDP.example"}}, policy), JwtError::kBadIssuer);
  EXPECT_EQ(claims_error({{"iss", "https://idp.example/"}}, policy), JwtError::kBadIssuer);
  EXPECT_EQ(claims_error({{"sub", "a"}}, policy), JwtError::kBadIssuer);
  EXPECT_EQ(claims_error({{"iss", "anything"}}), JwtError::kNone);  // not configured
}

TEST(JwtClaimsTest, ChecksAudienceStringAndArray) {
  ClaimsPolicy policy;
  policy.audience = "api";
  EXPECT_EQ(claims_error({{"aud", "api"}}, policy), JwtError::kNone);
  EXPECT_EQ(claims_error({{"aud", {"web", "api"}}}, policy), JwtError::kNone);
  EXPECT_EQ(claims_error({{"aud", "API"}}, policy), JwtError::kBadAudience);
  EXPECT_EQ(claims_error({{"aud", {"web", "apis"}}}, policy), JwtError::kBadAudience);
  EXPECT_EQ(claims_error({{"aud", json::array()}}, policy), JwtError::kBadAudience);
  EXPECT_EQ(claims_error({{"sub", "a"}}, policy), JwtError::kBadAudience);
  EXPECT_EQ(claims_error({{"aud", {"web"}}}), JwtError::kNone);  // not configured
}

TEST(JwtClaimsTest, VerifyReportsClaimErrorsAfterTheSignature) {
  Signer signer = hs(JwtAlg::kHS256);
  KeySet keys = set_of(Key::from_secret(kSecret64));
  DecodedJwt out;
  out.kid = "untouched";
  EXPECT_EQ(verify_jwt(signer.token({{"exp", kNow - 100}}), kAllAlgs, keys, {}, kNow, out),
            JwtError::kExpired);
  EXPECT_EQ(out.kid, "untouched");
  // A forged signature is reported as such even when the claims are bad too.
  std::string forged =
      with_signature(signer.token({{"exp", kNow - 100}}), [](std::string& s) { s[0] ^= 1; });
  EXPECT_EQ(verify(forged, keys), JwtError::kBadSignature);
  ClaimsPolicy policy;
  policy.issuer = "i";
  policy.audience = "a";
  EXPECT_EQ(verify(signer.token({{"iss", "i"}, {"aud", {"a"}}, {"exp", kNow + 1}}), keys, kAllAlgs,
                   policy),
            JwtError::kNone);
  EXPECT_EQ(verify(signer.token({{"iss", "j"}, {"aud", "a"}}), keys, kAllAlgs, policy),
            JwtError::kBadIssuer);
}

}  // namespace
}  // namespace gatehouse::auth
