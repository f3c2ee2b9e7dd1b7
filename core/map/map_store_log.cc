// MapStore's change log, read side: what changed since a version a reader holds, so a
// milter applies a few changes instead of reading the whole map. The writing side is the
// change script in map_store.cc, which appends one record per change.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "compd/map/map_store.h"
#include "compd/map/map_store_fields.h"

namespace compd {
namespace {

using map_fields::InvalidExactField;
using map_fields::Malformed;
using map_fields::ParseU64;
using map_fields::PatternField;

// KEYS: version, log, changed. ARGV: since, most records, most bytes. Reads the version,
// its state id and the log records from `since` (whose id tells whether the caller's
// version `since` is the same state as Redis' version `since`) on, in one step, so they
// belong together. A 0 instead of the records means the log cannot tell: too far back,
// the version went backwards, or more bytes than a short read should carry.
constexpr const char* kChangesScript = R"lua(
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local since = tonumber(ARGV[1])
local id = redis.call('HGET', KEYS[3], 'id') or ''
if v == since then return {v, id, {}} end
if v < since or v - since + (since > 0 and 1 or 0) > tonumber(ARGV[2]) then
  return {v, id, 0}
end
local first = since > 0 and since - v - 1 or -v
local records = redis.call('LRANGE', KEYS[2], first, -1)
local bytes = 0
for _, r in ipairs(records) do bytes = bytes + #r end
if bytes > tonumber(ARGV[3]) then return {v, id, 0} end
return {v, id, records}
)lua";

// Log records a milter reads in one go, at most: beyond that a whole read is as cheap, and
// gets map_load_timeout rather than redis_timeout.
constexpr size_t kMaxLogBytes = 8 << 20;

// One record of the change log: "compd1 VERSION ID[ full]\n" then, per entry, a sign
// (+/-), a kind (e/p), the field's length, ':' and the field. kNotFound when it cannot be
// read (corrupt, or written by a newer compd): the caller reads the whole map instead.
Status ParseLogRecord(std::string_view rec, MapChange* out, bool* full) {
  auto bad = [&](const char* why) {
    return Status::NotFound(std::string("unreadable change log record (") + why + ")");
  };
  const size_t nl = rec.find('\n');
  if (rec.substr(0, 7) != "compd1 " || nl == std::string_view::npos) return bad("header");
  std::string_view head = rec.substr(7, nl - 7);
  *full = false;
  if (head.size() > 5 && head.substr(head.size() - 5) == " full") {
    *full = true;
    head.remove_suffix(5);
  }
  const size_t space = head.find(' ');
  if (space == std::string_view::npos) return bad("id");
  out->id = std::string(head.substr(space + 1));
  if (!ParseU64(std::string(head.substr(0, space)), &out->version)) return bad("version");
  size_t pos = nl + 1;
  while (pos < rec.size()) {
    if (rec.size() - pos < 4) return bad("truncated");
    const char sign = rec[pos], kind = rec[pos + 1];
    if ((sign != '+' && sign != '-') || (kind != 'e' && kind != 'p')) return bad("entry");
    const size_t colon = rec.find(':', pos + 2);
    uint64_t len = 0;
    if (colon == std::string_view::npos ||
        !ParseU64(std::string(rec.substr(pos + 2, colon - pos - 2)), &len) ||
        len > rec.size() - colon - 1) {
      return bad("length");
    }
    const std::string_view field = rec.substr(colon + 1, len);
    pos = colon + 1 + len;
    Entry e;
    e.kind = kind == 'e' ? EntryKind::kExact : EntryKind::kPattern;
    if (sign == '-') {
      e.text = std::string(field);  // removals need the identity alone
      out->removed.push_back(std::move(e));
    } else if (kind == 'e') {
      // Skipped as a full load skips them, so both paths give the same snapshot.
      if (*InvalidExactField(field) != '\0') continue;
      e.text = std::string(field);
      out->added.push_back(std::move(e));
    } else if (PatternField(field, &e).ok()) {
      out->added.push_back(std::move(e));
    }
  }
  return Status::Ok();
}

}  // namespace

Status MapStore::ChangesSince(uint64_t since, const std::string& since_id,
                              std::vector<MapChange>* out, uint64_t* version, std::string* id) {
  out->clear();
  RedisReply r;
  Status s = client_->Command(
      {"EVAL", kChangesScript, "3", keys_.version(), keys_.log(), keys_.changed(),
       std::to_string(since), std::to_string(kLogKeep), std::to_string(kMaxLogBytes)},
      &r);
  if (!s.ok()) return s;
  if (r.type != RedisReply::Type::kArray || r.elements.size() != 3 ||
      r.elements[0].type != RedisReply::Type::kInteger || r.elements[0].integer < 0) {
    return Malformed("the change log script");
  }
  *version = static_cast<uint64_t>(r.elements[0].integer);
  *id = r.elements[1].str;
  const RedisReply& records = r.elements[2];
  const std::string other_state = "the map in Redis is not the one version " +
                                  std::to_string(since) +
                                  " came from (a failover to a replica, or a restored backup?)";
  if (*version == since) {
    if (*id != since_id) return Status::NotFound(other_state);
    return Status::Ok();
  }
  if (records.type != RedisReply::Type::kArray) {
    return Status::NotFound("the change log cannot tell what changed from version " +
                            std::to_string(since) + " to " + std::to_string(*version));
  }
  // From `since` on: the record of `since` itself first (none for 0, the empty map).
  const size_t want = *version - since + (since > 0 ? 1 : 0);
  if (records.elements.size() != want) {
    return Status::NotFound("the change log holds " + std::to_string(records.elements.size()) +
                            " of the " + std::to_string(want) + " records from version " +
                            std::to_string(since));
  }
  out->reserve(records.elements.size());
  for (size_t i = 0; i < records.elements.size(); ++i) {
    MapChange change;
    bool full = false;
    s = ParseLogRecord(records.elements[i].str, &change, &full);
    if (!s.ok()) return s;
    const uint64_t expected = since + i + (since > 0 ? 0 : 1);
    if (change.version != expected) {
      return Status::NotFound("the change log skips from version " + std::to_string(expected) +
                              " to " + std::to_string(change.version));
    }
    if (since > 0 && i == 0) {
      if (change.id != since_id) return Status::NotFound(other_state);
      continue;  // our own version: already applied
    }
    if (full) {
      return Status::NotFound("change " + std::to_string(change.version) +
                              " was too large for the change log");
    }
    out->push_back(std::move(change));
  }
  return Status::Ok();
}

}  // namespace compd
