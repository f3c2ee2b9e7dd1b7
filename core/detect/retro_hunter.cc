#include "compd/detect/retro_hunter.h"

#include <algorithm>

#include "compd/base/keys.h"
#include "compd/base/thread_guard.h"
#include "compd/base/utc_time.h"
#include "compd/detect/retro_hunt.h"
#include "compd/map/entry.h"

namespace compd {

namespace {

// Messages queued for the worker at most: minutes of a busy node's traffic. Past it a
// message is not remembered (counted in stats), rather than the MTA waiting.
constexpr size_t kMaxPending = 200000;
// The worker takes observed messages in batches: one wake-up (and one journal write) per
// batch rather than per message keeps it off the mail path's CPU. A map change is hunted at
// once, after whatever is queued.
constexpr auto kBatchWait = std::chrono::milliseconds(200);
constexpr size_t kBatchSize = 1024;
// How often old days are forgotten.
constexpr int64_t kForgetEveryMs = 600 * 1000;
// Request ids remembered as answered (far more than the request list keeps).
constexpr size_t kAnsweredIds = 256;
constexpr const char* kReplyTtlSeconds = "60";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Days(int64_t ms) {
  return ms % (86400 * 1000) == 0 ? std::to_string(ms / (86400 * 1000)) + "d"
                                  : std::to_string(ms / (3600 * 1000)) + "h";
}

}  // namespace

Status RetroHunterOptions::FromConfig(const Config& config, RetroHunterOptions* out) {
  RetroHunterOptions o;
  o.redis = out->redis;
  o.node = out->node;
  o.matcher = out->matcher;
  o.enabled = config.GetBool("retro_hunt");
  o.window_ms = config.GetDurationMs("retro_window");
  o.max_accounts = static_cast<int>(config.GetInt("retro_max_accounts"));
  const std::string spool = config.GetString("spool_dir");
  o.dir = spool.empty() ? std::string() : spool + "/retro";
  o.prefix = config.GetString("prefix");
  o.redis_timeout = std::chrono::milliseconds(config.GetDurationMs("redis_timeout"));
  o.poll_interval = std::chrono::milliseconds(config.GetDurationMs("map_poll_interval"));
  *out = std::move(o);
  return Status::Ok();
}

RetroHunter::RetroHunter(RetroHunterOptions options, LogFn log, std::function<void(Event)> on_event)
    : options_(std::move(options)),
      log_(std::move(log)),
      on_event_(std::move(on_event)),
      watch_({options_.redis, Keys(options_.prefix).retro_channel(), options_.poll_interval,
              options_.redis_timeout},
             "retro", log_, [] { return std::string("answering no hunt requests"); }) {}

RetroHunter::~RetroHunter() { Stop(); }

void RetroHunter::Log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, message);
}

Status RetroHunter::Start() {
  if (!options_.enabled) return Status::Ok();
  if (started_.exchange(true)) return Status::Internal("retro-hunt started twice");
  if (!options_.dir.empty()) {
    journal_ = std::make_unique<RecipientJournal>(options_.dir);
    Status s = journal_->Open();
    if (!s.ok()) return s;
  }
  redis_ = std::make_unique<RedisClient>(options_.redis, options_.redis_timeout);
  worker_ = StartLoopThread(
      "retro", log_, [this] { WorkerLoop(); }, FlagUnder(&mu_, &stop_));
  requests_ = StartLoopThread(
      "retro requests", log_, [this] { watch_.Run([this] { return AnswerRequests(); }); },
      [this] { return watch_.stopping(); });
  return Status::Ok();
}

void RetroHunter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  watch_.Stop();
  if (worker_.joinable()) worker_.join();
  if (requests_.joinable()) requests_.join();
}

void RetroHunter::Observe(const Message& m) {
  if (!options_.enabled || m.account.empty() || m.recipients.empty()) return;
  Message copy;  // only what the memory keeps
  copy.time_ms = m.time_ms;
  copy.account = m.account;
  copy.client_ip = m.client_ip;
  copy.queue_id = m.queue_id;
  copy.recipients = m.recipients;
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.size() >= kMaxPending) {
      ++dropped_;
      return;
    }
    pending_.push_back(std::move(copy));
    wake = pending_.size() == 1 || pending_.size() == kBatchSize;
  }
  ++observed_;
  if (wake) cv_.notify_one();
}

void RetroHunter::MapChanged(const MapChangeNote& note) {
  if (!options_.enabled) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    changes_.push_back(note);
  }
  cv_.notify_one();
}

void RetroHunter::WorkerLoop() {
  if (!loaded_) {
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t since = NowMs() - options_.window_ms;
    size_t n = 0, bad = 0;
    if (journal_) {
      // Locked per message: a week takes seconds to read, and hunt requests answer
      // meanwhile (saying the memory is still loading).
      Status s = journal_->Load(
          since,
          [&](const Message& m) {
            std::lock_guard<std::mutex> lock(mem_mu_);
            memory_->Add(m);
            ++n;
          },
          &bad);
      if (!s.ok()) Log(LogLevel::kError, "retro: " + s.ToString());
    }
    loaded_ = true;
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    RecipientMemoryStats st = stats().memory;
    Log(LogLevel::kInfo,
        "retro: remembering who mailed whom for " + Days(options_.window_ms) +
            (journal_ ? " in " + options_.dir : std::string(" (in memory only: no spool_dir)")) +
            "; reloaded " + std::to_string(n) + " messages in " + std::to_string(ms) + " ms (" +
            std::to_string(st.bytes / (1024 * 1024)) + " MiB)" +
            (bad > 0 ? "; skipped " + std::to_string(bad) + " damaged lines" : std::string()));
  }
  std::vector<Message> pending;
  std::vector<MapChangeNote> changes;
  while (true) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1),
                   [this] { return stop_ || !pending_.empty() || !changes_.empty(); });
      cv_.wait_for(lock, kBatchWait,
                   [this] { return stop_ || !changes_.empty() || pending_.size() >= kBatchSize; });
      pending.swap(pending_);
      changes.swap(changes_);
      stopping = stop_;
    }
    Work(&pending, &changes);
    if (stopping) return;
  }
}

void RetroHunter::Work(std::vector<Message>* pending, std::vector<MapChangeNote>* changes) {
  if (!pending->empty()) {
    {
      std::lock_guard<std::mutex> lock(mem_mu_);
      for (const Message& m : *pending) memory_->Add(m);
    }
    if (journal_) {
      Status s = journal_->Append(*pending);
      if (!s.ok() && !journal_failing_) {
        Log(LogLevel::kError, "retro: " + s.ToString() + " (kept in memory; a restart forgets it)");
      } else if (s.ok() && journal_failing_) {
        Log(LogLevel::kInfo, "retro: writing " + options_.dir + " again");
      }
      journal_failing_ = !s.ok();
    }
    pending->clear();
  }
  // Old snapshots go as soon as their hunt is done.
  for (const MapChangeNote& note : *changes) HuntChange(note);
  changes->clear();
  const int64_t now = NowMs();
  if (now - last_forget_ms_ >= kForgetEveryMs) Forget(now);
}

void RetroHunter::Forget(int64_t now_ms) {
  last_forget_ms_ = now_ms;
  const int64_t before = now_ms - options_.window_ms;
  size_t dropped = 0, files = 0;
  // Rebuilding a week's tables takes seconds: done on a copy, while hunts and /metrics
  // keep reading this one; the lock is held for the swap only. The worker is the only
  // writer, so reading here without the lock is safe, and what it observes meanwhile
  // waits in its queue.
  std::unique_ptr<RecipientMemory> next = memory_->Without(before, &dropped);
  {
    std::lock_guard<std::mutex> lock(mem_mu_);
    if (next) {
      memory_.swap(next);
    } else {
      memory_->Seal();
    }
  }
  next.reset();  // the old memory, freed outside the lock
  if (journal_) {
    Status s = journal_->Forget(before, &files);
    if (!s.ok()) Log(LogLevel::kError, "retro: " + s.ToString());
  }
  if (dropped > 0 || files > 0) {
    Log(LogLevel::kInfo, "retro: forgot " + std::to_string(dropped) + " messages and " +
                             std::to_string(files) + " files from before " +
                             FormatUnixMillis(before));
  }
}

void RetroHunter::HuntChange(const MapChangeNote& note) {
  std::shared_ptr<const Matcher> matcher;
  if (note.whole) {
    // The first load, or a load after the map came from files: "everything is new" would
    // flag every account that ever mailed a listed address. Only a map read again after
    // one from Redis (an import) is compared.
    if (!note.before || note.before->source != "redis" || !note.after) return;
    matcher = note.after->matcher;
  } else {
    if (note.added.empty()) return;
    Status s = Matcher::Build(note.added, options_.matcher, &matcher);
    if (!s.ok()) {
      Log(LogLevel::kError, "retro: cannot hunt the added entries: " + s.ToString());
      return;
    }
  }
  const Matcher* except = note.before ? note.before->matcher.get() : nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t since = NowMs() - options_.window_ms;
  bool truncated = false;
  std::vector<RetroFind> finds;
  {
    std::lock_guard<std::mutex> lock(mem_mu_);
    finds = memory_->Hunt(*matcher, except, since, kHuntMaxFinds, &truncated);
  }
  ++hunts_;
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (finds.empty()) {
    Log(LogLevel::kDebug, "retro: map version " + std::to_string(note.after->version) +
                              ": nobody mailed the new entries in the last " +
                              Days(options_.window_ms) + " (" + std::to_string(ms) + " ms)");
    return;
  }
  RetroJudgement j = JudgeRetroFinds(finds, truncated, options_.max_accounts, options_.node);
  for (const RetroOverCap& o : j.over_cap) {
    ++over_cap_;
    Log(LogLevel::kWarning,
        "retro: " + RetroOverCapMessage(o, options_.max_accounts, options_.window_ms));
  }
  for (Event& e : j.events) {
    Log(LogLevel::kWarning, "retro: " + e.detail + ": flagging " + e.account);
    ++flagged_;
    on_event_(std::move(e));
  }
  Log(LogLevel::kInfo, "retro: map version " + std::to_string(note.after->version) + ": " +
                           std::to_string(finds.size()) + " remembered messages to new entries (" +
                           std::to_string(ms) + " ms)");
}

bool RetroHunter::AnswerRequests() {
  const Keys keys(options_.prefix);
  RedisReply reply;
  bool was_connected = redis_->connected();
  Status s = redis_->Command({"LRANGE", keys.retro_requests(), "0", "-1"}, &reply);
  if (!s.ok() && was_connected)
    s = redis_->Command({"LRANGE", keys.retro_requests(), "0", "-1"}, &reply);
  if (!s.ok()) {
    redis_->Disconnect();
    watch_.Failed(s);
    return false;
  }
  watch_.Succeeded();
  const int64_t now = NowMs();
  for (const RedisReply& r : reply.elements) {
    HuntRequest req;
    if (!HuntRequest::FromJson(r.str, &req) || answered_.count(req.id) > 0 ||
        now - req.at_ms > kHuntRequestTtlMs) {
      continue;
    }
    answered_.insert(req.id);
    answered_order_.push_back(req.id);
    if (answered_order_.size() > kAnsweredIds) {
      answered_.erase(answered_order_.front());
      answered_order_.pop_front();
    }
    nlohmann::json answer = {{"node", options_.node}};
    Entry entry;
    std::shared_ptr<const Matcher> matcher;
    Status p = ParseEntry(req.entry, &entry);
    if (p.ok()) p = Matcher::Build({entry}, options_.matcher, &matcher);
    if (!p.ok()) {
      answer["error"] = p.message();
    } else {
      bool truncated = false;
      std::vector<RetroFind> finds;
      RecipientMemoryStats st;
      {
        std::lock_guard<std::mutex> lock(mem_mu_);
        finds = memory_->Hunt(*matcher, nullptr, std::max(req.since_ms, now - options_.window_ms),
                              kHuntMaxFinds, &truncated);
        st = memory_->stats();
      }
      nlohmann::json found = nlohmann::json::array();
      for (const RetroFind& f : finds) found.push_back(RetroFindJson(f, options_.node));
      answer["found"] = std::move(found);
      answer["truncated"] = truncated;
      answer["loaded"] = loaded_.load();
      answer["memory"] = {
          {"messages", st.messages},
          {"oldest", st.oldest_ms > 0 ? FormatUnixMillis(st.oldest_ms) : std::string()},
          {"window", Days(options_.window_ms)}};
    }
    ++answered_count_;
    const std::string key = keys.retro_reply(req.id);
    s = redis_->Pipeline(
        {{"RPUSH", key, answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)},
         {"EXPIRE", key, kReplyTtlSeconds}});
    if (!s.ok()) {
      redis_->Disconnect();
      watch_.Failed(s);
      return false;
    }
  }
  return true;
}

RetroHunterStats RetroHunter::stats() const {
  RetroHunterStats s;
  {
    std::lock_guard<std::mutex> lock(mem_mu_);
    s.memory = memory_->stats();
  }
  s.observed = observed_;
  s.dropped = dropped_;
  s.hunts = hunts_;
  s.flagged = flagged_;
  s.answered = answered_count_;
  s.over_cap = over_cap_;
  return s;
}

}  // namespace compd
