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

// Discovery and retro-hunt live in the detect subsystem, above this one: the program copies
// their numbers in.
struct DiscoveryMetrics {
  std::string mode;         // "propose" | "add": what a completed candidate became
  uint64_t sightings = 0;   // test-like first mails sent to Redis
  uint64_t candidates = 0;  // completed on this node
  uint64_t dropped = 0;
  uint64_t redis_errors = 0;
  uint64_t pairs = 0;  // (account, recipient) pairs in the first-mail memory
};
struct RetroMetrics {
  uint64_t observed = 0, dropped = 0;
  uint64_t hunts = 0;     // after map changes
  uint64_t flagged = 0;   // accounts' hit events handed to the recorder
  uint64_t over_cap = 0;  // entries that matched more than retro_max_accounts accounts
  uint64_t answered = 0;  // mapctl hunt requests
  uint64_t messages = 0;  // remembered
  uint64_t bytes = 0;
  int64_t oldest_ms = 0;
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
  std::optional<DiscoveryMetrics> discovery;  // discovery on
  std::optional<RetroMetrics> retro;          // retro_hunt on
};

std::string RenderPrometheus(const MetricsInput& in);

// A label value as the text format wants it: backslash, double quote and newline escaped.
std::string EscapeLabelValue(const std::string& value);

}  // namespace compd

#endif  // COMPD_WATCH_METRICS_H_
