#include "compd/detect/candidate_store.h"

#include <algorithm>
#include <cstdlib>
#include <unordered_set>

#include "compd/accounts/accounts.h"
#include "compd/map/address.h"

namespace compd {

namespace {

// Atomic, so a rejection between the check and the write cannot be undone by a node.
constexpr const char* kProposeScript =
    "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end "
    "return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])";

constexpr const char* kRejectScript =
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) "
    "return redis.call('HDEL', KEYS[1], ARGV[1])";

// KEYS: sightings, candidates, rejected, map:exact. ARGV: recipient, account key, time
// (ms), value, window (ms), most sightings kept. Returns {0} when the recipient is known,
// else {1, value...} (the kept sightings, unordered).
constexpr const char* kSightScript = R"lua(
local r = ARGV[1]
if redis.call('HEXISTS', KEYS[2], r) == 1 or redis.call('HEXISTS', KEYS[3], r) == 1 or
   redis.call('HEXISTS', KEYS[4], r) == 1 then
  return {0}
end
local from = tonumber(ARGV[3]) - tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
local keep, fields, have, oldest = {}, {}, false, nil
for i = 1, #all, 2 do
  local t = tonumber(string.match(all[i + 1], '^(%d+) '))
  if t == nil or t < from then
    redis.call('HDEL', KEYS[1], all[i])
  else
    if all[i] == ARGV[2] then have = true end
    keep[#keep + 1] = all[i + 1]
    fields[#fields + 1] = all[i]
    if oldest == nil or t < oldest[2] then oldest = {#keep, t} end
  end
end
if not have then
  if #keep >= tonumber(ARGV[6]) then
    redis.call('HDEL', KEYS[1], fields[oldest[1]])
    table.remove(keep, oldest[1])
  end
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
  keep[#keep + 1] = ARGV[4]
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local out = {1}
for _, v in ipairs(keep) do out[#out + 1] = v end
return out
)lua";

Status Unexpected(const RedisReply& reply, const std::string& what) {
  if (reply.type == RedisReply::Type::kError) {
    return Status::Unavailable(what + ": Redis: " + reply.str);
  }
  return Status::Unavailable(what + ": unexpected reply from Redis");
}

}  // namespace

CandidateStore::CandidateStore(RedisClient* client, std::string prefix)
    : client_(client), keys_(std::move(prefix)) {}

Status CandidateStore::Propose(const Candidate& c, bool* stored) {
  RedisReply reply;
  Status s = client_->Command({"EVAL", kProposeScript, "2", keys_.discovery_candidates(),
                               keys_.discovery_rejected(), c.recipient, c.Evidence().dump()},
                              &reply);
  if (!s.ok()) return s;
  if (reply.type != RedisReply::Type::kInteger) return Unexpected(reply, "discovery propose");
  *stored = reply.integer == 1;
  return Status::Ok();
}

Status CandidateStore::Sight(const Sighting& s, int64_t window_ms, SightResult* out) {
  const std::string value =
      std::to_string(s.time_ms) + " " +
      s.ToJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  RedisReply reply;
  Status st =
      client_->Command({"EVAL", kSightScript, "4", keys_.discovery_sightings(s.recipient),
                        keys_.discovery_candidates(), keys_.discovery_rejected(), keys_.exact(),
                        s.recipient, AccountKey(s.account), std::to_string(s.time_ms), value,
                        std::to_string(window_ms), std::to_string(kMaxSharedSightings)},
                       &reply);
  if (!st.ok()) return st;
  if (reply.type != RedisReply::Type::kArray || reply.elements.empty() ||
      reply.elements[0].type != RedisReply::Type::kInteger) {
    return Unexpected(reply, "discovery sighting");
  }
  *out = SightResult();
  out->known = reply.elements[0].integer == 0;
  for (size_t i = 1; i < reply.elements.size(); ++i) {
    const std::string& v = reply.elements[i].str;
    const size_t space = v.find(' ');
    if (space == std::string::npos) continue;
    const int64_t t = std::strtoll(v.c_str(), nullptr, 10);
    nlohmann::json j = nlohmann::json::parse(v.begin() + space + 1, v.end(), nullptr, false);
    Sighting got = Sighting::FromJson(j, s.recipient, t);
    if (!got.account.empty()) out->sightings.push_back(std::move(got));
  }
  std::stable_sort(out->sightings.begin(), out->sightings.end(),
                   [](const Sighting& a, const Sighting& b) { return a.time_ms < b.time_ms; });
  return Status::Ok();
}

Status CandidateStore::DropSightings(const std::string& recipient) {
  RedisReply reply;
  return client_->Command({"DEL", keys_.discovery_sightings(CanonicalAddress(recipient))}, &reply);
}

Status CandidateStore::List(std::vector<nlohmann::json>* out) {
  RedisReply reply;
  Status s = client_->Command({"HGETALL", keys_.discovery_candidates()}, &reply);
  if (!s.ok()) return s;
  if (reply.type != RedisReply::Type::kArray) return Unexpected(reply, "discovery list");
  out->clear();
  for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    nlohmann::json j = nlohmann::json::parse(reply.elements[i + 1].str, nullptr, false);
    if (j.is_discarded() || !j.is_object()) j = nlohmann::json::object();
    j["recipient"] = reply.elements[i].str;
    out->push_back(std::move(j));
  }
  std::sort(out->begin(), out->end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a["recipient"].get<std::string>() < b["recipient"].get<std::string>();
  });
  return Status::Ok();
}

Status CandidateStore::Get(const std::string& recipient, nlohmann::json* evidence) {
  RedisReply reply;
  const std::string r = CanonicalAddress(recipient);
  Status s = client_->Command({"HGET", keys_.discovery_candidates(), r}, &reply);
  if (!s.ok()) return s;
  if (reply.is_nil()) return Status::NotFound("not a waiting candidate: " + r);
  if (reply.type != RedisReply::Type::kString) return Unexpected(reply, "discovery get");
  *evidence = nlohmann::json::parse(reply.str, nullptr, false);
  if (evidence->is_discarded() || !evidence->is_object()) *evidence = nlohmann::json::object();
  (*evidence)["recipient"] = r;
  return Status::Ok();
}

Status CandidateStore::Remove(const std::string& recipient) {
  RedisReply reply;
  return client_->Command({"HDEL", keys_.discovery_candidates(), CanonicalAddress(recipient)},
                          &reply);
}

Status CandidateStore::Reject(const std::string& recipient, const std::string& by, int64_t at_unix,
                              bool* was_waiting) {
  RedisReply reply;
  const nlohmann::json why = {{"by", by}, {"at", at_unix}};
  Status s = client_->Command({"EVAL", kRejectScript, "2", keys_.discovery_candidates(),
                               keys_.discovery_rejected(), CanonicalAddress(recipient), why.dump()},
                              &reply);
  if (!s.ok()) return s;
  if (reply.type != RedisReply::Type::kInteger) return Unexpected(reply, "discovery reject");
  *was_waiting = reply.integer == 1;
  return Status::Ok();
}

Status CandidateStore::IsRejected(const std::string& recipient, bool* rejected) {
  RedisReply reply;
  Status s = client_->Command({"HEXISTS", keys_.discovery_rejected(), CanonicalAddress(recipient)},
                              &reply);
  if (!s.ok()) return s;
  if (reply.type != RedisReply::Type::kInteger) return Unexpected(reply, "discovery rejected");
  *rejected = reply.integer == 1;
  return Status::Ok();
}

std::vector<Event> DiscoveredHitEvents(const nlohmann::json& evidence, const std::string& host) {
  std::vector<Event> out;
  const std::string recipient = evidence.value("recipient", "");
  auto it = evidence.find("sightings");
  if (recipient.empty() || it == evidence.end() || !it->is_array()) return out;
  std::unordered_set<std::string> seen;
  for (const nlohmann::json& s : *it) {
    if (!s.is_object()) continue;
    const std::string account = s.value("account", "");
    if (account.empty() || !seen.insert(AccountKey(account)).second) continue;
    Event e;
    e.type = "hit";
    e.id = "discovered:" + recipient + ":" + AccountKey(account);
    e.host = host;
    e.account = account;
    e.client_ip = s.value("client_ip", "");
    e.helo = s.value("helo", "");
    e.recipient = recipient;
    e.where = "envelope";
    e.entry = recipient;
    e.entry_kind = "exact";
    e.action = "monitor";  // the sighted message went out before the address was known
    e.queue_id = s.value("queue_id", "");
    e.subject = s.value("subject", "");
    e.source = "discovery";
    e.rule = "discovered";
    e.evidence = evidence.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    e.detail = account + " sent a test-like first mail to " + recipient + " at " +
               s.value("time", "") + ", as accounts of other customers did";
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace compd
