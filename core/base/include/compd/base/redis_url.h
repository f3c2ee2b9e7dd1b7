// RedisUrl: where Redis is and how to log in (URL, user, password, or the sentinels that
// name the primary), parsed from redis_url; and the Redis password from its file or the
// environment.
//
// Values only, safe to copy between threads; the Sentinel a RedisUrl may carry is
// thread-safe (sentinel.h). The password is never part of ToString() or any message.
#ifndef COMPD_BASE_REDIS_URL_H_
#define COMPD_BASE_REDIS_URL_H_

#include <memory>
#include <string>
#include <string_view>

#include "compd/base/status.h"

namespace compd {

class Sentinel;

struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string socket_path;  // non-empty for unix:///path
  int db = 0;
  std::string user;      // ACL user (Redis 6+); empty for the default user
  std::string password;  // never from a URL on the command line: see ParseRedisUrl
  // When set, the sentinels name the host and port (host, port and socket_path unused);
  // shared by every client of the process (redis_config.h makes it).
  std::shared_ptr<Sentinel> sentinel;
  // `redis://user@host:port/db` or `unix:///path?db=N`, never with the password;
  // `master NAME via sentinels h:p,h:p (db N)` with sentinels.
  std::string ToString() const;
};

// Accepts `redis://[user@]host[:port][/db]` and `unix:///path/redis.sock[?db=N]`.
// A password inside the URL (`redis://user:pw@...`) is rejected with kInvalid, because
// URLs end up in argv, logs and `ps`; passwords come from COMPD_REDIS_PASSWORD or a file.
Status ParseRedisUrl(std::string_view url, RedisUrl* out);

// The password from the environment (COMPD_REDIS_PASSWORD) or, if `password_file` is
// not empty, from that file (first line, trailing newline removed). kIoError names the
// file when it cannot be read.
Status LoadRedisPassword(const std::string& password_file, std::string* password);

}  // namespace compd

#endif  // COMPD_BASE_REDIS_URL_H_
