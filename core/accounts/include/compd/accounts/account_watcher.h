// AccountWatcher: every node's view of the locked accounts, and the MAIL gate built on it.
//
// Owns the current LockedAccounts snapshot (immutable, swapped atomically), one background
// thread and that thread's two Redis connections (one subscribed to the change channel, one
// for commands). Thread-safe: Current(), Gate() and stats() from any thread, and they never
// wait for Redis; Start and Stop from one controlling thread.
//
// Like MapWatcher: Start loads {prefix}accounts:locked from Redis (or, when Redis does not
// answer, from cache_file, which every load from Redis rewrites atomically and durably);
// the thread listens on {prefix}accounts:changes, where every lock and release publishes,
// so a lock made on any node (or by mapctl) refuses that account's next MAIL on every node
// within a second; it also polls {prefix}accounts:version every poll_interval in case a
// message was lost. While Redis is away the last snapshot keeps serving. Lock expiry is
// checked at lookup time against the local clock, so an expired lock stops applying
// without Redis.
#ifndef COMPD_ACCOUNTS_ACCOUNT_WATCHER_H_
#define COMPD_ACCOUNTS_ACCOUNT_WATCHER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "compd/base/log.h"
#include "compd/base/redis.h"
#include "compd/base/redis_watch.h"
#include "compd/base/settings.h"
#include "compd/base/status.h"
#include "compd/mta/tripwire.h"

namespace compd {

struct LockedAccounts {
  uint64_t version = 0;  // accounts:version in Redis; 0 when not from Redis
  // AccountKey -> lock expiry in unix ms (0: until released).
  std::unordered_map<std::string, int64_t> locked;
  std::string source;  // "redis" | "cache" | "empty"
  std::chrono::system_clock::time_point loaded;

  // Locked at `now_ms`: listed, and its expiry (if any) not reached.
  bool IsLocked(const std::string& account, int64_t now_ms) const;
};

// What a locked account's MAIL gets: lock_reply (451 -> 4.7.1, 550 -> 5.7.1) and lock_text.
struct LockReply {
  std::string rcode = "451";
  std::string xcode = "4.7.1";
  std::string text = "Account suspended: contact support";
  static Status FromConfig(const Config& config, LockReply* out);
};

// The gate's decision: kReject/kTempfail with the reply when `account` is locked at
// `now_ms`, else kContinue. Pure.
Verdict LockVerdict(const LockedAccounts& snapshot, const std::string& account, int64_t now_ms,
                    const LockReply& reply);

// The cache of locked accounts in the spool folder, for a start without Redis.
inline constexpr const char* kLockedAccountsCacheFile = "locked-accounts.json";

struct AccountWatcherOptions {
  RedisUrl redis;
  std::string prefix = "compd:";
  std::string cache_file;  // empty: none
  std::chrono::milliseconds poll_interval{5000};
  std::chrono::milliseconds redis_timeout{2000};
  std::chrono::milliseconds retry_min{250};
  std::chrono::milliseconds retry_max{5000};

  // From the configuration; the cache is kLockedAccountsCacheFile in spool_dir (none
  // without a spool). `redis` (it needs the password file) is kept from `out`.
  static Status FromConfig(const Config& config, AccountWatcherOptions* out);
};

struct AccountWatcherStats {
  uint64_t version = 0;
  size_t locked = 0;  // entries in the snapshot, expired ones included
  std::string source;
  uint64_t loads = 0;
  uint64_t redis_errors = 0;
  uint64_t refused = 0;  // MAILs the gate refused
  bool redis_up = false;
};

class AccountWatcher {
 public:
  AccountWatcher(AccountWatcherOptions options, LogFn log);
  ~AccountWatcher();  // Stop()s
  AccountWatcher(const AccountWatcher&) = delete;
  AccountWatcher& operator=(const AccountWatcher&) = delete;

  // Loads the first snapshot (Redis, else cache_file, else empty) and starts the thread.
  // Redis being away is not an error. kInternal if called twice.
  Status Start();
  // Joins the thread (within a few hundred milliseconds). Current() keeps working.
  void Stop();

  // Never null, never waits.
  std::shared_ptr<const LockedAccounts> Current() const;

  // The TripwireOutlets::account_gate function: refuses a locked account's MAIL with
  // `reply`. It keeps a pointer to this watcher, which must outlive it.
  std::function<Verdict(const std::string& account)> Gate(LockReply reply);

  AccountWatcherStats stats() const;

 private:
  bool CheckVersion();  // false when Redis failed
  bool Load();          // from Redis; false when Redis failed
  bool LoadCache();
  void WriteCache(const LockedAccounts& snap);
  void Install(std::shared_ptr<const LockedAccounts> snap);
  void Log(LogLevel level, const std::string& message) const;

  const AccountWatcherOptions options_;
  const LogFn log_;
  std::shared_ptr<const LockedAccounts> snapshot_;  // only through std::atomic_load/store

  std::atomic<bool> started_{false};
  RedisWatch watch_;  // the watching thread's loop, stop flag and backoff
  std::thread thread_;

  std::atomic<uint64_t> loads_{0}, refused_{0};

  // Start, then the thread only.
  std::unique_ptr<RedisClient> redis_;
};

}  // namespace compd

#endif  // COMPD_ACCOUNTS_ACCOUNT_WATCHER_H_
