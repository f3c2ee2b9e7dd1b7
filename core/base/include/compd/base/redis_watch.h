// RedisWatch: the loop that keeps a snapshot current from Redis, shared by MapWatcher and
// AccountWatcher: listen on a change channel, poll as well in case a message was lost, back
// off while Redis is away, and stop on request.
//
// Owns the subscribed connection (inside Run), the stop flag and the backoff state; the
// owner keeps the snapshot and does the reading (the `check` function it hands to Run).
// Thread-safe: Stop, stopping, up and errors from any thread; Run, Failed, Succeeded and
// backoff from the watcher's thread only.
#ifndef COMPD_BASE_REDIS_WATCH_H_
#define COMPD_BASE_REDIS_WATCH_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "compd/base/log.h"
#include "compd/base/redis.h"
#include "compd/base/status.h"

namespace compd {

struct RedisWatchOptions {
  RedisUrl redis;
  std::string channel;  // where every change publishes
  std::chrono::milliseconds poll_interval{5000};
  std::chrono::milliseconds redis_timeout{2000};
  // Reconnection backoff: starts at retry_min, doubles up to retry_max.
  std::chrono::milliseconds retry_min{250};
  std::chrono::milliseconds retry_max{5000};
};

class RedisWatch {
 public:
  // `name` starts every log line ("map"); `keeping` says what is still served while Redis
  // is away ("the current map (...)").
  RedisWatch(RedisWatchOptions options, std::string name, LogFn log,
             std::function<std::string()> keeping);

  // Until Stop: calls `check` once subscribed (changes made while nobody listened sent
  // messages nobody heard), on every message and at every poll. `check` returns false when
  // Redis failed, having called Failed; the next poll then comes after the backoff.
  void Run(const std::function<bool()>& check);
  // Makes Run return within a few hundred milliseconds (or once `check` returns).
  void Stop();
  bool stopping() const;

  // Redis failed (logged once per outage) or answered (logged when it had failed).
  void Failed(const Status& s);
  void Succeeded();
  std::chrono::milliseconds backoff() const { return backoff_; }

  bool up() const { return up_; }
  uint64_t errors() const { return errors_; }

 private:
  bool WaitFor(std::chrono::milliseconds d);  // true when Stop was called
  // Waits out backoff_, or less when the primary moves; true when Stop was called.
  bool Backoff(const RedisClient& sub);

  const RedisWatchOptions options_;
  const std::string name_;
  const LogFn log_;
  const std::function<std::string()> keeping_;

  mutable std::mutex mu_;  // guards stop_
  std::condition_variable cv_;
  bool stop_ = false;

  std::atomic<uint64_t> errors_{0};
  std::atomic<bool> up_{false};
  // The watcher's thread only.
  bool failing_ = false;
  std::chrono::milliseconds backoff_{0};
};

}  // namespace compd

#endif  // COMPD_BASE_REDIS_WATCH_H_
