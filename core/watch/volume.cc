#include "compd/watch/volume.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <random>
#include <set>

#include "compd/base/thread_guard.h"

namespace compd {

namespace {

constexpr int64_t kHour = 3600;
constexpr int64_t kDay = 86400;
// Script calls per batch are cut at this many (account, hour) pairs, so one call never
// holds Redis for long.
constexpr size_t kChunkItems = 500;
// The platform total of an hour outlives the hour keys by 8 days (the wall page compares
// an hour with the same hour a week before).
constexpr int64_t kTotalExtra = 8 * kDay;

// One chunk of a batch, atomically. ARGV: the flush marker's key, then per hour of the
// chunk: its messages, recipients and platform total keys, the hour keys' EXPIREAT (0:
// hour too old, skip the hour keys), the total key's EXPIREAT (kept 8 days past the hour
// keys for the wall page), the day of the month ("DD"), the month keys' EXPIREAT and the
// hour's item count; then per item of that hour: account, its hour networks key, its
// month key, messages, recipients, N, then N networks. Returns 0 if this flush id was
// applied before; else four values per item, in ARGV order: hour messages, hour
// recipients, hour networks (-1: none), day messages; or, for an item Redis refused (a
// key of the wrong type, say), -2, -2, -2 and the error text, so one bad key costs only
// its own account's counts. A day is one field "messages recipients networks" of its
// month's hash: 31 short fields stay in Redis' compact listpack encoding. Key names come
// from Keys (they are ARGV, not KEYS: compd does not run on Redis Cluster).
//
// Redis CPU is the mail path's budget (it shares the cores), so each item makes only the
// calls that can change something: the hour keys' and the total's expiry and the total's
// two counters are set once per hour of the chunk (the expiry is a function of the hour,
// the same on every node); a networks key gets its EXPIREAT only when PFADD changed it,
// a month key only with a new day field (every writer sets the expiry when it creates
// one, so an existing key already has it).
constexpr const char* kFlushScript = R"lua(
if not redis.call('SET', ARGV[1], '1', 'NX', 'EX', 3600) then
  return 0
end
local tonumber, rcall = tonumber, redis.call
local function apply(i, n, hexp, dd, mexp, g)
  local acct, nk, mk = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local msgs, rcpts = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  local hm, hr, hn = 0, 0, -1
  if hexp ~= '0' then
    hm = tonumber(rcall('ZINCRBY', g.hmk, msgs, acct))
    hr = tonumber(rcall('ZINCRBY', g.hrk, rcpts, acct))
    g.touched = true
    if n > 0 then
      if rcall('PFADD', nk, unpack(ARGV, i + 6, i + 5 + n)) == 1 then
        rcall('EXPIREAT', nk, hexp)
      end
      hn = rcall('PFCOUNT', nk)
    elseif rcall('EXISTS', nk) == 1 then
      hn = rcall('PFCOUNT', nk)
    end
    g.m = g.m + msgs
    g.r = g.r + rcpts
  end
  local dm, dr, dn = 0, 0, 0
  local cur = rcall('HGET', mk, dd)
  if cur then
    local a, b, c = string.match(cur, '^(%d+) (%d+) (%d+)$')
    if a then dm, dr, dn = tonumber(a), tonumber(b), tonumber(c) end
  end
  dm = dm + msgs
  dr = dr + rcpts
  if hn > dn then dn = hn end
  rcall('HSET', mk, dd, string.format('%d %d %d', dm, dr, dn))
  if not cur then rcall('EXPIREAT', mk, mexp) end
  return {hm, hr, hn, dm}
end
local function hour_keys(g, hexp, texp)
  if g.touched then
    rcall('EXPIREAT', g.hmk, hexp)
    rcall('EXPIREAT', g.hrk, hexp)
  end
  if g.m > 0 or g.r > 0 then
    rcall('HINCRBY', g.tk, 'm', g.m)
    rcall('HINCRBY', g.tk, 'r', g.r)
    rcall('EXPIREAT', g.tk, texp)
  end
end
local out = {}
local i = 2
while i <= #ARGV do
  local g = {hmk = ARGV[i], hrk = ARGV[i + 1], tk = ARGV[i + 2], m = 0, r = 0}
  local hexp, texp, dd, mexp = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local count = tonumber(ARGV[i + 7])
  i = i + 8
  for _ = 1, count do
    local n = tonumber(ARGV[i + 5])
    local ok, r = pcall(apply, i, n, hexp, dd, mexp, g)
    if not ok then
      local msg = type(r) == 'table' and (r.err or 'error') or tostring(r)
      r = {-2, -2, -2, msg}
    end
    for k = 1, 4 do out[#out + 1] = r[k] end
    i = i + 6 + n
  end
  pcall(hour_keys, g, hexp, texp)
end
return out
)lua";

int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

int64_t Now() { return UnixSeconds(std::chrono::system_clock::now()); }

std::string Instance() {
  std::random_device rd;
  uint64_t r = (uint64_t{rd()} << 32) ^ rd();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 12; ++i) s += kHex[(r >> (i * 4)) & 15];
  return s + "." + std::to_string(getpid());
}

}  // namespace

Status VolumeOptions::FromConfig(const Config& config, VolumeOptions* out) {
  VolumeOptions o;
  o.flush_interval = std::chrono::milliseconds(config.GetDurationMs("volume_flush_interval"));
  o.max_pending = static_cast<size_t>(config.GetInt("volume_max_pending"));
  o.hour_retention = std::chrono::seconds(config.GetDurationMs("volume_hour_retention") / 1000);
  o.day_retention_days =
      static_cast<int>(config.GetDurationMs("volume_day_retention") / (kDay * 1000));
  o.ipv4_prefix = static_cast<int>(config.GetInt("volume_ipv4_prefix"));
  o.ipv6_prefix = static_cast<int>(config.GetInt("volume_ipv6_prefix"));
  o.redis_timeout = std::chrono::milliseconds(config.GetDurationMs("redis_timeout"));
  if (o.day_retention_days < 1) {
    return Status::Invalid("volume_day_retention: must be at least one day");
  }
  o.redis = out->redis;
  o.prefix = out->prefix;
  *out = std::move(o);
  return Status::Ok();
}

VolumeCounter::VolumeCounter(VolumeOptions options, LogFn log)
    : options_(std::move(options)), log_(std::move(log)), instance_(Instance()) {}

VolumeCounter::~VolumeCounter() { Stop(); }

void VolumeCounter::Log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, message);
}

void VolumeCounter::SetObserver(Observer observer) { observer_ = std::move(observer); }

Status VolumeCounter::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stop_) return Status::Internal("volume counter started twice, or after Stop");
  started_ = true;
  thread_ = StartLoopThread(
      "volume", log_, [this] { Loop(); }, FlagUnder(&mu_, &stop_));
  return Status::Ok();
}

void VolumeCounter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void VolumeCounter::Record(const MessageRecord& message) {
  int64_t t = UnixSeconds(message.time);
  if (t <= 0) t = Now();
  int64_t hour = HourStart(t);
  std::string network =
      ClientNetwork(message.client_ip, options_.ipv4_prefix, options_.ipv6_prefix);
  std::string key = std::to_string(hour) + "|" + message.account;
  messages_.fetch_add(1, std::memory_order_relaxed);
  recipients_.fetch_add(message.recipients, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find(key);
  if (it == pending_.end()) {
    if (pending_.size() + batch_size_.load() >= options_.max_pending) {
      // Redis has been away long enough for max_pending accounts to pile up: this
      // account's new hour is not counted. The mail itself is unaffected.
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    it = pending_.emplace(std::move(key), Item{std::string(), hour, Pending()}).first;
  }
  Pending& p = it->second.counts;
  p.messages += 1;
  p.recipients += static_cast<int64_t>(message.recipients);
  if (!network.empty() && p.networks.size() < options_.max_networks &&
      std::find(p.networks.begin(), p.networks.end(), network) == p.networks.end()) {
    p.networks.push_back(std::move(network));
  }
}

VolumeStats VolumeCounter::stats() const {
  VolumeStats st;
  st.messages = messages_.load();
  st.recipients = recipients_.load();
  st.dropped = dropped_.load();
  st.rejected = rejected_.load();
  st.flushes = flushes_.load();
  st.redis_errors = redis_errors_.load();
  st.redis_up = redis_up_.load();
  std::lock_guard<std::mutex> lock(mu_);
  st.pending = pending_.size() + batch_size_.load();
  return st;
}

void VolumeCounter::TakeBatch() {
  std::unordered_map<std::string, Item> taken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    taken.swap(pending_);
    batch_size_ = taken.size();
  }
  if (taken.empty()) return;
  int64_t now = Now();
  int64_t day_cutoff = DayStart(now) - int64_t{options_.day_retention_days} * kDay;
  std::vector<Item> items;
  items.reserve(taken.size());
  while (!taken.empty()) {
    auto node = taken.extract(taken.begin());
    Item& item = node.mapped();
    if (item.hour_start < day_cutoff) continue;  // older than anything kept
    // The key is "hour|account": its buffer becomes the account, so that the mail path
    // copies the account once, not twice.
    item.account = std::move(node.key());
    item.account.erase(0, item.account.find('|') + 1);
    items.push_back(std::move(item));
  }
  // The script sets each hour's shared keys once per run of items of that hour.
  std::sort(items.begin(), items.end(),
            [](const Item& a, const Item& b) { return a.hour_start < b.hour_start; });
  size_t kept = items.size();
  Chunk chunk;
  for (Item& item : items) {
    if (chunk.items.size() == kChunkItems) {
      batch_.push_back(std::move(chunk));
      chunk = Chunk();
    }
    if (chunk.items.empty()) chunk.flush_id = instance_ + ":" + std::to_string(++seq_);
    chunk.items.push_back(std::move(item));
  }
  if (!chunk.items.empty()) batch_.push_back(std::move(chunk));
  batch_size_ = kept;
}

Status VolumeCounter::LoadScript() {
  RedisReply reply;
  Status s = redis_->Command({"SCRIPT", "LOAD", kFlushScript}, &reply);
  if (!s.ok()) return s;
  if (reply.type != RedisReply::Type::kString || reply.str.empty()) {
    return Status::Unavailable("SCRIPT LOAD: unexpected reply");
  }
  script_sha_ = reply.str;
  return Status::Ok();
}

bool VolumeCounter::WriteBatch() {
  if (!redis_) redis_ = std::make_unique<RedisClient>(options_.redis, options_.redis_timeout);
  auto fail = [&](const Status& s) {
    redis_errors_.fetch_add(1);
    if (redis_up_.exchange(false) || redis_errors_.load() == 1) {
      Log(LogLevel::kWarning, "volume: cannot write counters to Redis (" + s.message() +
                                  "); counting in memory and retrying");
    }
    return false;
  };
  int64_t now = Now();
  std::vector<std::vector<std::string>> commands;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (script_sha_.empty()) {
      Status s = LoadScript();
      if (!s.ok()) return fail(s);
    }
    commands.clear();
    const Keys keys(options_.prefix);
    for (const Chunk& chunk : batch_) {
      std::vector<std::string> cmd = {"EVALSHA", script_sha_, "0",
                                      keys.volume_flush(chunk.flush_id)};
      const auto& items = chunk.items;
      for (size_t g = 0; g < items.size();) {
        const int64_t hour_start = items[g].hour_start;
        size_t end = g;
        while (end < items.size() && items[end].hour_start == hour_start) ++end;
        const int64_t expire_at = hour_start + kHour + options_.hour_retention.count();
        const std::string hour = HourId(hour_start), day = DayId(hour_start);
        const std::string yyyymm = day.substr(0, 6);
        cmd.push_back(keys.hour_messages(hour));
        cmd.push_back(keys.hour_recipients(hour));
        cmd.push_back(keys.hour_total(hour));
        cmd.push_back(expire_at > now ? std::to_string(expire_at) : "0");
        cmd.push_back(std::to_string(expire_at + kTotalExtra));
        cmd.push_back(day.substr(6));
        cmd.push_back(std::to_string(NextMonthStart(hour_start) +
                                     int64_t{options_.day_retention_days} * kDay));
        cmd.push_back(std::to_string(end - g));
        for (; g < end; ++g) {
          const Item& item = items[g];
          cmd.push_back(item.account);
          cmd.push_back(keys.hour_networks(hour, item.account));
          cmd.push_back(keys.month(yyyymm, item.account));
          cmd.push_back(std::to_string(item.counts.messages));
          cmd.push_back(std::to_string(item.counts.recipients));
          cmd.push_back(std::to_string(item.counts.networks.size()));
          for (const std::string& net : item.counts.networks) cmd.push_back(net);
        }
      }
      commands.push_back(std::move(cmd));
    }
    std::vector<RedisReply> replies;
    Status s = redis_->Pipeline(commands, &replies);
    bool noscript = false;
    for (const RedisReply& r : replies) {
      if (r.type == RedisReply::Type::kError && r.str.rfind("NOSCRIPT", 0) == 0) noscript = true;
    }
    if (noscript && attempt == 0) {  // Redis restarted or SCRIPT FLUSH: load it again
      script_sha_.clear();
      continue;
    }
    if (replies.size() != batch_.size()) return fail(s);  // the connection broke: all again
    std::vector<AccountTotals> totals;
    std::vector<Chunk> retry;
    std::string transient;
    for (size_t c = 0; c < batch_.size(); ++c) {
      const RedisReply& r = replies[c];
      if (r.type == RedisReply::Type::kError) {
        if (IsTransientRedisError(r.str)) {
          transient = r.str;
          retry.push_back(std::move(batch_[c]));
          continue;
        }
        int64_t lost = 0;
        for (const Item& item : batch_[c].items) lost += item.counts.messages;
        rejected_.fetch_add(static_cast<uint64_t>(lost));
        Log(LogLevel::kError, "volume: Redis refused counts of " + std::to_string(lost) +
                                  " messages for good: " + r.str);
        continue;
      }
      if (r.type != RedisReply::Type::kArray) continue;  // applied before: totals unknown
      const auto& items = batch_[c].items;
      for (size_t k = 0; k < items.size() && 4 * k + 3 < r.elements.size(); ++k) {
        if (r.elements[4 * k].integer == -2) {
          rejected_.fetch_add(static_cast<uint64_t>(items[k].counts.messages));
          Log(LogLevel::kError, "volume: Redis refused the counts of " +
                                    EscapeForLog(items[k].account) + ": " +
                                    r.elements[4 * k + 3].str);
          continue;
        }
        AccountTotals t;
        t.account = items[k].account;
        t.hour_start = items[k].hour_start;
        t.hour_messages = r.elements[4 * k].integer;
        t.hour_recipients = r.elements[4 * k + 1].integer;
        t.hour_networks = r.elements[4 * k + 2].integer;
        t.day_messages = r.elements[4 * k + 3].integer;
        totals.push_back(std::move(t));
      }
    }
    size_t waiting = 0;
    for (const Chunk& c : retry) waiting += c.items.size();
    batch_ = std::move(retry);
    batch_size_ = waiting;
    if (observer_ && !totals.empty()) observer_(totals);
    if (!batch_.empty()) return fail(Status::Unavailable(transient));
    flushes_.fetch_add(1);
    if (!redis_up_.exchange(true) && redis_errors_.load() > 0) {
      Log(LogLevel::kInfo, "volume: Redis is back; counters written");
    }
    return true;
  }
  return fail(Status::Unavailable("NOSCRIPT after loading the script"));
}

void VolumeCounter::Loop() {
  auto next = std::chrono::steady_clock::now() + options_.flush_interval;
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, next, [&] { return stop_; });
      stopping = stop_;
    }
    if (!stopping && std::chrono::steady_clock::now() < next) continue;
    if (stopping) {
      // Flush what is in flight, then what arrived meanwhile; give up after that.
      for (int round = 0; round < 2; ++round) {
        if (batch_.empty()) TakeBatch();
        if (batch_.empty() || !WriteBatch()) break;
      }
      if (batch_.empty()) TakeBatch();
      if (!batch_.empty()) {
        int64_t lost = 0;
        for (const Chunk& c : batch_) {
          for (const Item& item : c.items) lost += item.counts.messages;
        }
        Log(LogLevel::kWarning, "volume: Redis unavailable at stop; " + std::to_string(lost) +
                                    " messages were not added to the counters");
      }
      return;
    }
    if (batch_.empty()) TakeBatch();
    if (!batch_.empty()) {
      if (WriteBatch()) {
        backoff_ = std::chrono::milliseconds(0);
      } else {
        backoff_ =
            backoff_.count() == 0 ? options_.retry_min : std::min(backoff_ * 2, options_.retry_max);
      }
    }
    next = std::chrono::steady_clock::now() + (backoff_.count() > 0
                                                   ? std::max(backoff_, options_.flush_interval)
                                                   : options_.flush_interval);
  }
}

}  // namespace compd
