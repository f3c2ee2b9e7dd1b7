#include "compd/accounts/accounts.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace compd {

namespace {

using Json = nlohmann::json;

// JSON text of a string, with invalid UTF-8 replaced: scripts paste it into JSON they build.
std::string JsonString(const std::string& s) {
  return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

int64_t ToInt(const std::string& s) {
  try {
    return s.empty() ? 0 : std::stoll(s);
  } catch (const std::exception&) {
    return 0;
  }
}

// The hit's effect on its account; see the top of accounts.h. K and A are described in
// AccountHitCall, which builds them.
constexpr const char* kAccountHitLua = R"lua(
local function compd_account_hit(K, A)
  local flags = 0
  local maxv = tonumber(A[11])
  local function count(key, value)
    if value == '' then return end
    if redis.call('HEXISTS', key, value) == 1 or redis.call('HLEN', key) < maxv then
      redis.call('HINCRBY', key, value, 1)
    end
  end
  count(K[2], A[5])
  count(K[3], A[6])
  redis.call('LPUSH', K[4], A[7])
  redis.call('LTRIM', K[4], 0, tonumber(A[12]) - 1)

  local now = tonumber(A[3])
  local cur = redis.call('HMGET', K[1], 'state', 'state_at', 'lock_expires')
  local state = cur[1]
  if state == 'locked' then
    local exp = tonumber(cur[3] or '0') or 0
    if exp ~= 0 and exp <= now then state = 'flagged' end
  end
  -- The operator released the account after this hit happened (it waited in a spool).
  if state == 'released' and cur[2] and cur[2] > A[2] then return 0 end
  local new = (not state) or state == 'released'
  local want = state
  if new then want = 'flagged' end
  if A[8] == '1' then want = 'locked' end
  if want == state then return 0 end

  local fields = {'state', want, 'state_at', A[4], 'state_by', A[15], 'state_reason', A[16]}
  if new then
    fields[#fields + 1] = 'flagged_at'
    fields[#fields + 1] = A[4]
    flags = flags + 2
  end
  local entry = '{"time":"' .. A[4] .. '","what":"' .. want .. '","by":' .. A[17] ..
                ',"text":' .. A[18]
  if want == 'locked' then
    local dur = tonumber(A[9])
    local exp = 0
    if dur > 0 then exp = now + dur end
    fields[#fields + 1] = 'lock_expires'
    fields[#fields + 1] = tostring(exp)
    redis.call('HSET', K[6], A[1], tostring(exp))
    local v = redis.call('INCR', K[7])
    redis.call('PUBLISH', A[14], v)
    entry = entry .. ',"expires":' .. tostring(exp)
    flags = flags + 4
  end
  redis.call('HSET', K[1], unpack(fields))
  redis.call('ZADD', K[8], now, A[1])
  redis.call('LPUSH', K[5], entry .. '}')
  redis.call('LTRIM', K[5], 0, tonumber(A[13]) - 1)

  if new and #A >= 19 then
    local quiet = tonumber(A[10])
    if quiet == 0 or redis.call('SET', K[9], A[4], 'NX', 'PX', quiet) then
      local n = 0
      for i = 19, #A - 1, 2 do
        n = n + 1
        redis.call('HSET', K[10 + n], 'id', A[i + 1], 'target', A[i], 'account', A[1],
                   'state', want, 'queued_at', A[3], 'event', A[7], 'attempts', '0')
        redis.call('ZADD', K[10], now, A[i + 1])
      end
      flags = flags + 8
    end
  end
  return flags
end
)lua";

// An operator's change. KEYS: record, log, locked, version, changed.
// ARGV: account, op (lock|release|note), now iso, now ms, by, text, expires ms, channel,
// max log, log entry JSON. Returns {status, previous state, version}.
constexpr const char* kChangeScript = R"lua(
local prev = redis.call('HGET', KEYS[1], 'state') or ''
local op = ARGV[2]
if op ~= 'lock' and redis.call('EXISTS', KEYS[1]) == 0 and
   redis.call('EXISTS', KEYS[2]) == 0 then
  return {'missing', '', 0}
end
local v = 0
if op == 'lock' then
  redis.call('HSET', KEYS[1], 'state', 'locked', 'state_at', ARGV[3], 'state_by', ARGV[5],
             'state_reason', ARGV[6], 'lock_expires', ARGV[7])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[7])
elseif op == 'release' then
  redis.call('HSET', KEYS[1], 'state', 'released', 'state_at', ARGV[3], 'state_by', ARGV[5],
             'state_reason', ARGV[6], 'lock_expires', '0')
  redis.call('HDEL', KEYS[3], ARGV[1])
end
if op ~= 'note' then
  v = redis.call('INCR', KEYS[4])
  redis.call('PUBLISH', ARGV[8], v)
end
redis.call('LPUSH', KEYS[2], ARGV[10])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[9]) - 1)
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
return {'ok', prev, v}
)lua";

std::map<std::string, std::string> FieldMap(const RedisReply& r) {
  std::map<std::string, std::string> m;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    m[r.elements[i].str] = r.elements[i + 1].str;
  }
  return m;
}

std::vector<std::pair<std::string, int64_t>> Counts(const RedisReply& r) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    out.emplace_back(r.elements[i].str, ToInt(r.elements[i + 1].str));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return out;
}

void FillFromHash(const std::map<std::string, std::string>& f, AccountRecord* r) {
  auto get = [&](const char* k) {
    auto it = f.find(k);
    return it == f.end() ? std::string() : it->second;
  };
  r->state = get("state");
  r->state_at = get("state_at");
  r->state_by = get("state_by");
  r->state_reason = get("state_reason");
  r->flagged_at = get("flagged_at");
  r->lock_expires_ms = ToInt(get("lock_expires"));
  r->first_seen = get("first_seen");
  r->last_seen = get("last_seen");
  r->hits = ToInt(get("hits"));
  r->last_recipient = get("last_recipient");
  r->last_client_ip = get("last_client_ip");
  r->last_entry = get("last_entry");
  r->tickets.clear();
  for (const auto& [k, v] : f) {
    if (k.rfind("ticket_", 0) == 0) r->tickets.emplace_back(k.substr(7), v);
  }
}

}  // namespace

std::string AccountKey(std::string_view account) { return Lower(account); }

Status CheckAccountName(std::string_view account) {
  if (account.empty()) return Status::Invalid("account name is empty");
  if (account.size() > kMaxAccountLength) {
    return Status::Invalid("account name is longer than " + std::to_string(kMaxAccountLength) +
                           " bytes");
  }
  for (char c : account) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return Status::Invalid("account name contains a control character");
    }
  }
  return Status::Ok();
}

Status AccountAllowlist::Parse(std::string_view text, AccountAllowlist* out) {
  AccountAllowlist list;
  std::string item;
  auto flush = [&]() -> Status {
    if (item.empty()) return Status::Ok();
    Status s = CheckAccountName(item);
    if (!s.ok()) return Status::Invalid("'" + item + "': " + s.message());
    if (item == "@") return Status::Invalid("'@': a domain is missing after '@'");
    list.items_.push_back(Lower(item));
    item.clear();
    return Status::Ok();
  };
  for (char c : text) {
    if (c == ',' || c == ' ' || c == '\t') {
      Status s = flush();
      if (!s.ok()) return s;
    } else {
      item += c;
    }
  }
  Status s = flush();
  if (!s.ok()) return s;
  *out = std::move(list);
  return Status::Ok();
}

bool AccountAllowlist::Contains(std::string_view account) const {
  if (items_.empty()) return false;
  std::string a = Lower(account);
  for (const std::string& item : items_) {
    if (item == a) return true;
    if (item[0] == '@' && a.size() > item.size() &&
        a.compare(a.size() - item.size(), item.size(), item) == 0) {
      return true;
    }
  }
  return false;
}

Status AccountReaction::FromConfig(const Config& config, AccountReaction* out) {
  AccountReaction r;
  r.lock_on_hit = config.GetBool("lock_on_hit");
  Status s = AccountAllowlist::Parse(config.GetString("lock_allowlist"), &r.allowlist);
  if (!s.ok()) return Status::Invalid("lock_allowlist: " + s.message());
  r.lock_duration = std::chrono::milliseconds(config.GetDurationMs("lock_duration"));
  r.hook_quiet = std::chrono::milliseconds(config.GetDurationMs("hook_quiet_period"));
  if (!config.GetString("hook_command").empty()) r.hook_targets.push_back("exec");
  if (!config.GetString("hook_url").empty()) r.hook_targets.push_back("webhook");
  *out = std::move(r);
  return Status::Ok();
}

const char* AccountHitLua() { return kAccountHitLua; }

void AccountHitCall(const AccountKeys& names, const AccountReaction& reaction, const Event& event,
                    std::chrono::system_clock::time_point now, const std::string& host,
                    std::vector<std::string>* keys, std::vector<std::string>* args) {
  const std::string a = AccountKey(event.account);
  for (std::string k :
       {names.record(a), names.recipients(a), names.client_ips(a), names.timeline(a), names.log(a),
        names.locked(), names.version(), names.changed(), names.quiet(a), names.hook_due()}) {
    keys->push_back(std::move(k));
  }
  const bool signal = event.type == "signal";
  // A detection signal locks when its reaction says so (reaction_* settings), with the
  // same exemptions as lock_on_hit.
  const bool lock = signal
                        ? event.action == "lock" && AccountReaction::IsSaslAccount(event.account) &&
                              !reaction.allowlist.Contains(event.account)
                        : reaction.MayAutoLock(event.account);
  const std::string by = "compd@" + (event.host.empty() ? host : event.host);
  std::string reason = "hit on " + event.recipient;
  if (!event.where.empty() && event.where != "envelope") reason += " (" + event.where + ")";
  if (signal) {
    reason = "signal " + event.rule + " (" + event.action + "): " + event.evidence.substr(0, 300);
  } else if (lock) {
    reason += "; lock_on_hit";
  } else if (reaction.lock_on_hit) {
    reason += AccountReaction::IsSaslAccount(event.account) ? "; not locked: in lock_allowlist"
                                                            : "; not locked: not a SASL account";
  }
  for (std::string v :
       {a, event.time, std::to_string(UnixMs(now)), FormatUtcMillis(now), event.recipient,
        event.client_ip, event.ToJson(), std::string(lock ? "1" : "0"),
        std::to_string(reaction.lock_duration.count()), std::to_string(reaction.hook_quiet.count()),
        std::to_string(kMaxEvidenceValues), std::to_string(kMaxTimeline),
        std::to_string(kMaxAccountLog), names.channel(), by, reason, JsonString(by),
        JsonString(reason)}) {
    args->push_back(std::move(v));
  }
  for (const std::string& target : reaction.hook_targets) {
    std::string id = event.id + "/" + target;
    keys->push_back(names.hook_job(id));
    args->push_back(target);
    args->push_back(std::move(id));
  }
}

std::string AccountLogEntry::ToJson() const {
  Json j = {{"time", time}, {"what", what}, {"by", by}, {"text", text}};
  if (what == "locked") j["expires"] = expires_ms;
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

AccountLogEntry AccountLogEntry::FromJson(const std::string& json) {
  AccountLogEntry e;
  Json j = Json::parse(json, nullptr, false);
  if (!j.is_object()) {
    e.what = "?";
    e.text = json;
    return e;
  }
  auto str = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  e.time = str("time");
  e.what = str("what");
  e.by = str("by");
  e.text = str("text");
  auto exp = j.find("expires");
  if (exp != j.end() && exp->is_number_integer()) e.expires_ms = exp->get<int64_t>();
  return e;
}

std::string AccountRecord::EffectiveState(int64_t now_ms) const {
  if (LockExpired(now_ms)) return "flagged";
  if (state.empty() && hits > 0) return "flagged";
  return state;
}

int64_t AccountRecord::LastActivityMs() const {
  int64_t last = 0;
  if (!last_seen.empty()) ParseUtcMillis(last_seen, &last);
  return std::max(last, changed_ms);
}

AccountRegistry::AccountRegistry(RedisClient* client, std::string prefix)
    : client_(client), keys_(std::move(prefix)) {}

Status AccountRegistry::Get(const std::string& account, AccountRecord* out) {
  const std::string a = AccountKey(account);
  std::vector<RedisReply> replies;
  Status s = client_->Pipeline({{"HGETALL", keys_.record(a)},
                                {"HGETALL", keys_.recipients(a)},
                                {"HGETALL", keys_.client_ips(a)},
                                {"LRANGE", keys_.timeline(a), "0", "-1"},
                                {"LRANGE", keys_.log(a), "0", "-1"},
                                {"ZSCORE", keys_.changed(), a}},
                               &replies);
  if (!s.ok()) return s;
  if (replies.size() != 6) return Status::Unavailable("short reply from Redis");
  if (replies[0].elements.empty() && replies[4].elements.empty()) {
    return Status::NotFound("no record for account " + account);
  }
  AccountRecord r;
  r.account = a;
  FillFromHash(FieldMap(replies[0]), &r);
  r.recipients = Counts(replies[1]);
  r.client_ips = Counts(replies[2]);
  for (const RedisReply& e : replies[3].elements) r.timeline.push_back(e.str);
  for (const RedisReply& e : replies[4].elements) r.log.push_back(AccountLogEntry::FromJson(e.str));
  r.changed_ms = replies[5].is_nil() ? 0 : ToInt(replies[5].str);
  *out = std::move(r);
  return Status::Ok();
}

Status AccountRegistry::List(const AccountListOptions& options, std::vector<AccountRecord>* out) {
  out->clear();
  // The hit index scores in seconds, the change index in milliseconds.
  std::string since_s = options.since_ms > 0 ? std::to_string(options.since_ms / 1000) : "-inf";
  std::string since_ms = options.since_ms > 0 ? std::to_string(options.since_ms) : "-inf";
  std::vector<RedisReply> replies;
  Status s = client_->Pipeline({{"ZRANGEBYSCORE", keys_.hits(), since_s, "+inf"},
                                {"ZRANGEBYSCORE", keys_.changed(), since_ms, "+inf", "WITHSCORES"}},
                               &replies);
  if (!s.ok()) return s;
  if (replies.size() != 2) return Status::Unavailable("short reply from Redis");
  std::map<std::string, int64_t> names;  // account -> changed ms
  for (const RedisReply& e : replies[0].elements) names.emplace(e.str, 0);
  for (size_t i = 0; i + 1 < replies[1].elements.size(); i += 2) {
    names[replies[1].elements[i].str] = ToInt(replies[1].elements[i + 1].str);
  }
  if (names.empty()) return Status::Ok();
  // An account in only one index still has its time in the other.
  std::vector<std::vector<std::string>> commands;
  const size_t per = options.with_evidence ? 4 : 2;
  for (const auto& [a, changed] : names) {
    (void)changed;
    commands.push_back({"HGETALL", keys_.record(a)});
    commands.push_back({"ZSCORE", keys_.changed(), a});
    if (options.with_evidence) {
      commands.push_back({"HGETALL", keys_.recipients(a)});
      commands.push_back({"HGETALL", keys_.client_ips(a)});
    }
  }
  replies.clear();
  s = client_->Pipeline(commands, &replies);
  if (!s.ok()) return s;
  if (replies.size() != commands.size()) return Status::Unavailable("short reply from Redis");
  size_t i = 0;
  for (const auto& entry : names) {
    const RedisReply* r = &replies[i];
    i += per;
    if (r[0].elements.empty()) continue;  // index entry without a record
    AccountRecord rec;
    rec.account = entry.first;
    FillFromHash(FieldMap(r[0]), &rec);
    rec.changed_ms = r[1].is_nil() ? 0 : ToInt(r[1].str);
    if (options.with_evidence) {
      rec.recipients = Counts(r[2]);
      rec.client_ips = Counts(r[3]);
    }
    if (options.since_ms > 0 && rec.LastActivityMs() < options.since_ms) continue;
    out->push_back(std::move(rec));
  }
  std::sort(out->begin(), out->end(), [](const AccountRecord& a, const AccountRecord& b) {
    int64_t x = a.LastActivityMs(), y = b.LastActivityMs();
    return x != y ? x > y : a.account < b.account;
  });
  return Status::Ok();
}

Status AccountRegistry::Change(const std::string& op, const std::string& account,
                               const std::string& by, const std::string& text, int64_t expires_ms,
                               AccountChange* change) {
  Status s = CheckAccountName(account);
  if (!s.ok()) return s;
  const std::string a = AccountKey(account);
  auto now = std::chrono::system_clock::now();
  AccountLogEntry entry;
  entry.time = FormatUtcMillis(now);
  entry.what = op == "lock" ? "locked" : op == "release" ? "released" : "note";
  entry.by = by;
  entry.text = text;
  entry.expires_ms = expires_ms;
  RedisReply reply;
  s = client_->Command(
      {"EVAL", kChangeScript, "5", keys_.record(a), keys_.log(a), keys_.locked(), keys_.version(),
       keys_.changed(), a, op, entry.time, std::to_string(UnixMs(now)), by, text,
       std::to_string(expires_ms), keys_.channel(), std::to_string(kMaxAccountLog), entry.ToJson()},
      &reply);
  if (!s.ok()) return s;
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 3) {
    return Status::Unavailable("unexpected reply from Redis to an account change");
  }
  if (reply.elements[0].str == "missing") {
    return Status::NotFound("no record for account " + account);
  }
  if (change != nullptr) {
    change->previous_state = reply.elements[1].str;
    change->version = static_cast<uint64_t>(reply.elements[2].integer);
  }
  return Status::Ok();
}

Status AccountRegistry::Lock(const std::string& account, const std::string& by,
                             const std::string& reason, int64_t expires_ms, AccountChange* change) {
  return Change("lock", account, by, reason, expires_ms, change);
}

Status AccountRegistry::Release(const std::string& account, const std::string& by,
                                const std::string& reason, AccountChange* change) {
  return Change("release", account, by, reason, 0, change);
}

Status AccountRegistry::Note(const std::string& account, const std::string& by,
                             const std::string& text) {
  return Change("note", account, by, text, 0, nullptr);
}

bool ParseAge(std::string_view text, std::chrono::milliseconds* out) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0 || i > 9) return false;
  int64_t n = std::stoll(std::string(text.substr(0, i)));
  std::string_view unit = text.substr(i);
  int64_t mul;
  if (unit == "s") {
    mul = 1000;
  } else if (unit == "m") {
    mul = 60 * 1000;
  } else if (unit == "h") {
    mul = 3600 * 1000;
  } else if (unit == "d") {
    mul = 24 * 3600 * 1000;
  } else if (unit == "w") {
    mul = 7 * 24 * 3600 * 1000;
  } else {
    return false;
  }
  if (n <= 0) return false;
  *out = std::chrono::milliseconds(n * mul);
  return true;
}

int64_t UnixMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace compd
