// Thread guard: the one catch-all around the body of a background thread.
//
// Owns what happens when code on a background thread throws (std::bad_alloc while a
// million-entry map loads, a bug in a callback): the exception is logged and never reaches
// std::terminate. A thread that serves until stopped (the event writer, the volume counter,
// the watchers, the hook runner, the file writer, the policy listener) carries on: its body
// runs again after a backoff. A thread that cannot carry on asks the daemon to stop, which
// then exits with a non-zero status.
//
// Stateless functions, called on the thread they guard; they never throw, not even when
// the log function or the callbacks handed to them do.
#ifndef COMPD_BASE_THREAD_GUARD_H_
#define COMPD_BASE_THREAD_GUARD_H_

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "compd/base/log.h"
#include "compd/base/status.h"

namespace compd {

// Runs `body` once. An exception is logged at kError as "<name>: unexpected error: <what>"
// and makes it return false.
bool RunGuarded(const std::string& name, const LogFn& log, const std::function<void()>& body);

struct LoopGuardOptions {
  // Between a failure and the next run: starts at retry_min, doubles up to retry_max, so
  // a body that fails at once every time does not spin or flood the log.
  std::chrono::milliseconds retry_min{1000};
  std::chrono::milliseconds retry_max{30000};
};

// For a thread that runs until stopped: runs `body` until it returns normally (its way of
// saying it was stopped). After an exception: logs "<name>: unexpected error: <what>;
// running again in <d>", waits (cut short once `stopping` returns true) and runs `body`
// again. Once `stopping` is true a failed body gets one more run, so a stop still drains
// what the thread holds, and then the thread ends.
void RunLoopGuarded(const std::string& name, const LogFn& log, const std::function<void()>& body,
                    const std::function<bool()>& stopping, LoopGuardOptions options = {});

// A new thread running RunLoopGuarded(name, log, body, stopping).
std::thread StartLoopThread(std::string name, LogFn log, std::function<void()> body,
                            std::function<bool()> stopping);

// A `stopping` function reading `*flag` under `*mu` (both must outlive the thread).
std::function<bool()> FlagUnder(std::mutex* mu, const bool* flag);

// For a thread that cannot carry on after a failure: runs `body` once; an exception is
// logged ("<name>: unexpected error: <what>; stopping") and handed to `on_fatal` as
// kInternal, whose job is to make the daemon stop and exit with a non-zero status.
void RunOrStop(const std::string& name, const LogFn& log, const std::function<void()>& body,
               const std::function<void(const Status&)>& on_fatal);

}  // namespace compd

#endif  // COMPD_BASE_THREAD_GUARD_H_
