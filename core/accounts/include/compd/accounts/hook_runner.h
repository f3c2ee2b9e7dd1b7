// HookRunner: opens the ticket for a newly flagged account, off the mail path.
//
// Owns one thread and its Redis connection. Thread-safe: stats() from any thread; Start and
// Stop from one controlling thread.
//
// The jobs live in Redis, not in this process: the Recorder's script queues them in the
// same atomic step that flags the account (accounts.h), one per configured target ("exec",
// "webhook"), at most once per account per hook_quiet_period. So neither a crash nor a
// restart loses one, and with several nodes each job is claimed by one of them.
//   {prefix}hooks:due        sorted set: job id -> unix ms when it is due
//   {prefix}hook:<job id>    hash: id, target, account, state, queued_at (ms), event
//                            (JSON), attempts, last_error
// A claim moves the job's due time one lease (timeout + 60 s) ahead and counts the
// attempt, in one script; success deletes the job, failure schedules it again after
// HookBackoff. Jobs are retried until they succeed (every failure is logged and shown in
// the account's record as ticket_<target>), never dropped. A node that dies while
// delivering leaves the job to be claimed again when the lease runs out, so delivery is at
// least once: receivers can recognise a repeat by the job id (the document's "job", the
// X-Compd-Job header, COMPD_JOB in the program's environment).
//
// Every node with hooks configured runs a runner; the hook settings should be the same on
// every node (and the program installed on each).
#ifndef COMPD_ACCOUNTS_HOOK_RUNNER_H_
#define COMPD_ACCOUNTS_HOOK_RUNNER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "compd/accounts/accounts.h"
#include "compd/accounts/hook_targets.h"
#include "compd/base/log.h"
#include "compd/base/redis.h"
#include "compd/base/settings.h"
#include "compd/base/status.h"

namespace compd {

struct HookOptions {
  // The program and its arguments (hook_command); empty: no program. "{account}",
  // "{state}" and "{job}" in arguments are replaced.
  std::vector<std::string> command;
  bool has_url = false;
  WebhookUrl url;
  HttpHeaders headers;  // from hook_headers_file
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds retry_min{30000};
  std::chrono::milliseconds retry_max{3600000};

  bool enabled() const { return !command.empty() || has_url; }
  // hook_command, hook_url, hook_headers_file (read now), hook_timeout, hook_retry_min,
  // hook_retry_max. kInvalid names the setting; kIoError the unreadable headers file.
  static Status FromConfig(const Config& config, HookOptions* out);
};

struct HookJob {
  std::string id;
  std::string target;   // "exec" | "webhook"
  std::string account;  // AccountKey
  std::string state;    // the state the hit left: "flagged" | "locked"
  int64_t queued_at_ms = 0;
  std::string event_json;
  int64_t attempts = 0;  // including the one under way
};

// The JSON document a hook receives: type "account_flagged", job, target, attempt, account,
// state, queued_at, event (the hit), and the account's record at delivery time (state,
// hits, first/last hit, recipients and client IPs with counts) when `record` is given.
std::string HookDocument(const HookJob& job, const AccountRecord* record);

// Wait after the `attempts`-th failure: retry_min doubled per earlier failure, at most
// retry_max.
std::chrono::milliseconds HookBackoff(int64_t attempts, std::chrono::milliseconds retry_min,
                                      std::chrono::milliseconds retry_max);

struct HookRunnerOptions {
  RedisUrl redis;
  std::string prefix = "compd:";
  std::string hostname;  // names the node in the account log
  HookOptions hooks;
  std::chrono::milliseconds poll_interval{1000};  // how often due jobs are looked for
  std::chrono::milliseconds redis_timeout{2000};
  std::chrono::milliseconds retry_min{250};  // reconnection backoff while Redis is away
  std::chrono::milliseconds retry_max{5000};

  // From the configuration. `redis` (it needs the password file) and `hostname` (resolved
  // once, by TripwireOptions) are kept from `out`.
  static Status FromConfig(const Config& config, HookRunnerOptions* out);
};

struct HookRunnerStats {
  uint64_t delivered = 0;
  uint64_t failures = 0;  // failed attempts (each is retried)
  uint64_t redis_errors = 0;
};

class HookRunner {
 public:
  HookRunner(HookRunnerOptions options, LogFn log);
  ~HookRunner();  // Stop()s
  HookRunner(const HookRunner&) = delete;
  HookRunner& operator=(const HookRunner&) = delete;

  Status Start();  // kInternal if called twice
  // Stops after the delivery under way: a running program is killed (its job becomes due
  // again at once), a webhook request finishes or times out.
  void Stop();

  HookRunnerStats stats() const;

 private:
  void Loop();
  // Delivers at most one due job. `wait` gets how long to sleep before the next step.
  Status Step(std::chrono::milliseconds* wait);
  Status Deliver(const HookJob& job, const std::string& document);
  Status Finish(const HookJob& job, const Status& outcome, bool cancelled);
  bool WaitFor(std::chrono::milliseconds d);  // true when Stop was called
  bool stopping();
  void Log(LogLevel level, const std::string& message) const;

  const HookRunnerOptions options_;
  const LogFn log_;
  const Keys keys_;

  std::mutex mu_;  // guards stop_, started_
  std::condition_variable cv_;
  bool stop_ = false;
  bool started_ = false;
  std::atomic<bool> stop_flag_{false};  // polled by a running program
  std::thread thread_;

  std::atomic<uint64_t> delivered_{0}, failures_{0}, redis_errors_{0};

  // The thread only.
  std::unique_ptr<RedisClient> redis_;
  bool failing_ = false;
  std::chrono::milliseconds backoff_{0};
};

}  // namespace compd

#endif  // COMPD_ACCOUNTS_HOOK_RUNNER_H_
