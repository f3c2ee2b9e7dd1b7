#include "compd/accounts/accounts.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "compd/base/json_fields.h"
#include "compd/base/keys.h"
#include "compd/base/text.h"

namespace compd {

namespace {

using Json = nlohmann::json;

int64_t ToInt(const std::string& s) {
  try {
    return s.empty() ? 0 : std::stoll(s);
  } catch (const std::exception&) {
    return 0;
  }
}

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

std::string AccountKey(std::string_view account) { return AsciiLower(account); }

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
    list.items_.push_back(AsciiLower(item));
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
  std::string a = AsciiLower(account);
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

std::string AccountReaction::ToJson() const {
  Json j = {{"lock_on_hit", lock_on_hit},
            {"lock_allowlist", allowlist.items()},
            {"lock_duration_ms", lock_duration.count()},
            {"hook_quiet_ms", hook_quiet.count()},
            {"hook_targets", hook_targets}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
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
  auto str = [&](const char* k) { return JsonString(j, k); };
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
  Status s = client_->Pipeline({{"HGETALL", keys_.account(a)},
                                {"HGETALL", keys_.account_recipients(a)},
                                {"HGETALL", keys_.account_ips(a)},
                                {"LRANGE", keys_.account_events(a), "0", "-1"},
                                {"LRANGE", keys_.account_log(a), "0", "-1"},
                                {"ZSCORE", keys_.accounts_changed(), a}},
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
  Status s = client_->Pipeline(
      {{"ZRANGEBYSCORE", keys_.accounts(), since_s, "+inf"},
       {"ZRANGEBYSCORE", keys_.accounts_changed(), since_ms, "+inf", "WITHSCORES"}},
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
    commands.push_back({"HGETALL", keys_.account(a)});
    commands.push_back({"ZSCORE", keys_.accounts_changed(), a});
    if (options.with_evidence) {
      commands.push_back({"HGETALL", keys_.account_recipients(a)});
      commands.push_back({"HGETALL", keys_.account_ips(a)});
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

Status AccountRegistry::Latest(size_t n, std::vector<AccountRecord>* out) {
  out->clear();
  if (n == 0) return Status::Ok();
  // Both indexes: an account flagged or locked by a detection signal has no hit, and the
  // accounts an operator must see first are exactly those.
  std::vector<RedisReply> index;
  Status s =
      client_->Pipeline({{"ZREVRANGE", keys_.accounts(), "0", std::to_string(n - 1), "WITHSCORES"},
                         {"ZREVRANGE", keys_.accounts_changed(), "0", std::to_string(n - 1)}},
                        &index);
  if (!s.ok()) return s;
  if (index.size() != 2) return Status::Unavailable("short reply from Redis");
  std::map<std::string, int64_t> last_hit;  // account -> its hit index score, 0: none
  for (size_t i = 0; i + 1 < index[0].elements.size(); i += 2) {
    last_hit[index[0].elements[i].str] = ToInt(index[0].elements[i + 1].str);
  }
  for (const RedisReply& e : index[1].elements) last_hit.emplace(e.str, 0);
  std::vector<std::vector<std::string>> commands;
  std::vector<AccountRecord> records;
  for (const auto& [account, hit] : last_hit) {
    AccountRecord r;
    r.account = account;
    r.last_hit = hit;
    commands.push_back({"HGETALL", keys_.account(r.account)});
    commands.push_back({"ZSCORE", keys_.accounts_changed(), r.account});
    records.push_back(std::move(r));
  }
  if (records.empty()) return Status::Ok();
  std::vector<RedisReply> replies;
  s = client_->Pipeline(commands, &replies);
  if (!s.ok()) return s;
  if (replies.size() != commands.size()) return Status::Unavailable("short reply from Redis");
  for (size_t i = 0; i < records.size(); ++i) {
    AccountRecord& r = records[i];
    FillFromHash(FieldMap(replies[2 * i]), &r);
    r.changed_ms = replies[2 * i + 1].is_nil() ? 0 : ToInt(replies[2 * i + 1].str);
    if (r.last_hit == 0 && replies[2 * i].elements.empty()) r.account.clear();  // no record
  }
  records.erase(std::remove_if(records.begin(), records.end(),
                               [](const AccountRecord& r) { return r.account.empty(); }),
                records.end());
  std::sort(records.begin(), records.end(), [](const AccountRecord& a, const AccountRecord& b) {
    int64_t x = std::max(a.last_hit * 1000, a.LastActivityMs());
    int64_t y = std::max(b.last_hit * 1000, b.LastActivityMs());
    return x != y ? x > y : a.account < b.account;
  });
  if (records.size() > n) records.resize(n);
  *out = std::move(records);
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
      {"EVAL", kChangeScript, "5", keys_.account(a), keys_.account_log(a), keys_.accounts_locked(),
       keys_.accounts_version(), keys_.accounts_changed(), a, op, entry.time,
       std::to_string(UnixMs(now)), by, text, std::to_string(expires_ms), keys_.accounts_channel(),
       std::to_string(kMaxAccountLog), entry.ToJson()},
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
