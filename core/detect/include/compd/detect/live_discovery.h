// LiveDiscovery: discovery in compd-milter, with the same rule as `mapctl replay`.
//
// The mail path asks this node's Discovery whether a message is a test-like first mail
// (Discovery::Sight: hashes and string checks, no I/O) and queues its sighting. A thread of
// its own sends each sighting to Redis (CandidateStore::Sight), where the sightings of every
// node meet: account A through node 1 and account B through node 2 complete one candidate
// on whichever node adds the second. That node acts as `discovery` says:
//   propose  the candidate waits in {prefix}discovery:candidates (mapctl candidates,
//            the dashboard)
//   add      the recipient enters the map (source=discovered, the evidence as its note):
//            every node enforces it within a second and writes it to the rspamd map
//            files, as after `mapctl add`; the accounts behind it get their hit events
//            (through `on_hits`, the recorder: flag, or lock with lock_on_hit)
// Once per candidate across nodes without a lock of its own: proposing is HSETNX and
// MapStore::Add says which call added the entry; the hit events' ids
// ("discovered:<recipient>:<account>") make a second submission a no-op.
//
// Whether a mail is an account's first to a recipient survives a restart: the thread first
// refills the pair memory from retro-hunt's files (memory_dir: <spool_dir>/retro, read
// only), the last retro_window of this node's mail. Mail in the seconds that takes is
// judged on what is loaded so far.
//
// A Redis failure keeps the queue (bounded: sightings beyond kMaxQueue are dropped and
// counted) and the candidates not yet acted on, and retries after `retry`. Stop sends what
// is queued if Redis answers.
//
// Thread-safe: Observe and stats from any thread; Start and Stop from one controlling
// thread. `is_local`, `on_hits` and `log` are called from the caller's and the own thread.
#ifndef COMPD_DETECT_LIVE_DISCOVERY_H_
#define COMPD_DETECT_LIVE_DISCOVERY_H_

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
#include <vector>

#include "compd/base/log.h"
#include "compd/base/redis.h"
#include "compd/base/status.h"
#include "compd/detect/discovery.h"
#include "compd/events/event.h"
#include "compd/events/message.h"

namespace compd {

struct LiveDiscoveryOptions {
  DiscoveryOptions discovery;
  RedisUrl redis;
  std::string prefix = "compd:";
  std::string hostname;  // this node: the map change's author and the events' host
  std::chrono::milliseconds redis_timeout{2000};
  std::chrono::milliseconds retry{1000};  // after a Redis failure
  std::string memory_dir;  // retro-hunt's RecipientJournal folder; empty: start empty
};

struct LiveDiscoveryStats {
  uint64_t sightings = 0;   // sent to Redis
  uint64_t candidates = 0;  // completed on this node (proposed or added here)
  uint64_t dropped = 0;     // the queue was full
  uint64_t redis_errors = 0;
  bool loaded = false;    // the pair memory was refilled from memory_dir (or had none)
  uint64_t reloaded = 0;  // messages it was refilled with
  DiscoveryStats discovery;
};

class LiveDiscovery {
 public:
  using LocalFn = std::function<bool(const std::string& domain)>;
  using HitsFn = std::function<void(std::vector<Event>)>;
  static constexpr size_t kMaxQueue = 10000;

  LiveDiscovery(LiveDiscoveryOptions options, LocalFn is_local, HitsFn on_hits, LogFn log);
  ~LiveDiscovery();  // Stop()s
  LiveDiscovery(const LiveDiscovery&) = delete;
  LiveDiscovery& operator=(const LiveDiscovery&) = delete;

  Status Start();  // nothing to do (and no thread) under discovery = off
  void Stop();

  // The mail path: a delivered message and whether the engine's reactions for it carry
  // test_message. Never blocks on Redis.
  void Observe(const Message& message, bool engine_test_signal);
  LiveDiscoveryStats stats() const;

 private:
  void Loop();
  void Reload();  // the pair memory from memory_dir, once
  // Sends one sighting and acts on the candidate it completes. `consumed`: the sighting
  // reached Redis (a failure after that leaves the candidate in pending_).
  Status Handle(const Sighting& s, bool* consumed);
  // Proposes or adds a candidate; a failure is Redis' (try again later).
  Status Act(const Candidate& c);
  void Log(LogLevel level, const std::string& message) const;

  const LiveDiscoveryOptions options_;
  const LocalFn is_local_;
  const HitsFn on_hits_;
  const LogFn log_;
  Discovery discovery_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Sighting> queue_;
  bool stop_ = false, started_ = false;
  std::thread thread_;
  std::atomic<uint64_t> sightings_{0}, candidates_{0}, dropped_{0}, redis_errors_{0}, reloaded_{0};
  std::atomic<bool> loaded_{false};
  // The thread's own.
  std::unique_ptr<RedisClient> redis_;
  std::vector<Candidate> pending_;  // completed, not yet proposed or added
  bool failing_ = false;            // the last round failed (logged once per outage)
};

}  // namespace compd

#endif  // COMPD_DETECT_LIVE_DISCOVERY_H_
