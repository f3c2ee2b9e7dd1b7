// Anomaly: "this account, which sent one mail a day for the last year, just sent 600".
// Compares an account's current hour and current day with its own history of up to a year
// (the daily counts volume.h keeps) and raises an event of type "anomaly" in the event
// stream when it is far outside it.
//
// The baseline is robust: the median and a high percentile (p99 by default) of the daily
// message counts over the history window (idle days count as 0), and the median absolute
// deviation (MAD). An account's "usual high" is
//     high = max(percentile, median + mad_factor * 1.4826 * MAD)
// (1.4826 * MAD estimates a standard deviation, but one burst cannot drag it up).
// Rules, each "value > threshold":
//   day_volume   messages today     > max(day_floor,  day_factor%  * high)
//   hour_volume  messages this hour > max(hour_floor, hour_factor% * high)
//                (more in one hour than on a busy whole day; hourly history is kept only
//                48 hours, so the daily series is the yardstick)
//   networks     distinct client networks this hour > max(network_floor, network_factor% *
//                the usual high of the account's busiest hour per active day)
//   new_account  an account with less than min_history_days of history: messages today >
//                new_account_messages (its baseline means nothing yet)
// The floors keep tiny accounts from paging anyone. The day in progress is never part of
// the baseline.
//
// AnomalyDetector owns its own Redis connection, a per-day cache of baselines and the set of
// anomalies already raised. Not thread-safe: Observe is called from the VolumeCounter's
// writer thread only; stats() from any thread.
//
// One anomaly per account, rule and period (hour or day), across all nodes: before raising
// one, the detector claims `{prefix}anomaly:<rule>:<period>:<account>` with SET NX (kept 8
// days); the node that wins submits the event (its id is derived from the same triple, so
// the Recorder drops a duplicate too) and tells the listener.
#ifndef COMPD_WATCH_ANOMALY_H_
#define COMPD_WATCH_ANOMALY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "compd/base/log.h"
#include "compd/base/redis.h"
#include "compd/base/settings.h"
#include "compd/base/status.h"
#include "compd/events/event.h"
#include "compd/watch/volume.h"

namespace compd {

struct AnomalyRules {
  int history_days = 365;    // how far back the baseline looks
  int min_history_days = 7;  // below this an account is new
  int percentile = 99;       // the "high" percentile of daily counts
  int mad_factor = 5;        // median + mad_factor * 1.4826 * MAD
  int day_factor_percent = 200;
  int hour_factor_percent = 100;
  int network_factor_percent = 200;
  int64_t day_floor = 100;
  int64_t hour_floor = 50;
  int64_t network_floor = 10;
  int64_t new_account_messages = 200;
  // Reads the anomaly_* settings.
  static Status FromConfig(const Config& config, AnomalyRules* out);
};

// Median, a high percentile (linear interpolation between ranks) and MAD of a sample.
struct RobustSummary {
  size_t n = 0;
  double median = 0;
  double high = 0;  // the percentile
  double mad = 0;
  // max(high, median + mad_factor * 1.4826 * mad)
  double UsualHigh(int mad_factor) const;
};
RobustSummary Summarize(std::vector<double> values, int percentile);

// An account's history as of one day (that day excluded).
struct Baseline {
  std::string day;         // DayId of the day it serves
  int history_days = 0;    // days from its first active day (at most history_days back)
  RobustSummary messages;  // per day, idle days as 0
  RobustSummary networks;  // busiest hour's networks per active day
};
// `days` as ReadAccountDays gives them; `today_start` unix seconds of the current UTC day.
Baseline BuildBaseline(const std::vector<DayCounts>& days, int64_t today_start,
                       const AnomalyRules& rules);

struct Anomaly {
  std::string account;
  std::string rule;    // "hour_volume" | "day_volume" | "networks" | "new_account"
  std::string period;  // HourLabel or DayLabel
  int64_t value = 0;
  double baseline = 0;   // the usual high it was compared with
  double threshold = 0;  // value had to exceed this
  Baseline history;
  // The event for the stream: type "anomaly", id "anomaly:<rule>:<period>:<account>".
  Event ToEvent() const;
  std::string Describe() const;  // one sentence
};

// Does any rule possibly fire for these totals (a value above its floor)? Cheap; it decides
// whether the baseline has to be fetched at all.
bool MayBeAnomalous(const AccountTotals& totals, const AnomalyRules& rules);
// The anomalies `totals` show against `baseline`.
std::vector<Anomaly> Evaluate(const AccountTotals& totals, const Baseline& baseline,
                              const AnomalyRules& rules);

struct AnomalyOptions {
  RedisUrl redis;
  std::string prefix = "compd:";
  AnomalyRules rules;
  std::chrono::milliseconds redis_timeout{2000};
};

struct AnomalyStats {
  uint64_t raised = 0;     // anomalies this node raised (claimed)
  uint64_t baselines = 0;  // baselines read from Redis
  uint64_t redis_errors = 0;
};

class AnomalyDetector {
 public:
  using Sink = std::function<void(Event)>;
  using Listener = std::function<void(const Anomaly&)>;

  // `sink` receives each anomaly's event (compd-milter: Recorder::Submit).
  AnomalyDetector(AnomalyOptions options, Sink sink, LogFn log);

  // The hook point for reactions such as the ticket hook: called once per anomaly in the
  // whole cluster, after its event went to the sink, on the volume writer thread; it must
  // not block (queue the work). Set before the first Observe.
  void SetListener(Listener listener) { listener_ = std::move(listener); }

  // VolumeCounter's observer.
  void Observe(const std::vector<AccountTotals>& totals);

  AnomalyStats stats() const;

 private:
  Status GetBaseline(const std::string& account, int64_t day_start, const Baseline** out);
  // True if this node won the claim; false if another did. kUnavailable on failure.
  Status Claim(const Anomaly& a, bool* won);
  void Log(LogLevel level, const std::string& message) const;

  const AnomalyOptions options_;
  const Sink sink_;
  const LogFn log_;
  Listener listener_;
  std::unique_ptr<RedisClient> redis_;
  std::string cache_day_;
  std::unordered_map<std::string, Baseline> cache_;
  std::unordered_set<std::string> raised_;  // rule|period|account seen by this node
  std::string raised_day_;
  std::atomic<uint64_t> raised_count_{0}, baselines_{0}, redis_errors_{0};
};

}  // namespace compd

#endif  // COMPD_WATCH_ANOMALY_H_
