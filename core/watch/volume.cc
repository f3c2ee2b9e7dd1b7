#include "compd/watch/volume.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <random>
#include <set>

namespace compd {

namespace {

constexpr int64_t kHour = 3600;
constexpr int64_t kDay = 86400;
// Script calls per batch are cut at this many (account, hour) pairs, so one call never
// holds Redis for long.
constexpr size_t kChunkItems = 500;

// One chunk of a batch, atomically. ARGV: prefix, flush id, then per item: account, hour,
// day, hour keys' EXPIREAT (0: hour too old, skip the hour keys), month key's EXPIREAT,
// messages, recipients, N, then N networks. Returns 0 if this flush id was applied
// before; else four values per item: hour messages, hour recipients, hour networks (-1:
// none), day messages; or, for an item Redis refused (a key of the wrong type, say),
// -2, -2, -2 and the error text, so one bad key costs only its own account's counts.
// A day is one field "messages recipients networks" of its month's hash: 31 short fields
// stay in Redis' compact listpack encoding. Keys are built here from the prefix: compd
// does not run on Redis Cluster.
constexpr const char* kFlushScript = R"lua(
local p = ARGV[1]
if not redis.call('SET', p .. 'vol:flush:' .. ARGV[2], '1', 'NX', 'EX', 3600) then
  return 0
end
local function apply(i, n)
  local acct, hour, day, hexp, mexp = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local msgs, rcpts = tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6])
  local hm, hr, hn = 0, 0, -1
  if hexp ~= '0' then
    local hk = p .. 'vol:h:' .. hour
    hm = tonumber(redis.call('ZINCRBY', hk .. ':msgs', msgs, acct))
    hr = tonumber(redis.call('ZINCRBY', hk .. ':rcpts', rcpts, acct))
    redis.call('EXPIREAT', hk .. ':msgs', hexp)
    redis.call('EXPIREAT', hk .. ':rcpts', hexp)
    local nk = hk .. ':nets:' .. acct
    if n > 0 then
      redis.call('PFADD', nk, unpack(ARGV, i + 8, i + 7 + n))
      redis.call('EXPIREAT', nk, hexp)
    end
    if redis.call('EXISTS', nk) == 1 then hn = redis.call('PFCOUNT', nk) end
    -- The platform's total for the hour outlives the per-account keys by 8 days, so the
    -- wall page can draw this week's hours against last week's.
    local tk = p .. 'vol:t:' .. hour
    redis.call('HINCRBY', tk, 'm', msgs)
    redis.call('HINCRBY', tk, 'r', rcpts)
    redis.call('EXPIREAT', tk, tonumber(hexp) + 691200)
  end
  local mk = p .. 'vol:m:' .. string.sub(day, 1, 6) .. ':' .. acct
  local dd = string.sub(day, 7, 8)
  local dm, dr, dn = 0, 0, 0
  local cur = redis.call('HGET', mk, dd)
  if cur then
    local a, b, c = string.match(cur, '^(%d+) (%d+) (%d+)$')
    if a then dm, dr, dn = tonumber(a), tonumber(b), tonumber(c) end
  end
  dm = dm + msgs
  dr = dr + rcpts
  if hn > dn then dn = hn end
  redis.call('HSET', mk, dd, string.format('%d %d %d', dm, dr, dn))
  redis.call('EXPIREAT', mk, mexp)
  return {hm, hr, hn, dm}
end
local out = {}
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i + 7])
  local ok, r = pcall(apply, i, n)
  if not ok then
    local msg = type(r) == 'table' and (r.err or 'error') or tostring(r)
    r = {-2, -2, -2, msg}
  end
  for k = 1, 4 do out[#out + 1] = r[k] end
  i = i + 8 + n
end
return out
)lua";

int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

int64_t Now() { return UnixSeconds(std::chrono::system_clock::now()); }

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

struct tm Utc(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  return tm;
}

std::string Pad(int v, int width) {
  std::string s = std::to_string(v);
  if (static_cast<int>(s.size()) < width) s.insert(0, width - s.size(), '0');
  return s;
}

std::string Instance() {
  std::random_device rd;
  uint64_t r = (uint64_t{rd()} << 32) ^ rd();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 12; ++i) s += kHex[(r >> (i * 4)) & 15];
  return s + "." + std::to_string(getpid());
}

int64_t ScoreOf(const RedisReply& r) {
  if (r.type == RedisReply::Type::kInteger) return r.integer;
  if (r.type != RedisReply::Type::kString) return 0;
  return static_cast<int64_t>(std::strtod(r.str.c_str(), nullptr));
}

}  // namespace

int64_t NextMonthStart(int64_t unix_seconds) {
  struct tm tm = Utc(unix_seconds);
  struct tm next {};
  next.tm_year = tm.tm_mon == 11 ? tm.tm_year + 1 : tm.tm_year;
  next.tm_mon = (tm.tm_mon + 1) % 12;
  next.tm_mday = 1;
  return static_cast<int64_t>(timegm(&next));
}

std::string HourId(int64_t unix_seconds) {
  struct tm tm = Utc(unix_seconds);
  return Pad(tm.tm_year + 1900, 4) + Pad(tm.tm_mon + 1, 2) + Pad(tm.tm_mday, 2) +
         Pad(tm.tm_hour, 2);
}

std::string DayId(int64_t unix_seconds) { return HourId(unix_seconds).substr(0, 8); }

int64_t HourStart(int64_t unix_seconds) { return FloorDiv(unix_seconds, kHour) * kHour; }

int64_t DayStart(int64_t unix_seconds) { return FloorDiv(unix_seconds, kDay) * kDay; }

bool ParseDayId(std::string_view day, int64_t* day_start) {
  if (day.size() != 8) return false;
  int v[3] = {0, 0, 0};
  const int widths[3] = {4, 2, 2};
  size_t pos = 0;
  for (int k = 0; k < 3; ++k) {
    for (int j = 0; j < widths[k]; ++j, ++pos) {
      char c = day[pos];
      if (c < '0' || c > '9') return false;
      v[k] = v[k] * 10 + (c - '0');
    }
  }
  if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31) return false;
  struct tm tm {};
  tm.tm_year = v[0] - 1900;
  tm.tm_mon = v[1] - 1;
  tm.tm_mday = v[2];
  *day_start = static_cast<int64_t>(timegm(&tm));
  return DayId(*day_start) == day;  // rejects 20260231
}

std::string HourLabel(int64_t unix_seconds) {
  std::string id = HourId(unix_seconds);
  return id.substr(0, 4) + "-" + id.substr(4, 2) + "-" + id.substr(6, 2) + "T" + id.substr(8, 2);
}

std::string DayLabel(int64_t unix_seconds) { return HourLabel(unix_seconds).substr(0, 10); }

std::string ClientNetwork(std::string_view ip_text, int ipv4_bits, int ipv6_bits) {
  std::string s(ip_text);
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  if (s.rfind("IPv6:", 0) == 0) s = s.substr(5);
  uint8_t a[16] = {};
  bool v6 = false;
  in_addr v4addr;
  in6_addr v6addr;
  if (inet_pton(AF_INET, s.c_str(), &v4addr) == 1) {
    std::memcpy(a, &v4addr, 4);
  } else if (inet_pton(AF_INET6, s.c_str(), &v6addr) == 1) {
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(v6addr.s6_addr, kMapped, 12) == 0) {
      std::memcpy(a, v6addr.s6_addr + 12, 4);
    } else {
      std::memcpy(a, v6addr.s6_addr, 16);
      v6 = true;
    }
  } else {
    return "";
  }
  int bits = std::clamp(v6 ? ipv6_bits : ipv4_bits, 0, v6 ? 128 : 32);
  int len = v6 ? 16 : 4;
  for (int i = 0; i < len; ++i) {
    int keep = std::clamp(bits - i * 8, 0, 8);
    a[i] &= static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, a, buf, sizeof buf) == nullptr) return "";
  return std::string(buf) + "/" + std::to_string(bits);
}

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
  thread_ = std::thread(&VolumeCounter::Loop, this);
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
    it = pending_.emplace(std::move(key), Item{message.account, hour, Pending()}).first;
  }
  Pending& p = it->second.counts;
  p.messages += 1;
  p.recipients += static_cast<int64_t>(message.recipients);
  if (!network.empty() && p.networks.size() < options_.max_networks) {
    p.networks.insert(std::move(network));
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
  Chunk chunk;
  size_t kept = 0;
  for (auto& [key, item] : taken) {
    (void)key;
    if (item.hour_start < day_cutoff) continue;  // older than anything kept
    if (chunk.items.size() == kChunkItems) {
      batch_.push_back(std::move(chunk));
      chunk = Chunk();
    }
    if (chunk.items.empty()) chunk.flush_id = instance_ + ":" + std::to_string(++seq_);
    chunk.items.push_back(std::move(item));
    ++kept;
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
    for (const Chunk& chunk : batch_) {
      std::vector<std::string> cmd = {"EVALSHA", script_sha_, "0", options_.prefix, chunk.flush_id};
      for (const Item& item : chunk.items) {
        int64_t expire_at = item.hour_start + kHour + options_.hour_retention.count();
        cmd.push_back(item.account);
        cmd.push_back(HourId(item.hour_start));
        cmd.push_back(DayId(item.hour_start));
        cmd.push_back(expire_at > now ? std::to_string(expire_at) : "0");
        cmd.push_back(std::to_string(NextMonthStart(item.hour_start) +
                                     int64_t{options_.day_retention_days} * kDay));
        cmd.push_back(std::to_string(item.counts.messages));
        cmd.push_back(std::to_string(item.counts.recipients));
        cmd.push_back(std::to_string(item.counts.networks.size()));
        for (const std::string& net : item.counts.networks) cmd.push_back(net);
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

// --- Reading.

Status ReadTop(RedisClient* redis, const std::string& prefix, int64_t now, size_t n, TopView* out) {
  VolumeKeys keys(prefix);
  const int64_t h[3] = {HourStart(now), HourStart(now) - kHour, HourStart(now) - 2 * kHour};
  std::string id[3];
  for (int i = 0; i < 3; ++i) id[i] = HourId(h[i]);
  if (n == 0) n = 1;
  std::vector<std::vector<std::string>> cmds;
  for (int i = 0; i < 3; ++i) {
    cmds.push_back(
        {"ZREVRANGE", keys.hour_messages(id[i]), "0", std::to_string(n - 1), "WITHSCORES"});
  }
  std::vector<RedisReply> replies;
  Status s = redis->Pipeline(cmds, &replies);
  if (!s.ok()) return s;
  std::vector<std::pair<std::string, int64_t>> top[3];
  std::set<std::string> members[3];
  for (int i = 0; i < 3; ++i) {
    const auto& el = replies[i].elements;
    for (size_t k = 0; k + 1 < el.size(); k += 2) {
      top[i].emplace_back(el[k].str, ScoreOf(el[k + 1]));
      members[i].insert(el[k].str);
    }
  }
  TopColumn* cols[2] = {&out->this_hour, &out->last_hour};
  cmds.clear();
  for (int c = 0; c < 2; ++c) {
    cols[c]->hour_start = h[c];
    cols[c]->hour = id[c];
    cols[c]->rows.clear();
    for (const auto& [account, count] : top[c]) {
      TopRow row;
      row.account = account;
      row.messages = count;
      row.new_to_top = members[c + 1].count(account) == 0;
      cols[c]->rows.push_back(row);
      cmds.push_back({"ZSCORE", keys.hour_recipients(id[c]), account});
      cmds.push_back({"PFCOUNT", keys.hour_networks(id[c], account)});
      cmds.push_back({"ZSCORE", keys.hour_messages(id[c + 1]), account});
    }
  }
  if (cmds.empty()) return Status::Ok();
  replies.clear();
  s = redis->Pipeline(cmds, &replies);
  if (!s.ok()) return s;
  size_t k = 0;
  for (int c = 0; c < 2; ++c) {
    for (TopRow& row : cols[c]->rows) {
      row.recipients = ScoreOf(replies[k++]);
      row.networks = ScoreOf(replies[k++]);
      row.previous = ScoreOf(replies[k++]);
    }
  }
  return Status::Ok();
}

std::vector<DayCounts> ParseMonthDays(const std::string& yyyymm,
                                      const std::vector<RedisReply>& hgetall) {
  std::vector<DayCounts> out;
  for (size_t i = 0; i + 1 < hgetall.size(); i += 2) {
    DayCounts d;
    d.day = yyyymm + hgetall[i].str;
    int64_t start;
    if (hgetall[i].str.size() != 2 || !ParseDayId(d.day, &start)) continue;
    long long m = 0, r = 0, n = 0;
    if (std::sscanf(hgetall[i + 1].str.c_str(), "%lld %lld %lld", &m, &r, &n) != 3) continue;
    d.messages = m;
    d.recipients = r;
    d.networks = n;
    out.push_back(std::move(d));
  }
  std::sort(out.begin(), out.end(),
            [](const DayCounts& a, const DayCounts& b) { return a.day < b.day; });
  return out;
}

Status ReadAccountDays(RedisClient* redis, const std::string& prefix, const std::string& account,
                       int64_t from, int64_t to, std::vector<DayCounts>* out) {
  out->clear();
  VolumeKeys keys(prefix);
  std::vector<std::string> months;
  for (int64_t t = DayStart(from); t <= to; t = NextMonthStart(t)) {
    months.push_back(DayId(t).substr(0, 6));
  }
  std::vector<std::vector<std::string>> cmds;
  for (const std::string& m : months) cmds.push_back({"HGETALL", keys.month(m, account)});
  if (cmds.empty()) return Status::NotFound("no volume history for " + account);
  std::vector<RedisReply> replies;
  Status s = redis->Pipeline(cmds, &replies);
  if (!s.ok()) return s;
  const std::string first = DayId(from), last = DayId(to);
  for (size_t i = 0; i < months.size() && i < replies.size(); ++i) {
    for (DayCounts& d : ParseMonthDays(months[i], replies[i].elements)) {
      if (d.day >= first && d.day <= last) out->push_back(std::move(d));
    }
  }
  if (out->empty()) return Status::NotFound("no volume history for " + account);
  return Status::Ok();
}

}  // namespace compd
