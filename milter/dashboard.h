// Dashboard wiring for compd-milter: per-account volume counters, anomaly detection, hit
// counters, and the HTTP listener (dashboard, JSON API, /metrics), built from the settings
// and started/stopped by main at its markers.
//
// DashboardPlan is checked before anything starts (so --check-config reports bad settings
// and unreadable secret files); the secret files are read then, while still privileged.
// DashboardRuntime: AttachOutlets before the Tripwire exists, Start after, Stop before the
// Recorder stops (anomalies are events). Not thread-safe itself; what it runs is.
#ifndef COMPD_MILTER_DASHBOARD_H_
#define COMPD_MILTER_DASHBOARD_H_

#include <ctime>
#include <functional>
#include <memory>
#include <optional>

#include "compd/accounts/recorder.h"
#include "compd/base/log.h"
#include "compd/base/settings.h"
#include "compd/map/map_watcher.h"
#include "compd/mta/tripwire.h"
#include "compd/watch/anomaly.h"
#include "compd/watch/dashboard.h"
#include "compd/watch/http_auth.h"
#include "compd/watch/metrics.h"
#include "compd/watch/volume.h"
#include "http_listener.h"

namespace compd {

struct DashboardPlan {
  bool volume = false;
  VolumeOptions volume_options;
  bool anomalies = false;
  AnomalyOptions anomaly_options;
  bool http = false;
  HttpListenerOptions http_options;
  std::shared_ptr<const HttpAuthenticator> auth;
  DashboardOptions dashboard_options;
};

// Reads the volume, anomaly, dashboard and metrics settings and the credential files. kInvalid /
// kIoError name the setting or file:line.
Status MakeDashboardPlan(const Config& config, const RedisUrl& redis, DashboardPlan* out);

class DashboardRuntime {
 public:
  DashboardRuntime(const DashboardPlan& plan, LogFn log, Recorder* recorder,
                   const MapWatcher* watcher);
  ~DashboardRuntime();  // Stop()s

  // Counts hits on their way to the recorder and feeds accepted messages to the counters.
  void AttachOutlets(TripwireOutlets* outlets);
  // The hook point for reactions to anomalies (such as the ticket hook): set a listener
  // before Start. Null when anomaly detection is off.
  AnomalyDetector* anomaly_detector() { return detector_.get(); }

  // What /metrics adds from parts the dashboard does not own (discovery, retro-hunt):
  // called on each scrape from the listener's thread. Set before Start.
  void SetMetricsSource(std::function<void(MetricsInput*)> source) {
    metrics_source_ = std::move(source);
  }

  Status Start(const Tripwire* tripwire);
  void Stop();

 private:
  std::string Metrics() const;

  const DashboardPlan plan_;
  const LogFn log_;
  Recorder* const recorder_;
  const MapWatcher* const watcher_;
  const Tripwire* tripwire_ = nullptr;
  const int64_t start_time_;
  HitCounters hits_;
  std::function<void(MetricsInput*)> metrics_source_;
  std::unique_ptr<VolumeCounter> volume_;
  std::unique_ptr<AnomalyDetector> detector_;
  std::unique_ptr<DashboardSource> source_;
  std::unique_ptr<HttpListener> http_;
};

}  // namespace compd

#endif  // COMPD_MILTER_DASHBOARD_H_
