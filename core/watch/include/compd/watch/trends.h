// Trends: the shapes the wall page draws, read from the counters volume.h keeps: each top
// sender's messages per hour over the last 48 hours next to its usual busy day (the
// anomaly baseline of its year of daily counts), and the whole platform's authenticated
// messages per hour over the last 48 hours against the same hours a week earlier.
//
// TrendReader owns a cache of what cannot change any more (closed hours, today's
// baselines), so a wall display refreshing every few seconds costs Redis a handful of
// commands once warm. Not thread-safe: DashboardSource calls it under its own mutex.
#ifndef COMPD_WATCH_TRENDS_H_
#define COMPD_WATCH_TRENDS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "compd/base/redis.h"
#include "compd/base/status.h"
#include "compd/watch/anomaly.h"

namespace compd {

inline constexpr int kTrendHours = 48;

struct AccountTrend {
  // Messages per UTC hour, oldest first; the last one is the current hour.
  std::vector<int64_t> hours;
  // The account's usual busy day (AnomalyRules' "usual high" of its daily counts); an
  // hour above it sent more than a usual busy whole day, which is the hour_volume rule.
  double usual_day = 0;
  int history_days = 0;  // days of history behind usual_day; 0: none (a new account)
};

struct PlatformTrend {
  int64_t first_hour = 0;         // unix seconds of the first hour of both series
  std::vector<int64_t> hours;     // authenticated messages per hour, oldest first
  std::vector<int64_t> week_ago;  // the same hours 7 days earlier
  bool week_ago_known = false;    // false when no counter that old exists yet
};

class TrendReader {
 public:
  TrendReader(std::string prefix, AnomalyRules rules) : prefix_(std::move(prefix)), rules_(rules) {}

  // `now`: unix seconds. Reads what the cache lacks; on a Redis failure `out` is left as
  // far as it got and the failure is returned.
  Status ReadAccounts(RedisClient* redis, int64_t now, const std::set<std::string>& accounts,
                      std::map<std::string, AccountTrend>* out);
  Status ReadPlatform(RedisClient* redis, int64_t now, PlatformTrend* out);

 private:
  // An hour is settled a few minutes after it ended: every node has flushed into it.
  static bool Settled(int64_t hour_start, int64_t now);
  void Prune(int64_t now);

  const std::string prefix_;
  const AnomalyRules rules_;
  std::map<std::pair<int64_t, std::string>, int64_t> account_hours_;  // settled hours
  std::map<int64_t, int64_t> platform_hours_;                         // settled hours
  std::map<std::string, std::pair<std::string, AccountTrend>>
      baselines_;  // account -> (day, trend)
};

}  // namespace compd

#endif  // COMPD_WATCH_TRENDS_H_
