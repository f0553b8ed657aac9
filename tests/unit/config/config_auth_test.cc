// The auth parts of the config (docs/auth.md): consumers, upstream_signing,
// and the auth plugins as the loader validates them.
#include <crypt.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "auth/crypto.h"
#include "config/config.h"

namespace gatehouse::config {
namespace {

using ::testing::ElementsAre;

constexpr const char* kFile = "gw.yaml";

std::vector<std::string> auth_errors_of(const std::string& text) {
  const LoadResult result = load_config_text(text, kFile);
  EXPECT_FALSE(result.config.has_value());
  std::vector<std::string> lines;
  for (const ConfigError& error : result.errors) lines.push_back(error.to_string());
  return lines;
}

Config auth_load_ok(const std::string& text) {
  LoadResult result = load_config_text(text, kFile);
  for (const ConfigError& error : result.errors) ADD_FAILURE() << error.to_string();
  return result.config.value_or(Config{});
}

std::string sha512_crypt(const std::string& password) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  EXPECT_NE(crypt_gensalt_rn("$6$", 0, nullptr, 0, setting, sizeof setting), nullptr);
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  return crypt_r(password.c_str(), setting, data.get());
}

std::string sha256_form(std::string_view key) {
  const auth::Sha256 d = auth::sha256(key);
  return "sha256:" + auth::to_hex(d.data(), d.size());
}

// Sets (or unsets, with nullptr) an environment variable for one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

// A route answering directly, so no upstream is needed, with the given
// plugin list lines (each indented for the `plugins:` list).
std::string route_with(const std::string& plugin_lines) {
  return "routes:\n"
         "  - name: r\n"
         "    match: {path_prefix: /p/}\n"
         "    respond: {status: 200}\n"
         "    plugins:\n" +
         plugin_lines;
}

TEST(ConfigAuthConsumers, LoadsConsumersAndSigning) {
  ScopedEnv env("GH_UNIT_SIGNING_OK", "0123456789abcdef0123456789abcdef");
  const std::string hash = sha512_crypt("pw");
  const std::string hashed_key = sha256_form("hashed-key-1");
  const Config config = auth_load_ok(
      "consumers:\n"
      "  - name: acme\n"
      "    plan: pro\n"
      "    groups: [partners, editor]\n"
      "    api_keys: [\"k-acme-123\", \"" +
      hashed_key +
      "\"]\n"
      "    basic_auth: {username: acme-user, password_hash: \"" +
      hash +
      "\"}\n"
      "  - name: guest\n"
      "upstream_signing: {secret_env: GH_UNIT_SIGNING_OK}\n" +
      route_with("      - key_auth: {anonymous: guest}\n"
                 "      - acl: {allow: [partners]}\n"));
  ASSERT_EQ(config.consumers.size(), 2u);
  const Consumer& acme = config.consumers[0];
  EXPECT_EQ(acme.name, "acme");
  EXPECT_EQ(acme.plan, "pro");
  EXPECT_EQ(acme.groups, (std::vector<std::string>{"partners", "editor"}));
  EXPECT_EQ(acme.api_keys, (std::vector<std::string>{"k-acme-123", hashed_key}));
  ASSERT_TRUE(acme.basic.has_value());
  EXPECT_EQ(acme.basic->username, "acme-user");
  EXPECT_EQ(acme.basic->password_hash, hash);
  EXPECT_EQ(acme.mark.line, 2);
  EXPECT_EQ(config.consumers[1].name, "guest");
  EXPECT_FALSE(config.consumers[1].basic.has_value());
  ASSERT_TRUE(config.upstream_signing.has_value());
  EXPECT_EQ(config.upstream_signing->secret, "0123456789abcdef0123456789abcdef");
  ASSERT_EQ(config.routes.size(), 1u);
  ASSERT_EQ(config.routes[0].plugins.size(), 2u);
  EXPECT_EQ(config.routes[0].plugins[0].kind, "key_auth");
  EXPECT_EQ(config.routes[0].plugins[1].kind, "acl");
}

TEST(ConfigAuthConsumers, DuplicateNameAtTheSecond) {
  EXPECT_THAT(auth_errors_of("consumers:\n"
                             "  - name: acme\n"
                             "  - name: acme\n"),
              ElementsAre("gw.yaml:3:11: duplicate consumer 'acme'"));
}

TEST(ConfigAuthConsumers, DuplicateApiKeyAcrossConsumers) {
  EXPECT_THAT(auth_errors_of("consumers:\n"
                             "  - name: a\n"
                             "    api_keys: [k-dup-0001]\n"
                             "  - name: b\n"
                             "    api_keys: [\"k-dup-0001\"]\n"),
              ElementsAre("gw.yaml:5:16: duplicate api key (first on line 3)"));
}

TEST(ConfigAuthConsumers, PlainKeyAndItsSha256FormAreDuplicates) {
  EXPECT_THAT(auth_errors_of("consumers:\n"
                             "  - name: a\n"
                             "    api_keys: [k-plain-key-1]\n"
                             "  - name: b\n"
                             "    api_keys:\n"
                             "      - " +
                             sha256_form("k-plain-key-1") + "\n"),
              ElementsAre("gw.yaml:6:9: duplicate api key (first on line 3)"));
  {  // Sha256FormsInBothCasesAreDuplicates
    std::string lower = sha256_form("same-key-42");
    std::string upper = lower;
    for (std::size_t i = 7; i < upper.size(); ++i)
      upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
    EXPECT_THAT(auth_errors_of("consumers:\n"
                               "  - name: a\n"
                               "    api_keys:\n"
                               "      - " +
                               lower +
                               "\n"
                               "      - " +
                               upper + "\n"),
                ElementsAre("gw.yaml:5:9: duplicate api key (first on line 4)"));
  }
}

TEST(ConfigAuthConsumers, BadSha256Hex) {
  EXPECT_THAT(auth_errors_of("consumers:\n"
                             "  - name: a\n"
                             "    api_keys: [\"sha256:abc\", \"sha256:" +
                             std::string(63, 'a') + "g\"]\n"),
              ElementsAre("gw.yaml:3:16: an api key 'sha256:...' needs 64 hex digits",
                          "gw.yaml:3:30: an api key 'sha256:...' needs 64 hex digits"));
}

TEST(ConfigAuthConsumers, ShortOrSpacedKey) {
  EXPECT_THAT(
      auth_errors_of("consumers:\n"
                     "  - name: a\n"
                     "    api_keys: [short, \"has a space\", 12345678]\n"),
      ElementsAre(
          "gw.yaml:3:16: an api key must be at least 8 printable characters without spaces",
          "gw.yaml:3:23: an api key must be at least 8 printable characters without spaces"));
}

TEST(ConfigAuthConsumers, DuplicateBasicUsername) {
  const std::string hash = sha512_crypt("pw");
  EXPECT_THAT(auth_errors_of("consumers:\n"
                             "  - name: a\n"
                             "    basic_auth: {username: same, password_hash: \"" +
                             hash +
                             "\"}\n"
                             "  - name: b\n"
                             "    basic_auth: {username: same, password_hash: \"" +
                             hash + "\"}\n"),
              ElementsAre("gw.yaml:5:28: duplicate basic_auth username 'same'"));
}

TEST(ConfigAuthConsumers, UnsupportedPasswordHashes) {
  const std::string message =
      ": 'password_hash' must be a crypt(3) hash: yescrypt ($y$), bcrypt ($2b$) or sha512-crypt "
      "($6$)";
  EXPECT_THAT(
      auth_errors_of("consumers:\n"
                     "  - name: des\n"
                     "    basic_auth: {username: des, password_hash: \"ab01234567890\"}\n"
                     "  - name: md5\n"
                     "    basic_auth:\n"
                     "      username: md5\n"
                     "      password_hash: \"$1$saltsalt$qjXMvbEw8oaL.CzflDugX/\"\n"
                     "  - name: plain\n"
                     "    basic_auth: {username: plain, password_hash: hunter22}\n"),
      ElementsAre("gw.yaml:3:48" + message, "gw.yaml:7:22" + message, "gw.yaml:9:50" + message));
}

TEST(ConfigAuthConsumers, BasicAuthNeedsBothFields) {
  EXPECT_THAT(auth_errors_of("consumers:\n"
                             "  - name: a\n"
                             "    basic_auth: {username: a}\n"),
              ElementsAre("gw.yaml:3:17: 'basic_auth' needs 'username' and 'password_hash'"));
}

TEST(ConfigAuthSigning, UnsetOrShortVariable) {
  ScopedEnv env("GH_UNIT_SIGNING_UNSET", nullptr);
  EXPECT_THAT(auth_errors_of("upstream_signing: {secret_env: GH_UNIT_SIGNING_UNSET}\n"),
              ElementsAre("gw.yaml:1:32: environment variable 'GH_UNIT_SIGNING_UNSET' is not set"));
  {  // ShortSecret
    ScopedEnv env("GH_UNIT_SIGNING_SHORT", std::string(31, 'x').c_str());
    EXPECT_THAT(
        auth_errors_of("upstream_signing:\n"
                       "  secret_env: GH_UNIT_SIGNING_SHORT\n"),
        ElementsAre(
            "gw.yaml:2:15: the secret in 'GH_UNIT_SIGNING_SHORT' must be at least 32 bytes"));
  }
}

TEST(ConfigAuthSigning, ThirtyTwoBytesIsEnoughAndSecretEnvIsNeeded) {
  ScopedEnv env("GH_UNIT_SIGNING_32", std::string(32, 'x').c_str());
  const Config config = auth_load_ok("upstream_signing: {secret_env: GH_UNIT_SIGNING_32}\n");
  ASSERT_TRUE(config.upstream_signing.has_value());
  EXPECT_EQ(config.upstream_signing->secret, std::string(32, 'x'));
  {  // NeedsSecretEnv
    EXPECT_THAT(auth_errors_of("upstream_signing: {}\n"),
                ElementsAre("gw.yaml:1:19: 'upstream_signing' needs 'secret_env'"));
  }
}

TEST(ConfigAuthPlugins, KeyAuthAnonymousMustNameAConsumer) {
  EXPECT_THAT(auth_errors_of("consumers:\n"
                             "  - name: guest\n" +
                             route_with("      - key_auth: {anonymous: ghost}\n")),
              ElementsAre("gw.yaml:8:31: 'anonymous' names unknown consumer 'ghost'"));
}

TEST(ConfigAuthPlugins, AclWithoutAuthPluginAtTheAclEntry) {
  EXPECT_THAT(auth_errors_of(route_with("      - headers: {request: {set: {X-A: '1'}}}\n"
                                        "      - acl: {allow: [partners]}\n")),
              ElementsAre("gw.yaml:7:9: route 'r' has an 'acl' but no auth plugin (key_auth, "
                          "basic_auth, jwt, oauth2_introspection) to identify the caller"));
}

TEST(ConfigAuthPlugins, AclNextToABrokenAuthPluginIsReportedOnce) {
  EXPECT_THAT(auth_errors_of(route_with("      - key_auth: {bogus: 1}\n"
                                        "      - acl: {deny: [x]}\n")),
              ElementsAre("gw.yaml:6:20: unknown key 'bogus' in key_auth"));
}

TEST(ConfigAuthPlugins, AclNeedsExactlyOneList) {
  EXPECT_THAT(auth_errors_of(route_with("      - key_auth: {}\n"
                                        "      - acl: {allow: [a], deny: [b]}\n")),
              ElementsAre("gw.yaml:7:14: 'acl' takes exactly one of 'allow' or 'deny'"));
  EXPECT_THAT(auth_errors_of(route_with("      - key_auth: {}\n"
                                        "      - acl: {allow: []}\n")),
              ElementsAre("gw.yaml:7:22: 'acl' needs at least one group"));
}

TEST(ConfigAuthPlugins, JwtWithoutKeySource) {
  EXPECT_THAT(
      auth_errors_of(route_with("      - jwt: {issuer: https://a.example}\n")),
      ElementsAre("gw.yaml:6:14: 'jwt' needs a key source: jwks_url, discovery: true, keys or "
                  "secret_env"));
}

TEST(ConfigAuthPlugins, JwtHmacSecretShortOrUnset) {
  ScopedEnv env("GH_UNIT_JWT_SHORT", std::string(31, 'k').c_str());
  EXPECT_THAT(
      auth_errors_of(route_with("      - jwt: {secret_env: GH_UNIT_JWT_SHORT}\n")),
      ElementsAre(
          "gw.yaml:6:27: the HMAC secret in 'GH_UNIT_JWT_SHORT' must be at least 32 bytes"));
  {  // JwtHmacSecretUnset
    ScopedEnv env("GH_UNIT_JWT_UNSET", nullptr);
    EXPECT_THAT(auth_errors_of(route_with("      - jwt: {secret_env: GH_UNIT_JWT_UNSET}\n")),
                ElementsAre("gw.yaml:6:27: environment variable 'GH_UNIT_JWT_UNSET' is not set"));
  }
}

TEST(ConfigAuthPlugins, JwtWithTwoKeySources) {
  ScopedEnv env("GH_UNIT_JWT_TWO", std::string(32, 'k').c_str());
  EXPECT_THAT(auth_errors_of(route_with("      - jwt:\n"
                                        "          jwks_url: http://127.0.0.1:7000/jwks\n"
                                        "          secret_env: GH_UNIT_JWT_TWO\n")),
              ElementsAre("gw.yaml:8:11: 'jwt' takes exactly one key source (jwks_url, "
                          "discovery, keys, secret_env)"));
}

TEST(ConfigAuthPlugins, JwtHmacAlgorithmWithJwksUrl) {
  EXPECT_THAT(auth_errors_of(route_with("      - jwt:\n"
                                        "          jwks_url: http://127.0.0.1:7000/jwks\n"
                                        "          algorithms: [RS256, HS256]\n")),
              ElementsAre("gw.yaml:8:31: algorithm 'HS256' needs 'secret_env' (an HMAC key)"));
}

TEST(ConfigAuthPlugins, JwtPublicAlgorithmWithSecretAndLongHashNeeds) {
  ScopedEnv env("GH_UNIT_JWT_40", std::string(40, 'k').c_str());
  EXPECT_THAT(auth_errors_of(route_with("      - jwt:\n"
                                        "          secret_env: GH_UNIT_JWT_40\n"
                                        "          algorithms: [HS256, HS512, RS256]\n")),
              ElementsAre("gw.yaml:8:31: algorithm 'HS512' needs a secret of at least 64 bytes",
                          "gw.yaml:8:38: algorithm 'RS256' needs a public key, not 'secret_env'"));
}

TEST(ConfigAuthPlugins, JwtRefusesHttpsJwksUrlAndReservedHeader) {
  EXPECT_THAT(auth_errors_of(route_with("      - jwt:\n"
                                        "          jwks_url: https://idp.example/jwks\n"
                                        "          claims_to_headers: {X-Consumer: sub}\n")),
              ElementsAre("gw.yaml:7:21: invalid 'jwks_url': https URLs are not supported yet; use "
                          "http:// on a trusted network or loopback",
                          "gw.yaml:8:31: claims_to_headers cannot set 'X-Consumer'"));
}

}  // namespace
}  // namespace gatehouse::config
