#include "compd/accounts/account_watcher.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "compd/accounts/accounts.h"
#include "compd/base/file.h"
#include "compd/base/keys.h"
#include "compd/base/thread_guard.h"
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
  const std::string code = config.GetString("lock_reply");
  if (code != "550" && code != "451") {
    return Status::Invalid("lock_reply: '" + code + "' is not 451 or 550");
  }
  const std::string text = config.GetString("lock_text");
  Verdict v = code == "550" ? Verdict::Reject(text) : Verdict::Tempfail(text);
  if (v.text.empty()) return Status::Invalid("lock_text: must not be empty");
  out->rcode = std::move(v.rcode);
  out->xcode = std::move(v.xcode);
  out->text = std::move(v.text);
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

Status AccountWatcherOptions::FromConfig(const Config& config, AccountWatcherOptions* out) {
  AccountWatcherOptions o;
  o.redis = out->redis;
  o.prefix = config.GetString("prefix");
  const std::string spool_dir = config.GetString("spool_dir");
  if (!spool_dir.empty()) o.cache_file = spool_dir + "/" + kLockedAccountsCacheFile;
  o.poll_interval = std::chrono::milliseconds(config.GetDurationMs("map_poll_interval"));
  o.redis_timeout = std::chrono::milliseconds(config.GetDurationMs("redis_timeout"));
  *out = std::move(o);
  return Status::Ok();
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
  thread_ = StartLoopThread(
      "accounts", log_, [this] { watch_.Run([this] { return CheckVersion(); }); },
      [this] { return watch_.stopping(); });
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
  // Atomic and durable: a node that crashes and restarts while Redis is down must find
  // this run's locks, not an empty file. 0600: the file names customers' accounts.
  Status s = WriteFileAtomically(options_.cache_file, data, 0600);
  if (!s.ok()) {
    Log(LogLevel::kError,
        "accounts: " + s.message() + " (a start without Redis would not refuse locked accounts)");
  }
}

bool AccountWatcher::LoadCache() {
  if (options_.cache_file.empty()) return false;
  std::string text;
  Status s = ReadFile(options_.cache_file, &text);
  if (!s.ok()) {
    if (!s.IsNotFound()) Log(LogLevel::kError, "accounts: " + s.message());
    return false;
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
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
