// MapWatcher: keeps the milter's view of the map current, and never makes a lookup wait.
//
// Owns the current Snapshot (an immutable compiled Matcher plus where it came from), one
// background thread and that thread's two Redis connections (one subscribed to the change
// channel, one for commands), and, with map_dir set, a second thread that writes the files.
//
// Thread-safe: Current() and stats() from any thread, lock-free for the caller in the
// sense that it never waits for a load or for Redis (std::atomic_load of a shared_ptr).
// Start and Stop from one controlling thread.
//
// Where the map comes from:
//   - Start loads it from Redis. If Redis is unreachable, from the files this watcher last
//     wrote into map_dir (compd_rcpt.map, compd_rcpt_re.map); if there are none, it serves
//     an empty map and says so loudly. Either way it keeps trying Redis.
//   - Then the thread listens on {prefix}map:changes (a `mapctl add` publishes there, so
//     it is enforced well within a second) and also polls {prefix}map:version every
//     poll_interval, in case a message was lost while the connection was down.
//   - A new version is applied on the thread, off the lookup path, then swapped in
//     atomically. Small changes come from the change log ({prefix}map:log) and are applied
//     to the current snapshot (Matcher::Apply: milliseconds, even at a million entries);
//     when the log cannot tell (an import, a gap, a restored Redis) the whole map is read
//     again (with load_timeout) and compiled. A version that fails to compile is logged
//     and the previous snapshot stays.
//   - With map_dir set, the files are rewritten (atomically) after each new version from
//     Redis, at most once per files_interval (a burst of changes writes once), so rspamd
//     on the node and the next start without Redis see the same entries. A second
//     thread writes them: at a million entries that takes most of a second, which the
//     next change must not wait for.
//   - While Redis is away the last snapshot keeps serving; reconnection backs off.
#ifndef COMPD_MAP_MAP_WATCHER_H_
#define COMPD_MAP_MAP_WATCHER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "compd/base/log.h"
#include "compd/base/redis.h"
#include "compd/base/redis_watch.h"
#include "compd/base/settings.h"
#include "compd/base/status.h"
#include "compd/map/map_store.h"
#include "compd/map/matcher.h"

namespace compd {

struct Snapshot {
  uint64_t version = 0;                    // the map version in Redis; 0 for "files" and "empty"
  std::string id;                          // Redis' id of that version (see MapStore)
  std::shared_ptr<const Matcher> matcher;  // never null
  std::chrono::system_clock::time_point loaded;
  size_t exact = 0;
  size_t patterns = 0;
  std::string source;  // "redis" | "files" | "empty"
};

// A new snapshot from Redis, as MapWatcher hands it to its change listener.
struct MapChangeNote {
  std::shared_ptr<const Snapshot> before, after;
  // What the change log says was added (its net effect), when `whole` is false; after a
  // whole read (an import, a gap in the log) the log could not tell: compare the snapshots.
  std::vector<Entry> added;
  bool whole = false;
};

struct MapWatcherOptions {
  RedisUrl redis;
  std::string prefix = kDefaultPrefix;
  std::string map_dir;   // empty: no files written or read
  std::string hostname;  // names this node where it tells mapctl the map was lost
  std::chrono::milliseconds poll_interval{5000};
  std::chrono::milliseconds redis_timeout{2000};
  // Reading the whole map: seconds at a million entries, so not bound by redis_timeout.
  std::chrono::milliseconds load_timeout{60000};
  std::chrono::milliseconds files_interval{1000};
  // Reconnection backoff: starts at retry_min, doubles up to retry_max.
  std::chrono::milliseconds retry_min{250};
  std::chrono::milliseconds retry_max{5000};
  Matcher::Options matcher;

  // From the configuration. `redis` (it needs the password file) and `hostname` (resolved
  // once, by TripwireOptions) are kept from `out`.
  static Status FromConfig(const Config& config, MapWatcherOptions* out);
};

struct MapWatcherStats {
  uint64_t version = 0;
  std::string source;
  uint64_t loads = 0;        // snapshots swapped in
  uint64_t full_loads = 0;   // of those, read whole from Redis (or the files)
  uint64_t load_errors = 0;  // loads or compilations that failed
  uint64_t redis_errors = 0;
  bool redis_up = false;
};

class MapWatcher {
 public:
  MapWatcher(MapWatcherOptions options, LogFn log);
  ~MapWatcher();  // Stop()s
  MapWatcher(const MapWatcher&) = delete;
  MapWatcher& operator=(const MapWatcher&) = delete;

  // Loads the first snapshot (Redis, else map_dir files, else empty) and starts the
  // watching thread. Redis being away is not an error: see Current()->source.
  // kInternal if called twice.
  Status Start();
  // Joins the threads: within a few hundred milliseconds, unless a whole read is under way
  // (up to load_timeout on a hung Redis) or the files are being written (under a second
  // at 1M entries). Current() keeps working.
  void Stop();

  // The snapshot to use for one lookup or one message. Never null, never waits.
  std::shared_ptr<const Snapshot> Current() const;

  MapWatcherStats stats() const;

  // Called on the watching thread after each new snapshot from Redis is in place, the
  // first load included (its `before` is the empty snapshot). Set before Start. Must not
  // block: it delays the next change.
  void SetChangeListener(std::function<void(const MapChangeNote&)> listener);

 private:
  void NotifyChange(std::shared_ptr<const Snapshot> before, std::shared_ptr<const Snapshot> after,
                    std::vector<Entry> added, bool whole);
  // Brings the snapshot up to Redis' version: from the change log when it can tell,
  // else by reading the whole map. False when Redis failed.
  bool CheckVersion();
  bool LoadFromRedis();
  // Serves the map files; `why` says why in the log. False when there are none.
  bool LoadFromFiles(const std::string& why);
  // Applies the net effect of `changes` to the current snapshot (then compacts, if due);
  // false when it does not compile.
  bool ApplyChanges(const std::vector<MapChange>& changes, uint64_t version, const std::string& id);
  // True (and says so, once) when Redis holds no map at all (version 0) while we hold one
  // from it or from the files: Redis lost its data; keep ours until the map is rewritten.
  bool KeepOverEmptyRedis(uint64_t version);
  // Says so in the log, and in Redis ({prefix}map:lost) so that mapctl refuses adds and
  // removes until the map is restored.
  void NoteMapLost(const Snapshot& kept);
  // Notes that the version failed to compile (logged, not retried).
  void NoteBadVersion(uint64_t version, const std::string& id, const Status& s);
  // Hands `snap` to the files thread (replacing one it has not written yet).
  void QueueFiles(std::shared_ptr<const Snapshot> snap);
  void WriteFiles(const Snapshot& snap);
  void FilesLoop();
  void Install(std::shared_ptr<const Snapshot> snap);
  void Log(LogLevel level, const std::string& message) const;

  const MapWatcherOptions options_;
  const LogFn log_;
  std::function<void(const MapChangeNote&)> listener_;  // set before Start
  std::shared_ptr<const Snapshot> snapshot_;            // only through std::atomic_load/store

  std::atomic<bool> started_{false};
  RedisWatch watch_;  // the watching thread's loop, stop flag and backoff
  std::thread thread_;

  std::atomic<uint64_t> loads_{0}, full_loads_{0}, load_errors_{0};

  // Start, then the thread only.
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<MapStore> store_;
  uint64_t failed_version_ = 0;  // a version (and its id) that did not compile: not retried
  std::string failed_id_;
  bool has_failed_version_ = false;
  // The map files: whether the current snapshot still needs writing, and when allowed.
  bool no_map_warned_ = false;

  // The files thread.
  std::thread files_thread_;
  std::mutex files_mu_;  // guards the two below
  std::condition_variable files_cv_;
  std::shared_ptr<const Snapshot> files_snapshot_;  // to write next, if not null
  bool files_stop_ = false;
};

}  // namespace compd

#endif  // COMPD_MAP_MAP_WATCHER_H_
