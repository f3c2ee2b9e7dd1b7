#include "compd/base/thread_guard.h"

#include <pthread.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <thread>

namespace compd {

namespace {

// The exception's text, or nullopt when `body` returned normally.
std::optional<std::string> Catch(const std::function<void()>& body) {
  try {
    body();
    return std::nullopt;
  } catch (const std::exception& e) {
    return std::string(e.what());
  } catch (...) {
    return std::string("an exception that is not a std::exception");
  }
}

// A log function that throws (it may allocate) must not undo the guard.
void SafeLog(const LogFn& log, LogLevel level, const std::string& message) {
  if (!log) return;
  try {
    log(level, message);
  } catch (...) {
  }
}

bool SafeStopping(const std::function<bool()>& stopping) {
  if (!stopping) return false;
  try {
    return stopping();
  } catch (...) {
    return true;  // nothing is known any more: end the thread rather than spin
  }
}

std::string Describe(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

}  // namespace

bool RunGuarded(const std::string& name, const LogFn& log, const std::function<void()>& body) {
  std::optional<std::string> error = Catch(body);
  if (!error) return true;
  SafeLog(log, LogLevel::kError, name + ": unexpected error: " + *error);
  return false;
}

void RunLoopGuarded(const std::string& name, const LogFn& log, const std::function<void()>& body,
                    const std::function<bool()>& stopping, LoopGuardOptions options) {
  auto backoff = std::max(options.retry_min, std::chrono::milliseconds(1));
  bool last = false;  // the run after a stop was asked for
  for (;;) {
    std::optional<std::string> error = Catch(body);
    if (!error) return;
    if (last) {
      SafeLog(log, LogLevel::kError, name + ": unexpected error: " + *error + "; stopped");
      return;
    }
    if (SafeStopping(stopping)) {
      SafeLog(log, LogLevel::kError,
              name + ": unexpected error: " + *error + "; stopping, one last run");
      last = true;
      continue;
    }
    SafeLog(log, LogLevel::kError,
            name + ": unexpected error: " + *error + "; running again in " + Describe(backoff));
    // In slices, so that a Stop during the wait is noticed within a few milliseconds.
    const auto until = std::chrono::steady_clock::now() + backoff;
    while (std::chrono::steady_clock::now() < until && !last) {
      last = SafeStopping(stopping);
      if (!last) {
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
            std::chrono::milliseconds(20), until - std::chrono::steady_clock::now()));
      }
    }
    backoff = std::min(backoff * 2, std::max(options.retry_max, backoff));
  }
}

std::thread StartLoopThread(std::string name, LogFn log, std::function<void()> body,
                            std::function<bool()> stopping) {
  return std::thread([name = std::move(name), log = std::move(log), body = std::move(body),
                      stopping = std::move(stopping)] {
    // "compd <name>" in top -H, ps -L and perf, cut to the kernel's 15 characters.
    pthread_setname_np(pthread_self(), ("compd " + name).substr(0, 15).c_str());
    RunLoopGuarded(name, log, body, stopping);
  });
}

std::function<bool()> FlagUnder(std::mutex* mu, const bool* flag) {
  return [mu, flag] {
    std::lock_guard<std::mutex> lock(*mu);
    return *flag;
  };
}

void RunOrStop(const std::string& name, const LogFn& log, const std::function<void()>& body,
               const std::function<void(const Status&)>& on_fatal) {
  std::optional<std::string> error = Catch(body);
  if (!error) return;
  const std::string message = name + ": unexpected error: " + *error;
  SafeLog(log, LogLevel::kError, message + "; stopping");
  if (!on_fatal) return;
  try {
    on_fatal(Status::Internal(message));
  } catch (...) {
  }
}

}  // namespace compd
