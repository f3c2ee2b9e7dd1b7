// Dashboard data: what the abuse team's wall monitor shows, gathered from Redis: the top
// senders of this hour and the last (volume.h), anomalies of the last 24 hours and recent
// hits (the event stream), flagged and locked accounts (the account records), and the map
// snapshot in use. The same data is served as JSON by the API.
//
// DashboardSource owns one Redis connection behind a mutex and caches what it gathered for
// a moment, so many open dashboards cost Redis one read per second at most. Thread-safe.
#ifndef COMPD_WATCH_DASHBOARD_H_
#define COMPD_WATCH_DASHBOARD_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compd/accounts/accounts.h"
#include "compd/base/redis.h"
#include "compd/events/event.h"
#include "compd/watch/trends.h"
#include "compd/watch/volume.h"

namespace compd {

// An account record, as far as the dashboard shows it: a view of what the account
// registry (compd/accounts/accounts.h) reads, which alone reads account records.
struct DashboardAccount {
  std::string account;
  // The state in force ("flagged", "locked", "released"; an expired lock is "flagged", as
  // mapctl says); "" for a record from before the registry (hits only).
  std::string state;
  int64_t hits = 0;
  int64_t last_hit = 0;  // unix seconds of the latest hit
  std::string last_entry;
  std::map<std::string, std::string> fields;  // the record's fields, state as above
};

// A recipient discovery proposes as a test address, waiting for an operator
// (`mapctl candidates accept|reject`; the page only shows it).
struct DashboardCandidate {
  std::string recipient;
  std::string time;                   // when it became a candidate (ISO 8601)
  std::vector<std::string> accounts;  // whose test-like mail made it one
  std::string evidence;               // the whole evidence, JSON
};

struct MapInfo {
  uint64_t version = 0;
  size_t exact = 0;
  size_t patterns = 0;
  std::string source;  // "redis" | "files" | "empty"
  int64_t loaded = 0;  // unix seconds
};

struct DashboardData {
  int64_t generated = 0;  // unix seconds
  std::string host;
  std::string version;
  size_t top_n = 15;
  TopView top;
  std::vector<Event> anomalies;                // last 24 hours, newest first
  std::vector<Event> hits;                     // newest first
  std::vector<DashboardCandidate> candidates;  // newest first
  std::vector<Event> signals;                  // detection reactions, last 24 hours, newest first
  std::vector<DashboardAccount> accounts;      // locked first, then flagged, then by latest hit
  std::optional<MapInfo> map;
  // The shapes: each top sender's last 48 hours and usual busy day, and the platform's.
  std::map<std::string, AccountTrend> trends;
  PlatformTrend platform;
  int min_history_days = 7;  // below it an account has no usual day (AnomalyRules)
  std::string error;         // set when Redis could not be read; the rest may be partial

  // Accounts with an anomaly in `anomalies`.
  std::set<std::string> AnomalousAccounts() const;
  // Accounts with a detection signal in `signals`.
  std::set<std::string> SignalledAccounts() const;
};

struct DashboardOptions {
  RedisUrl redis;
  std::string prefix = "compd:";
  std::string host;
  std::string version;
  size_t top_n = 15;
  size_t max_hits = 12;
  size_t max_anomalies = 50;
  size_t max_signals = 12;
  size_t max_candidates = 12;
  size_t max_accounts = 12;
  std::chrono::milliseconds cache_for{1000};
  std::chrono::milliseconds redis_timeout{2000};
  AnomalyRules rules;  // what "usual" means, as the anomaly rules see it
};

class DashboardSource {
 public:
  using MapInfoFn = std::function<std::optional<MapInfo>()>;
  // `map_info` (optional) tells which snapshot this node uses.
  DashboardSource(DashboardOptions options, MapInfoFn map_info);

  // The current data; never null. A Redis failure is reported in `error`, not as null.
  std::shared_ptr<const DashboardData> Get();

 private:
  std::shared_ptr<DashboardData> Gather();

  const DashboardOptions options_;
  const MapInfoFn map_info_;
  std::mutex mu_;  // guards everything below
  std::unique_ptr<RedisClient> redis_;
  TrendReader trends_;
  std::shared_ptr<const DashboardData> cached_;
  std::chrono::steady_clock::time_point cached_at_;
};

// Reads up to `limit` account records through the account registry, locked first, then
// flagged, then by latest hit.
// The candidates waiting for review, newest first, at most `limit`.
Status ReadDashboardCandidates(RedisClient* redis, const std::string& prefix, size_t limit,
                               std::vector<DashboardCandidate>* out);

Status ReadDashboardAccounts(RedisClient* redis, const std::string& prefix, size_t limit,
                             std::vector<DashboardAccount>* out);

// The dashboard's view of one registry record at `now_ms`.
DashboardAccount DashboardAccountOf(const AccountRecord& record, int64_t now_ms);

// JSON documents for the API. `part`: "top", "hits", "anomalies", "signals", "candidates",
// "accounts", "map", "trends", or
// "dashboard" for all of them. Never throws (invalid UTF-8 is replaced).
std::string DashboardJson(const DashboardData& data, const std::string& part);
std::string TopViewJson(const TopView& top);
std::string EventsJson(const std::vector<Event>& events);

}  // namespace compd

#endif  // COMPD_WATCH_DASHBOARD_H_
