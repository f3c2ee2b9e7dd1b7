// Redis: URL parsing and one synchronous connection (hiredis).
//
// A RedisClient is NOT thread-safe: give each thread its own. Every failure to reach or
// talk to Redis is Status::kUnavailable, so callers can never confuse an outage with an
// empty answer. The password is never part of ToString() or any message.
#ifndef COMPD_REDIS_H_
#define COMPD_REDIS_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "compd/status.h"

struct redisContext;
struct redisReply;

namespace compd {

struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string socket_path;  // non-empty for unix:///path
  int db = 0;
  std::string user;      // ACL user (Redis 6+); empty for the default user
  std::string password;  // never from a URL on the command line: see ParseRedisUrl
  // `redis://user@host:port/db` or `unix:///path?db=N`, never with the password.
  std::string ToString() const;
};

// Accepts `redis://[user@]host[:port][/db]` and `unix:///path/redis.sock[?db=N]`.
// A password inside the URL (`redis://user:pw@...`) is rejected with kInvalid, because
// URLs end up in argv, logs and `ps`; passwords come from COMPD_REDIS_PASSWORD or a file.
Status ParseRedisUrl(std::string_view url, RedisUrl* out);

struct RedisReply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisReply> elements;  // kArray
  bool is_nil() const { return type == Type::kNil; }
};

// A reply read in place, as hiredis parsed it, for replies too big to copy (the whole map:
// a million fields). Only valid inside the callback it is handed to.
class RedisReplyView {
 public:
  RedisReply::Type type() const;
  std::string_view str() const;  // kString, kStatus, kError
  long long integer() const;
  size_t size() const;  // elements of a kArray, else 0
  RedisReplyView operator[](size_t i) const;

 private:
  friend class RedisClient;
  explicit RedisReplyView(const redisReply* r) : r_(r) {}
  const redisReply* r_;
};

class RedisClient {
 public:
  explicit RedisClient(RedisUrl url,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  const RedisUrl& url() const { return url_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  // Changes the connect/read/write timeout, also of a live connection (bulk writers lengthen
  // it for one long script call: a reply that times out leaves the outcome unknown).
  void set_timeout(std::chrono::milliseconds timeout);

  // Connects (if not connected), authenticates and selects the database.
  Status Connect();
  bool connected() const { return ctx_ != nullptr; }
  void Disconnect();

  // One command. Connects first if needed; after a broken connection the next call
  // reconnects. An error reply from Redis (`-ERR ...`) is kUnavailable with its text.
  Status Command(const std::vector<std::string>& argv, RedisReply* reply = nullptr);
  // Several commands in one round trip; `replies` gets one reply per command. If any reply
  // is an error, the first error is returned (replies still holds all of them).
  Status Pipeline(const std::vector<std::vector<std::string>>& commands,
                  std::vector<RedisReply>* replies = nullptr);
  // The same, but the last reply is not copied: `last` reads it in place (and its status
  // is returned, unless an earlier reply was an error). `replies` gets the others.
  Status Pipeline(const std::vector<std::vector<std::string>>& commands,
                  std::vector<RedisReply>* replies,
                  const std::function<Status(const RedisReplyView&)>& last);

  // Pub/sub: after Subscribe the connection only reads messages. ReadMessage waits up to
  // `timeout`; on timeout it returns kNotFound with the connection intact.
  Status Subscribe(const std::vector<std::string>& channels);
  Status ReadMessage(std::chrono::milliseconds timeout, std::string* channel, std::string* payload);

 private:
  Status Fail(const std::string& what);
  RedisUrl url_;
  std::chrono::milliseconds timeout_;
  redisContext* ctx_ = nullptr;
};

// True for error replies that say "not now" rather than "never" (LOADING, BUSY, OOM,
// READONLY, NOAUTH, ...): a writer retries those later; any other error (a key of the wrong
// type, say) would fail the same way forever, so that write is logged and given up on.
bool IsTransientRedisError(const std::string& error_reply);

// The password from the environment (COMPD_REDIS_PASSWORD) or, if `password_file` is
// not empty, from that file (first line, trailing newline removed). kIoError names the
// file when it cannot be read.
Status LoadRedisPassword(const std::string& password_file, std::string* password);

}  // namespace compd

#endif  // COMPD_REDIS_H_
