#include "compd/watch/anomaly.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "compd/base/keys.h"

namespace compd {

namespace {

constexpr int64_t kDay = 86400;
constexpr double kMadToSigma = 1.4826;
constexpr int kClaimDays = 8;  // longer than any period, so a late flush cannot re-raise
constexpr size_t kMaxCachedBaselines = 100000;

double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  double pos = q * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

std::string Num(double v) {
  char buf[64];
  if (std::fabs(v - std::round(v)) < 1e-9) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  }
  return buf;
}

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Status AnomalyRules::FromConfig(const Config& config, AnomalyRules* out) {
  AnomalyRules r;
  r.history_days = static_cast<int>(config.GetInt("anomaly_history_days"));
  r.min_history_days = static_cast<int>(config.GetInt("anomaly_min_history_days"));
  r.percentile = static_cast<int>(config.GetInt("anomaly_percentile"));
  r.mad_factor = static_cast<int>(config.GetInt("anomaly_mad_factor"));
  r.day_factor_percent = static_cast<int>(config.GetInt("anomaly_day_factor_percent"));
  r.hour_factor_percent = static_cast<int>(config.GetInt("anomaly_hour_factor_percent"));
  r.network_factor_percent = static_cast<int>(config.GetInt("anomaly_network_factor_percent"));
  r.day_floor = config.GetInt("anomaly_day_floor");
  r.hour_floor = config.GetInt("anomaly_hour_floor");
  r.network_floor = config.GetInt("anomaly_network_floor");
  r.new_account_messages = config.GetInt("anomaly_new_account_messages");
  if (r.min_history_days > r.history_days) {
    return Status::Invalid("anomaly_min_history_days: " + std::to_string(r.min_history_days) +
                           " is more than anomaly_history_days (" + std::to_string(r.history_days) +
                           ")");
  }
  *out = r;
  return Status::Ok();
}

double RobustSummary::UsualHigh(int mad_factor) const {
  return std::max(high, median + mad_factor * kMadToSigma * mad);
}

RobustSummary Summarize(std::vector<double> values, int percentile) {
  RobustSummary s;
  s.n = values.size();
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.median = Quantile(values, 0.5);
  s.high = Quantile(values, std::clamp(percentile, 0, 100) / 100.0);
  std::vector<double> dev;
  dev.reserve(values.size());
  for (double v : values) dev.push_back(std::fabs(v - s.median));
  std::sort(dev.begin(), dev.end());
  s.mad = Quantile(dev, 0.5);
  return s;
}

Baseline BuildBaseline(const std::vector<DayCounts>& days, int64_t today_start,
                       const AnomalyRules& rules) {
  Baseline b;
  b.day = DayId(today_start);
  const int64_t window_floor = today_start - int64_t{rules.history_days} * kDay;
  int64_t first = today_start;
  for (const DayCounts& d : days) {
    int64_t start;
    if (!ParseDayId(d.day, &start) || start >= today_start || start < window_floor) continue;
    if (d.messages <= 0 && d.networks <= 0) continue;
    first = std::min(first, start);
  }
  b.history_days = static_cast<int>((today_start - first) / kDay);
  std::vector<double> messages(static_cast<size_t>(b.history_days), 0.0);
  std::vector<double> networks;
  for (const DayCounts& d : days) {
    int64_t start;
    if (!ParseDayId(d.day, &start) || start >= today_start || start < first) continue;
    messages[static_cast<size_t>((start - first) / kDay)] = static_cast<double>(d.messages);
    if (d.networks > 0) networks.push_back(static_cast<double>(d.networks));
  }
  b.messages = Summarize(std::move(messages), rules.percentile);
  b.networks = Summarize(std::move(networks), rules.percentile);
  return b;
}

bool MayBeAnomalous(const AccountTotals& t, const AnomalyRules& r) {
  return t.day_messages > std::min(r.day_floor, r.new_account_messages) ||
         t.hour_messages > r.hour_floor || t.hour_networks > r.network_floor;
}

std::vector<Anomaly> Evaluate(const AccountTotals& t, const Baseline& b, const AnomalyRules& r) {
  std::vector<Anomaly> out;
  auto raise = [&](const char* rule, std::string period, int64_t value, double baseline,
                   double threshold) {
    if (static_cast<double>(value) <= threshold) return;
    Anomaly a;
    a.account = t.account;
    a.rule = rule;
    a.period = std::move(period);
    a.value = value;
    a.baseline = baseline;
    a.threshold = threshold;
    a.history = b;
    out.push_back(std::move(a));
  };
  const std::string day = DayLabel(t.hour_start);
  const std::string hour = HourLabel(t.hour_start);
  if (b.history_days < r.min_history_days) {
    raise("new_account", day, t.day_messages, b.messages.UsualHigh(r.mad_factor),
          static_cast<double>(r.new_account_messages));
  } else {
    double high = b.messages.UsualHigh(r.mad_factor);
    raise("day_volume", day, t.day_messages, high,
          std::max(static_cast<double>(r.day_floor), high * r.day_factor_percent / 100.0));
    raise("hour_volume", hour, t.hour_messages, high,
          std::max(static_cast<double>(r.hour_floor), high * r.hour_factor_percent / 100.0));
  }
  if (t.hour_networks >= 0) {
    double high = b.networks.UsualHigh(r.mad_factor);
    raise("networks", hour, t.hour_networks, high,
          std::max(static_cast<double>(r.network_floor), high * r.network_factor_percent / 100.0));
  }
  return out;
}

std::string Anomaly::Describe() const {
  const RobustSummary& m = history.messages;
  std::string usual = "over " + std::to_string(history.history_days) + " days its usual high is " +
                      Num(baseline) + " a day (median " + Num(m.median) + ", high percentile " +
                      Num(m.high) + ", MAD " + Num(m.mad) + ")";
  std::string tail = "; alert above " + Num(threshold) + ".";
  if (rule == "day_volume") {
    return account + " sent " + std::to_string(value) + " messages on " + period + "; " + usual +
           tail;
  }
  if (rule == "hour_volume") {
    return account + " sent " + std::to_string(value) + " messages in the hour " + period +
           ":00Z; " + usual + tail;
  }
  if (rule == "networks") {
    return account + " sent from " + std::to_string(value) + " client networks in the hour " +
           period + ":00Z; its usual high is " + Num(baseline) + " in its busiest hour of a day" +
           tail;
  }
  return account + " is new (" + std::to_string(history.history_days) +
         " days of history) and sent " + std::to_string(value) + " messages on " + period + tail;
}

Event Anomaly::ToEvent() const {
  Event e;
  e.id = "anomaly:" + rule + ":" + period + ":" + account;
  e.type = "anomaly";
  e.account = account;
  e.source = "volume";
  e.rule = rule;
  e.period = period;
  e.value = std::to_string(value);
  e.baseline = Num(baseline);
  e.threshold = Num(threshold);
  e.detail = Describe();
  return e;
}

AnomalyDetector::AnomalyDetector(AnomalyOptions options, Sink sink, LogFn log)
    : options_(std::move(options)), sink_(std::move(sink)), log_(std::move(log)) {}

void AnomalyDetector::Log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, message);
}

AnomalyStats AnomalyDetector::stats() const {
  AnomalyStats s;
  s.raised = raised_count_.load();
  s.baselines = baselines_.load();
  s.redis_errors = redis_errors_.load();
  return s;
}

Status AnomalyDetector::GetBaseline(const std::string& account, int64_t day_start,
                                    const Baseline** out) {
  std::string day = DayId(day_start);
  if (day != cache_day_ || cache_.size() > kMaxCachedBaselines) {
    cache_.clear();
    cache_day_ = day;
  }
  auto it = cache_.find(account);
  if (it == cache_.end()) {
    if (!redis_) {
      redis_ = std::make_unique<RedisClient>(options_.redis, options_.redis_timeout);
    }
    std::vector<DayCounts> days;
    Status s = ReadAccountDays(redis_.get(), options_.prefix, account,
                               day_start - int64_t{options_.rules.history_days} * kDay,
                               day_start - kDay, &days);
    if (!s.ok() && !s.IsNotFound()) return s;
    baselines_.fetch_add(1);
    it = cache_.emplace(account, BuildBaseline(days, day_start, options_.rules)).first;
  }
  *out = &it->second;
  return Status::Ok();
}

Status AnomalyDetector::Claim(const Anomaly& a, bool* won) {
  RedisReply reply;
  Status s = redis_->Command({"SET", Keys(options_.prefix).anomaly(a.rule, a.period, a.account),
                              "1", "NX", "EX", std::to_string(kClaimDays * kDay)},
                             &reply);
  if (!s.ok()) return s;
  *won = reply.type == RedisReply::Type::kStatus;  // "OK"; nil when someone was first
  return Status::Ok();
}

void AnomalyDetector::Observe(const std::vector<AccountTotals>& totals) {
  const int64_t today = DayStart(Now());
  if (raised_day_ != DayId(today)) {
    raised_.clear();  // the Redis claims still stop repeats of yesterday's periods
    raised_day_ = DayId(today);
  }
  for (const AccountTotals& t : totals) {
    if (!MayBeAnomalous(t, options_.rules)) continue;
    const Baseline* baseline = nullptr;
    Status s = GetBaseline(t.account, DayStart(t.hour_start), &baseline);
    if (!s.ok()) {
      redis_errors_.fetch_add(1);
      Log(LogLevel::kWarning,
          "anomaly: cannot read the history of " + EscapeForLog(t.account) + ": " + s.message());
      continue;
    }
    for (const Anomaly& a : Evaluate(t, *baseline, options_.rules)) {
      std::string key = a.rule + "|" + a.period + "|" + a.account;
      if (raised_.count(key)) continue;
      bool won = false;
      s = Claim(a, &won);
      if (!s.ok()) {  // not marked: the next flush tries again
        redis_errors_.fetch_add(1);
        Log(LogLevel::kWarning, "anomaly: cannot record " + a.rule + " for " +
                                    EscapeForLog(a.account) + ": " + s.message());
        continue;
      }
      raised_.insert(key);
      if (!won) continue;  // another node raised it
      raised_count_.fetch_add(1);
      Log(LogLevel::kWarning, "anomaly: " + EscapeForLog(a.Describe()));
      if (sink_) sink_(a.ToEvent());
      if (listener_) listener_(a);
    }
  }
}

}  // namespace compd
