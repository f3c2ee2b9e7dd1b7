#include "compd/watch/http_auth.h"

#include <crypt.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "compd/base/base64.h"
#include "compd/base/file.h"
#include "compd/base/text.h"

namespace compd {

namespace {

// How long a verified basic credential is trusted without hashing again.
constexpr std::chrono::seconds kVerifiedFor{300};
constexpr size_t kMaxVerified = 64;
constexpr size_t kMinTokenLength = 16;
// Hashed when the user is unknown, so that case costs what a wrong password costs.
constexpr const char* kDummyHash =
    "$y$j9T$08vdQM0oCEzZhZNuPW/Ku.$gyi0HFIQc.UCvLbMxxOVwQpaGUMDuMVt2Wp/asOlzi8";

// Blanks and a CR left by CRLF line ends; nothing else is space in these files and headers.
constexpr std::string_view kBlanks = " \t\r";
std::string_view Trim(std::string_view s) { return TrimChars(s, kBlanks); }

// crypt(3) into a heap buffer (struct crypt_data is 32 KB): thread-safe, unlike crypt().
std::string Crypt(std::string_view password, const std::string& setting) {
  auto data = std::make_unique<crypt_data>();
  std::string pw(password);
  const char* out = crypt_r(pw.c_str(), setting.c_str(), data.get());
  std::string result = (out == nullptr || out[0] == '*') ? std::string() : std::string(out);
  std::memset(data.get(), 0, sizeof(crypt_data));
  return result;
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  size_t n = a.size() > b.size() ? a.size() : b.size();
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

bool IsSupportedHash(std::string_view hash) {
  for (const char* prefix : {"$y$", "$gy$", "$7$", "$2b$", "$2y$", "$6$", "$5$"}) {
    if (hash.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

Status HashPassword(std::string_view password, std::string* hash) {
  char* setting = crypt_gensalt_ra("$y$", 0, nullptr, 0);
  if (setting == nullptr) {
    return Status::Internal(std::string("crypt_gensalt: ") + std::strerror(errno));
  }
  std::string s(setting);
  std::free(setting);
  *hash = Crypt(password, s);
  if (hash->empty()) return Status::Internal("crypt failed");
  return Status::Ok();
}

bool VerifyPassword(std::string_view password, const std::string& hash) {
  if (!IsSupportedHash(hash)) return false;
  std::string computed = Crypt(password, hash);
  return !computed.empty() && ConstantTimeEquals(computed, hash);
}

Status LoadUsersFile(const std::string& path, std::vector<HttpUser>* out) {
  std::vector<HttpUser> users;
  Status s = ForEachLine(path, kBlanks, [&](const std::string& where, std::string_view line) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Status::Invalid(where + ": expected 'user:hash'");
    }
    HttpUser u{std::string(Trim(line.substr(0, colon))), std::string(Trim(line.substr(colon + 1)))};
    if (!IsSupportedHash(u.hash) || Crypt("", u.hash).empty()) {
      return Status::Invalid(where + ": the hash of '" + u.name +
                             "' is not a yescrypt ($y$), SHA-crypt ($6$, $5$) or bcrypt ($2b$) "
                             "hash; make one with mapctl dashboard-user");
    }
    for (const HttpUser& other : users) {
      if (other.name == u.name) return Status::Invalid(where + ": user '" + u.name + "' twice");
    }
    users.push_back(std::move(u));
    return Status::Ok();
  });
  if (!s.ok()) return s;
  *out = std::move(users);
  return Status::Ok();
}

Status LoadTokenFile(const std::string& path, std::vector<std::string>* out) {
  std::vector<std::string> tokens;
  Status s = ForEachLine(path, kBlanks, [&](const std::string& where, std::string_view line) {
    if (line.size() < kMinTokenLength) {
      return Status::Invalid(where + ": token shorter than " + std::to_string(kMinTokenLength) +
                             " characters");
    }
    for (char c : line) {
      if (c == ' ' || c == '\t') return Status::Invalid(where + ": token contains blanks");
    }
    tokens.emplace_back(line);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  *out = std::move(tokens);
  return Status::Ok();
}

HttpAuthenticator::HttpAuthenticator(std::vector<HttpUser> users, std::vector<std::string> tokens,
                                     std::vector<std::string> metrics_tokens)
    : users_(std::move(users)),
      tokens_(std::move(tokens)),
      metrics_tokens_(std::move(metrics_tokens)) {}

bool HttpAuthenticator::AnyToken(const std::vector<std::string>& tokens, std::string_view token) {
  bool found = false;
  for (const std::string& t : tokens) found = ConstantTimeEquals(t, token) || found;
  return found;
}

bool HttpAuthenticator::CheckBasic(std::string_view encoded, std::string* who) const {
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Verified& v : verified_) {
      if (v.expires > now && ConstantTimeEquals(v.credentials, encoded)) {
        *who = v.user;
        return true;
      }
    }
  }
  std::string decoded;
  if (!DecodeBase64(encoded, &decoded)) return false;
  size_t colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  std::string name = decoded.substr(0, colon);
  std::string password = decoded.substr(colon + 1);
  const HttpUser* user = nullptr;
  for (const HttpUser& u : users_) {
    if (ConstantTimeEquals(u.name, name)) user = &u;
  }
  bool ok = VerifyPassword(password, user != nullptr ? user->hash : kDummyHash) && user != nullptr;
  std::memset(password.data(), 0, password.size());
  std::memset(decoded.data(), 0, decoded.size());
  if (!ok) return false;
  *who = user->name;
  std::lock_guard<std::mutex> lock(mu_);
  verified_.erase(std::remove_if(verified_.begin(), verified_.end(),
                                 [&](const Verified& v) { return v.expires <= now; }),
                  verified_.end());
  if (verified_.size() >= kMaxVerified) verified_.erase(verified_.begin());
  verified_.push_back(Verified{std::string(encoded), user->name, now + kVerifiedFor});
  return true;
}

HttpAuthenticator::Result HttpAuthenticator::Check(std::string_view authorization,
                                                   std::string* who) const {
  std::string_view h = Trim(authorization);
  if (h.empty()) return Result::kMissing;
  if (StartsWithIgnoreAsciiCase(h, "basic ")) {
    if (users_.empty()) return Result::kDenied;
    return CheckBasic(Trim(h.substr(6)), who) ? Result::kOk : Result::kDenied;
  }
  if (StartsWithIgnoreAsciiCase(h, "bearer ")) {
    if (tokens_.empty() || !AnyToken(tokens_, Trim(h.substr(7)))) return Result::kDenied;
    *who = "token";
    return Result::kOk;
  }
  return Result::kDenied;
}

HttpAuthenticator::Result HttpAuthenticator::CheckMetrics(std::string_view authorization) const {
  if (metrics_tokens_.empty()) return Result::kOk;
  std::string_view h = Trim(authorization);
  if (h.empty()) return Result::kMissing;
  if (StartsWithIgnoreAsciiCase(h, "bearer ") && AnyToken(metrics_tokens_, Trim(h.substr(7)))) {
    return Result::kOk;
  }
  std::string who;
  return Check(authorization, &who);
}

}  // namespace compd
