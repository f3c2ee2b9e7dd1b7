#include "compd/detect/signal_window.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "compd/base/utc_time.h"

namespace compd {

namespace {

// Bounds an account's window whatever a botnet does (distinct new networks, mostly).
constexpr size_t kMaxEntries = 64;

bool Same(const WindowEntry& a, const WindowEntry& b) {
  return a.id == b.id && a.time_ms == b.time_ms && a.part == b.part && a.score == b.score;
}

}  // namespace

Status SignalWindowOptions::FromConfig(const Config& config, SignalWindowOptions* out) {
  SignalWindowOptions o;
  o.window_ms = config.GetDurationMs("signal_window");
  for (size_t i = 0; i < kSignalCount; ++i) {
    const SignalId id = static_cast<SignalId>(i);
    if (id == SignalId::kCombined) continue;
    o.weight[i] = static_cast<int>(config.GetInt(std::string("weight_") + SignalName(id)));
  }
  o.test_min_points = static_cast<int>(config.GetInt("combined_test_points"));
  o.flag_score = static_cast<int>(config.GetInt("combined_flag_score"));
  o.lock_score = static_cast<int>(config.GetInt("combined_lock_score"));
  if (o.flag_score > 0 && o.lock_score > 0 && o.lock_score < o.flag_score) {
    return Status::Invalid("combined_lock_score: must not be below combined_flag_score");
  }
  *out = o;
  return Status::Ok();
}

bool AddToWindow(SignalWindow* w, WindowEntry e, int64_t now_ms, int64_t window_ms) {
  const int64_t from = now_ms - window_ms;
  auto& v = w->entries;
  v.erase(
      std::remove_if(v.begin(), v.end(), [from](const WindowEntry& x) { return x.time_ms < from; }),
      v.end());
  if (v.empty()) w->raised_kind = -1;
  if (e.time_ms < from || e.score <= 0) return false;
  for (const WindowEntry& x : v) {
    if (Same(x, e)) return false;
  }
  // What can no longer count: a part seen again (the later use keeps it longer), an entry
  // no stronger and no later than another of its signal.
  v.erase(std::remove_if(v.begin(), v.end(),
                         [&e](const WindowEntry& x) {
                           if (x.id != e.id || x.part.empty() != e.part.empty()) return false;
                           if (!e.part.empty()) return x.part == e.part && x.time_ms <= e.time_ms;
                           return x.score <= e.score && x.time_ms <= e.time_ms;
                         }),
          v.end());
  for (const WindowEntry& x : v) {
    if (x.id == e.id && x.part.empty() && e.part.empty() && x.score >= e.score &&
        x.time_ms >= e.time_ms) {
      return false;  // a later, stronger one counts longer
    }
    if (x.id == e.id && !e.part.empty() && x.part == e.part) return false;  // a later use
  }
  auto at = std::upper_bound(v.begin(), v.end(), e.time_ms,
                             [](int64_t t, const WindowEntry& x) { return t < x.time_ms; });
  v.insert(at, std::move(e));
  if (v.size() > kMaxEntries) v.erase(v.begin());
  return true;
}

int WindowScore(const SignalWindow& w, const SignalWindowOptions& o, int64_t now_ms,
                std::vector<const WindowEntry*>* parts) {
  const int64_t from = now_ms - o.window_ms;
  int total = 0;
  for (size_t i = 0; i < kSignalCount; ++i) {
    const SignalId id = static_cast<SignalId>(i);
    const WindowEntry* best = nullptr;
    int sum = 0;
    std::vector<const WindowEntry*> summed;
    for (const WindowEntry& e : w.entries) {
      if (e.id != id || e.time_ms < from || e.time_ms > now_ms) continue;
      if (e.part.empty()) {
        if (best == nullptr || e.score > best->score) best = &e;
      } else {
        sum += e.score;
        summed.push_back(&e);
      }
    }
    const int cap = o.Weight(id);
    sum = std::min(sum, cap);
    const int strongest = best == nullptr ? 0 : std::min(best->score, cap);
    if (strongest == 0 && sum == 0) continue;
    if (strongest >= sum) {
      total += strongest;
      if (parts != nullptr) parts->push_back(best);
    } else {
      total += sum;
      if (parts != nullptr) parts->insert(parts->end(), summed.begin(), summed.end());
    }
  }
  return total;
}

bool CheckCombined(SignalWindow* w, const SignalWindowOptions& o, int64_t now_ms, Signal* out,
                   ReactionKind* kind) {
  if (!o.enabled()) return false;
  std::vector<const WindowEntry*> parts;
  const int score = WindowScore(*w, o, now_ms, &parts);
  std::set<SignalId> distinct;
  for (const WindowEntry* e : parts) distinct.insert(e->id);
  // One signal alone has its own reaction: the combination is for several together.
  if (distinct.size() < 2) return false;
  ReactionKind k;
  if (o.lock_score > 0 && score >= o.lock_score) {
    k = ReactionKind::kLock;
  } else if (o.flag_score > 0 && score >= o.flag_score) {
    k = ReactionKind::kFlag;
  } else {
    return false;
  }
  if (w->raised_kind >= static_cast<int>(k) && now_ms - w->raised_ms < o.window_ms) return false;
  w->raised_kind = static_cast<int>(k);
  w->raised_ms = now_ms;
  int64_t since = now_ms;
  nlohmann::json contributions = nlohmann::json::array();
  for (const WindowEntry* e : parts) {
    since = std::min(since, e->time_ms);
    contributions.push_back({{"signal", SignalName(e->id)},
                             {"time", FormatUnixMillis(e->time_ms)},
                             {"score", e->score},
                             {"weight", o.Weight(e->id)},
                             {"evidence", e->evidence}});
  }
  Signal s;
  s.id = SignalId::kCombined;
  nlohmann::json& ev = s.evidence;
  ev["score"] = score;
  // value and threshold: what short listings of any signal print.
  ev["value"] = score;
  ev["threshold"] = k == ReactionKind::kLock ? o.lock_score : o.flag_score;
  ev["flag_score"] = o.flag_score;
  if (o.lock_score > 0) ev["lock_score"] = o.lock_score;
  ev["window_s"] = o.window_ms / 1000;
  ev["since"] = FormatUnixMillis(since);
  ev["contributions"] = std::move(contributions);
  *out = std::move(s);
  *kind = k;
  return true;
}

}  // namespace compd
