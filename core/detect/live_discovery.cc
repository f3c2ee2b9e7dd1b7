#include "compd/detect/live_discovery.h"

#include <ctime>

#include "compd/base/thread_guard.h"
#include "compd/detect/candidate_store.h"
#include "compd/detect/recipient_journal.h"
#include "compd/map/entry.h"
#include "compd/map/map_store.h"

namespace compd {

namespace {

// "a@x.example via mx1 (192.0.2.1, helo localhost), b@y.example via mx2 (...)".
std::string Accounts(const Candidate& c) {
  std::string out;
  for (const Sighting& s : c.sightings) {
    if (!out.empty()) out += ", ";
    out += s.account + " via " + (s.node.empty() ? "?" : s.node) + " (" +
           (s.client_ip.empty() ? "-" : s.client_ip) + ", helo " + (s.helo.empty() ? "-" : s.helo) +
           ")";
  }
  return out;
}

}  // namespace

LiveDiscovery::LiveDiscovery(LiveDiscoveryOptions options, LocalFn is_local, HitsFn on_hits,
                             LogFn log)
    : options_(std::move(options)),
      is_local_(std::move(is_local)),
      on_hits_(std::move(on_hits)),
      log_(std::move(log)),
      discovery_(options_.discovery) {}

LiveDiscovery::~LiveDiscovery() { Stop(); }

void LiveDiscovery::Log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, message);
}

LiveDiscoveryStats LiveDiscovery::stats() const {
  LiveDiscoveryStats s;
  s.sightings = sightings_.load();
  s.candidates = candidates_.load();
  s.dropped = dropped_.load();
  s.redis_errors = redis_errors_.load();
  s.loaded = loaded_.load();
  s.reloaded = reloaded_.load();
  s.discovery = discovery_.stats();
  return s;
}

Status LiveDiscovery::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return Status::Internal("discovery started twice");
  started_ = true;
  if (options_.discovery.mode == DiscoveryMode::kOff) return Status::Ok();
  redis_ = std::make_unique<RedisClient>(options_.redis, options_.redis_timeout);
  thread_ = StartLoopThread(
      "discovery", log_, [this] { Loop(); }, FlagUnder(&mu_, &stop_));
  return Status::Ok();
}

void LiveDiscovery::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LiveDiscovery::Observe(const Message& m, bool engine_test_signal) {
  if (options_.discovery.mode == DiscoveryMode::kOff) return;
  Sighting s;
  if (!discovery_.Sight(m, m.time_ms, engine_test_signal, is_local_, &s)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stop_ || queue_.size() >= kMaxQueue) {
      ++dropped_;
      return;
    }
    queue_.push_back(std::move(s));
  }
  cv_.notify_one();
}

Status LiveDiscovery::Act(const Candidate& c) {
  const nlohmann::json evidence = c.Evidence();
  CandidateStore store(redis_.get(), options_.prefix);
  if (options_.discovery.mode == DiscoveryMode::kPropose) {
    bool stored = false;
    Status s = store.Propose(c, &stored);
    if (!s.ok()) return s;
    if (stored) {
      ++candidates_;
      Log(LogLevel::kWarning, "discovery: " + c.recipient + " proposed as a test recipient (" +
                                  std::to_string(UnrelatedDomains(c.sightings)) +
                                  " unrelated customer domains: " + Accounts(c) +
                                  "); review with mapctl candidates list");
    }
  } else {
    Entry entry;
    Status s = ParseEntry(c.recipient, &entry);
    if (!s.ok()) {
      Log(LogLevel::kError, "discovery: " + c.recipient + " cannot enter the map: " + s.message());
      return Status::Ok();  // trying again cannot help
    }
    const std::string by = "discovery@" + options_.hostname;
    StoredEntry stored{
        entry,
        {static_cast<int64_t>(time(nullptr)), by,
         evidence.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "discovered"}};
    MapStore map(redis_.get(), options_.prefix);
    std::vector<bool> added;
    ChangeResult result;
    // A map Redis lost (map:lost) refuses adds until an operator replaces it: that is
    // retried like an outage.
    s = map.Add({stored}, by, &added, &result);
    if (!s.ok()) return s;
    if (!added.empty() && added[0]) {
      ++candidates_;
      Log(LogLevel::kWarning, "discovery: " + c.recipient +
                                  " added to the map as a test recipient (source=discovered, "
                                  "map version " +
                                  std::to_string(result.version) + "; " +
                                  std::to_string(UnrelatedDomains(c.sightings)) +
                                  " unrelated customer domains: " + Accounts(c) + ")");
    }
    // Every node that completed it submits the hits: whichever added the entry may have
    // stopped since; the event ids keep them once.
    if (on_hits_) on_hits_(DiscoveredHitEvents(evidence, options_.hostname));
  }
  // Best effort: the key expires anyway, and a known recipient gets no more sightings.
  store.DropSightings(c.recipient);
  discovery_.Suppress(c.recipient);
  return Status::Ok();
}

Status LiveDiscovery::Handle(const Sighting& s, bool* consumed) {
  CandidateStore store(redis_.get(), options_.prefix);
  SightResult got;
  *consumed = false;
  Status st = store.Sight(s, options_.discovery.window_ms, &got);
  if (!st.ok()) return st;
  // Sent: from here on a failure is the candidate's, which waits in pending_.
  *consumed = true;
  ++sightings_;
  if (got.known) {
    discovery_.Suppress(s.recipient);
    return Status::Ok();
  }
  Candidate c;
  if (!Candidate::Completes(got.sightings, options_.discovery.min_domains, s.time_ms, &c)) {
    return Status::Ok();
  }
  st = Act(c);
  if (!st.ok()) pending_.push_back(std::move(c));
  return st;
}

void LiveDiscovery::Reload() {
  if (loaded_) return;
  if (!options_.memory_dir.empty()) {
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    RecipientJournal journal(options_.memory_dir);
    size_t bad = 0;
    Status s = journal.Load(
        now - options_.discovery.retro_window_ms,
        [this](const Message& m) {
          discovery_.Remember(m);
          ++reloaded_;
        },
        &bad);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    if (!s.ok()) {
      Log(LogLevel::kError,
          "discovery: " + s.ToString() + "; mail before this start may be taken for first mails");
    } else {
      Log(LogLevel::kInfo, "discovery: who mailed whom, from " + options_.memory_dir + ": " +
                               std::to_string(reloaded_.load()) + " messages in " +
                               std::to_string(ms) + " ms");
    }
  }
  loaded_ = true;
}

void LiveDiscovery::Loop() {
  Reload();
  for (;;) {
    bool stopping = false;
    std::deque<Sighting> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, options_.retry, [this] { return stop_ || !queue_.empty(); });
      stopping = stop_;
      batch.swap(queue_);
    }
    Status st;
    for (auto it = pending_.begin(); it != pending_.end() && st.ok();) {
      st = Act(*it);
      if (st.ok()) it = pending_.erase(it);
    }
    while (!batch.empty() && st.ok()) {
      bool consumed = false;
      st = Handle(batch.front(), &consumed);
      if (consumed) batch.pop_front();
    }
    const bool failed = !st.ok();
    if (failed != failing_) {
      Log(failed ? LogLevel::kWarning : LogLevel::kInfo,
          failed ? "discovery: " + st.message() + "; sightings wait, retrying every " +
                       std::to_string(options_.retry.count()) + " ms"
                 : "discovery: Redis answers again");
      failing_ = failed;
    }
    if (failed) {
      ++redis_errors_;
      redis_->Disconnect();
      if (stopping) {
        Log(LogLevel::kWarning, "discovery: Redis unavailable at stop; " +
                                    std::to_string(batch.size() + pending_.size()) +
                                    " sightings and candidates not shared");
        return;
      }
      // Back to the front, in order, ahead of what arrived meanwhile.
      std::lock_guard<std::mutex> lock(mu_);
      while (!batch.empty()) {
        if (queue_.size() >= kMaxQueue) {
          dropped_ += batch.size();
          break;
        }
        queue_.push_front(std::move(batch.back()));
        batch.pop_back();
      }
    }
    if (stopping) return;
    if (failed) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, options_.retry, [this] { return stop_; });
    }
  }
}

}  // namespace compd
