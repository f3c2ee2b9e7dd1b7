// RedisDetectState: the live detection state, the same in-memory store the engine reads
// on the mail path (no Redis call there), shared with the other nodes and kept across
// restarts through Redis by a thread of its own.
//
// Owns the in-memory state (MemoryDetectState), a queue of what this node learned, one
// sync thread and its Redis connection. Thread-safe: the DetectState methods from any
// thread (the engine's), Start/Stop from one controlling thread.
//
// Every sync_interval the thread (1) writes what this node learned: each network group
// an account used for the first time (or again after hours) is merged into its hash and
// appended to a feed stream; account domains go to a set; (2) reads the feed entries
// other nodes appended since its last read and merges them into memory, then asks the
// engine (through on_remote) to re-evaluate the accounts that got a new group. So a
// signal that needs every node's view (three new networks seen by three nodes) fires
// within two sync intervals. Start() loads every account's groups and the domains before
// it returns, so no message is judged without them (if Redis does not answer, the thread
// loads them when it comes back): a restart keeps the known networks, and the recent new
// groups are rebuilt from their first-use times (MergeStoredGroups).
//
// The signal window (signal_window.h) travels the same way: each entry the engine put in
// an account's window is written to its window hash and the feed; other nodes merge it
// and re-evaluate the account (the combination may add up only with another node's
// signals), a restart loads the hashes. So a window is seen by every node within two
// sync intervals and survives restarts; the mail path never waits for Redis.
//
// Redis layout (A = AccountKey):
//   {prefix}detect:groups:A  hash group -> "first_ms last_ms network"; expires
//                            known_network_days after its last write
//   {prefix}detect:domains   set of the domains of accounts seen authenticating
//   {prefix}detect:window:A  hash "signal|part|time_ms" -> "score evidence-json"; the
//                            newest 64 entries, expiring signal_window_ms after the last
//   {prefix}detect:feed      stream (MAXLEN ~ 100000): a, g, n, ip, t, new, node; or
//                            d (a domain), node; or a, w (signal), p (part), t, s (score),
//                            e (evidence), node
// `mapctl history import` writes the same hashes (MergeKnownGroups), the domains, and
// announces what changed in the feed (AnnounceKnownGroups).
#ifndef COMPD_DETECT_REDIS_DETECT_STATE_H_
#define COMPD_DETECT_REDIS_DETECT_STATE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "compd/base/log.h"
#include "compd/base/redis.h"
#include "compd/detect/detect_state.h"

namespace compd {

struct RedisDetectOptions {
  RedisUrl redis;
  std::string prefix = "compd:";
  std::string node;  // this node's name in the feed (its own entries are skipped)
  std::chrono::milliseconds sync_interval{1000};
  std::chrono::milliseconds redis_timeout{2000};
  int64_t window_ms = 3600 * 1000;  // new_networks_window: which loaded groups are recent
  int64_t known_network_ms = int64_t{120} * 86400 * 1000;
  // How long window entries are kept: the longest signal_window (the engine counts only
  // those within its own).
  int64_t signal_window_ms = int64_t{7} * 86400 * 1000;
};

// One field of an account's window hash; false when it is not one.
bool ParseStoredWindowEntry(const std::string& field, const std::string& value, WindowEntry* out);
std::string WindowField(const WindowEntry& e);

// Merges `use` (another node's, or a loaded group) into `a`; true when the group entered
// the account's recent new groups: it is within the window and either new where it was
// seen (was_new) or unknown here while `a` has an earlier use (the other node had no
// history for the account yet).
bool MergeGroupUse(AccountState* a, const GroupUse& use, int64_t now_ms, int64_t window_ms);

// One field of an account's groups hash: group -> "first_ms last_ms network".
struct StoredGroup {
  std::string group, network;
  int64_t first_ms = 0, last_ms = 0;
};
bool ParseStoredGroup(const std::string& group, const std::string& value, StoredGroup* out);

// Merges an account's stored groups into `a` (at start, or when Redis comes back). A
// group is a recent new one when its first use is within the window and later than the
// account's first use of any group: the engine's rule (new for an account with history).
// A recent last use says nothing about newness (a long-known group used again is not
// new). Returns how many groups entered the recent list.
size_t MergeStoredGroups(AccountState* a, const std::vector<StoredGroup>& groups, int64_t now_ms,
                         int64_t window_ms);

// Merges groups into an account's hash (first use: the earliest, last: the latest), as
// one script per account; idempotent. `ttl_ms` is set on the hash. `changed` (may be
// null) gets, per group, whether its stored value changed.
Status MergeKnownGroups(RedisClient* redis, const std::string& prefix, const std::string& key,
                        const std::vector<std::pair<std::string, KnownGroup>>& groups,
                        const std::vector<std::string>& networks, int64_t ttl_ms,
                        std::vector<bool>* changed = nullptr);

// Appends group uses (account key, use) and account domains to the feed as `node`, so
// running nodes merge them within a sync interval, as another node's (history import:
// nodes load the hashes only at start). The feed keeps about 100,000 entries: a node
// that falls further behind misses the oldest until its next start.
Status AnnounceKnownGroups(RedisClient* redis, const std::string& prefix, const std::string& node,
                           const std::vector<std::pair<std::string, GroupUse>>& uses,
                           const std::vector<std::string>& domains);

struct RedisDetectStats {
  uint64_t written = 0;  // group uses written
  uint64_t merged = 0;   // other nodes' uses merged
  uint64_t redis_errors = 0;
  bool loaded = false;
};

class RedisDetectState : public MemoryDetectState {
 public:
  using RemoteFn = std::function<void(const std::string& account_key)>;
  RedisDetectState(RedisDetectOptions options, LogFn log);
  ~RedisDetectState() override;  // Stop()s

  // Called on the sync thread for each account that got a new group from another node.
  void SetOnRemote(RemoteFn fn) { on_remote_ = std::move(fn); }
  // Loads the state (bounded by redis_timeout per command), then starts the thread.
  Status Start();
  void Stop();  // one last write, then joins

  void Learned(const std::string& key, const GroupUse& use) override;
  void Contributed(const std::string& key, const WindowEntry& entry) override;
  void AddDomain(std::string_view domain) override;
  RedisDetectStats stats() const;

 private:
  void Loop();
  bool Load();
  bool Sync();
  void Log(LogLevel level, const std::string& message) const;

  const RedisDetectOptions options_;
  const LogFn log_;
  RemoteFn on_remote_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, GroupUse>> queue_;
  std::vector<std::string> domain_queue_;
  std::vector<std::pair<std::string, WindowEntry>> window_queue_;
  bool stop_ = false, started_ = false;
  std::thread thread_;
  std::atomic<uint64_t> written_{0}, merged_{0}, redis_errors_{0};
  std::atomic<bool> loaded_{false};
  // Sync thread only.
  std::unique_ptr<RedisClient> redis_;
  std::string feed_id_ = "$";
};

}  // namespace compd

#endif  // COMPD_DETECT_REDIS_DETECT_STATE_H_
