#include "compd/accounts/recorder.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>

#include "compd/accounts/accounts.h"
#include "compd/accounts/record_lua.h"
#include "compd/base/file.h"
#include "compd/base/keys.h"
#include "compd/base/sentinel.h"
#include "compd/base/thread_guard.h"
#include "compd/map/map_store.h"

namespace compd {

namespace {

// How often the writer looks for a new primary while it holds unconfirmed events.
constexpr std::chrono::milliseconds kUnconfirmedCheck{200};

// How often an idle writer publishes the account reaction again, for a Redis that lost it.
constexpr std::chrono::seconds kReactionRefresh{60};

std::string Hostname() {
  std::string name(HOST_NAME_MAX + 1, '\0');
  if (gethostname(name.data(), name.size()) != 0) return "localhost";
  name.resize(strnlen(name.c_str(), name.size()));
  return name.empty() ? "localhost" : name;
}

Status OpenAlertLog(const std::string& path, int* fd) {
  // 0600: the log names customers' accounts and their victims.
  *fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (*fd < 0) return Status::IoError("alert log " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

std::vector<std::string> JsonLines(const std::vector<Event>& events) {
  std::vector<std::string> json;
  json.reserve(events.size());
  for (const Event& e : events) json.push_back(e.ToJson());
  return json;
}

}  // namespace

Status RecorderOptions::FromConfig(const Config& config, RecorderOptions* out) {
  RecorderOptions o;
  Status s = AccountReaction::FromConfig(config, &o.accounts);
  if (!s.ok()) return s;
  o.redis = out->redis;
  o.hostname = out->hostname;
  o.prefix = config.GetString("prefix");
  o.alert_log = config.GetString("alert_log");
  o.spool_dir = config.GetString("spool_dir");
  o.publish_reaction = true;
  o.stream_maxlen = static_cast<size_t>(config.GetInt("event_stream_maxlen"));
  o.queue_capacity = static_cast<size_t>(config.GetInt("event_queue_size"));
  o.redis_timeout = std::chrono::milliseconds(config.GetDurationMs("redis_timeout"));
  // Only a primary found through sentinels has replicas to confirm a batch.
  if (o.redis.sentinel) {
    o.replica_wait = std::chrono::milliseconds(config.GetDurationMs("redis_replica_wait"));
  }
  *out = std::move(o);
  return Status::Ok();
}

const std::string& RecordScript() {
  static const std::string script = kRecordLua;
  return script;
}

std::vector<std::string> RecordKeys(const Keys& keys, const std::string& event_id,
                                    const std::string& account_key) {
  std::vector<std::string> out = {keys.event_seen(event_id), keys.events()};
  if (account_key.empty()) return out;
  const std::string& a = account_key;
  for (std::string k :
       {keys.account(a), keys.accounts(), keys.account_recipients(a), keys.account_ips(a),
        keys.account_events(a), keys.account_log(a), keys.accounts_locked(),
        keys.accounts_version(), keys.accounts_changed(), keys.account_quiet(a), keys.hooks_due(),
        keys.accounts_reaction(), keys.hook_job("")}) {
    out.push_back(std::move(k));
  }
  return out;
}

std::vector<std::string> RecordLayoutArgs(const Keys& keys) {
  return {keys.accounts_channel(), std::to_string(kMaxEvidenceValues), std::to_string(kMaxTimeline),
          std::to_string(kMaxAccountLog)};
}

struct Recorder::Counters {
  std::atomic<uint64_t> seq{0};
  std::atomic<uint64_t> submitted{0}, written{0}, duplicates{0}, spooled{0}, replayed{0},
      overflowed{0}, dropped{0}, rejected{0}, corrupt{0}, redis_errors{0}, alert_log_errors{0},
      unconfirmed{0}, resent{0};
  std::atomic<bool> redis_up{false};
};

Recorder::Recorder(RecorderOptions options, LogFn log)
    : options_([&] {
        if (options.hostname.empty()) options.hostname = Hostname();
        if (options.max_batch == 0) options.max_batch = 1;
        return std::move(options);
      }()),
      log_(std::move(log)),
      instance_(options_.hostname + ":" +
                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count()) +
                "." + std::to_string(getpid())),
      spool_(options_.spool_dir),
      counters_(std::make_unique<Counters>()) {}

Recorder::~Recorder() {
  Stop();
  if (alert_fd_ >= 0) close(alert_fd_);
}

void Recorder::Log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, message);
}

Status Recorder::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_ || stop_) return Status::Internal("recorder started twice, or after Stop");
  }
  Status s = spool_.Open();
  if (!s.ok()) return s;
  if (!options_.alert_log.empty()) {
    int fd = -1;
    s = OpenAlertLog(options_.alert_log, &fd);
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> lock(alert_mu_);
    alert_fd_ = fd;
  }
  if (spool_.pending()) {
    Log(LogLevel::kWarning, "recorder: " + std::to_string(spool_.depth()) + " events in spool " +
                                spool_.dir() + " from an earlier run; replaying them to Redis");
  }
  std::lock_guard<std::mutex> lock(mu_);
  started_ = true;
  writer_ = StartLoopThread(
      "recorder", log_, [this] { WriterLoop(); }, FlagUnder(&mu_, &stop_));
  return Status::Ok();
}

void Recorder::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

Status Recorder::Reopen() {
  if (options_.alert_log.empty()) return Status::Ok();
  int fd = -1;
  Status s = OpenAlertLog(options_.alert_log, &fd);
  if (!s.ok()) {
    Log(LogLevel::kError,
        "recorder: cannot reopen " + s.message() + "; still writing the old file");
    return s;
  }
  std::lock_guard<std::mutex> lock(alert_mu_);
  if (alert_fd_ >= 0) close(alert_fd_);
  alert_fd_ = fd;
  return Status::Ok();
}

size_t Recorder::FullBatch() const {
  // Half the queue at most: a burst is written before it could overflow the queue onto
  // the mail path's slow spool.
  return std::min(options_.max_batch, std::max<size_t>(1, options_.queue_capacity / 2));
}

void Recorder::Fill(Event* e) {
  uint64_t seq = ++counters_->seq;
  if (e->host.empty()) e->host = options_.hostname;
  if (e->time.empty()) e->time = FormatUtcMillis(std::chrono::system_clock::now());
  if (e->id.empty()) e->id = instance_ + ":" + std::to_string(seq);
}

void Recorder::Submit(Event event) {
  Fill(&event);
  ++counters_->submitted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_ && !stop_ && queue_.size() < options_.queue_capacity) {
      queue_.push_back(std::move(event));
      // The writer sleeps on an empty queue (woken by the first event), or gathers a
      // burst until batch_spacing is up (woken early only by a full batch): one futex
      // call on the mail path per batch, not per event.
      if (queue_.size() == 1 || queue_.size() == FullBatch()) cv_.notify_one();
      return;
    }
    // Queue full (Redis slow and a burst of hits), or not running: the caller pays for a
    // file write rather than the event being lost. The whole queue goes along, oldest
    // first, and under the lock, so the spool keeps submission order and the next
    // Submits find room again.
    std::vector<Event> spill;
    if (started_ && !stop_) {
      ++counters_->overflowed;
      spill.reserve(queue_.size() + 1);
      for (Event& e : queue_) spill.push_back(std::move(e));
      queue_.clear();
    }
    spill.push_back(std::move(event));
    AppendAlertLog(JsonLines(spill));
    SpoolOrDrop(spill);
  }
  cv_.notify_one();  // the writer replays the spool as soon as Redis answers
}

void Recorder::AppendAlertLog(const std::vector<std::string>& json) {
  if (options_.alert_log.empty() || json.empty()) return;
  size_t size = 0;
  for (const std::string& line : json) size += line.size() + 1;
  std::string data;
  data.reserve(size);
  for (const std::string& line : json) {
    data += line;
    data += '\n';
  }
  std::lock_guard<std::mutex> lock(alert_mu_);
  if (alert_fd_ < 0 || !WriteAll(alert_fd_, data)) {
    counters_->alert_log_errors += json.size();
    Log(LogLevel::kError, "recorder: alert log " + options_.alert_log + ": " +
                              (alert_fd_ < 0 ? std::string("not open") : std::strerror(errno)) +
                              "; " + std::to_string(json.size()) + " events not logged there");
  }
}

void Recorder::SpoolOrDrop(const std::vector<Event>& events) {
  Status s = spool_.Append(events);
  if (s.ok()) {
    counters_->spooled += events.size();
    return;
  }
  counters_->dropped += events.size();
  for (const Event& e : events) {
    Log(LogLevel::kError, "recorder: event LOST (Redis unavailable and spool failed: " +
                              s.ToString() + "): " + e.ToJson());
  }
}

void Recorder::NoteRedisFailure(const Status& s) {
  ++counters_->redis_errors;
  if (!backing_off_) {
    Log(LogLevel::kError, "recorder: " + s.ToString() + "; spooling events to " + spool_.dir() +
                              " until Redis answers");
  } else {
    Log(LogLevel::kDebug, "recorder: still unavailable: " + s.ToString());
  }
  ScheduleRetry();
  counters_->redis_up = false;
  redis_->Disconnect();
}

void Recorder::ScheduleRetry() {
  backing_off_ = true;
  backoff_ =
      backoff_.count() == 0 ? options_.retry_min : std::min(backoff_ * 2, options_.retry_max);
  next_retry_ = std::chrono::steady_clock::now() + backoff_;
}

void Recorder::NoteRedisSuccess() {
  if (backing_off_) Log(LogLevel::kInfo, "recorder: Redis answers again");
  backing_off_ = false;
  backoff_ = std::chrono::milliseconds(0);
  counters_->redis_up = true;
}

Status Recorder::LoadScript() {
  RedisReply reply;
  Status s = redis_->Command({"SCRIPT", "LOAD", RecordScript()}, &reply);
  if (!s.ok()) return s;
  if (reply.type != RedisReply::Type::kString || reply.str.empty()) {
    return Status::Unavailable("SCRIPT LOAD gave no digest");
  }
  script_sha_ = reply.str;
  return Status::Ok();
}

Status Recorder::WriteToRedis(const std::vector<Event>& events,
                              const std::vector<std::string>& json, uint64_t* written) {
  *written = 0;
  if (events.empty()) return Status::Ok();
  Keys keys(options_.prefix);
  const std::string ttl = std::to_string(options_.dedup_ttl.count());
  const std::string maxlen = std::to_string(options_.stream_maxlen);
  const auto now = std::chrono::system_clock::now();
  const std::string now_ms = std::to_string(UnixMs(now));
  const std::string now_iso = FormatUtcMillis(now);
  const std::string reaction = options_.accounts.ToJson();
  const std::vector<std::string> layout = RecordLayoutArgs(keys);
  std::vector<std::vector<std::string>> commands;
  commands.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    int64_t ms = 0;
    if (!ParseUtcMillis(e.time, &ms)) ms = UnixMs(now);
    // The script decides what the event does to its account (record.lua).
    const std::string account_key = AccountKey(e.account);
    std::vector<std::string> keys_part = RecordKeys(keys, e.id, account_key);
    std::vector<std::string> cmd = {"EVALSHA", script_sha_, std::to_string(keys_part.size())};
    cmd.reserve(3 + keys_part.size() + 9 + layout.size());
    for (std::string& k : keys_part) cmd.push_back(std::move(k));
    for (std::string a : {ttl, maxlen, json[i], account_key, std::to_string(ms / 1000), now_ms,
                          now_iso, options_.hostname, reaction}) {
      cmd.push_back(std::move(a));
    }
    cmd.insert(cmd.end(), layout.begin(), layout.end());
    commands.push_back(std::move(cmd));
  }

  // Sending a batch again is always safe: what got through is marked seen and skipped.
  bool reconnected = false, reloaded = false;
  for (;;) {
    // A connection from before an outage fails once after Redis is back; a fresh one
    // deserves a try before the batch goes to the spool.
    bool was_connected = redis_->connected();
    if (script_sha_.empty()) {
      Status s = LoadScript();
      if (!s.ok() && was_connected && !reconnected) {
        reconnected = true;
        continue;
      }
      if (!s.ok()) return s;
    }
    for (auto& cmd : commands) cmd[1] = script_sha_;
    std::vector<RedisReply> replies;
    Status s = redis_->Pipeline(commands, &replies);
    if (replies.size() != commands.size()) {
      if (replies.empty() && was_connected && !reconnected) {
        reconnected = true;
        continue;
      }
      return s.ok() ? Status::Unavailable("short reply from Redis") : s;
    }
    bool noscript = false;
    for (const RedisReply& r : replies) {
      if (r.type == RedisReply::Type::kError && r.str.rfind("NOSCRIPT", 0) == 0) noscript = true;
    }
    // A restarted Redis has an empty script cache.
    if (noscript && !reloaded) {
      reloaded = true;
      script_sha_.clear();
      continue;
    }
    Status transient;
    for (size_t i = 0; i < replies.size(); ++i) {
      const RedisReply& r = replies[i];
      if (r.type == RedisReply::Type::kInteger) {
        if (r.integer >= 1) {
          ++*written;
          NoteAccountOutcome(events[i], r.integer);
        } else {
          ++counters_->duplicates;
        }
      } else if (r.type == RedisReply::Type::kError && IsTransientRedisError(r.str)) {
        if (transient.ok()) transient = Status::Unavailable("redis: " + r.str);
      } else {
        ++counters_->rejected;
        Log(LogLevel::kError,
            "recorder: Redis refused event " + events[i].id + " (" +
                (r.type == RedisReply::Type::kError ? r.str : "unexpected reply") +
                "); it stays only in the alert log: " + events[i].ToJson());
      }
    }
    counters_->written += *written;
    if (transient.ok()) ConfirmOnReplica(events);
    return transient;
  }
}

void Recorder::ConfirmOnReplica(const std::vector<Event>& events) {
  if (options_.replica_wait.count() <= 0) return;
  RedisReply reply;
  Status s = redis_->Command({"WAIT", "1", std::to_string(options_.replica_wait.count())}, &reply);
  if (s.ok() && reply.type == RedisReply::Type::kInteger && reply.integer >= 1) {
    unconfirmed_.clear();
    return;
  }
  if (unconfirmed_.empty()) {
    Log(LogLevel::kWarning, "recorder: no replica confirmed " + std::to_string(events.size()) +
                                " events within " + std::to_string(options_.replica_wait.count()) +
                                "ms (" + (s.ok() ? "WAIT timed out" : s.message()) +
                                "); they are written again if the primary changes");
  }
  counters_->unconfirmed += events.size();
  unconfirmed_generation_ = redis_->primary_generation();
  for (const Event& e : events) unconfirmed_.push_back(e);
  while (unconfirmed_.size() > options_.max_unconfirmed) unconfirmed_.pop_front();
}

bool Recorder::ResendUnconfirmed() {
  std::vector<Event> events(unconfirmed_.begin(), unconfirmed_.end());
  unconfirmed_.clear();
  uint64_t resent = 0;
  for (size_t i = 0; i < events.size(); i += options_.max_batch) {
    size_t end = std::min(events.size(), i + options_.max_batch);
    std::vector<Event> part(events.begin() + i, events.begin() + end);
    uint64_t written = 0;
    Status s = WriteToRedis(part, JsonLines(part), &written);
    resent += written;
    if (!s.ok()) {
      // Keep the rest (and this part: the markers make a second try safe) for next time.
      unconfirmed_.insert(unconfirmed_.begin(), events.begin() + i, events.end());
      counters_->resent += resent;
      NoteRedisFailure(s);
      return false;
    }
  }
  counters_->resent += resent;
  Log(LogLevel::kWarning, "recorder: the primary changed; wrote " + std::to_string(events.size()) +
                              " unconfirmed events again, " + std::to_string(resent) +
                              " of them had not reached the new primary");
  return true;
}

void Recorder::PublishReaction() {
  RedisReply reply;
  Status s = redis_->Command(
      {"SET", Keys(options_.prefix).accounts_reaction(), options_.accounts.ToJson()}, &reply);
  if (s.ok() && reply.type == RedisReply::Type::kError) s = Status::Unavailable(reply.str);
  auto now = std::chrono::steady_clock::now();
  if (s.ok()) {
    next_publish_ = now + kReactionRefresh;
    return;
  }
  // Not an outage of its own: the next write finds out, and the rspamd plugin's hits are
  // flagged without the reaction until this succeeds.
  Log(LogLevel::kDebug, "recorder: cannot publish the account reaction: " + s.ToString());
  next_publish_ = now + options_.retry_max;
}

void Recorder::NoteAccountOutcome(const Event& e, long long bits) {
  if ((bits & (kHitNewlyFlagged | kHitLocked)) == 0) return;
  std::string what = (bits & kHitLocked) ? "LOCKED" : "flagged";
  if ((bits & kHitLocked) && !(bits & kHitNewlyFlagged)) what = "LOCKED (was flagged)";
  // A detection signal has no recipient: its rule and reaction say why.
  std::string why = e.type == "signal" ? "signal " + EscapeForLog(e.rule) + " (" + e.action + ")"
                                       : "hit on " + EscapeForLog(e.recipient);
  if (!e.client_ip.empty()) why += " from " + e.client_ip;
  // The summary (a combined signal's contributions, say) is what the operator reads first.
  if (e.type == "signal" && !e.detail.empty()) why += ": " + EscapeForLog(e.detail);
  Log(LogLevel::kWarning, "account " + EscapeForLog(e.account) + " " + what + ": " + why +
                              ((bits & kHitTicketQueued) ? "; ticket queued" : ""));
}

bool Recorder::ReplaySpool() {
  for (;;) {
    SpoolContents chunk;
    Status s = spool_.BeginReplay(&chunk);
    if (s.IsNotFound()) return true;
    if (!s.ok()) {
      Log(LogLevel::kError, "recorder: cannot read the spool: " + s.ToString());
      ScheduleRetry();
      return false;
    }
    for (const std::string& p : chunk.problems) Log(LogLevel::kError, "recorder: " + p);
    counters_->corrupt += chunk.problems.size();
    uint64_t replayed = 0;
    for (size_t i = 0; i < chunk.events.size(); i += options_.max_batch) {
      size_t end = std::min(chunk.events.size(), i + options_.max_batch);
      std::vector<Event> part(chunk.events.begin() + i, chunk.events.begin() + end);
      uint64_t written = 0;
      s = WriteToRedis(part, JsonLines(part), &written);
      replayed += written;
      counters_->replayed += written;
      if (!s.ok()) {
        NoteRedisFailure(s);
        return false;
      }
      NoteRedisSuccess();
    }
    s = spool_.FinishReplay();
    if (!s.ok()) {
      Log(LogLevel::kError, "recorder: " + s.ToString());
      ScheduleRetry();
      return false;
    }
    Log(LogLevel::kInfo,
        "recorder: replayed " + std::to_string(replayed) + " spooled events to Redis (" +
            std::to_string(chunk.events.size() - replayed) + " were there already, " +
            std::to_string(chunk.problems.size()) + " unreadable lines skipped)");
  }
}

void Recorder::WriterLoop() {
  redis_ = std::make_unique<RedisClient>(options_.redis, options_.redis_timeout);
  next_retry_ = std::chrono::steady_clock::now();
  next_publish_ = next_retry_;
  for (;;) {
    std::vector<Event> batch;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto ready = [&] { return stop_ || !queue_.empty(); };
      if (spool_.pending()) {
        cv_.wait_until(lock, next_retry_, ready);
      } else if (!unconfirmed_.empty()) {
        // Look now and then whether the primary changed: the resend must not wait for
        // the next hit, which may come hours later.
        cv_.wait_for(lock, kUnconfirmedCheck, ready);
      } else if (options_.publish_reaction) {
        cv_.wait_until(lock, next_publish_, ready);
      } else {
        cv_.wait(lock, ready);
      }
      // A burst: wait for the rest of it, unless the batch is full already.
      const auto now = std::chrono::steady_clock::now();
      if (!stop_ && !queue_.empty() && now < last_batch_ + options_.batch_spacing) {
        cv_.wait_until(lock, last_batch_ + options_.batch_spacing,
                       [&] { return stop_ || queue_.size() >= FullBatch(); });
      }
      if (!queue_.empty()) last_batch_ = std::chrono::steady_clock::now();
      size_t n = std::min(queue_.size(), options_.max_batch);
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      stopping = stop_ && queue_.empty();
    }
    // The alert log first: whatever Redis does, the morning log is complete.
    const std::vector<std::string> json = JsonLines(batch);
    AppendAlertLog(json);
    bool may_try = !backing_off_ || std::chrono::steady_clock::now() >= next_retry_;
    // A new primary: retry at once rather than after the backoff, and first give it what
    // the old one may not have passed on.
    const Sentinel* sentinel = options_.redis.sentinel.get();
    const bool moved = sentinel != nullptr && !unconfirmed_.empty() &&
                       sentinel->generation() != unconfirmed_generation_;
    if (!may_try && redis_->primary_moved()) may_try = true;
    if (may_try && moved) may_try = ResendUnconfirmed();
    if (options_.publish_reaction && may_try && std::chrono::steady_clock::now() >= next_publish_) {
      PublishReaction();
    }
    // Older spooled events go to Redis before newer ones, so the stream stays in order.
    if (may_try && spool_.pending()) may_try = ReplaySpool();
    if (!batch.empty()) {
      if (!may_try || spool_.pending()) {
        SpoolOrDrop(batch);
      } else {
        uint64_t written = 0;
        Status s = WriteToRedis(batch, json, &written);
        if (s.ok()) {
          NoteRedisSuccess();
        } else {
          NoteRedisFailure(s);
          // Some of the batch may be in Redis already; the replay skips those.
          SpoolOrDrop(batch);
        }
      }
    }
    if (stopping) break;
  }
  redis_.reset();
}

RecorderStats Recorder::stats() const {
  RecorderStats st;
  const Counters& c = *counters_;
  st.submitted = c.submitted;
  st.written = c.written;
  st.duplicates = c.duplicates;
  st.spooled = c.spooled;
  st.replayed = c.replayed;
  st.overflowed = c.overflowed;
  st.dropped = c.dropped;
  st.rejected = c.rejected;
  st.corrupt = c.corrupt;
  st.unconfirmed = c.unconfirmed;
  st.resent = c.resent;
  st.redis_errors = c.redis_errors;
  st.alert_log_errors = c.alert_log_errors;
  st.redis_up = c.redis_up;
  {
    std::lock_guard<std::mutex> lock(mu_);
    st.queue_depth = queue_.size();
  }
  st.spool_depth = spool_.depth();
  return st;
}

}  // namespace compd
