#include "compd/base/redis.h"

#include <hiredis/hiredis.h>
#include <poll.h>

#include <cerrno>

#include "compd/base/sentinel.h"

namespace compd {

namespace {

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

// hiredis reader callbacks that pack a reply into a PackedReply (see redis.h) instead of
// allocating an object per element. Every callback returns the Packer as the "object":
// hiredis only needs it non-null, and frees nothing of ours (PackFree).
struct Packer {
  PackedReply* out;
  bool too_deep = false;
};

int Depth(const redisReadTask* task) {
  int depth = 0;
  for (; task->parent != nullptr; task = task->parent) ++depth;
  return depth;
}

RedisReply::Type TypeOf(int hiredis_type) {
  switch (hiredis_type) {
    case REDIS_REPLY_STRING:
      return RedisReply::Type::kString;
    case REDIS_REPLY_STATUS:
      return RedisReply::Type::kStatus;
    case REDIS_REPLY_ERROR:
      return RedisReply::Type::kError;
    case REDIS_REPLY_INTEGER:
      return RedisReply::Type::kInteger;
    case REDIS_REPLY_ARRAY:
      return RedisReply::Type::kArray;
    default:
      return RedisReply::Type::kNil;
  }
}

// The item of the top array that `task` (at depth 1) fills.
PackedReply::Item* ItemOf(Packer* p, const redisReadTask* task) {
  if (task->idx < 0 || static_cast<size_t>(task->idx) >= p->out->items.size()) {
    p->too_deep = true;  // cannot happen: the top array announced its size
    return nullptr;
  }
  return &p->out->items[static_cast<size_t>(task->idx)];
}

void* PackStringImpl(const redisReadTask* task, char* str, size_t len) {
  auto* p = static_cast<Packer*>(task->privdata);
  PackedReply& o = *p->out;
  const int depth = Depth(task);
  if (depth == 0) {
    o.type = TypeOf(task->type);
    o.text.assign(str, len);
  } else if (depth <= 2) {
    PackedReply::Item* item = ItemOf(p, depth == 1 ? task : task->parent);
    if (item == nullptr) return p;
    if (depth == 1) {
      item->type = TypeOf(task->type);
      item->first = o.ends.size();
    }
    o.bytes.append(str, len);
    o.ends.push_back(o.bytes.size());
    ++item->count;
  } else {
    p->too_deep = true;
  }
  return p;
}

void* PackArrayImpl(const redisReadTask* task, int elements) {
  auto* p = static_cast<Packer*>(task->privdata);
  PackedReply& o = *p->out;
  const size_t n = elements > 0 ? static_cast<size_t>(elements) : 0;
  const int depth = Depth(task);
  if (depth == 0) {
    o.type = RedisReply::Type::kArray;
    o.items.assign(n, PackedReply::Item());
  } else if (depth == 1) {
    PackedReply::Item* item = ItemOf(p, task);
    if (item == nullptr) return p;
    item->type = RedisReply::Type::kArray;
    item->first = o.ends.size();
    o.ends.reserve(o.ends.size() + n);
  } else {
    p->too_deep = true;
  }
  return p;
}

void* PackInteger(const redisReadTask* task, long long value) {
  auto* p = static_cast<Packer*>(task->privdata);
  const int depth = Depth(task);
  if (depth == 0) {
    p->out->type = RedisReply::Type::kInteger;
    p->out->text = std::to_string(value);
  } else if (depth == 1) {
    PackedReply::Item* item = ItemOf(p, task);
    if (item != nullptr) {
      item->type = RedisReply::Type::kInteger;
      item->integer = value;
    }
  } else {
    p->too_deep = true;
  }
  return p;
}

void* PackNil(const redisReadTask* task) {
  auto* p = static_cast<Packer*>(task->privdata);
  if (Depth(task) > 2) p->too_deep = true;  // a nil string or array: the defaults say nil
  return p;
}

// No exception may unwind through hiredis' C frames: an allocation that fails is hiredis'
// "out of memory" (NULL), which fails the read cleanly (ReadPacked then disconnects).
void* PackString(const redisReadTask* task, char* str, size_t len) {
  try {
    return PackStringImpl(task, str, len);
  } catch (...) {
    return nullptr;
  }
}

void* PackArray(const redisReadTask* task, int elements) {
  try {
    return PackArrayImpl(task, elements);
  } catch (...) {
    return nullptr;
  }
}

void PackFree(void*) {}

redisReplyObjectFunctions kPackFunctions = {PackString, PackArray, PackInteger, PackNil, PackFree};

struct ReplyDeleter {
  void operator()(void* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

}  // namespace

RedisClient::RedisClient(RedisUrl url, std::chrono::milliseconds timeout)
    : url_(std::move(url)), timeout_(timeout) {}

RedisClient::~RedisClient() { Disconnect(); }

void RedisClient::set_timeout(std::chrono::milliseconds timeout) {
  timeout_ = timeout;
  if (ctx_ != nullptr) redisSetTimeout(ctx_, ToTimeval(timeout_));
}

void RedisClient::Disconnect() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

std::string RedisClient::server() const {
  if (!url_.sentinel && !url_.socket_path.empty()) return url_.socket_path;
  return HostPort{host_.empty() ? url_.host : host_, port_ == 0 ? url_.port : port_}.ToString();
}

std::string RedisClient::Where() const {
  if (!url_.sentinel) return "redis " + url_.ToString();
  if (host_.empty()) return "redis " + url_.ToString();
  return "redis primary " + server() + " of master " + url_.sentinel->options().master;
}

bool RedisClient::primary_moved() const {
  return url_.sentinel && url_.sentinel->generation() != generation_;
}

void RedisClient::DropIfMoved() {
  // Not while connecting: AUTH, SELECT and ROLE go to the primary Connect chose.
  if (ctx_ != nullptr && !connecting_ && primary_moved()) Disconnect();
}

Status RedisClient::Fail(const std::string& what) {
  std::string msg = Where() + ": " + what;
  if (ctx_ != nullptr && ctx_->err != 0) msg += ": " + std::string(ctx_->errstr);
  Disconnect();
  if (url_.sentinel) url_.sentinel->ReportLost(generation_, msg);
  return Status::Unavailable(msg);
}

Status RedisClient::CheckRole() {
  RedisReply reply;
  Status s = Command({"ROLE"}, &reply);
  if (ctx_ == nullptr) return s;  // the connection broke (Fail reported it)
  std::string role;
  // An error reply (an ACL without ROLE) leaves the sentinels' word standing.
  if (s.ok() && ParseRoleReply(reply, &role).ok() && role != "master") {
    std::string msg = Where() + ": is a " + role +
                      ", not the primary (the sentinels have not finished failing over)";
    Disconnect();
    url_.sentinel->ReportLost(generation_, msg);
    return Status::Unavailable(msg);
  }
  url_.sentinel->ReportConfirmed(generation_);
  return Status::Ok();
}

Status RedisClient::Connect() {
  if (ctx_ != nullptr) return Status::Ok();
  timeval tv = ToTimeval(timeout_);
  if (!url_.sentinel) {
    host_ = url_.host;
    port_ = url_.port;
  } else {
    // Seen, even if the sentinels do not answer now: primary_moved() must report the next
    // change, not this one again (waiting loops would spin on it).
    generation_ = url_.sentinel->generation();
    Primary primary;
    Status s = url_.sentinel->Resolve(&primary);
    if (!s.ok()) return s;
    host_ = primary.address.host;
    port_ = primary.address.port;
    generation_ = primary.generation;
  }
  ctx_ = url_.sentinel || url_.socket_path.empty()
             ? redisConnectWithTimeout(host_.c_str(), port_, tv)
             : redisConnectUnixWithTimeout(url_.socket_path.c_str(), tv);
  if (ctx_ == nullptr) return Status::Unavailable(Where() + ": out of memory");
  if (ctx_->err != 0) return Fail("cannot connect");
  struct Connecting {
    bool* flag;
    ~Connecting() { *flag = false; }
  } connecting{&connecting_};
  connecting_ = true;
  if (redisSetTimeout(ctx_, tv) != REDIS_OK) return Fail("cannot set timeout");
  if (!url_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!url_.user.empty()) auth.push_back(url_.user);
    auth.push_back(url_.password);
    RedisReply reply;
    Status s = Command(auth, &reply);
    // A password given to a Redis that has none is harmless (and happens while a password
    // is being rolled out): go on. Never echo the command: it holds the password.
    if (!s.ok() && reply.str.find("without any password configured") == std::string::npos) {
      return Status::Unavailable(Where() + ": authentication failed");
    }
  }
  if (url_.db != 0) {
    Status s = Command({"SELECT", std::to_string(url_.db)});
    if (!s.ok()) return s;
  }
  if (url_.sentinel) return CheckRole();
  return Status::Ok();
}

Status RedisClient::Command(const std::vector<std::string>& argv, RedisReply* reply) {
  std::vector<RedisReply> replies;
  Status s = Pipeline({argv}, &replies);
  if (reply != nullptr && !replies.empty()) *reply = std::move(replies[0]);
  return s;
}

Status RedisClient::ReadPacked(const std::string& command, PackedReply* out) {
  *out = PackedReply();
  Packer packer{out};
  redisReader* reader = ctx_->reader;
  redisReplyObjectFunctions* saved_fn = reader->fn;
  void* saved_privdata = reader->privdata;
  reader->fn = &kPackFunctions;
  reader->privdata = &packer;
  void* raw = nullptr;
  if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
    // Disconnect while our functions are in place: freeing the reader frees the partial
    // reply with them (a no-op), never with hiredis' own freeReplyObject.
    return Fail(command.empty() ? "no reply" : "no reply to " + command);
  }
  reader->fn = saved_fn;
  reader->privdata = saved_privdata;
  if (packer.too_deep) {
    return Status::Unavailable(Where() + ": " + command + ": reply nested deeper than expected");
  }
  if (out->type == RedisReply::Type::kError) {
    return Status::Unavailable(Where() + ": " + (command.empty() ? "" : command + ": ") +
                               out->text);
  }
  return Status::Ok();
}

Status RedisClient::Send(const std::vector<std::vector<std::string>>& commands, const char* what) {
  DropIfMoved();
  if (ctx_ == nullptr) {
    Status s = Connect();
    if (!s.ok()) return s;
  }
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& cmd : commands) {
    args.clear();
    lens.clear();
    for (const auto& a : cmd) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lens.data()) !=
        REDIS_OK) {
      return Fail(what);
    }
  }
  return Status::Ok();
}

Status RedisClient::Pipeline(const std::vector<std::vector<std::string>>& commands,
                             std::vector<RedisReply>* replies) {
  return Pipeline(commands, replies, nullptr);
}

Status RedisClient::Pipeline(const std::vector<std::vector<std::string>>& commands,
                             std::vector<RedisReply>* replies, PackedReply* last) {
  if (replies != nullptr) replies->clear();
  Status sent = Send(commands, "cannot send command");
  if (!sent.ok()) return sent;
  Status first_error;
  bool readonly = false;
  for (size_t i = 0; i < commands.size(); ++i) {
    if (last != nullptr && i + 1 == commands.size()) {
      Status s = ReadPacked(commands[i].empty() ? "" : commands[i][0], last);
      if (first_error.ok()) first_error = s;
      break;
    }
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
      return Fail(commands[i].empty() ? "no reply" : "no reply to " + commands[i][0]);
    }
    ReplyPtr r(static_cast<redisReply*>(raw));
    RedisReply converted = Convert(r.get());
    if (converted.type == RedisReply::Type::kError && first_error.ok()) {
      first_error = Status::Unavailable(
          Where() + ": " + (commands[i].empty() ? "" : commands[i][0] + ": ") + converted.str);
    }
    if (converted.type == RedisReply::Type::kError && converted.str.rfind("READONLY", 0) == 0) {
      readonly = true;
    }
    if (replies != nullptr) replies->push_back(std::move(converted));
  }
  // A primary demoted under us: the next call asks the sentinels where the primary went.
  if (readonly && url_.sentinel) {
    Disconnect();
    url_.sentinel->ReportLost(generation_, Where() + " answers READONLY");
  }
  return first_error;
}

Status RedisClient::Subscribe(const std::vector<std::string>& channels) {
  std::vector<std::string> argv = {"SUBSCRIBE"};
  argv.insert(argv.end(), channels.begin(), channels.end());
  Status sent = Send({argv}, "cannot subscribe");
  if (!sent.ok()) return sent;
  // One confirmation per channel.
  for (size_t i = 0; i < channels.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return Fail("subscribe failed");
    ReplyPtr r(static_cast<redisReply*>(raw));
    if (r->type == REDIS_REPLY_ERROR) return Fail(std::string("subscribe: ") + r->str);
  }
  return Status::Ok();
}

Status RedisClient::ReadMessage(std::chrono::milliseconds timeout, std::string* channel,
                                std::string* payload) {
  if (primary_moved()) {
    Disconnect();
    return Status::Unavailable(Where() + ": the primary moved; subscribe again");
  }
  if (ctx_ == nullptr) return Status::Unavailable(Where() + ": not connected");
  for (;;) {
    void* raw = nullptr;
    // A reply may already sit in hiredis' buffer; only then wait on the socket, with poll,
    // because a blocking read timing out would leave the context unusable.
    if (redisGetReplyFromReader(ctx_, &raw) != REDIS_OK) return Fail("protocol error");
    if (raw == nullptr) {
      pollfd pfd{ctx_->fd, POLLIN, 0};
      int n = poll(&pfd, 1, static_cast<int>(timeout.count()));
      if (n == 0) return Status::NotFound("no message");
      if (n < 0) {
        if (errno == EINTR) return Status::NotFound("interrupted");
        return Fail("poll failed");
      }
      if (redisBufferRead(ctx_) != REDIS_OK) return Fail("connection lost");
      if (redisGetReplyFromReader(ctx_, &raw) != REDIS_OK) return Fail("protocol error");
      if (raw == nullptr) continue;  // partial message; wait for the rest
    }
    ReplyPtr r(static_cast<redisReply*>(raw));
    RedisReply reply = Convert(r.get());
    if (reply.type == RedisReply::Type::kArray && reply.elements.size() == 3 &&
        reply.elements[0].str == "message") {
      if (channel != nullptr) *channel = reply.elements[1].str;
      if (payload != nullptr) *payload = reply.elements[2].str;
      return Status::Ok();
    }
    // subscribe confirmations and pongs: keep reading.
  }
}

bool IsTransientRedisError(const std::string& err) {
  static const char* const kTransient[] = {"LOADING",     "BUSY",
                                           "OOM",         "READONLY",
                                           "MASTERDOWN",  "TRYAGAIN",
                                           "NOSCRIPT",    "MISCONF",
                                           "NOAUTH",      "WRONGPASS",
                                           "CLUSTERDOWN", "NOREPLICAS",
                                           "NOPERM",      "ERR max number of clients"};
  for (const char* p : kTransient) {
    if (err.rfind(p, 0) == 0) return true;
  }
  return false;
}

Status ForEachHash(
    RedisClient* redis, const std::string& pattern,
    const std::function<void(const std::string& key, const std::vector<RedisReply>& fields)>& fn) {
  std::string cursor = "0";
  do {
    RedisReply page;
    Status s = redis->Command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}, &page);
    if (!s.ok()) return s;
    if (page.elements.size() != 2) return Status::Unavailable("SCAN: unexpected reply");
    cursor = page.elements[0].str;
    std::vector<std::vector<std::string>> cmds;
    for (const RedisReply& k : page.elements[1].elements) cmds.push_back({"HGETALL", k.str});
    if (cmds.empty()) continue;
    std::vector<RedisReply> replies;
    s = redis->Pipeline(cmds, &replies);
    if (!s.ok()) return s;
    for (size_t i = 0; i < replies.size(); ++i) fn(cmds[i][1], replies[i].elements);
  } while (cursor != "0");
  return Status::Ok();
}

}  // namespace compd
