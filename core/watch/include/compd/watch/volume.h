// Volume: per-account counts of accepted messages, recipients and client networks, per hour
// and per day, kept in Redis and shared by every node. They feed `mapctl top`, the dashboard
// and the anomaly rules (anomaly.h).
//
// VolumeCounter owns a bounded in-memory aggregate, one writer thread and that thread's
// Redis connection. Thread-safe: Record() and stats() from any thread (Record takes a mutex
// for one hash-map update and never does I/O, so the mail path never waits for Redis);
// SetObserver, Start and Stop from one controlling thread.
//
// Path of a message: Tripwire -> TripwireOutlets::messages -> Record(), which adds it to the
// aggregate under (account, hour). Every flush_interval the writer takes the aggregate as a
// batch and applies it with Lua scripts sent in one pipeline (one round trip). Each script
// call first marks its flush id as applied, atomically with the counting, so resending a
// batch after a lost reply never counts twice.
//
// Redis away: the batch keeps its flush ids and is retried with backoff; new messages keep
// aggregating into the next batch. At most max_pending (account, hour) pairs wait; a record
// for a further pair is dropped and counted (VolumeStats::dropped). Counts are statistics,
// not evidence, so they are not spooled: if the process dies, what it had not flushed is
// lost (normally the last second; during an outage everything since Redis went away).
// Stop() makes one last attempt, bounded by the Redis timeout, and logs what it loses.
//
// Implemented in three files, one concept each: volume.cc (the counter and its writer
// thread), volume_periods.cc (hour/day bucket names, client networks), volume_read.cc
// (ReadTop, ReadAccountDays: the read side, plain functions on a caller's RedisClient).
//
// Redis layout (times in UTC; <hour> = YYYYMMDDHH, <day> = YYYYMMDD):
//   {prefix}vol:h:<hour>:msgs         zset account -> messages accepted in that hour
//   {prefix}vol:h:<hour>:rcpts        zset account -> their envelope recipients
//   {prefix}vol:h:<hour>:nets:<acct>  HyperLogLog of the client networks of that hour
//     The hour keys expire hour_retention after the end of their hour.
//   {prefix}vol:t:<hour>              hash m -> messages, r -> recipients of every account
//     that hour (the platform's total); kept 8 days longer than the hour keys.
//   {prefix}vol:m:<YYYYMM>:<account>  hash, one field per active day of that month:
//     <DD> -> "messages recipients networks" (networks: the most distinct client networks
//     in one hour of that day). Kept day_retention after the end of its month. Short
//     fields keep the hash in Redis' compact encoding: about 25 bytes per active day.
//   {prefix}vol:flush:<id>            applied-flush marker (one hour)
// An idle account costs nothing.
#ifndef COMPD_WATCH_VOLUME_H_
#define COMPD_WATCH_VOLUME_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "compd/base/keys.h"
#include "compd/base/log.h"
#include "compd/base/redis.h"
#include "compd/base/settings.h"
#include "compd/base/status.h"
#include "compd/mta/tripwire.h"

namespace compd {

// Bucket names. Hours and days are UTC, so every node agrees on them.
std::string HourId(int64_t unix_seconds);  // "2026112618"
std::string DayId(int64_t unix_seconds);   // "20261126"
int64_t HourStart(int64_t unix_seconds);
int64_t DayStart(int64_t unix_seconds);
int64_t NextMonthStart(int64_t unix_seconds);  // 00:00 UTC on the 1st of the next month
// The start of the day a DayId names; false if `day` is not YYYYMMDD.
bool ParseDayId(std::string_view day, int64_t* day_start);
// "2026-11-26T18" for an hour, "2026-11-26" for a day: how events and humans name periods.
std::string HourLabel(int64_t unix_seconds);
std::string DayLabel(int64_t unix_seconds);

// The network a client address belongs to for counting: "192.0.2.0/24", "2001:db8::/48".
// IPv4-mapped IPv6 counts as IPv4. Empty when `ip` is not an address (local submissions).
std::string ClientNetwork(std::string_view ip, int ipv4_bits, int ipv6_bits);

struct VolumeOptions {
  RedisUrl redis;
  std::string prefix = "compd:";
  std::chrono::milliseconds flush_interval{1000};
  size_t max_pending = 100000;  // (account, hour) pairs waiting for Redis
  size_t max_networks = 256;    // distinct networks remembered per pair between flushes
  std::chrono::seconds hour_retention{48 * 3600};
  int day_retention_days = 400;
  int ipv4_prefix = 24;
  int ipv6_prefix = 48;
  std::chrono::milliseconds redis_timeout{2000};
  std::chrono::milliseconds retry_min{250};
  std::chrono::milliseconds retry_max{5000};
  // Reads the volume_* settings (and redis_timeout); `redis` and `prefix` are left to the
  // caller. kInvalid names the setting.
  static Status FromConfig(const Config& config, VolumeOptions* out);
};

struct VolumeStats {
  uint64_t messages = 0;    // Record calls
  uint64_t recipients = 0;  // their recipients
  uint64_t dropped = 0;     // records lost: too many pairs waiting (Redis away too long)
  uint64_t rejected = 0;    // messages whose counts Redis refused for good (wrong key type)
  uint64_t flushes = 0;     // batches written to Redis
  uint64_t redis_errors = 0;
  size_t pending = 0;  // (account, hour) pairs waiting, in memory and in the failed batch
  bool redis_up = false;
};

// What Redis holds for one (account, hour) after a flush touched it: the totals of every
// node, not only this one's share.
struct AccountTotals {
  std::string account;
  int64_t hour_start = 0;  // unix seconds
  int64_t hour_messages = 0;
  int64_t hour_recipients = 0;
  int64_t hour_networks = -1;  // distinct client networks this hour; -1: none known
  int64_t day_messages = 0;    // the UTC day the hour belongs to
};

class VolumeCounter {
 public:
  // Called on the writer thread after each batch reached Redis, with the totals of what
  // it touched (anomaly detection hangs here). It may use Redis, but delays the next flush.
  using Observer = std::function<void(const std::vector<AccountTotals>&)>;

  VolumeCounter(VolumeOptions options, LogFn log);
  ~VolumeCounter();  // Stop()s
  VolumeCounter(const VolumeCounter&) = delete;
  VolumeCounter& operator=(const VolumeCounter&) = delete;

  void SetObserver(Observer observer);  // before Start
  // Starts the writer thread. Redis being away is not an error. kInternal if called twice.
  Status Start();
  // One last flush (bounded by the Redis timeout), then joins the thread. Idempotent.
  void Stop();

  // Counts one accepted message. Never waits for I/O; safe from any thread.
  void Record(const MessageRecord& message);

  VolumeStats stats() const;

 private:
  struct Pending {
    int64_t messages = 0;
    int64_t recipients = 0;
    // Usually one or two, at most max_networks (256), searched in order: a vector is one
    // allocation where a set makes one per network.
    std::vector<std::string> networks;
  };
  struct Item {
    std::string account;  // empty while pending: the map's key holds it
    int64_t hour_start;
    Pending counts;
  };
  struct Chunk {
    std::string flush_id;
    std::vector<Item> items;
  };

  void Loop();
  // Moves the aggregate into batch_ (when batch_ is empty).
  void TakeBatch();
  // Writes batch_; on success clears it and tells the observer.
  bool WriteBatch();
  Status LoadScript();
  void Log(LogLevel level, const std::string& message) const;

  const VolumeOptions options_;
  const LogFn log_;
  const std::string instance_;
  Observer observer_;

  mutable std::mutex mu_;  // guards pending_, stop_, started_
  std::condition_variable cv_;
  std::unordered_map<std::string, Item> pending_;  // key: hour_start '|' account
  bool stop_ = false;
  bool started_ = false;
  std::thread thread_;

  std::atomic<uint64_t> messages_{0}, recipients_{0}, dropped_{0}, rejected_{0}, flushes_{0},
      redis_errors_{0};
  std::atomic<size_t> batch_size_{0};
  std::atomic<bool> redis_up_{false};

  // Writer thread only.
  std::unique_ptr<RedisClient> redis_;
  std::string script_sha_;
  std::vector<Chunk> batch_;
  uint64_t seq_ = 0;
  std::chrono::milliseconds backoff_{0};
};

// Reading the counters (mapctl top, the dashboard). Not thread-safe: one RedisClient.

struct TopRow {
  std::string account;
  int64_t messages = 0;
  int64_t recipients = 0;
  int64_t networks = 0;     // distinct client networks that hour
  int64_t previous = 0;     // messages in the hour before
  bool new_to_top = false;  // not among the top n of the hour before
};

struct TopColumn {
  int64_t hour_start = 0;
  std::string hour;  // HourId
  std::vector<TopRow> rows;
};

// Two columns: the current hour and the last one, each with the change from its previous
// hour. `now` is unix seconds.
struct TopView {
  TopColumn this_hour;
  TopColumn last_hour;
};
Status ReadTop(RedisClient* redis, const std::string& prefix, int64_t now, size_t n, TopView* out);

struct DayCounts {
  std::string day;  // DayId
  int64_t messages = 0;
  int64_t recipients = 0;
  int64_t networks = 0;  // most distinct networks in one hour of that day
};
// An account's daily history from the day of `from` to the day of `to` (unix seconds),
// oldest first, only days with messages. kNotFound: none.
Status ReadAccountDays(RedisClient* redis, const std::string& prefix, const std::string& account,
                       int64_t from, int64_t to, std::vector<DayCounts>* out);
// The days of one month's hash from its HGETALL reply (field, value, ...), oldest first;
// malformed fields are skipped.
std::vector<DayCounts> ParseMonthDays(const std::string& yyyymm,
                                      const std::vector<RedisReply>& hgetall);

}  // namespace compd

#endif  // COMPD_WATCH_VOLUME_H_
