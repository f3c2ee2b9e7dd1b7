#include "compd/accounts/hook_runner.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "compd/base/thread_guard.h"
#include "compd/events/event.h"

namespace compd {

namespace {

using Json = nlohmann::json;

// Takes a due job: its due time moves one lease ahead (so no other node takes it while it
// is being delivered) and the attempt is counted. KEYS: due, job. ARGV: id, now ms, lease
// end ms. Returns the job's fields, or an empty array when it is not due (any more).
constexpr const char* kClaimScript = R"lua(
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not s) or tonumber(s) > tonumber(ARGV[2]) then return {} end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return {}
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HINCRBY', KEYS[2], 'attempts', 1)
return redis.call('HGETALL', KEYS[2])
)lua";

constexpr std::chrono::seconds kLeaseMargin{60};

int64_t NowMs() { return UnixMs(std::chrono::system_clock::now()); }

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) {
    s.replace(p, from.size(), to);
  }
  return s;
}

std::string Duration(std::chrono::milliseconds d) {
  if (d.count() >= 60000 && d.count() % 60000 == 0) return std::to_string(d.count() / 60000) + "m";
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

}  // namespace

Status HookOptions::FromConfig(const Config& config, HookOptions* out) {
  HookOptions o;
  std::string command = config.GetString("hook_command");
  if (!command.empty()) {
    Status s = ParseCommandLine(command, &o.command);
    if (!s.ok()) return Status::Invalid("hook_command: " + s.message());
  }
  std::string url = config.GetString("hook_url");
  if (!url.empty()) {
    Status s = ParseWebhookUrl(url, &o.url);
    if (!s.ok()) return Status::Invalid("hook_url: " + s.message());
    o.has_url = true;
  }
  std::string headers = config.GetString("hook_headers_file");
  if (!headers.empty()) {
    Status s = ReadHeadersFile(headers, &o.headers);
    if (!s.ok())
      return s.IsIoError() ? Status::IoError("hook_headers_file: " + s.message())
                           : Status::Invalid("hook_headers_file: " + s.message());
  }
  o.timeout = std::chrono::milliseconds(config.GetDurationMs("hook_timeout"));
  o.retry_min = std::chrono::milliseconds(config.GetDurationMs("hook_retry_min"));
  o.retry_max = std::chrono::milliseconds(config.GetDurationMs("hook_retry_max"));
  if (o.retry_max < o.retry_min) {
    return Status::Invalid("hook_retry_max: must not be shorter than hook_retry_min");
  }
  *out = std::move(o);
  return Status::Ok();
}

std::string HookDocument(const HookJob& job, const AccountRecord* record) {
  Json event = Json::parse(job.event_json, nullptr, false);
  if (event.is_discarded()) event = job.event_json;  // keep it as text rather than lose it
  Json j = {{"type", "account_flagged"},
            {"job", job.id},
            {"target", job.target},
            {"attempt", job.attempts},
            {"account", job.account},
            {"state", job.state},
            {"queued_at", FormatUnixMillis(job.queued_at_ms)},
            {"event", std::move(event)}};
  if (record != nullptr) {
    Json rcpts = Json::object(), ips = Json::object();
    for (const auto& [r, n] : record->recipients) rcpts[r] = n;
    for (const auto& [ip, n] : record->client_ips) ips[ip] = n;
    j["record"] = {
        {"state", record->EffectiveState(NowMs())}, {"state_reason", record->state_reason},
        {"flagged_at", record->flagged_at},         {"hits", record->hits},
        {"first_seen", record->first_seen},         {"last_seen", record->last_seen},
        {"recipients", std::move(rcpts)},           {"client_ips", std::move(ips)}};
  }
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::chrono::milliseconds HookBackoff(int64_t attempts, std::chrono::milliseconds retry_min,
                                      std::chrono::milliseconds retry_max) {
  auto d = retry_min;
  for (int64_t i = 1; i < attempts && d < retry_max; ++i) d *= 2;
  return std::min(d, retry_max);
}

Status HookRunnerOptions::FromConfig(const Config& config, HookRunnerOptions* out) {
  HookRunnerOptions o;
  Status s = HookOptions::FromConfig(config, &o.hooks);
  if (!s.ok()) return s;
  o.redis = out->redis;
  o.hostname = out->hostname;
  o.prefix = config.GetString("prefix");
  o.redis_timeout = std::chrono::milliseconds(config.GetDurationMs("redis_timeout"));
  *out = std::move(o);
  return Status::Ok();
}

HookRunner::HookRunner(HookRunnerOptions options, LogFn log)
    : options_(std::move(options)), log_(std::move(log)), keys_(options_.prefix) {}

HookRunner::~HookRunner() { Stop(); }

void HookRunner::Log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, message);
}

Status HookRunner::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return Status::Internal("hook runner started twice");
  started_ = true;
  thread_ = StartLoopThread(
      "hooks", log_, [this] { Loop(); }, [this] { return stopping(); });
  return Status::Ok();
}

void HookRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_flag_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool HookRunner::stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stop_;
}

bool HookRunner::WaitFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, d, [&] { return stop_; });
}

void HookRunner::Loop() {
  redis_ = std::make_unique<RedisClient>(options_.redis, options_.redis_timeout);
  while (!stopping()) {
    std::chrono::milliseconds wait = options_.poll_interval;
    Status s = Step(&wait);
    if (!s.ok()) {
      ++redis_errors_;
      redis_->Disconnect();
      backoff_ =
          backoff_.count() == 0 ? options_.retry_min : std::min(backoff_ * 2, options_.retry_max);
      if (!failing_) {
        Log(LogLevel::kError,
            "hooks: " + s.ToString() + "; ticket jobs wait in Redis until it answers");
      }
      failing_ = true;
      wait = backoff_;
    } else if (failing_) {
      Log(LogLevel::kInfo, "hooks: Redis answers again");
      failing_ = false;
      backoff_ = std::chrono::milliseconds(0);
    }
    if (wait.count() > 0 && WaitFor(wait)) break;
  }
  redis_.reset();
}

Status HookRunner::Step(std::chrono::milliseconds* wait) {
  const int64_t now = NowMs();
  std::vector<RedisReply> replies;
  Status s = redis_->Pipeline(
      {{"ZRANGEBYSCORE", keys_.hooks_due(), "-inf", std::to_string(now), "LIMIT", "0", "1"},
       {"ZRANGE", keys_.hooks_due(), "0", "0", "WITHSCORES"}},
      &replies);
  if (!s.ok()) return s;
  if (replies.size() != 2) return Status::Unavailable("short reply from Redis");
  if (replies[0].elements.empty()) {
    if (replies[1].elements.size() == 2) {
      int64_t next = std::strtoll(replies[1].elements[1].str.c_str(), nullptr, 10);
      *wait = std::clamp(std::chrono::milliseconds(next - now), std::chrono::milliseconds(1),
                         options_.poll_interval);
    }
    return Status::Ok();
  }
  const std::string id = replies[0].elements[0].str;
  const auto lease = options_.hooks.timeout + kLeaseMargin;
  RedisReply claimed;
  s = redis_->Command({"EVAL", kClaimScript, "2", keys_.hooks_due(), keys_.hook_job(id), id,
                       std::to_string(now), std::to_string(now + lease.count())},
                      &claimed);
  if (!s.ok()) return s;
  *wait = std::chrono::milliseconds(0);               // there may be more due
  if (claimed.elements.empty()) return Status::Ok();  // another node was quicker
  std::map<std::string, std::string> f;
  for (size_t i = 0; i + 1 < claimed.elements.size(); i += 2) {
    f[claimed.elements[i].str] = claimed.elements[i + 1].str;
  }
  HookJob job;
  job.id = id;
  job.target = f["target"];
  job.account = f["account"];
  job.state = f["state"];
  job.queued_at_ms = std::strtoll(f["queued_at"].c_str(), nullptr, 10);
  job.event_json = f["event"];
  job.attempts = std::strtoll(f["attempts"].c_str(), nullptr, 10);

  AccountRegistry registry(redis_.get(), options_.prefix);
  AccountRecord record;
  s = registry.Get(job.account, &record);
  if (!s.ok() && !s.IsNotFound()) return s;  // the lease brings the job back
  std::string document = HookDocument(job, s.ok() ? &record : nullptr);
  Status outcome = Deliver(job, document);
  bool cancelled = !outcome.ok() && stop_flag_;
  return Finish(job, outcome, cancelled);
}

Status HookRunner::Deliver(const HookJob& job, const std::string& document) {
  const HookOptions& h = options_.hooks;
  if (job.target == "exec") {
    if (h.command.empty()) {
      return Status::Invalid("no hook_command configured on this node");
    }
    std::vector<std::string> argv;
    for (const std::string& a : h.command) {
      argv.push_back(Replace(Replace(Replace(a, "{account}", job.account), "{state}", job.state),
                             "{job}", job.id));
    }
    argv[0] = h.command[0];
    std::vector<std::string> env = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG=C.UTF-8",
        "COMPD_ACCOUNT=" + job.account,
        "COMPD_STATE=" + job.state,
        "COMPD_JOB=" + job.id,
        "COMPD_ATTEMPT=" + std::to_string(job.attempts)};
    return RunProgram(argv, env, document + "\n", h.timeout, [this] { return stop_flag_.load(); });
  }
  if (job.target == "webhook") {
    if (!h.has_url) return Status::Invalid("no hook_url configured on this node");
    HttpHeaders headers = h.headers;
    headers.emplace_back("X-Compd-Job", job.id);
    headers.emplace_back("X-Compd-Attempt", std::to_string(job.attempts));
    return PostJson(h.url, headers, document, h.timeout);
  }
  return Status::Invalid("unknown hook target '" + job.target + "'");
}

Status HookRunner::Finish(const HookJob& job, const Status& outcome, bool cancelled) {
  const int64_t now = NowMs();
  const std::string record = keys_.account(job.account);
  const std::string field = "ticket_" + job.target;
  const std::string what = "hook " + job.target + " for account " + EscapeForLog(job.account) +
                           " (job " + job.id + ", attempt " + std::to_string(job.attempts) + ")";
  std::vector<std::vector<std::string>> commands;
  if (outcome.ok()) {
    ++delivered_;
    Log(LogLevel::kInfo, what + ": delivered");
    AccountLogEntry entry;
    entry.time = FormatUnixMillis(now);
    entry.what = "ticket";
    entry.by = "compd@" + options_.hostname;
    entry.text = job.target + " delivered (attempt " + std::to_string(job.attempts) + ")";
    commands = {{"MULTI"},
                {"ZREM", keys_.hooks_due(), job.id},
                {"DEL", keys_.hook_job(job.id)},
                {"HSET", record, field,
                 "delivered " + entry.time + " (attempt " + std::to_string(job.attempts) + ")"},
                {"LPUSH", keys_.account_log(job.account), entry.ToJson()},
                {"LTRIM", keys_.account_log(job.account), "0", std::to_string(kMaxAccountLog - 1)},
                {"EXEC"}};
  } else {
    auto delay =
        cancelled ? std::chrono::milliseconds(0)
                  : HookBackoff(job.attempts, options_.hooks.retry_min, options_.hooks.retry_max);
    if (cancelled) {
      Log(LogLevel::kInfo, what + ": interrupted by stop; due again now");
    } else {
      ++failures_;
      Log(LogLevel::kError,
          what + " failed: " + outcome.message() + "; retrying in " + Duration(delay));
    }
    const std::string next = FormatUnixMillis(now + delay.count());
    commands = {{"MULTI"},
                {"ZADD", keys_.hooks_due(), "XX", std::to_string(now + delay.count()), job.id},
                {"HSET", keys_.hook_job(job.id), "last_error", outcome.message()},
                {"HSET", record, field,
                 "failed " + FormatUnixMillis(now) + " (attempt " + std::to_string(job.attempts) +
                     "): " + outcome.message() + "; next attempt " + next},
                {"EXEC"}};
    if (job.attempts == 1 && !cancelled) {
      AccountLogEntry entry;
      entry.time = FormatUnixMillis(now);
      entry.what = "ticket";
      entry.by = "compd@" + options_.hostname;
      entry.text = job.target + " failed: " + outcome.message() + "; retrying until it succeeds";
      commands.insert(commands.end() - 1,
                      {"LPUSH", keys_.account_log(job.account), entry.ToJson()});
      commands.insert(commands.end() - 1, {"LTRIM", keys_.account_log(job.account), "0",
                                           std::to_string(kMaxAccountLog - 1)});
    }
  }
  Status s = redis_->Pipeline(commands);
  if (!s.ok()) {
    // The lease brings the job back; a delivered one may then be delivered twice, which the
    // job id lets the receiver notice.
    Log(LogLevel::kError, what + ": cannot record the outcome: " + s.ToString());
  }
  return s;
}

HookRunnerStats HookRunner::stats() const {
  HookRunnerStats st;
  st.delivered = delivered_;
  st.failures = failures_;
  st.redis_errors = redis_errors_;
  return st;
}

}  // namespace compd
