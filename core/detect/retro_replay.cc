#include "compd/detect/retro_replay.h"

#include <algorithm>
#include <chrono>

#include "compd/base/utc_time.h"
#include "compd/map/entry.h"

namespace compd {

namespace {

// How often, in the logs' time, old days are forgotten (a node does it every ten minutes;
// a replay reads days in seconds, and days are what is forgotten).
constexpr int64_t kForgetEveryMs = int64_t{3600} * 1000;

}  // namespace

RetroReplay::RetroReplay(int64_t window_ms, int max_accounts, Matcher::Options matcher)
    : window_ms_(window_ms), max_accounts_(max_accounts), matcher_(matcher) {}

void RetroReplay::Observe(const Message& m) {
  if (m.account.empty() || m.recipients.empty()) return;
  std::unique_ptr<RecipientMemory>& memory = nodes_[m.node];
  if (!memory) memory = std::make_unique<RecipientMemory>();
  memory->Add(m);
  if (m.time_ms - last_forget_ms_ >= kForgetEveryMs) {
    last_forget_ms_ = m.time_ms;
    for (auto& [node, mem] : nodes_) mem->Forget(m.time_ms - window_ms_);
  }
}

Status RetroReplay::EntryAdded(const std::string& text, int64_t now_ms, const Matcher* before,
                               RetroReplayResult* out) {
  *out = RetroReplayResult();
  Entry entry;
  Status s = ParseEntry(text, &entry);
  std::shared_ptr<const Matcher> matcher;
  if (s.ok()) s = Matcher::Build({entry}, matcher_, &matcher);
  if (!s.ok()) return s;
  const std::string when = FormatUnixMillis(now_ms);
  for (const auto& [node, memory] : nodes_) {
    bool truncated = false;
    std::vector<RetroFind> finds =
        memory->Hunt(*matcher, before, now_ms - window_ms_, kHuntMaxFinds, &truncated);
    if (finds.empty()) continue;
    for (const RetroFind& f : finds) out->finds.push_back(RetroFindJson(f, node));
    RetroJudgement j = JudgeRetroFinds(finds, truncated, max_accounts_, node);
    for (Event& e : j.events) {
      e.time = when;
      out->events.push_back(std::move(e));
    }
    for (RetroOverCap& o : j.over_cap) out->over_cap.push_back(std::move(o));
  }
  return Status::Ok();
}

Reaction RetroReaction(const Event& e, int64_t time_ms, const ReactionTable& table) {
  Reaction r;
  r.time_ms = time_ms;
  r.account = e.account;
  r.kind = table[SignalId::kHit];
  r.queue_id = e.queue_id;
  r.node = e.host;
  r.client_ip = e.client_ip;
  Signal sig;
  sig.id = SignalId::kHit;
  sig.evidence = nlohmann::json::parse(e.evidence, nullptr, false);
  if (!sig.evidence.is_object()) sig.evidence = nlohmann::json::object();
  r.signals.push_back(std::move(sig));
  r.event_key = e.id;
  return r;
}

RecipientMemoryStats RetroReplay::stats() const {
  RecipientMemoryStats total;
  for (const auto& [node, memory] : nodes_) {
    RecipientMemoryStats s = memory->stats();
    total.messages += s.messages;
    total.pairs += s.pairs;
    total.recipients += s.recipients;
    total.accounts += s.accounts;
    total.client_ips += s.client_ips;
    total.days = std::max(total.days, s.days);
    if (s.oldest_ms > 0 && (total.oldest_ms == 0 || s.oldest_ms < total.oldest_ms)) {
      total.oldest_ms = s.oldest_ms;
    }
    total.bytes += s.bytes;
  }
  return total;
}

}  // namespace compd
