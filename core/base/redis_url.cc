#include "compd/base/redis_url.h"

#include <cstdlib>
#include <fstream>

#include "compd/base/sentinel.h"

namespace compd {

namespace {

bool ParseInt(std::string_view s, int lo, int hi, int* out) {
  if (s.empty() || s.size() > 9) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

}  // namespace

std::string RedisUrl::ToString() const {
  if (sentinel) {
    std::string s = sentinel->Describe();
    if (!user.empty()) s += " (user " + user + ")";
    if (db != 0) s += " (db " + std::to_string(db) + ")";
    return s;
  }
  if (!socket_path.empty()) {
    return "unix://" + socket_path + (db != 0 ? "?db=" + std::to_string(db) : "");
  }
  std::string s = "redis://";
  if (!user.empty()) s += user + "@";
  bool v6 = host.find(':') != std::string::npos;
  s += v6 ? "[" + host + "]" : host;
  s += ":" + std::to_string(port);
  if (db != 0) s += "/" + std::to_string(db);
  return s;
}

namespace {

// The URL as it may be shown: a password in it (which is refused) becomes "***", so the
// error about it does not print it to a terminal or a log.
std::string RedactedUrl(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  size_t start = scheme + 3;
  size_t end = url.find('/', start);
  std::string_view authority = url.substr(start, end == std::string_view::npos ? end : end - start);
  size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  size_t colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, start + colon + 1)) + "***" +
         std::string(url.substr(start + at));
}

}  // namespace

Status ParseRedisUrl(std::string_view url, RedisUrl* out) {
  RedisUrl r;
  auto bad = [&](const std::string& why) {
    return Status::Invalid("redis URL '" + RedactedUrl(url) + "': " + why);
  };
  if (url.rfind("unix://", 0) == 0) {
    std::string_view rest = url.substr(7);
    size_t q = rest.find('?');
    std::string_view path = rest.substr(0, q);
    if (path.empty() || path[0] != '/') return bad("unix socket path must be absolute");
    r.socket_path = std::string(path);
    if (q != std::string_view::npos) {
      std::string_view query = rest.substr(q + 1);
      if (query.rfind("db=", 0) != 0 || !ParseInt(query.substr(3), 0, 1000000, &r.db)) {
        return bad("only ?db=N is understood after a unix socket path");
      }
    }
    *out = r;
    return Status::Ok();
  }
  if (url.rfind("redis://", 0) != 0) {
    return bad("expected redis://host:port/db or unix:///path");
  }
  std::string_view rest = url.substr(8);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && !ParseInt(db, 0, 1000000, &r.db)) return bad("database must be a number");
  }
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    if (userinfo.find(':') != std::string_view::npos) {
      return bad(
          "a password in the URL is refused (it would show in ps and logs); "
          "use COMPD_REDIS_PASSWORD or redis_password_file");
    }
    r.user = std::string(userinfo);
    authority = authority.substr(at + 1);
  }
  std::string_view hostport = authority;
  std::string_view port;
  if (!hostport.empty() && hostport[0] == '[') {
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return bad("unterminated [IPv6] host");
    r.host = std::string(hostport.substr(1, close - 1));
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("junk after ]");
      port = after.substr(1);
    }
  } else {
    size_t colon = hostport.rfind(':');
    if (colon != std::string_view::npos) {
      port = hostport.substr(colon + 1);
      hostport = hostport.substr(0, colon);
    }
    if (!hostport.empty()) r.host = std::string(hostport);
  }
  if (r.host.empty()) return bad("empty host");
  if (!port.empty() && !ParseInt(port, 1, 65535, &r.port)) return bad("port must be 1-65535");
  *out = r;
  return Status::Ok();
}

Status LoadRedisPassword(const std::string& password_file, std::string* password) {
  password->clear();
  if (!password_file.empty()) {
    std::ifstream in(password_file);
    if (!in) return Status::IoError(password_file + ": cannot read the Redis password file");
    std::getline(in, *password);
    while (!password->empty() && (password->back() == '\r' || password->back() == '\n')) {
      password->pop_back();
    }
    return Status::Ok();
  }
  if (const char* env = std::getenv("COMPD_REDIS_PASSWORD")) *password = env;
  return Status::Ok();
}

}  // namespace compd
