// Recorder: takes hit events from milter (or policy) threads and records them in the
// alert log, the Redis stream and the per-account record, without ever blocking the
// caller and without losing an event when Redis is away.
//
// Owns a bounded in-memory queue, one writer thread, its own Redis connection, the alert
// log file descriptor and the Spool. Thread-safe: Submit, Reopen and stats() may be called
// from any thread; Start and Stop from one controlling thread.
//
// Path of an event:
//   Submit -> queue -> writer: alert log line, then Redis (one pipelined round trip per
//   batch; in a burst, batches start batch_spacing apart). If Redis fails, the batch is
//   appended to the spool (fsync'd) and retried with backoff; spooled events are replayed
//   in order, oldest first, before new ones go to Redis.
//   If the queue is full, Submit itself moves the queue and its event into the alert log and
//   the spool (slow, one fsync, but never lost); only if even the spool fails are events
//   counted as dropped.
//   Order: the stream gets events in submission order, spooled or not, with one exception:
//   after an overflow, the batch the writer was holding (at most max_batch events) lands
//   after the overflowed ones. Event times and the account record are unaffected.
//   Events still queued at Stop are written to Redis if it answers, else spooled; a spool
//   left by an earlier run is replayed after Start.
//   Every event lands in the alert log once (when it is first taken from the queue, or on
//   overflow), never again on replay.
//
// Exactly once in Redis: each event is written by one Lua script that first does
// `SET {prefix}seen:<id> 1 NX EX dedup_ttl` and writes the stream entry and account record
// only when that SET succeeded. The script runs atomically, so "marked seen" and "written"
// cannot be separated by a crash or a dropped connection; a replay of an event that did
// reach Redis (say the reply was lost) is a no-op. XADD with ids derived from the event was
// not an option: stream ids must grow, and replayed events are older than live ones.
//
// Replication (with sentinels, replica_wait > 0): after each batch the writer asks
// `WAIT 1 replica_wait`. Events no replica confirmed are counted (unconfirmed) and kept;
// when the primary changes they are written again to the new one (resent), where the
// dedup marker makes those that did replicate no-ops. A later confirmed batch confirms
// them too (a replica applies the stream in order).
//
// Redis layout (names from compd/base/keys.h):
//   {prefix}events            stream, MAXLEN ~ stream_maxlen, field `event` = Event JSON
//   {prefix}account:<account> hash: first_seen, last_seen (event times), hits,
//                             last_entry, last_recipient, last_client_ip
//   {prefix}accounts          sorted set: account -> unix seconds of its latest hit
//   {prefix}seen:<event id>   string with a TTL, the dedup marker
// Only events of type "hit" touch the account hash and sorted set; others (anomalies) go to
// the stream alone.
// A replayed old event counts as a hit but never moves last_seen (or the last_* fields or
// the sorted-set score) backwards. <account> is AccountKey(account) (lower case).
// The same script also updates the account registry (accounts.h): evidence, state
// (flagged/locked per options.accounts) and ticket jobs, so they are exactly-once too. With
// publish_reaction the writer also publishes options.accounts in Redis (accounts:reaction)
// when it starts and every minute: the rspamd plugin runs the same script with the
// published reaction, so a hit rspamd records locks and opens tickets like one seen here.
#ifndef COMPD_ACCOUNTS_RECORDER_H_
#define COMPD_ACCOUNTS_RECORDER_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "compd/accounts/accounts.h"
#include "compd/base/keys.h"
#include "compd/base/log.h"
#include "compd/base/redis.h"
#include "compd/base/settings.h"
#include "compd/base/status.h"
#include "compd/events/event.h"
#include "compd/events/spool.h"

namespace compd {

// The text of the one Redis script that records an event and its consequences for the
// account (core/accounts/record.lua, embedded at build time; the rspamd plugin is generated
// with the same file, see rspamd_plugin.h).
const std::string& RecordScript();

// The script's KEYS for an event (record.lua lists them); `account_key` is the
// AccountKey of the event's account, empty when it names none (then only the first two).
std::vector<std::string> RecordKeys(const Keys& keys, const std::string& event_id,
                                    const std::string& account_key);

// The script's last arguments, the same for every event under one prefix: the channel of
// lock changes and the registry's limits.
std::vector<std::string> RecordLayoutArgs(const Keys& keys);

struct RecorderOptions {
  RedisUrl redis;
  std::string prefix = "compd:";
  std::string alert_log;  // JSON lines, mode 0600 when created; empty: no alert log
  std::string spool_dir;  // empty: no spool (events are dropped, and counted, in outages)
  std::string hostname;   // fills Event::host when empty; empty: gethostname()
  size_t stream_maxlen = 100000;
  size_t queue_capacity = 10000;
  size_t max_batch = 256;
  // In a burst of hits, the next batch starts this long after the last one began, with
  // all that arrived meanwhile: one wake-up, one round trip and one alert-log write per
  // batch rather than per hit, on the mail path's cores. A lone hit is written at once,
  // and a full batch (max_batch, or half of queue_capacity if less) does not wait.
  std::chrono::milliseconds batch_spacing{25};
  std::chrono::seconds dedup_ttl{7 * 24 * 3600};  // must outlast any spool replay
  std::chrono::milliseconds redis_timeout{2000};
  // Backoff between attempts while Redis is away: starts at retry_min, doubles up to
  // retry_max.
  std::chrono::milliseconds retry_min{250};
  std::chrono::milliseconds retry_max{5000};
  // What a hit does to its account in the registry (flag, lock, ticket job).
  AccountReaction accounts;
  // How long to wait for a replica to confirm a batch; 0: never ask (no replicas).
  std::chrono::milliseconds replica_wait{0};
  size_t max_unconfirmed = 10000;  // kept for a resend; older ones are only counted
  // Publish `accounts` in Redis (Keys::accounts_reaction) at start and every minute, for the
  // hits the rspamd plugin records. compd-milter's recorder does (FromConfig sets it);
  // mapctl's, which records a few hits and exits, leaves the daemons' reaction alone.
  bool publish_reaction = false;

  // From the configuration. `redis` (it needs the password file) and `hostname` (resolved
  // once, by TripwireOptions) are kept from `out`.
  static Status FromConfig(const Config& config, RecorderOptions* out);
};

struct RecorderStats {
  uint64_t submitted = 0;     // Submit calls
  uint64_t written = 0;       // events newly written to Redis (live or replayed)
  uint64_t duplicates = 0;    // events Redis had already (replays after a lost reply)
  uint64_t spooled = 0;       // events appended to the spool
  uint64_t replayed = 0;      // spooled events since written to Redis (subset of written)
  uint64_t overflowed = 0;    // Submits that found the queue full (spooled directly)
  uint64_t dropped = 0;       // events lost: queue full or Redis away AND the spool failed
  uint64_t rejected = 0;      // events Redis refused for good (e.g. WRONGTYPE); in alert log
  uint64_t corrupt = 0;       // unreadable spool lines skipped
  uint64_t unconfirmed = 0;   // written, but no replica confirmed them within replica_wait
  uint64_t resent = 0;        // unconfirmed events written again after the primary changed
  uint64_t redis_errors = 0;  // failed Redis round trips
  uint64_t alert_log_errors = 0;
  size_t queue_depth = 0;
  size_t spool_depth = 0;
  bool redis_up = false;  // the last Redis attempt succeeded
};

class Recorder {
 public:
  // `log` is called from the writer thread and, on queue overflow, from Submit's caller.
  Recorder(RecorderOptions options, LogFn log);
  ~Recorder();  // Stop()s
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Opens the alert log and the spool and starts the writer thread (which replays any
  // spool at once). kIoError names the file when the alert log or spool folder cannot be
  // opened; nothing is started then. Redis being away is not an error here.
  Status Start();

  // Fills in id, time and host when empty and queues the event. Never waits for I/O
  // unless the queue is full (then it writes the spool itself). Safe from any thread,
  // also before Start and after Stop (the event goes to the alert log and spool).
  void Submit(Event event);

  // Reopens the alert log (after logrotate moved it). Call from a normal thread, e.g. the
  // one that saw SIGHUP; not from a signal handler.
  Status Reopen();

  // Writes what is queued (to Redis, or to the spool if Redis does not answer within
  // redis_timeout), then joins the writer thread. Idempotent.
  void Stop();

  RecorderStats stats() const;

 private:
  struct Counters;
  void WriterLoop();
  // Writes events to Redis. Ok: all either written or counted as rejected. kUnavailable:
  // Redis is away (or refused for a transient reason); nothing known about the batch.
  // `json` holds each event's ToJson(), made once for the alert log and Redis alike.
  Status WriteToRedis(const std::vector<Event>& events, const std::vector<std::string>& json,
                      uint64_t* written);
  Status LoadScript();
  // Writes options.accounts to Keys::accounts_reaction, for the rspamd plugin's hits.
  void PublishReaction();
  // Logs what the script did to the event's account (kHit* bits).
  void NoteAccountOutcome(const Event& e, long long bits);
  // Replays spool chunks while Redis takes them. False when Redis failed.
  bool ReplaySpool();
  // WAIT for a replica after `events` were written; keeps them if none confirms.
  void ConfirmOnReplica(const std::vector<Event>& events);
  // Writes the unconfirmed events again once the primary changed. False when Redis failed.
  bool ResendUnconfirmed();
  void AppendAlertLog(const std::vector<std::string>& json);
  void SpoolOrDrop(const std::vector<Event>& events);
  void NoteRedisFailure(const Status& s);
  void NoteRedisSuccess();
  void ScheduleRetry();
  void Log(LogLevel level, const std::string& message) const;
  void Fill(Event* e);
  // The queue length at which a burst is written without waiting for batch_spacing.
  size_t FullBatch() const;

  const RecorderOptions options_;
  const LogFn log_;
  const std::string instance_;  // unique per Recorder: part of generated event ids
  Spool spool_;
  std::unique_ptr<Counters> counters_;

  mutable std::mutex mu_;  // guards queue_, stop_, started_
  std::condition_variable cv_;
  std::deque<Event> queue_;
  bool stop_ = false;
  bool started_ = false;
  std::thread writer_;

  std::mutex alert_mu_;  // guards alert_fd_
  int alert_fd_ = -1;

  // Writer thread only.
  std::unique_ptr<RedisClient> redis_;
  std::string script_sha_;
  std::deque<Event> unconfirmed_;
  uint64_t unconfirmed_generation_ = 0;  // the primary they were written to
  bool backing_off_ = false;             // Redis (or the spool) failed: wait until next_retry_
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point next_retry_;
  std::chrono::steady_clock::time_point next_publish_;  // of the account reaction
  std::chrono::steady_clock::time_point last_batch_;    // when the last batch was taken
};

}  // namespace compd

#endif  // COMPD_ACCOUNTS_RECORDER_H_
