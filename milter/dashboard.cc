#include "dashboard.h"

#include <unistd.h>

#include <chrono>

#include "compd/base/socket.h"

namespace compd {

namespace {

// The setting's name in front of a file error: "http_users_file: /etc/...:3: ...".
Status Named(const char* setting, const Status& s) {
  std::string m = std::string(setting) + ": " + s.message();
  return s.IsIoError() ? Status::IoError(m) : Status::Invalid(m);
}

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Status MakeDashboardPlan(const Config& config, const RedisUrl& redis, DashboardPlan* out) {
  DashboardPlan p;
  const std::string prefix = config.GetString("prefix");
  const auto timeout = std::chrono::milliseconds(config.GetDurationMs("redis_timeout"));
  p.volume = config.GetBool("volume_counters");
  p.volume_options.redis = redis;
  p.volume_options.prefix = prefix;
  Status s = VolumeOptions::FromConfig(config, &p.volume_options);
  if (!s.ok()) return s;
  p.anomalies = p.volume && config.GetBool("anomaly_detection");
  p.anomaly_options.redis = redis;
  p.anomaly_options.prefix = prefix;
  p.anomaly_options.redis_timeout = timeout;
  s = AnomalyRules::FromConfig(config, &p.anomaly_options.rules);
  if (!s.ok()) return s;

  const std::string listen = config.GetString("http_listen");
  p.http = !listen.empty();
  if (p.http) {
    s = ParseHostPort("http_listen", listen, &p.http_options.host, &p.http_options.port);
    if (!s.ok()) return s;
    p.http_options.refresh_seconds =
        static_cast<int>(config.GetDurationMs("dashboard_refresh") / 1000);
  }
  std::vector<HttpUser> users;
  std::vector<std::string> tokens, metrics_tokens;
  struct File {
    const char* setting;
    std::vector<std::string>* tokens;
  };
  if (!config.GetString("http_users_file").empty()) {
    s = LoadUsersFile(config.GetString("http_users_file"), &users);
    if (!s.ok()) return Named("http_users_file", s);
  }
  for (File f : {File{"http_token_file", &tokens}, File{"metrics_token_file", &metrics_tokens}}) {
    if (config.GetString(f.setting).empty()) continue;
    s = LoadTokenFile(config.GetString(f.setting), f.tokens);
    if (!s.ok()) return Named(f.setting, s);
  }
  if (p.http && users.empty() && tokens.empty()) {
    return Status::Invalid(
        "http_listen is set, but neither http_users_file nor http_token_file holds a "
        "credential: the dashboard would be open to anyone who reaches it");
  }
  p.auth = std::make_shared<const HttpAuthenticator>(std::move(users), std::move(tokens),
                                                     std::move(metrics_tokens));
  DashboardOptions& d = p.dashboard_options;
  d.redis = redis;
  d.prefix = prefix;
  d.host = config.GetString("hostname");
  if (d.host.empty()) {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) == 0) d.host = name;
  }
  d.version = COMPD_VERSION;
  d.top_n = static_cast<size_t>(config.GetInt("dashboard_top"));
  d.redis_timeout = timeout;
  d.rules = p.anomaly_options.rules;
  *out = std::move(p);
  return Status::Ok();
}

DashboardRuntime::DashboardRuntime(const DashboardPlan& plan, LogFn log, Recorder* recorder,
                                   const MapWatcher* watcher)
    : plan_(plan),
      log_(std::move(log)),
      recorder_(recorder),
      watcher_(watcher),
      start_time_(Now()) {
  if (plan_.volume) volume_ = std::make_unique<VolumeCounter>(plan_.volume_options, log_);
  if (plan_.anomalies) {
    detector_ = std::make_unique<AnomalyDetector>(
        plan_.anomaly_options, [recorder](Event e) { recorder->Submit(std::move(e)); }, log_);
  }
}

DashboardRuntime::~DashboardRuntime() { Stop(); }

void DashboardRuntime::AttachOutlets(TripwireOutlets* outlets) {
  auto events = std::move(outlets->events);
  outlets->events = [this, events](Event e) {
    hits_.Count(e);
    events(std::move(e));
  };
  if (volume_) {
    VolumeCounter* v = volume_.get();
    outlets->messages = [v](const MessageRecord& m) { v->Record(m); };
  }
}

std::string DashboardRuntime::Metrics() const {
  MetricsInput in;
  in.version = COMPD_VERSION;
  in.start_time = start_time_;
  in.now = Now();
  if (tripwire_) in.tripwire = tripwire_->stats();
  if (recorder_) in.recorder = recorder_->stats();
  if (watcher_) {
    in.watcher = watcher_->stats();
    in.snapshot = watcher_->Current();
  }
  if (volume_) in.volume = volume_->stats();
  if (detector_) in.anomaly = detector_->stats();
  if (plan_.dashboard_options.redis.sentinel) {
    in.sentinel = plan_.dashboard_options.redis.sentinel->stats();
  }
  in.hits = hits_.Rows();
  if (metrics_source_) metrics_source_(&in);
  return RenderPrometheus(in);
}

Status DashboardRuntime::Start(const Tripwire* tripwire) {
  tripwire_ = tripwire;
  if (volume_) {
    if (detector_) {
      AnomalyDetector* d = detector_.get();
      volume_->SetObserver([d](const std::vector<AccountTotals>& t) { d->Observe(t); });
    }
    Status s = volume_->Start();
    if (!s.ok()) return s;
  }
  if (!plan_.http) return Status::Ok();
  const MapWatcher* watcher = watcher_;
  source_ = std::make_unique<DashboardSource>(
      plan_.dashboard_options, [watcher]() -> std::optional<MapInfo> {
        if (watcher == nullptr) return std::nullopt;
        auto snap = watcher->Current();
        MapInfo m;
        m.version = snap->version;
        m.exact = snap->exact;
        m.patterns = snap->patterns;
        m.source = snap->source;
        m.loaded = std::chrono::duration_cast<std::chrono::seconds>(snap->loaded.time_since_epoch())
                       .count();
        return m;
      });
  http_ = std::make_unique<HttpListener>(
      plan_.http_options, plan_.auth, source_.get(), [this] { return Metrics(); }, log_);
  return http_->Start();
}

void DashboardRuntime::Stop() {
  if (http_) http_->Stop();
  if (volume_) volume_->Stop();  // last flush; anomalies it raises still reach the recorder
}

}  // namespace compd
