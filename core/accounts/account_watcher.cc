#include "compd/accounts/account_watcher.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "compd/accounts/accounts.h"
#include "compd/base/keys.h"
#include "compd/events/event.h"

namespace compd {

namespace {

std::string Describe(const LockedAccounts& s) {
  std::string d = std::to_string(s.locked.size()) + " locked accounts from " + s.source;
  if (s.source == "redis") d += " (version " + std::to_string(s.version) + ")";
  return d;
}

int64_t NowMs() { return UnixMs(std::chrono::system_clock::now()); }

}  // namespace

bool LockedAccounts::IsLocked(const std::string& account, int64_t now_ms) const {
  if (locked.empty()) return false;
  auto it = locked.find(AccountKey(account));
  if (it == locked.end()) return false;
  return it->second == 0 || it->second > now_ms;
}

Status LockReply::FromConfig(const Config& config, LockReply* out) {
  LockReply r;
  r.rcode = config.GetString("lock_reply");
  if (r.rcode == "550") {
    r.xcode = "5.7.1";
  } else if (r.rcode == "451") {
    r.xcode = "4.7.1";
  } else {
    return Status::Invalid("lock_reply: '" + r.rcode + "' is not 451 or 550");
  }
  r.text = SafeReplyText(config.GetString("lock_text"));
  if (r.text.empty()) return Status::Invalid("lock_text: must not be empty");
  *out = std::move(r);
  return Status::Ok();
}

Verdict LockVerdict(const LockedAccounts& snapshot, const std::string& account, int64_t now_ms,
                    const LockReply& reply) {
  if (!snapshot.IsLocked(account, now_ms)) return Verdict::Continue();
  Verdict v;
  v.kind = reply.rcode[0] == '5' ? Verdict::Kind::kReject : Verdict::Kind::kTempfail;
  v.rcode = reply.rcode;
  v.xcode = reply.xcode;
  v.text = reply.text;
  return v;
}

AccountWatcher::AccountWatcher(AccountWatcherOptions options, LogFn log)
    : options_(std::move(options)),
      log_(std::move(log)),
      watch_({options_.redis, Keys(options_.prefix).accounts_channel(), options_.poll_interval,
              options_.redis_timeout, options_.retry_min, options_.retry_max},
             "accounts", log_, [this] { return Describe(*Current()); }) {
  auto empty = std::make_shared<LockedAccounts>();
  empty->source = "empty";
  empty->loaded = std::chrono::system_clock::now();
  snapshot_ = std::move(empty);
}

AccountWatcher::~AccountWatcher() { Stop(); }

void AccountWatcher::Log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, message);
}

std::shared_ptr<const LockedAccounts> AccountWatcher::Current() const {
  return std::atomic_load(&snapshot_);
}

std::function<Verdict(const std::string&)> AccountWatcher::Gate(LockReply reply) {
  return [this, reply = std::move(reply)](const std::string& account) {
    Verdict v = LockVerdict(*Current(), account, NowMs(), reply);
    if (v.kind != Verdict::Kind::kContinue) {
      ++refused_;
      Log(LogLevel::kInfo, "MAIL refused: account " + EscapeForLog(account) + " is locked");
    }
    return v;
  };
}

void AccountWatcher::Install(std::shared_ptr<const LockedAccounts> snap) {
  std::atomic_store(&snapshot_, std::move(snap));
  ++loads_;
}

Status AccountWatcher::Start() {
  if (started_.exchange(true)) return Status::Internal("account watcher started twice");
  redis_ = std::make_unique<RedisClient>(options_.redis, options_.redis_timeout);
  if (!Load() && !LoadCache()) {
    Log(LogLevel::kWarning, "accounts: Redis " + options_.redis.ToString() +
                                " is unreachable and there is no cache of locked accounts: no "
                                "account is refused until Redis answers");
  }
  thread_ = std::thread([this] { watch_.Run([this] { return CheckVersion(); }); });
  return Status::Ok();
}

void AccountWatcher::Stop() {
  watch_.Stop();
  if (thread_.joinable()) thread_.join();
}

bool AccountWatcher::Load() {
  Keys keys(options_.prefix);
  std::vector<RedisReply> replies;
  auto attempt = [&] {
    replies.clear();
    return redis_->Pipeline({{"MULTI"},
                             {"GET", keys.accounts_version()},
                             {"HGETALL", keys.accounts_locked()},
                             {"EXEC"}},
                            &replies);
  };
  bool was_connected = redis_->connected();
  Status s = attempt();
  // A connection from before an outage fails once after Redis is back.
  if (!s.ok() && was_connected) s = attempt();
  if (s.ok() && (replies.size() != 4 || replies[3].elements.size() != 2)) {
    s = Status::Unavailable("unexpected reply to loading the locked accounts");
  }
  if (!s.ok()) {
    redis_->Disconnect();
    watch_.Failed(s);
    return false;
  }
  watch_.Succeeded();
  const RedisReply& version = replies[3].elements[0];
  const RedisReply& hash = replies[3].elements[1];
  auto snap = std::make_shared<LockedAccounts>();
  snap->version = version.is_nil() ? 0 : std::strtoull(version.str.c_str(), nullptr, 10);
  for (size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    snap->locked[hash.elements[i].str] =
        std::strtoll(hash.elements[i + 1].str.c_str(), nullptr, 10);
  }
  snap->source = "redis";
  snap->loaded = std::chrono::system_clock::now();
  auto old = Current();
  if (old->source != "redis" || old->version != snap->version) {
    Log(old->source == "redis" ? LogLevel::kDebug : LogLevel::kInfo,
        "accounts: loaded " + Describe(*snap));
  }
  Install(snap);
  WriteCache(*snap);
  return true;
}

bool AccountWatcher::CheckVersion() {
  Keys keys(options_.prefix);
  RedisReply reply;
  bool was_connected = redis_->connected();
  Status s = redis_->Command({"GET", keys.accounts_version()}, &reply);
  if (!s.ok() && was_connected) s = redis_->Command({"GET", keys.accounts_version()}, &reply);
  if (!s.ok()) {
    redis_->Disconnect();
    watch_.Failed(s);
    return false;
  }
  watch_.Succeeded();
  uint64_t version = reply.is_nil() ? 0 : std::strtoull(reply.str.c_str(), nullptr, 10);
  auto cur = Current();
  if (cur->source == "redis" && cur->version == version) return true;
  return Load();
}

void AccountWatcher::WriteCache(const LockedAccounts& snap) {
  if (options_.cache_file.empty()) return;
  nlohmann::json j = {{"version", snap.version},
                      {"written", FormatUtcMillis(snap.loaded)},
                      {"locked", nlohmann::json::object()}};
  for (const auto& [a, exp] : snap.locked) j["locked"][a] = exp;
  std::string data = j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::string tmp = options_.cache_file + ".tmp";
  // 0600: the file names customers' accounts.
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0;
  for (size_t off = 0; ok && off < data.size();) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) off += static_cast<size_t>(n);
  }
  if (fd >= 0 && close(fd) != 0) ok = false;
  if (ok) ok = rename(tmp.c_str(), options_.cache_file.c_str()) == 0;
  if (!ok) {
    Log(LogLevel::kError, "accounts: cannot write " + options_.cache_file + ": " +
                              std::strerror(errno) +
                              " (a start without Redis would not refuse locked accounts)");
    unlink(tmp.c_str());
  }
}

bool AccountWatcher::LoadCache() {
  if (options_.cache_file.empty()) return false;
  std::ifstream in(options_.cache_file);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  auto snap = std::make_shared<LockedAccounts>();
  if (!j.is_object() || !j.contains("locked") || !j["locked"].is_object()) {
    Log(LogLevel::kError, "accounts: " + options_.cache_file +
                              " is not a cache of locked "
                              "accounts; ignored");
    return false;
  }
  for (const auto& [a, exp] : j["locked"].items()) {
    snap->locked[a] = exp.is_number_integer() ? exp.get<int64_t>() : 0;
  }
  snap->source = "cache";
  snap->loaded = std::chrono::system_clock::now();
  std::string written = j.contains("written") && j["written"].is_string()
                            ? j["written"].get<std::string>()
                            : std::string("?");
  Log(LogLevel::kWarning, "accounts: Redis " + options_.redis.ToString() +
                              " is unreachable; enforcing " + Describe(*snap) + " " +
                              options_.cache_file + " (written " + written + ") until it answers");
  Install(snap);
  return true;
}

AccountWatcherStats AccountWatcher::stats() const {
  AccountWatcherStats st;
  auto cur = Current();
  st.version = cur->version;
  st.locked = cur->locked.size();
  st.source = cur->source;
  st.loads = loads_;
  st.redis_errors = watch_.errors();
  st.refused = refused_;
  st.redis_up = watch_.up();
  return st;
}

}  // namespace compd
