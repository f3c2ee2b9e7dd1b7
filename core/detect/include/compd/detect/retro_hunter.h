// RetroHunter: a node's retro-hunt. It remembers every delivered message this node saw for
// retro_window (RecipientMemory, with its copy on disk in <spool_dir>/retro so a restart
// loses nothing) and:
//   - when an entry enters the map (any way: mapctl add or import, a discovered or accepted
//     candidate; MapWatcher tells it), flags the accounts that mailed a recipient the entry
//     matches and the map before did not, within retro_window, with the evidence (time,
//     node, client IP, queue id): hit events through the caller's `on_event` (the
//     Recorder), whose ids make two nodes record an account once (RetroHitEvents);
//   - answers `mapctl hunt` over Redis (retro_hunt.h), read-only.
// An entry that matches the mail of more than retro_max_accounts accounts is not a test
// address (a whole domain, a typo'd pattern): it flags nobody and says so in the log.
//
// Threads: one worker owns the memory's writes, the file and the hunts after map changes;
// one answers hunt requests from Redis. Observe and MapChanged only queue (never wait for
// a disk or Redis). Thread-safe: Observe and MapChanged from any thread; Start and Stop
// from one controlling thread.
#ifndef COMPD_DETECT_RETRO_HUNTER_H_
#define COMPD_DETECT_RETRO_HUNTER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "compd/base/log.h"
#include "compd/base/redis.h"
#include "compd/base/redis_watch.h"
#include "compd/base/settings.h"
#include "compd/base/status.h"
#include "compd/detect/recipient_journal.h"
#include "compd/detect/recipient_memory.h"
#include "compd/events/event.h"
#include "compd/events/message.h"
#include "compd/map/map_watcher.h"

namespace compd {

struct RetroHunterOptions {
  bool enabled = true;
  std::string dir;  // the memory's files; empty: memory only (lost at restart)
  int64_t window_ms = int64_t{7} * 86400 * 1000;
  int max_accounts = 100;
  std::string node;  // this node's name in the evidence
  RedisUrl redis;
  std::string prefix = kDefaultPrefix;
  std::chrono::milliseconds redis_timeout{2000};
  std::chrono::milliseconds poll_interval{5000};
  Matcher::Options matcher;
  // retro_hunt, retro_window, retro_max_accounts, spool_dir, prefix, redis_timeout,
  // map_poll_interval. `redis`, `node` and `matcher` (the map watcher's) are kept from `out`.
  static Status FromConfig(const Config& config, RetroHunterOptions* out);
};

struct RetroHunterStats {
  RecipientMemoryStats memory;
  uint64_t observed = 0;
  uint64_t dropped = 0;  // the queue was full (the worker fell far behind)
  uint64_t hunts = 0;
  uint64_t flagged = 0;   // events handed to on_event
  uint64_t answered = 0;  // hunt requests from mapctl
  uint64_t over_cap = 0;  // entries that matched more than retro_max_accounts accounts
};

class RetroHunter {
 public:
  RetroHunter(RetroHunterOptions options, LogFn log, std::function<void(Event)> on_event);
  ~RetroHunter();  // Stop()s
  RetroHunter(const RetroHunter&) = delete;
  RetroHunter& operator=(const RetroHunter&) = delete;

  // Creates the folder and starts the threads; the worker first reloads the files (what
  // it observes meanwhile waits in the queue). kIoError when the folder cannot be made.
  Status Start();
  // Writes what is queued, then joins the threads.
  void Stop();

  void Observe(const Message& m);
  // MapWatcher's change listener.
  void MapChanged(const MapChangeNote& note);

  RetroHunterStats stats() const;

 private:
  void WorkerLoop();
  void Work(std::vector<Message>* pending, std::vector<MapChangeNote>* changes);
  void HuntChange(const MapChangeNote& note);
  void Forget(int64_t now_ms);
  bool AnswerRequests();  // the request thread's RedisWatch check
  void Log(LogLevel level, const std::string& message) const;

  const RetroHunterOptions options_;
  const LogFn log_;
  const std::function<void(Event)> on_event_;

  // Guards memory_ (the pointer and what it points to) against the worker's writes: the
  // worker, its only writer, reads it without the lock.
  mutable std::mutex mem_mu_;
  std::unique_ptr<RecipientMemory> memory_ = std::make_unique<RecipientMemory>();
  std::atomic<bool> loaded_{false};

  std::mutex mu_;  // guards the queue and stop_
  std::condition_variable cv_;
  std::vector<Message> pending_;
  std::vector<MapChangeNote> changes_;
  bool stop_ = false;
  std::thread worker_;

  // The worker only.
  std::unique_ptr<RecipientJournal> journal_;
  bool journal_failing_ = false;
  int64_t last_forget_ms_ = 0;

  // The request thread only.
  RedisWatch watch_;
  std::thread requests_;
  std::unique_ptr<RedisClient> redis_;
  std::unordered_set<std::string> answered_;
  std::deque<std::string> answered_order_;

  std::atomic<uint64_t> observed_{0}, dropped_{0}, hunts_{0}, flagged_{0}, answered_count_{0},
      over_cap_{0};
  std::atomic<bool> started_{false};
};

}  // namespace compd

#endif  // COMPD_DETECT_RETRO_HUNTER_H_
