#include "compd/watch/http_auth.h"

#include <catch2/catch.hpp>
#include <fstream>

#include "compd/base/base64.h"
#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::TempDir;

std::string Write(const TempDir& dir, const std::string& name, const std::string& text) {
  std::string path = dir / name;
  std::ofstream(path) << text;
  return path;
}

std::string Basic(const std::string& user_pass) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < user_pass.size(); i += 3) {
    uint32_t v = (uint8_t(user_pass[i]) << 16) | (uint8_t(user_pass[i + 1]) << 8) |
                 uint8_t(user_pass[i + 2]);
    for (int k = 3; k >= 0; --k) out += kAlphabet[(v >> (6 * k)) & 63];
  }
  if (i + 1 == user_pass.size()) {
    uint32_t v = uint8_t(user_pass[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == user_pass.size()) {
    uint32_t v = (uint8_t(user_pass[i]) << 16) | (uint8_t(user_pass[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += "=";
  }
  return "Basic " + out;
}

TEST_CASE("constant-time comparison is plain equality", "[http_auth]") {
  const struct {
    std::string a, b;
    bool equal;
  } kCases[] = {
      {"", "", true},
      {"secret", "secret", true},
      {"secret", "secreT", false},
      {"secret", "secret2", false},
      {"secret", "", false},
      {std::string("a\0b", 3), "a", false},
  };
  for (const auto& c : kCases) {
    INFO("'" << c.a << "' vs '" << c.b << "'");
    CHECK(ConstantTimeEquals(c.a, c.b) == c.equal);
  }
}

TEST_CASE("base64 decoding (RFC 4648 test vectors)", "[http_auth]") {
  std::string out;
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"Zg==", "f"},
                                                         {"Zm8=", "fo"},
                                                         {"Zm9v", "foo"},
                                                         {"Zm9vYg==", "foob"},
                                                         {"Zm9vYmE=", "fooba"},
                                                         {"Zm9vYmFy", "foobar"}};
  for (const auto& [in, expect] : vectors) {
    REQUIRE(DecodeBase64(in, &out));
    CHECK(out == expect);
  }
  CHECK_FALSE(DecodeBase64("Zm9v!", &out));
  CHECK_FALSE(DecodeBase64("Z", &out));
  CHECK(Basic("alice:pw") == "Basic YWxpY2U6cHc=");
}

TEST_CASE("password hashes are yescrypt and verify", "[http_auth]") {
  std::string hash;
  REQUIRE(HashPassword("correct horse", &hash).ok());
  CHECK(hash.rfind("$y$", 0) == 0);
  CHECK(VerifyPassword("correct horse", hash));
  CHECK_FALSE(VerifyPassword("correct horse ", hash));
  CHECK_FALSE(VerifyPassword("", hash));
  std::string again;
  REQUIRE(HashPassword("correct horse", &again).ok());
  CHECK(again != hash);  // salted
  // SHA-crypt from the glibc documentation's example format; DES and MD5 are refused.
  CHECK(IsSupportedHash("$6$salt$abc"));
  CHECK_FALSE(IsSupportedHash("$1$salt$abc"));
  CHECK_FALSE(VerifyPassword("x", "ab01FAX.bQRSU"));
}

TEST_CASE("users file: user:hash lines, errors name file and line", "[http_auth]") {
  TempDir tmp;
  std::string hash;
  REQUIRE(HashPassword("pw", &hash).ok());
  std::vector<HttpUser> users;
  std::string path = Write(tmp, "users", "# dashboard\n\nalice:" + hash + "\nbob : " + hash + "\n");
  REQUIRE(LoadUsersFile(path, &users).ok());
  REQUIRE(users.size() == 2);
  CHECK(users[1].name == "bob");

  path = Write(tmp, "bad1", "alice:" + hash + "\nbob:plaintext\n");
  Status s = LoadUsersFile(path, &users);
  CHECK(s.IsInvalid());
  CHECK(s.message().find(path + ":2:") == 0);
  CHECK(s.message().find("bob") != std::string::npos);
  CHECK(s.message().find("plaintext") == std::string::npos);  // never echo a secret
  path = Write(tmp, "bad2", "no colon here\n");
  CHECK(LoadUsersFile(path, &users).message().find(path + ":1: expected 'user:hash'") == 0);
  path = Write(tmp, "bad3", "a:" + hash + "\na:" + hash + "\n");
  CHECK(LoadUsersFile(path, &users).message().find("twice") != std::string::npos);
  CHECK(LoadUsersFile(tmp / "missing", &users).IsIoError());
}

TEST_CASE("token files: one token per line, long enough", "[http_auth]") {
  TempDir tmp;
  std::vector<std::string> tokens;
  REQUIRE(
      LoadTokenFile(Write(tmp, "t", "0123456789abcdef\n# c\n  fedcba9876543210xyz  \n"), &tokens)
          .ok());
  CHECK(tokens == std::vector<std::string>{"0123456789abcdef", "fedcba9876543210xyz"});
  std::string path = Write(tmp, "short", "0123456789abcdef\nshort\n");
  Status s = LoadTokenFile(path, &tokens);
  CHECK(s.message().find(path + ":2: token shorter than 16") == 0);
}

TEST_CASE("authenticator: basic and bearer, missing versus denied", "[http_auth]") {
  std::string hash;
  REQUIRE(HashPassword("s3cret", &hash).ok());
  HttpAuthenticator auth({{"alice", hash}}, {"token-0123456789abcdef"}, {});
  std::string who;
  using R = HttpAuthenticator::Result;
  CHECK(auth.Check("", &who) == R::kMissing);
  CHECK(auth.Check(Basic("alice:s3cret"), &who) == R::kOk);
  CHECK(who == "alice");
  CHECK(auth.Check(Basic("alice:s3cret"), &who) == R::kOk);  // from the cache
  CHECK(auth.Check(Basic("alice:wrong"), &who) == R::kDenied);
  CHECK(auth.Check(Basic("mallory:s3cret"), &who) == R::kDenied);
  CHECK(auth.Check("Basic !!!", &who) == R::kDenied);
  CHECK(auth.Check("bearer token-0123456789abcdef", &who) == R::kOk);
  CHECK(who == "token");
  CHECK(auth.Check("Bearer token-0123456789abcdeX", &who) == R::kDenied);
  CHECK(auth.Check("Digest x", &who) == R::kDenied);
  // No metrics tokens: /metrics is open.
  CHECK(auth.CheckMetrics("") == R::kOk);

  HttpAuthenticator guarded({}, {}, {"metrics-0123456789abcdef"});
  CHECK_FALSE(guarded.has_credentials());
  CHECK(guarded.CheckMetrics("") == R::kMissing);
  CHECK(guarded.CheckMetrics("Bearer metrics-0123456789abcdef") == R::kOk);
  CHECK(guarded.CheckMetrics("Bearer nope-0123456789abcdef") == R::kDenied);
  CHECK(guarded.Check("Bearer metrics-0123456789abcdef", &who) == R::kDenied);
}

}  // namespace
}  // namespace compd
