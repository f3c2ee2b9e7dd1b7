#include "compd/detect/redis_detect_state.h"

#include <algorithm>
#include <cstdlib>

#include "compd/base/keys.h"
#include "compd/base/thread_guard.h"

namespace compd {

namespace {

// Returns, per group, 1 when its value changed (so an import can tell running nodes only
// what is news to them).
constexpr const char* kMergeScript = R"lua(
local changed = {}
for i = 1, #ARGV - 1, 4 do
  local f, l = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur then
    local cf, cl = string.match(cur, '^(%d+) (%d+)')
    cf, cl = tonumber(cf), tonumber(cl)
    if cf and cf < f then f = cf end
    if cl and cl > l then l = cl end
  end
  local v = string.format('%.0f %.0f ', f, l) .. ARGV[i + 3]
  if v ~= cur then
    redis.call('HSET', KEYS[1], ARGV[i], v)
    changed[#changed + 1] = 1
  else
    changed[#changed + 1] = 0
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[#ARGV])
return changed
)lua";

// Adds one window entry and keeps the newest 64 (a botnet's many networks must not grow
// the hash): ARGV field, value, ttl.
constexpr const char* kWindowScript = R"lua(
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local fs = redis.call('HKEYS', KEYS[1])
if #fs > 64 then
  local ts = {}
  for _, f in ipairs(fs) do ts[#ts + 1] = {tonumber(string.match(f, '|(%d+)$')) or 0, f} end
  table.sort(ts, function(a, b) return a[1] < b[1] end)
  for i = 1, #ts - 64 do redis.call('HDEL', KEYS[1], ts[i][2]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
)lua";

constexpr size_t kFeedMaxLen = 100000;
constexpr size_t kReadCount = 2000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string GroupsKey(const std::string& prefix, const std::string& key) {
  return Keys(prefix).detect_groups(key);
}

std::string WindowValue(const WindowEntry& e) {
  return std::to_string(e.score) + " " +
         e.evidence.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The XADD of one feed entry: `fields`, then the node that wrote it.
std::vector<std::string> FeedAdd(const std::string& prefix, const std::string& node,
                                 std::vector<std::string> fields) {
  std::vector<std::string> cmd = {"XADD", Keys(prefix).detect_feed(),  "MAXLEN",
                                  "~",    std::to_string(kFeedMaxLen), "*"};
  for (std::string& f : fields) cmd.push_back(std::move(f));
  cmd.push_back("node");
  cmd.push_back(node);
  return cmd;
}

std::vector<std::string> UseFields(const std::string& key, const GroupUse& u) {
  return {"a",   key,
          "g",   u.group,
          "n",   u.network,
          "ip",  u.client_ip,
          "t",   std::to_string(u.time_ms),
          "new", u.was_new ? "1" : "0"};
}

}  // namespace

bool MergeGroupUse(AccountState* a, const GroupUse& use, int64_t now_ms, int64_t window_ms) {
  auto it = a->groups.find(use.group);
  // The node that saw the use may have had no history for the account yet (it saw the
  // account first less than a sync interval after another node did), and so not called
  // it new: a group unknown here, used after the account's first use here, is new.
  const bool is_new =
      use.was_new || (it == a->groups.end() && a->first_ms != 0 && a->first_ms < use.time_ms);
  if (it == a->groups.end()) {
    a->groups[use.group] = KnownGroup{use.time_ms, use.time_ms};
  } else {
    it->second.first_ms = std::min(it->second.first_ms, use.time_ms);
    it->second.last_ms = std::max(it->second.last_ms, use.time_ms);
  }
  if (a->first_ms == 0 || use.time_ms < a->first_ms) a->first_ms = use.time_ms;
  if (!is_new || use.time_ms < now_ms - window_ms) return false;
  for (const RecentNewGroup& r : a->recent) {
    if (r.group == use.group) return false;
  }
  a->recent.push_back(RecentNewGroup{use.group, use.network, use.client_ip, use.time_ms});
  std::sort(
      a->recent.begin(), a->recent.end(),
      [](const RecentNewGroup& x, const RecentNewGroup& y) { return x.first_ms < y.first_ms; });
  return true;
}

std::string WindowField(const WindowEntry& e) {
  return std::string(SignalName(e.id)) + "|" + e.part + "|" + std::to_string(e.time_ms);
}

bool ParseStoredWindowEntry(const std::string& field, const std::string& value, WindowEntry* out) {
  const size_t a = field.find('|'), b = field.rfind('|');
  if (a == std::string::npos || b == a) return false;
  WindowEntry e;
  if (!ParseSignal(field.substr(0, a), &e.id) || e.id == SignalId::kCombined) return false;
  e.part = field.substr(a + 1, b - a - 1);
  const std::string t = field.substr(b + 1);
  char* end = nullptr;
  e.time_ms = std::strtoll(t.c_str(), &end, 10);
  if (t.empty() || *end != '\0' || e.time_ms <= 0) return false;
  const char* p = value.c_str();
  const long score = std::strtol(p, &end, 10);
  if (end == p || *end != ' ' || score <= 0 || score > 1000000) return false;
  e.score = static_cast<int>(score);
  e.evidence = nlohmann::json::parse(end + 1, nullptr, false);
  if (!e.evidence.is_object()) return false;
  *out = std::move(e);
  return true;
}

bool ParseStoredGroup(const std::string& group, const std::string& value, StoredGroup* out) {
  const char* p = value.c_str();
  char* end = nullptr;
  StoredGroup g;
  g.group = group;
  g.first_ms = std::strtoll(p, &end, 10);
  if (end == p || *end != ' ') return false;
  p = end + 1;
  g.last_ms = std::strtoll(p, &end, 10);
  if (end == p || (*end != ' ' && *end != '\0')) return false;
  if (*end == ' ') g.network = std::string(end + 1);
  if (group.empty() || g.first_ms <= 0) return false;
  g.last_ms = std::max(g.last_ms, g.first_ms);
  *out = std::move(g);
  return true;
}

size_t MergeStoredGroups(AccountState* a, const std::vector<StoredGroup>& groups, int64_t now_ms,
                         int64_t window_ms) {
  int64_t earliest = a->first_ms;
  for (const StoredGroup& g : groups) {
    if (earliest == 0 || g.first_ms < earliest) earliest = g.first_ms;
  }
  size_t added = 0;
  for (const StoredGroup& g : groups) {
    GroupUse u;
    u.group = g.group;
    u.network = g.network;
    u.time_ms = g.first_ms;
    u.was_new = g.first_ms > earliest;
    if (MergeGroupUse(a, u, now_ms, window_ms)) ++added;
    KnownGroup& k = a->groups[g.group];
    k.last_ms = std::max(k.last_ms, g.last_ms);
  }
  return added;
}

Status MergeKnownGroups(RedisClient* redis, const std::string& prefix, const std::string& key,
                        const std::vector<std::pair<std::string, KnownGroup>>& groups,
                        const std::vector<std::string>& networks, int64_t ttl_ms,
                        std::vector<bool>* changed) {
  if (changed != nullptr) changed->assign(groups.size(), false);
  if (groups.empty()) return Status::Ok();
  std::vector<std::string> cmd = {"EVAL", kMergeScript, "1", GroupsKey(prefix, key)};
  for (size_t i = 0; i < groups.size(); ++i) {
    cmd.push_back(groups[i].first);
    cmd.push_back(std::to_string(groups[i].second.first_ms));
    cmd.push_back(std::to_string(groups[i].second.last_ms));
    cmd.push_back(i < networks.size() ? networks[i] : std::string());
  }
  cmd.push_back(std::to_string(ttl_ms));
  RedisReply reply;
  Status s = redis->Command(cmd, &reply);
  if (!s.ok() || changed == nullptr) return s;
  for (size_t i = 0; i < reply.elements.size() && i < groups.size(); ++i) {
    (*changed)[i] = reply.elements[i].integer == 1;
  }
  return Status::Ok();
}

Status AnnounceKnownGroups(RedisClient* redis, const std::string& prefix, const std::string& node,
                           const std::vector<std::pair<std::string, GroupUse>>& uses,
                           const std::vector<std::string>& domains) {
  std::vector<std::vector<std::string>> cmds;
  for (const auto& [key, u] : uses) cmds.push_back(FeedAdd(prefix, node, UseFields(key, u)));
  for (const std::string& d : domains) cmds.push_back(FeedAdd(prefix, node, {"d", d}));
  if (cmds.empty()) return Status::Ok();
  std::vector<RedisReply> replies;
  return redis->Pipeline(cmds, &replies);
}

RedisDetectState::RedisDetectState(RedisDetectOptions options, LogFn log)
    : options_(std::move(options)), log_(std::move(log)) {}

RedisDetectState::~RedisDetectState() { Stop(); }

void RedisDetectState::Log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, message);
}

RedisDetectStats RedisDetectState::stats() const {
  RedisDetectStats s;
  s.written = written_.load();
  s.merged = merged_.load();
  s.redis_errors = redis_errors_.load();
  s.loaded = loaded_.load();
  return s;
}

void RedisDetectState::Learned(const std::string& key, const GroupUse& use) {
  std::lock_guard<std::mutex> lock(mu_);
  if (queue_.size() < 100000) queue_.emplace_back(key, use);
}

void RedisDetectState::Contributed(const std::string& key, const WindowEntry& entry) {
  std::lock_guard<std::mutex> lock(mu_);
  if (window_queue_.size() < 100000) window_queue_.emplace_back(key, entry);
}

void RedisDetectState::AddDomain(std::string_view domain) {
  if (domain.empty() || IsLocalDomain(domain)) return;
  MemoryDetectState::AddDomain(domain);
  std::lock_guard<std::mutex> lock(mu_);
  domain_queue_.emplace_back(domain);
}

Status RedisDetectState::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return Status::Internal("detect state started twice");
    started_ = true;
  }
  redis_ = std::make_unique<RedisClient>(options_.redis, options_.redis_timeout);
  // Before the first message: one judged without the account's known groups would take a
  // long-known network for a new one, or miss a new one (no history yet).
  if (!Load()) {
    ++redis_errors_;
    redis_->Disconnect();
    Log(LogLevel::kWarning, "detect: cannot load the known networks from Redis yet; retrying");
  }
  std::lock_guard<std::mutex> lock(mu_);
  thread_ = StartLoopThread(
      "detect", log_, [this] { Loop(); }, FlagUnder(&mu_, &stop_));
  return Status::Ok();
}

void RedisDetectState::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool RedisDetectState::Load() {
  // The feed position first, so nothing appended while loading is missed (a use merged
  // twice changes nothing).
  RedisReply last;
  Status s = redis_->Command(
      {"XREVRANGE", Keys(options_.prefix).detect_feed(), "+", "-", "COUNT", "1"}, &last);
  if (!s.ok()) return false;
  feed_id_ = "0-0";
  if (last.type == RedisReply::Type::kArray && !last.elements.empty() &&
      !last.elements[0].elements.empty()) {
    feed_id_ = last.elements[0].elements[0].str;
  }
  const int64_t now = NowMs();
  size_t accounts = 0;
  const std::string pattern = Keys(options_.prefix).detect_groups_pattern();
  s = ForEachHash(redis_.get(), pattern,
                  [&](const std::string& key, const std::vector<RedisReply>& fields) {
                    std::vector<StoredGroup> groups;
                    for (size_t j = 0; j + 1 < fields.size(); j += 2) {
                      StoredGroup g;
                      if (ParseStoredGroup(fields[j].str, fields[j + 1].str, &g))
                        groups.push_back(std::move(g));
                    }
                    if (groups.empty()) return;
                    WithAccount(key.substr(pattern.size() - 1), [&](AccountState& a) {
                      MergeStoredGroups(&a, groups, now, options_.window_ms);
                    });
                    ++accounts;
                  });
  if (!s.ok()) return false;
  // The signal windows, so a restart forgets no signal that still counts.
  const std::string window_pattern = Keys(options_.prefix).detect_window_pattern();
  s = ForEachHash(redis_.get(), window_pattern,
                  [&](const std::string& key, const std::vector<RedisReply>& fields) {
                    std::vector<WindowEntry> entries;
                    for (size_t j = 0; j + 1 < fields.size(); j += 2) {
                      WindowEntry e;
                      if (ParseStoredWindowEntry(fields[j].str, fields[j + 1].str, &e)) {
                        entries.push_back(std::move(e));
                      }
                    }
                    if (entries.empty()) return;
                    WithAccount(key.substr(window_pattern.size() - 1), [&](AccountState& a) {
                      for (WindowEntry& e : entries) {
                        AddToWindow(&a.window, std::move(e), now, options_.signal_window_ms);
                      }
                    });
                  });
  if (!s.ok()) return false;
  RedisReply domains;
  s = redis_->Command({"SMEMBERS", Keys(options_.prefix).detect_domains()}, &domains);
  if (!s.ok()) return false;
  for (const RedisReply& d : domains.elements) MemoryDetectState::AddDomain(d.str);
  loaded_ = true;
  Log(LogLevel::kInfo, "detect: loaded the known networks of " + std::to_string(accounts) +
                           " accounts and " + std::to_string(domains.elements.size()) +
                           " domains from Redis");
  return true;
}

bool RedisDetectState::Sync() {
  std::vector<std::pair<std::string, GroupUse>> batch;
  std::vector<std::string> domains;
  std::vector<std::pair<std::string, WindowEntry>> window;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(queue_);
    domains.swap(domain_queue_);
    window.swap(window_queue_);
  }
  std::vector<std::vector<std::string>> cmds;
  const std::string ttl = std::to_string(options_.known_network_ms);
  for (const auto& [key, u] : batch) {
    cmds.push_back({"EVAL", kMergeScript, "1", GroupsKey(options_.prefix, key), u.group,
                    std::to_string(u.time_ms), std::to_string(u.time_ms), u.network, ttl});
    cmds.push_back(FeedAdd(options_.prefix, options_.node, UseFields(key, u)));
  }
  const std::string window_ttl = std::to_string(options_.signal_window_ms);
  for (const auto& [key, e] : window) {
    const std::string value = WindowValue(e);
    cmds.push_back({"EVAL", kWindowScript, "1", Keys(options_.prefix).detect_window(key),
                    WindowField(e), value, window_ttl});
    cmds.push_back(
        FeedAdd(options_.prefix, options_.node,
                {"a", key, "w", SignalName(e.id), "p", e.part, "t", std::to_string(e.time_ms), "s",
                 std::to_string(e.score), "e",
                 e.evidence.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)}));
  }
  if (!domains.empty()) {
    std::vector<std::string> sadd = {"SADD", Keys(options_.prefix).detect_domains()};
    for (std::string& d : domains) sadd.push_back(std::move(d));
    cmds.push_back(std::move(sadd));
  }
  // Then what the others appended (our own entries are skipped when read).
  cmds.push_back({"XREAD", "COUNT", std::to_string(kReadCount), "STREAMS",
                  Keys(options_.prefix).detect_feed(), feed_id_});
  std::vector<RedisReply> replies;
  Status s = redis_->Pipeline(cmds, &replies);
  if (replies.size() != cmds.size()) {
    // Nothing known about the batch: put it back (merging twice is harmless).
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& b : batch) {
      if (queue_.size() < 100000) queue_.push_back(std::move(b));
    }
    for (std::string& d : domains) domain_queue_.push_back(std::move(d));
    for (auto& w : window) {
      if (window_queue_.size() < 100000) window_queue_.push_back(std::move(w));
    }
    return false;
  }
  written_ += batch.size();
  const RedisReply& read = replies.back();
  const int64_t now = NowMs();
  std::vector<std::string> changed;
  if (read.type == RedisReply::Type::kArray && !read.elements.empty() &&
      read.elements[0].elements.size() == 2) {
    for (const RedisReply& entry : read.elements[0].elements[1].elements) {
      if (entry.elements.size() != 2) continue;
      feed_id_ = entry.elements[0].str;
      std::string key, node, domain, signal, part, score, evidence;
      GroupUse u;
      const auto& f = entry.elements[1].elements;
      for (size_t i = 0; i + 1 < f.size(); i += 2) {
        const std::string& n = f[i].str;
        const std::string& v = f[i + 1].str;
        if (n == "a") key = v;
        if (n == "g") u.group = v;
        if (n == "n") u.network = v;
        if (n == "ip") u.client_ip = v;
        if (n == "t") u.time_ms = std::atoll(v.c_str());
        if (n == "new") u.was_new = v == "1";
        if (n == "node") node = v;
        if (n == "d") domain = v;
        if (n == "w") signal = v;
        if (n == "p") part = v;
        if (n == "s") score = v;
        if (n == "e") evidence = v;
      }
      if (node == options_.node) continue;
      if (!domain.empty()) MemoryDetectState::AddDomain(domain);  // an import's
      if (!key.empty() && !signal.empty()) {
        WindowEntry e;
        bool added = false;
        if (ParseStoredWindowEntry(signal + "|" + part + "|" + std::to_string(u.time_ms),
                                   score + " " + evidence, &e)) {
          WithAccount(key, [&](AccountState& a) {
            added = AddToWindow(&a.window, std::move(e), now, options_.signal_window_ms);
          });
        }
        ++merged_;
        if (added) changed.push_back(key);
        continue;
      }
      if (key.empty() || u.group.empty()) continue;
      bool added = false;
      WithAccount(key,
                  [&](AccountState& a) { added = MergeGroupUse(&a, u, now, options_.window_ms); });
      ++merged_;
      if (added) changed.push_back(key);
    }
  }
  if (on_remote_) {
    for (const std::string& key : changed) on_remote_(key);
  }
  return true;
}

void RedisDetectState::Loop() {
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, options_.sync_interval, [this] { return stop_; });
      stopping = stop_;
    }
    if (!loaded_ && !Load()) {
      ++redis_errors_;
      redis_->Disconnect();
      if (stopping) return;
      continue;
    }
    if (!Sync()) {
      ++redis_errors_;
      redis_->Disconnect();
    }
    if (stopping) return;
  }
}

}  // namespace compd
