// Redis: one synchronous connection (hiredis); its address is a RedisUrl (redis_url.h).
//
// A RedisClient is NOT thread-safe: give each thread its own. Every failure to reach or
// talk to Redis is Status::kUnavailable, so callers can never confuse an outage with an
// empty answer. The password is never part of ToString() or any message.
// With a Sentinel in its RedisUrl a client connects to the primary the sentinels name,
// checks it with ROLE, and drops its connection (the next call reconnects) on a
// connection error, a READONLY reply or a change of primary announced by the Sentinel.
#ifndef COMPD_BASE_REDIS_H_
#define COMPD_BASE_REDIS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "compd/base/redis_url.h"
#include "compd/base/status.h"

struct redisContext;

namespace compd {

struct RedisReply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisReply> elements;  // kArray
  bool is_nil() const { return type == Type::kNil; }
};

// A reply packed as it is read, for replies too big to hold as RedisReply objects (the
// whole map: a million fields, which hiredis' own objects would hold in about 110 MB and
// these in about 32). Holds an array of up to two levels (what MULTI/EXEC of HKEYS
// replies): its elements, and the strings of those that are arrays, back to back.
struct PackedReply {
  struct Item {
    RedisReply::Type type = RedisReply::Type::kNil;
    long long integer = 0;
    size_t first = 0;  // strings [first, first + count): the array's, or the one string
    size_t count = 0;
  };
  RedisReply::Type type = RedisReply::Type::kNil;  // of the whole reply
  std::string text;                                // when that is a string, status or error
  std::vector<Item> items;                         // when that is an array
  std::string bytes;                               // every string of `items`, back to back
  std::vector<size_t> ends;                        // string k ends at bytes[ends[k]]
  std::string_view str(size_t k) const {
    const size_t begin = k == 0 ? 0 : ends[k - 1];
    return std::string_view(bytes).substr(begin, ends[k] - begin);
  }
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
  // The server of the current (or last) connection, "host:port" or the socket path.
  std::string server() const;
  // With sentinels: the primary changed since this client last connected, so its next call
  // goes elsewhere (waiting loops use it to retry at once). Always false without.
  bool primary_moved() const;
  // With sentinels: the generation of the primary this client last connected to (see
  // sentinel.h); 0 without.
  uint64_t primary_generation() const { return generation_; }

  // One command. Connects first if needed; after a broken connection the next call
  // reconnects. An error reply from Redis (`-ERR ...`) is kUnavailable with its text.
  Status Command(const std::vector<std::string>& argv, RedisReply* reply = nullptr);
  // Several commands in one round trip; `replies` gets one reply per command. If any reply
  // is an error, the first error is returned (replies still holds all of them).
  Status Pipeline(const std::vector<std::vector<std::string>>& commands,
                  std::vector<RedisReply>* replies = nullptr);
  // The same, but the last reply is packed into `last` as it is read (kUnavailable when it
  // nests deeper than two levels). `replies` gets the others.
  Status Pipeline(const std::vector<std::vector<std::string>>& commands,
                  std::vector<RedisReply>* replies, PackedReply* last);

  // Pub/sub: after Subscribe the connection only reads messages. ReadMessage waits up to
  // `timeout`; on timeout it returns kNotFound with the connection intact.
  Status Subscribe(const std::vector<std::string>& channels);
  Status ReadMessage(std::chrono::milliseconds timeout, std::string* channel, std::string* payload);

 private:
  Status Fail(const std::string& what);
  Status ReadPacked(const std::string& command, PackedReply* out);
  // "redis <url>" or, with sentinels, "redis primary host:port of master NAME".
  std::string Where() const;
  // With sentinels: after connecting, ROLE must say master.
  Status CheckRole();
  // Drops a connection to a primary that is no longer current (with sentinels).
  void DropIfMoved();
  // Connects when needed and queues the commands in hiredis' output buffer; `what` names
  // the failure to send.
  Status Send(const std::vector<std::vector<std::string>>& commands, const char* what);
  RedisUrl url_;
  std::chrono::milliseconds timeout_;
  redisContext* ctx_ = nullptr;
  std::string host_;  // where the connection goes (the primary, with sentinels)
  int port_ = 0;
  uint64_t generation_ = 0;
  bool connecting_ = false;
};

// True for error replies that say "not now" rather than "never" (LOADING, BUSY, OOM,
// READONLY, NOAUTH, ...): a writer retries those later; any other error (a key of the wrong
// type, say) would fail the same way forever, so that write is logged and given up on.
bool IsTransientRedisError(const std::string& error_reply);

// Every hash whose key matches `pattern` (a SCAN MATCH glob), read a page at a time with
// one pipelined HGETALL per page: `fn` gets the key and the hash's field/value pairs in
// one flat list. A failure midway returns it; `fn` has seen the pages before.
Status ForEachHash(
    RedisClient* redis, const std::string& pattern,
    const std::function<void(const std::string& key, const std::vector<RedisReply>& fields)>& fn);

}  // namespace compd

#endif  // COMPD_BASE_REDIS_H_
