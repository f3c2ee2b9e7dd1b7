// HttpAuth: who may see the dashboard and the JSON API, and who may scrape /metrics.
//
// Two kinds of credentials, both read from files named in the settings (never argv):
//   users file   one `name:hash` per line, the hash from crypt(3): yescrypt ($y$, what
//                `mapctl dashboard-user` and Debian's passwd make), SHA-crypt ($6$, $5$) or
//                bcrypt ($2b$); HTTP basic auth is checked against it
//   token files  one bearer token per line (at least 16 characters)
// Blank lines and lines starting with '#' are ignored. Errors name file and line.
// Every comparison of a secret runs in constant time; an unknown user costs a hash
// computation like a known one, so timing tells nobody which users exist.
//
// HttpAuthenticator is immutable after construction apart from a small cache of recently
// verified basic credentials (a dashboard refreshing every few seconds must not cost a
// yescrypt computation each time); thread-safe.
#ifndef COMPD_WATCH_HTTP_AUTH_H_
#define COMPD_WATCH_HTTP_AUTH_H_

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "compd/base/status.h"

namespace compd {

struct HttpUser {
  std::string name;
  std::string hash;
};

Status LoadUsersFile(const std::string& path, std::vector<HttpUser>* out);
Status LoadTokenFile(const std::string& path, std::vector<std::string>* out);

// True when a and b are equal; the time taken depends only on their lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);
// A new yescrypt hash of `password` with a random salt. kInternal if libcrypt fails.
Status HashPassword(std::string_view password, std::string* hash);
// Whether `password` matches a crypt(3) `hash` (constant-time comparison).
bool VerifyPassword(std::string_view password, const std::string& hash);
// Whether `hash` is a crypt(3) hash of a method accepted here.
bool IsSupportedHash(std::string_view hash);

class HttpAuthenticator {
 public:
  enum class Result { kOk, kMissing, kDenied };

  HttpAuthenticator(std::vector<HttpUser> users, std::vector<std::string> tokens,
                    std::vector<std::string> metrics_tokens);

  // An Authorization header value ("Basic ..." or "Bearer ..."; empty: none) against the
  // users and tokens. `who` gets the user name or "token".
  Result Check(std::string_view authorization, std::string* who) const;
  // For /metrics: open when no metrics tokens are configured; otherwise a metrics token or
  // any credential Check accepts.
  Result CheckMetrics(std::string_view authorization) const;

  bool has_credentials() const { return !users_.empty() || !tokens_.empty(); }

 private:
  bool CheckBasic(std::string_view encoded, std::string* who) const;
  static bool AnyToken(const std::vector<std::string>& tokens, std::string_view token);

  const std::vector<HttpUser> users_;
  const std::vector<std::string> tokens_;
  const std::vector<std::string> metrics_tokens_;

  struct Verified {
    std::string credentials;  // the base64 part of the header
    std::string user;
    std::chrono::steady_clock::time_point expires;
  };
  mutable std::mutex mu_;
  mutable std::vector<Verified> verified_;
};

}  // namespace compd

#endif  // COMPD_WATCH_HTTP_AUTH_H_
