#include "compd/map/map_store.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_set>

#include "compd/base/text.h"
#include "compd/map/map_store_fields.h"

namespace compd {

namespace {

using map_fields::InvalidExactField;
using map_fields::Malformed;
using map_fields::ParseU64;
using map_fields::ParseVersion;
using map_fields::PatternField;

// One script for every change, so add, remove and replace share the version/publish
// bookkeeping. KEYS: exact, re, version, changed, staging, log, lost. ARGV: op, by, channel, mode
// ("inline" or "staged"), the number of exact entries, the number of patterns, the most
// entries one log record lists, the number of records the log keeps, then
// (inline) field/value pairs, exact ones first, no field twice (the caller sees to it).
// Staged pairs come from the staging list, which the script deletes; a list that is not
// complete (a failed RPUSH) aborts before anything is written.
constexpr const char* kChangeScript = R"lua(
if redis.replicate_commands then redis.replicate_commands() end
local op, by, channel, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local n_exact, n_re = tonumber(ARGV[5]), tonumber(ARGV[6])
local LOG_MAX, LOG_KEEP = tonumber(ARGV[7]), tonumber(ARGV[8])
local items, base = ARGV, 9
if mode == 'staged' then
  items = redis.call('LRANGE', KEYS[5], 0, -1)
  redis.call('DEL', KEYS[5])
  base = 1
end
if #items - base + 1 ~= 2 * (n_exact + n_re) then
  return redis.error_reply('compd: incomplete batch (' .. (#items - base + 1) .. ' of ' ..
                           2 * (n_exact + n_re) .. ' items), nothing changed')
end
if op ~= 'add' and op ~= 'remove' and op ~= 'replace' then
  return redis.error_reply('compd: unknown op ' .. op)
end
-- A milter found Redis without the map it holds (Redis lost its data): an add or remove
-- now would make a one-entry map that every milter would take, dropping the real one.
if op ~= 'replace' and redis.call('EXISTS', KEYS[7]) == 1 then
  return redis.error_reply('compd: Redis lost the map (' .. redis.call('GET', KEYS[7]) ..
                           '); restore it first with mapctl import --replace from a ' ..
                           "milter's map_dir files or an export")
end
-- One call per entry: measured as fast as variadic HMGET/HSET slices on Redis 7, and simpler.
local flags, added, removed = {}, 0, 0
-- The change log record: what changed, field by field, so that every milter can apply a
-- small change to its snapshot instead of reloading the map. A change larger than
-- LOG_MAX fields is logged as "full" (reload the map).
local log, logged, full = {}, 0, false
local function note(sign, kind, field)
  if full then return end
  logged = logged + 1
  if logged > LOG_MAX then
    full, log = true, {}
    return
  end
  log[#log + 1] = sign .. kind .. #field .. ':' .. field
end
-- Pairs [first, first + count) of `items` belong to hash `key`.
local function apply(key, kind, first, count)
  for i = first, first + 2 * (count - 1), 2 do
    local r
    if op == 'remove' then
      r = redis.call('HDEL', key, items[i])
      removed = removed + r
      if r == 1 then note('-', kind, items[i]) end
    else
      r = redis.call('HSETNX', key, items[i], items[i + 1])
      added = added + r
      if r == 1 then note('+', kind, items[i]) end
    end
    flags[#flags + 1] = (r == 1) and '1' or '0'
  end
end
apply(KEYS[1], 'e', base, n_exact)
apply(KEYS[2], 'p', base + 2 * n_exact, n_re)
if op == 'replace' then
  flags = {}
  local want = {[KEYS[1]] = {}, [KEYS[2]] = {}}
  for i = base, #items, 2 do
    want[i < base + 2 * n_exact and KEYS[1] or KEYS[2]][items[i]] = true
  end
  for _, kk in ipairs({{'e', KEYS[1]}, {'p', KEYS[2]}}) do
    local kind, key = kk[1], kk[2]
    local gone = {}
    for _, f in ipairs(redis.call('HKEYS', key)) do
      if not want[key][f] then
        gone[#gone + 1] = f
        note('-', kind, f)
      end
    end
    -- HDEL in slices: unpack() of a huge table overflows Lua's C stack.
    for j = 1, #gone, 1000 do
      removed = removed + redis.call('HDEL', key, unpack(gone, j, math.min(j + 999, #gone)))
    end
  end
end
local v = redis.call('GET', KEYS[3])
local version = v and tonumber(v) or 0
if op == 'replace' then redis.call('DEL', KEYS[7]) end
-- A replace on a map without a version (a Redis that lost its data) makes version 1 even
-- when it adds nothing: the milters keep their own map until a version says otherwise.
if added + removed > 0 or (op == 'replace' and not v) then
  version = redis.call('INCR', KEYS[3])
  local t = redis.call('TIME')
  -- Names this state apart from any other with the same number (after a failover to a
  -- replica that missed writes, or a restored backup, numbers repeat).
  local id = t[1] .. '.' .. t[2]
  redis.call('HSET', KEYS[4], 'at', t[1], 'by', by, 'op', op, 'added', added,
             'removed', removed, 'version', version, 'id', id)
  redis.call('RPUSH', KEYS[6], string.format('compd1 %d %s', version, id) ..
             (full and ' full' or '') .. '\n' .. table.concat(log))
  redis.call('LTRIM', KEYS[6], -LOG_KEEP, -1)
  redis.call('PUBLISH', channel, version)
end
return {version, added, removed, table.concat(flags)}
)lua";

// Entries per RPUSH when staging; keeps each command a few MB at most.
constexpr size_t kStageChunk = 10000;
// Staging lists outlive a crashed writer by this long.
constexpr const char* kStageTtlSeconds = "3600";

}  // namespace

std::string EntryMeta::ToJson() const {
  nlohmann::json j = {
      {"added_at", added_at}, {"added_by", added_by}, {"note", note}, {"source", source}};
  // Replace rather than throw on invalid UTF-8: a note is free text from a terminal.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

EntryMeta EntryMeta::FromJson(const std::string& json) {
  EntryMeta m;
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return m;
  auto str = [&j](const char* key, std::string* out) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) *out = it->get<std::string>();
  };
  auto at = j.find("added_at");
  if (at != j.end() && at->is_number_integer()) m.added_at = at->get<int64_t>();
  str("added_by", &m.added_by);
  str("note", &m.note);
  str("source", &m.source);
  return m;
}

MapStore::MapStore(RedisClient* client, std::string prefix)
    : client_(client), keys_(std::move(prefix)) {}

Status MapStore::Change(const char* op, const std::vector<Item>& items, const std::string& by,
                        std::vector<bool>* flags, ChangeResult* result) {
  static const std::string kEmpty;
  // Exact entries first, then patterns, each field once: the script relies on it. `order`
  // maps the script's positions back to the caller's.
  std::vector<size_t> order;
  order.reserve(items.size());
  size_t n_exact = 0;
  {
    std::unordered_set<std::string_view> seen_exact, seen_re;
    for (int pass = 0; pass < 2; ++pass) {
      const char kind = pass == 0 ? 'e' : 'p';
      auto& seen = pass == 0 ? seen_exact : seen_re;
      for (size_t i = 0; i < items.size(); ++i) {
        if (items[i].kind == kind && seen.insert(*items[i].field).second) order.push_back(i);
      }
      if (pass == 0) n_exact = order.size();
    }
  }
  const size_t n = order.size();
  auto push_pair = [&](std::vector<std::string>* out, size_t pos) {
    const Item& it = items[order[pos]];
    out->push_back(*it.field);
    out->push_back(it.value != nullptr ? *it.value : kEmpty);
  };

  const std::string staging = keys_.staging(RandomHex());
  std::vector<std::string> eval = {"EVAL",
                                   kChangeScript,
                                   "7",
                                   keys_.exact(),
                                   keys_.patterns(),
                                   keys_.version(),
                                   keys_.changed(),
                                   staging,
                                   keys_.log(),
                                   keys_.lost(),
                                   op,
                                   by,
                                   keys_.channel(),
                                   n <= max_script_entries_ ? "inline" : "staged",
                                   std::to_string(n_exact),
                                   std::to_string(n - n_exact),
                                   std::to_string(kLogMaxEntries),
                                   std::to_string(kLogKeep)};
  std::vector<std::vector<std::string>> commands;
  if (n <= max_script_entries_) {
    eval.reserve(eval.size() + 2 * n);
    for (size_t pos = 0; pos < n; ++pos) push_pair(&eval, pos);
  } else {
    // One round trip: the staged list, its expiry, then the script. If an RPUSH fails the
    // script sees a short list and refuses, so nothing is applied.
    commands.push_back({"DEL", staging});
    for (size_t start = 0; start < n; start += kStageChunk) {
      size_t end = std::min(n, start + kStageChunk);
      std::vector<std::string> push = {"RPUSH", staging};
      push.reserve(2 + 2 * (end - start));
      for (size_t pos = start; pos < end; ++pos) push_pair(&push, pos);
      commands.push_back(std::move(push));
      if (start == 0) commands.push_back({"EXPIRE", staging, kStageTtlSeconds});
    }
  }
  commands.push_back(std::move(eval));

  // A refused connection means nothing was sent; say so plainly, below it is unclear.
  Status s = client_->Connect();
  if (!s.ok()) return s;
  // Redis finishes a script even when the client stops waiting, so a timeout shorter than
  // the script would report a failure for a change that happens: wait 20 us per entry more.
  const auto base_timeout = client_->timeout();
  client_->set_timeout(base_timeout + std::chrono::milliseconds(items.size() / 50));
  std::vector<RedisReply> replies;
  s = client_->Pipeline(commands, &replies);
  client_->set_timeout(base_timeout);
  const bool complete = replies.size() == commands.size();
  if (!complete) {
    return Status::Unavailable(s.message() +
                               " (the connection failed during the change: it may or may "
                               "not have been applied; check the map version)");
  }
  if (replies.back().type == RedisReply::Type::kError) {
    if (commands.size() > 1) client_->Command({"DEL", staging});  // best effort
    return Status::Unavailable("redis " + client_->url().ToString() + ": " + replies.back().str +
                               " (nothing changed)");
  }
  // Errors of staging commands cannot matter once the script, which checks the staged
  // list is complete, has succeeded.
  const RedisReply& r = replies.back();
  if (r.type != RedisReply::Type::kArray || r.elements.size() != 4 ||
      r.elements[0].type != RedisReply::Type::kInteger ||
      r.elements[1].type != RedisReply::Type::kInteger ||
      r.elements[2].type != RedisReply::Type::kInteger ||
      r.elements[3].str.size() != (std::string(op) == "replace" ? 0 : n)) {
    return Malformed("the change script");
  }
  if (flags != nullptr) {
    // A repeated entry counts once: its later copies are reported unchanged.
    flags->assign(items.size(), false);
    for (size_t pos = 0; pos < r.elements[3].str.size(); ++pos) {
      (*flags)[order[pos]] = r.elements[3].str[pos] == '1';
    }
  }
  if (result != nullptr) {
    result->version = static_cast<uint64_t>(r.elements[0].integer);
    result->added = static_cast<size_t>(r.elements[1].integer);
    result->removed = static_cast<size_t>(r.elements[2].integer);
  }
  return Status::Ok();
}

Status MapStore::ChangeStored(const char* op, const std::vector<StoredEntry>& entries,
                              const std::string& by, std::vector<bool>* flags,
                              ChangeResult* result) {
  std::vector<std::string> json;
  json.reserve(entries.size());
  for (const auto& e : entries) json.push_back(e.meta.ToJson());
  std::vector<Item> items;
  items.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    items.push_back(
        {entries[i].entry.kind == EntryKind::kExact ? 'e' : 'p', &entries[i].entry.text, &json[i]});
  }
  return Change(op, items, by, flags, result);
}

Status MapStore::Add(const std::vector<StoredEntry>& entries, const std::string& by,
                     std::vector<bool>* added, ChangeResult* result) {
  return ChangeStored("add", entries, by, added, result);
}

Status MapStore::Remove(const std::vector<Entry>& entries, const std::string& by,
                        std::vector<bool>* removed, ChangeResult* result) {
  std::vector<Item> items;
  items.reserve(entries.size());
  for (const auto& e : entries) {
    items.push_back({e.kind == EntryKind::kExact ? 'e' : 'p', &e.text, nullptr});
  }
  return Change("remove", items, by, removed, result);
}

Status MapStore::Replace(const std::vector<StoredEntry>& entries, const std::string& by,
                         ChangeResult* result) {
  return ChangeStored("replace", entries, by, nullptr, result);
}

Status MapStore::Load(MapState* out) { return LoadRaw(true, out); }

Status MapStore::LoadEntries(std::vector<Entry>* out, uint64_t* version,
                             std::vector<std::string>* invalid) {
  return ReadEntries([&](const MapEntriesView& map) {
    out->clear();
    out->reserve(map.exact.size() + map.patterns.size());
    for (std::string_view text : map.exact) {
      Entry e;
      e.kind = EntryKind::kExact;
      e.text = std::string(text);
      out->push_back(std::move(e));
    }
    std::sort(out->begin(), out->end(),
              [](const Entry& a, const Entry& b) { return a.text < b.text; });
    out->insert(out->end(), map.patterns.begin(), map.patterns.end());
    *version = map.version;
    if (invalid != nullptr) *invalid = map.invalid;
    return Status::Ok();
  });
}

Status MapStore::ReadEntries(const std::function<Status(const MapEntriesView& map)>& fn) {
  std::vector<RedisReply> queued;
  PackedReply exec;
  Status s = client_->Pipeline({{"MULTI"},
                                {"HKEYS", keys_.exact()},
                                {"HKEYS", keys_.patterns()},
                                {"GET", keys_.version()},
                                {"HGET", keys_.changed(), "id"},
                                {"EXEC"}},
                               &queued, &exec);
  if (!s.ok()) return s;
  for (const PackedReply::Item& item : exec.items) {
    if (item.type == RedisReply::Type::kError) {
      return Status::Unavailable("redis " + client_->url().ToString() +
                                 ": reading the map: " + std::string(exec.str(item.first)));
    }
  }
  if (exec.type != RedisReply::Type::kArray || exec.items.size() != 4 ||
      exec.items[0].type != RedisReply::Type::kArray ||
      exec.items[1].type != RedisReply::Type::kArray) {
    return Malformed("MULTI/EXEC of the map");
  }
  MapEntriesView map;
  RedisReply version;
  version.type = exec.items[2].type;
  version.integer = exec.items[2].integer;
  if (exec.items[2].count == 1) version.str = std::string(exec.str(exec.items[2].first));
  s = ParseVersion(version, &map.version);
  if (!s.ok()) return s;
  if (exec.items[3].count == 1) map.id = std::string(exec.str(exec.items[3].first));
  const PackedReply::Item& exact = exec.items[0];
  const PackedReply::Item& patterns = exec.items[1];
  map.exact.reserve(exact.count);
  for (size_t k = exact.first; k < exact.first + exact.count; ++k) {
    const std::string_view field = exec.str(k);
    const char* why = InvalidExactField(field);
    if (*why != '\0') {
      map.invalid.push_back(keys_.exact() + ": '" + std::string(field) + "': " + why);
      continue;
    }
    map.exact.push_back(field);
  }
  for (size_t k = patterns.first; k < patterns.first + patterns.count; ++k) {
    const std::string_view field = exec.str(k);
    Entry e;
    Status ps = PatternField(field, &e);
    if (!ps.ok()) {
      map.invalid.push_back(keys_.patterns() + ": '" + std::string(field) + "': " + ps.message());
      continue;
    }
    map.patterns.push_back(std::move(e));
  }
  std::sort(map.patterns.begin(), map.patterns.end(),
            [](const Entry& a, const Entry& b) { return a.text < b.text; });
  return fn(map);
}

Status MapStore::LoadRaw(bool with_meta, MapState* out) {
  const char* read = with_meta ? "HGETALL" : "HKEYS";
  const size_t step = with_meta ? 2 : 1;
  std::vector<RedisReply> replies;
  Status s = client_->Pipeline({{"MULTI"},
                                {read, keys_.exact()},
                                {read, keys_.patterns()},
                                {"GET", keys_.version()},
                                {"EXEC"}},
                               &replies);
  if (!s.ok()) return s;
  const RedisReply& exec = replies.back();
  if (exec.type != RedisReply::Type::kArray || exec.elements.size() != 3 ||
      exec.elements[0].type != RedisReply::Type::kArray ||
      exec.elements[1].type != RedisReply::Type::kArray) {
    return Malformed("MULTI/EXEC of the map");
  }
  MapState state;
  s = ParseVersion(exec.elements[2], &state.version);
  if (!s.ok()) return s;
  const auto& exact = exec.elements[0].elements;
  const auto& patterns = exec.elements[1].elements;
  state.entries.reserve((exact.size() + patterns.size()) / step);
  for (size_t i = 0; i + step - 1 < exact.size(); i += step) {
    const std::string& field = exact[i].str;
    const char* why = InvalidExactField(field);
    if (*why != '\0') {
      state.invalid.push_back(keys_.exact() + ": '" + field + "': " + why);
      continue;
    }
    StoredEntry e;
    e.entry.kind = EntryKind::kExact;
    e.entry.text = field;
    if (with_meta) e.meta = EntryMeta::FromJson(exact[i + 1].str);
    state.entries.push_back(std::move(e));
  }
  size_t n_exact = state.entries.size();
  for (size_t i = 0; i + step - 1 < patterns.size(); i += step) {
    const std::string& field = patterns[i].str;
    StoredEntry e;
    Status ps = PatternField(field, &e.entry);
    if (!ps.ok()) {
      state.invalid.push_back(keys_.patterns() + ": '" + field + "': " + ps.message());
      continue;
    }
    if (with_meta) e.meta = EntryMeta::FromJson(patterns[i + 1].str);
    state.entries.push_back(std::move(e));
  }
  auto by_text = [](const StoredEntry& a, const StoredEntry& b) {
    return a.entry.text < b.entry.text;
  };
  std::sort(state.entries.begin(), state.entries.begin() + static_cast<ptrdiff_t>(n_exact),
            by_text);
  std::sort(state.entries.begin() + static_cast<ptrdiff_t>(n_exact), state.entries.end(), by_text);
  *out = std::move(state);
  return Status::Ok();
}

Status MapStore::Version(uint64_t* version) {
  RedisReply r;
  Status s = client_->Command({"GET", keys_.version()}, &r);
  if (!s.ok()) return s;
  return ParseVersion(r, version);
}

Status MapStore::Stats(MapStats* out) {
  std::vector<RedisReply> replies;
  Status s = client_->Pipeline({{"MULTI"},
                                {"HLEN", keys_.exact()},
                                {"HLEN", keys_.patterns()},
                                {"GET", keys_.version()},
                                {"HGETALL", keys_.changed()},
                                {"EXEC"}},
                               &replies);
  if (!s.ok()) return s;
  const RedisReply& exec = replies.back();
  if (exec.type != RedisReply::Type::kArray || exec.elements.size() != 4 ||
      exec.elements[0].type != RedisReply::Type::kInteger ||
      exec.elements[1].type != RedisReply::Type::kInteger ||
      exec.elements[3].type != RedisReply::Type::kArray) {
    return Malformed("MULTI/EXEC of the stats");
  }
  MapStats st;
  st.exact = static_cast<size_t>(exec.elements[0].integer);
  st.patterns = static_cast<size_t>(exec.elements[1].integer);
  s = ParseVersion(exec.elements[2], &st.version);
  if (!s.ok()) return s;
  const auto& changed = exec.elements[3].elements;
  for (size_t i = 0; i + 1 < changed.size(); i += 2) {
    const std::string& k = changed[i].str;
    const std::string& v = changed[i + 1].str;
    if (k == "at") {
      uint64_t at = 0;
      if (ParseU64(v, &at)) st.changed_at = static_cast<int64_t>(at);
    } else if (k == "by") {
      st.changed_by = v;
    } else if (k == "op") {
      st.changed_op = v;
    }
  }
  *out = std::move(st);
  return Status::Ok();
}

}  // namespace compd
