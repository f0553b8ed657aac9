#include "auth/crypto.h"

#include <crypt.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <string>

namespace gatehouse::auth {
namespace {

using namespace std::string_literals;

std::string hex_of(const Sha256& d) { return to_hex(d.data(), d.size()); }

// A crypt(3) hash of `password` made with libxcrypt for `prefix` ("$6$"...).
std::string make_hash(const char* prefix, const std::string& password, unsigned long cost = 0) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn(prefix, cost, nullptr, 0, setting, sizeof setting) == nullptr) {
    ADD_FAILURE() << "crypt_gensalt_rn failed for " << prefix;
    return {};
  }
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* out = crypt_r(password.c_str(), setting, data.get());
  if (out == nullptr || out[0] == '*') {
    ADD_FAILURE() << "crypt_r failed for " << prefix;
    return {};
  }
  return out;
}

TEST(AuthCryptoDigest, Sha256KnownVectors) {
  EXPECT_EQ(hex_of(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex_of(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AuthCryptoDigest, ParseSha256HexAcceptsBothCasesAndRoundTrips) {
  const std::string lower = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  std::string upper = lower;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto a = parse_sha256_hex(lower);
  auto b = parse_sha256_hex(upper);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(*a, sha256("abc"));
  EXPECT_EQ(hex_of(*b), lower);
  {  // ToHexIsLowerCaseTwoDigitsPerByte
    const uint8_t bytes[] = {0x00, 0x0f, 0xa0, 0xff};
    EXPECT_EQ(to_hex(bytes, sizeof bytes), "000fa0ff");
    EXPECT_EQ(to_hex(bytes, 0), "");
  }
}

TEST(AuthCryptoDigest, ParseSha256HexRefusesWrongLengthOrDigits) {
  const std::string good(64, 'a');
  EXPECT_TRUE(parse_sha256_hex(good).has_value());
  EXPECT_FALSE(parse_sha256_hex(good.substr(1)).has_value());
  EXPECT_FALSE(parse_sha256_hex(good + "a").has_value());
  EXPECT_FALSE(parse_sha256_hex("").has_value());
  std::string bad = good;
  bad[63] = 'g';
  EXPECT_FALSE(parse_sha256_hex(bad).has_value());
  bad = good;
  bad[0] = ' ';
  EXPECT_FALSE(parse_sha256_hex(bad).has_value());
}

TEST(AuthCryptoHmac, MatchesRfc4231AndOpenSsl) {
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  {  // BinaryFormMatchesHexAndOpenSsl
    const std::string key(40, '\x0b');
    const std::string msg = "message with\0nul"s;
    Sha256 mac = hmac_sha256(key, msg);
    unsigned char expect[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), expect, &len);
    ASSERT_EQ(len, 32u);
    EXPECT_EQ(std::memcmp(mac.data(), expect, 32), 0);
    EXPECT_EQ(hex_of(mac), hmac_sha256_hex(key, msg));
    EXPECT_NE(hmac_sha256_hex(key, msg), hmac_sha256_hex(key + "x", msg));
  }
}

TEST(AuthCryptoCompare, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("secret", "secret"));
  EXPECT_FALSE(constant_time_equal("secret", "secreT"));
  EXPECT_FALSE(constant_time_equal("secret", "secret!"));
  EXPECT_FALSE(constant_time_equal("", "a"));
  EXPECT_TRUE(constant_time_equal("a\0b"s, "a\0b"s));
  EXPECT_FALSE(constant_time_equal("a\0b"s, "a\0c"s));
}

TEST(AuthCryptoCrypt, SupportsOnlyModernMethods) {
  for (const char* prefix : {"$6$", "$2b$", "$y$"}) {
    const std::string hash = make_hash(prefix, "pw");
    EXPECT_TRUE(crypt_hash_supported(hash)) << hash;
  }
  {                                                       // RefusesLegacyAndGarbageHashes
    EXPECT_FALSE(crypt_hash_supported("ab01234567890"));  // DES
    EXPECT_FALSE(crypt_hash_supported("$1$saltsalt$qjXMvbEw8oaL.CzflDugX/"));  // md5-crypt
    EXPECT_FALSE(crypt_hash_supported("_J9..CCCCXBrJUJV154M"));                // BSDi
    EXPECT_FALSE(crypt_hash_supported(""));
    EXPECT_FALSE(crypt_hash_supported("plaintext-password"));
    EXPECT_FALSE(crypt_hash_supported("*"));
  }
}

TEST(AuthCryptoCrypt, VerifiesEachMethod) {
  for (const char* prefix : {"$6$", "$2b$", "$y$"}) {
    const std::string hash = make_hash(prefix, "correct horse");
    EXPECT_TRUE(crypt_verify("correct horse", hash)) << prefix;
    EXPECT_FALSE(crypt_verify("correct horsE", hash)) << prefix;
    EXPECT_FALSE(crypt_verify("", hash)) << prefix;
  }
}

TEST(AuthCryptoCrypt, RefusesNulInPasswordAndBrokenHashes) {
  const std::string hash = make_hash("$6$", "abc");
  EXPECT_TRUE(crypt_verify("abc", hash));
  // "abc\0x" must not be verified as "abc" by C-string truncation.
  EXPECT_FALSE(crypt_verify("abc\0x"s, hash));
  EXPECT_FALSE(crypt_verify("abc", "*0"));
  EXPECT_FALSE(crypt_verify("abc", "!"));
  EXPECT_FALSE(crypt_verify("abc", ""));
}

TEST(AuthCryptoBase64, Rfc4648VectorsRoundTrip) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    auto decoded = base64_decode(encoded);
    ASSERT_TRUE(decoded.has_value()) << encoded;
    EXPECT_EQ(*decoded, plain);
  }
  {  // BinaryAndFullAlphabet
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    const std::string encoded = base64_encode(all);
    EXPECT_NE(encoded.find('+'), std::string::npos);
    EXPECT_NE(encoded.find('/'), std::string::npos);
    auto back = base64_decode(encoded);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, all);
    EXPECT_EQ(base64_encode("\xfb\xff"), "+/8=");
  }
}

TEST(AuthCryptoBase64, RefusesMalformedInput) {
  EXPECT_FALSE(base64_decode("Zg").has_value());        // no padding
  EXPECT_FALSE(base64_decode("Zg=").has_value());       // short padding
  EXPECT_FALSE(base64_decode("Z===").has_value());      // three pads
  EXPECT_FALSE(base64_decode("====").has_value());      // only pads
  EXPECT_FALSE(base64_decode("Zg==Zm8=").has_value());  // pad in the middle
  EXPECT_FALSE(base64_decode("Zm=v").has_value());      // data after a pad
  EXPECT_FALSE(base64_decode("Zm9-").has_value());      // base64url alphabet
  EXPECT_FALSE(base64_decode("Zm9_").has_value());
  EXPECT_FALSE(base64_decode("Zm 9").has_value());  // whitespace
  EXPECT_FALSE(base64_decode("Zm9v\n").has_value());
}

TEST(AuthCryptoForm, EncodesLikeHtmlForms) {
  EXPECT_EQ(form_urlencode("abcXYZ019-._*"), "abcXYZ019-._*");
  EXPECT_EQ(form_urlencode("a b"), "a+b");
  EXPECT_EQ(form_urlencode("a+b&c=d/e?f%~"), "a%2Bb%26c%3Dd%2Fe%3Ff%25%7E");
  EXPECT_EQ(form_urlencode("\xc3\xa9"), "%C3%A9");
  EXPECT_EQ(form_urlencode(std::string("\0\n", 2)), "%00%0A");
  EXPECT_EQ(form_urlencode(""), "");
}

TEST(AuthCryptoRandom, GivesRequestedLengthAndVaries) {
  EXPECT_EQ(random_bytes(0).size(), 0u);
  const std::string a = random_bytes(32);
  const std::string b = random_bytes(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(b.size(), 32u);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace gatehouse::auth
