#include "compd/base/redis_watch.h"

#include <algorithm>

namespace compd {

namespace {

// How long one wait for a pub/sub message lasts: bounds how long Stop takes.
constexpr std::chrono::milliseconds kReadSlice{200};

}  // namespace

RedisWatch::RedisWatch(RedisWatchOptions options, std::string name, LogFn log,
                       std::function<std::string()> keeping)
    : options_(std::move(options)),
      name_(std::move(name)),
      log_(std::move(log)),
      keeping_(std::move(keeping)) {}

void RedisWatch::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

bool RedisWatch::stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stop_;
}

bool RedisWatch::WaitFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, d, [&] { return stop_; });
}

bool RedisWatch::Backoff(const RedisClient& sub) {
  // With sentinels a new primary ends the wait: a failover must not cost a whole backoff.
  const auto until = std::chrono::steady_clock::now() + backoff_;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return stopping();
    if (WaitFor(std::min(left, kReadSlice))) return true;
    if (sub.primary_moved()) return false;
  }
}

void RedisWatch::Failed(const Status& s) {
  ++errors_;
  up_ = false;
  backoff_ =
      backoff_.count() == 0 ? options_.retry_min : std::min(backoff_ * 2, options_.retry_max);
  if (log_) {
    if (!failing_) {
      log_(LogLevel::kError,
           name_ + ": " + s.ToString() + "; keeping " + keeping_() + " and retrying");
    } else {
      log_(LogLevel::kDebug, name_ + ": still unavailable: " + s.ToString());
    }
  }
  failing_ = true;
}

void RedisWatch::Succeeded() {
  if (failing_ && log_) {
    log_(LogLevel::kInfo, name_ + ": Redis " + options_.redis.ToString() + " answers again");
  }
  failing_ = false;
  backoff_ = std::chrono::milliseconds(0);
  up_ = true;
}

void RedisWatch::Run(const std::function<bool()>& check) {
  RedisClient sub(options_.redis, options_.redis_timeout);
  bool subscribed = false;
  auto next_poll = std::chrono::steady_clock::now() + options_.poll_interval;
  // After a failure, try again after the backoff, not a whole poll interval later.
  auto after = [&](bool ok) {
    return std::chrono::steady_clock::now() + (ok ? options_.poll_interval : backoff_);
  };
  while (!stopping()) {
    if (!subscribed) {
      Status s = sub.Subscribe({options_.channel});
      if (!s.ok()) {
        sub.Disconnect();
        Failed(s);
        if (Backoff(sub)) break;
        continue;
      }
      subscribed = true;
      next_poll = after(check());
    }
    auto until_poll = std::chrono::duration_cast<std::chrono::milliseconds>(
        next_poll - std::chrono::steady_clock::now());
    auto slice = std::clamp(until_poll, std::chrono::milliseconds(0), kReadSlice);
    std::string channel, payload;
    Status s = sub.ReadMessage(slice, &channel, &payload);
    if (s.ok()) {
      // The payload is the new version; asking Redis is as cheap and cannot be fooled by
      // messages arriving out of order.
      next_poll = after(check());
      continue;
    }
    if (!s.IsNotFound()) {
      sub.Disconnect();
      subscribed = false;
      Failed(s);
      if (Backoff(sub)) break;
      continue;
    }
    if (std::chrono::steady_clock::now() >= next_poll) next_poll = after(check());
  }
}

}  // namespace compd
