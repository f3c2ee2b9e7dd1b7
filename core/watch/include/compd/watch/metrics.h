// Metrics: the node's counters in the Prometheus text exposition format (version 0.0.4),
// for /metrics.
//
// HitCounters counts hits by where and action with atomics: Count() is safe from any
// thread and cheap enough for the mail path. RenderPrometheus is a pure function.
#ifndef COMPD_WATCH_METRICS_H_
#define COMPD_WATCH_METRICS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compd/accounts/recorder.h"
#include "compd/base/sentinel.h"
#include "compd/events/event.h"
#include "compd/map/map_watcher.h"
#include "compd/mta/tripwire.h"
#include "compd/watch/anomaly.h"
#include "compd/watch/volume.h"

namespace compd {

class HitCounters {
 public:
  HitCounters();
  // Counts an event of type "hit"; others are ignored.
  void Count(const Event& event);
  struct Row {
    std::string where;
    std::string action;
    uint64_t count;
  };
  // Every (where, action) pair, including zeros, so series exist from the start.
  std::vector<Row> Rows() const;

 private:
  static constexpr int kWheres = 5;   // envelope, header:to, header:cc, display-name, other
  static constexpr int kActions = 6;  // reject, tempfail, quarantine, discard, monitor, other
  std::atomic<uint64_t> counts_[kWheres][kActions];
};

// What a node knows about itself; parts that are not running stay empty.
struct MetricsInput {
  std::string version;
  int64_t start_time = 0;  // unix seconds
  int64_t now = 0;
  std::optional<TripwireStats> tripwire;
  std::optional<RecorderStats> recorder;
  std::optional<MapWatcherStats> watcher;
  std::shared_ptr<const Snapshot> snapshot;
  std::optional<VolumeStats> volume;
  std::optional<AnomalyStats> anomaly;
  std::optional<SentinelStats> sentinel;  // with redis_sentinels
  std::vector<HitCounters::Row> hits;
};

std::string RenderPrometheus(const MetricsInput& in);

// A label value as the text format wants it: backslash, double quote and newline escaped.
std::string EscapeLabelValue(const std::string& value);

}  // namespace compd

#endif  // COMPD_WATCH_METRICS_H_
