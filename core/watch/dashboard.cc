#include "compd/watch/dashboard.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "compd/accounts/accounts.h"
#include "compd/base/keys.h"
#include "compd/events/event_stream.h"
#include "compd/map/map_store.h"

namespace compd {

namespace {

// Accounts read from the sorted set before sorting by state: enough to find the locked and
// flagged ones among the latest hits.
constexpr size_t kAccountsScanned = 200;
constexpr int64_t kHitsLookBack = 7 * 86400;

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int StateRank(const std::string& state) {
  if (state == "locked") return 0;
  if (state == "flagged") return 1;
  return 2;
}

nlohmann::json ColumnJson(const TopColumn& c) {
  nlohmann::json rows = nlohmann::json::array();
  for (const TopRow& r : c.rows) {
    rows.push_back({{"account", r.account},
                    {"messages", r.messages},
                    {"recipients", r.recipients},
                    {"networks", r.networks},
                    {"previous", r.previous},
                    {"change", r.messages - r.previous},
                    {"new_to_top", r.new_to_top}});
  }
  return {{"hour", HourLabel(c.hour_start)}, {"hour_start", c.hour_start}, {"rows", rows}};
}

nlohmann::json TopJson(const TopView& top) {
  return {{"this_hour", ColumnJson(top.this_hour)}, {"last_hour", ColumnJson(top.last_hour)}};
}

nlohmann::json EventsArray(const std::vector<Event>& events) {
  nlohmann::json a = nlohmann::json::array();
  for (const Event& e : events) {
    // Event's own JSON keeps its key order and UTF-8 repair; parse it back into a value.
    a.push_back(nlohmann::json::parse(e.ToJson(), nullptr, false));
  }
  return a;
}

nlohmann::json AccountsJson(const std::vector<DashboardAccount>& accounts) {
  nlohmann::json a = nlohmann::json::array();
  for (const DashboardAccount& r : accounts) {
    a.push_back({{"account", r.account},
                 {"state", r.state},
                 {"hits", r.hits},
                 {"last_hit", r.last_hit},
                 {"last_entry", r.last_entry},
                 {"fields", r.fields}});
  }
  return a;
}

nlohmann::json MapJson(const std::optional<MapInfo>& m) {
  if (!m) return nullptr;
  return {{"version", m->version},
          {"exact", m->exact},
          {"patterns", m->patterns},
          {"source", m->source},
          {"loaded", m->loaded}};
}

nlohmann::json TrendsJson(const DashboardData& d) {
  nlohmann::json accounts = nlohmann::json::object();
  for (const auto& [account, t] : d.trends) {
    accounts[account] = {
        {"hours", t.hours}, {"usual_day", t.usual_day}, {"history_days", t.history_days}};
  }
  return {{"first_hour", d.platform.first_hour},
          {"platform",
           {{"hours", d.platform.hours},
            {"week_ago", d.platform.week_ago},
            {"week_ago_known", d.platform.week_ago_known}}},
          {"accounts", accounts}};
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::set<std::string> DashboardData::AnomalousAccounts() const {
  std::set<std::string> out;
  for (const Event& e : anomalies) out.insert(e.account);
  return out;
}

std::set<std::string> DashboardData::SignalledAccounts() const {
  std::set<std::string> out;
  for (const Event& e : signals) out.insert(e.account);
  return out;
}

Status ReadDashboardAccounts(RedisClient* redis, const std::string& prefix, size_t limit,
                             std::vector<DashboardAccount>* out) {
  out->clear();
  std::vector<AccountRecord> latest;
  Status s = AccountRegistry(redis, prefix).Latest(kAccountsScanned, &latest);
  if (!s.ok()) return s;
  const int64_t now_ms = UnixMs(std::chrono::system_clock::now());
  std::vector<DashboardAccount> records;
  bool registry = false;  // does any record carry a state (the account registry)?
  for (const AccountRecord& a : latest) {
    records.push_back(DashboardAccountOf(a, now_ms));
    if (!a.state.empty()) registry = true;
  }
  if (registry) {  // show who needs attention, not released accounts
    records.erase(std::remove_if(records.begin(), records.end(),
                                 [](const DashboardAccount& r) { return StateRank(r.state) == 2; }),
                  records.end());
  }
  std::stable_sort(records.begin(), records.end(),
                   [](const DashboardAccount& a, const DashboardAccount& b) {
                     if (StateRank(a.state) != StateRank(b.state)) {
                       return StateRank(a.state) < StateRank(b.state);
                     }
                     return a.last_hit > b.last_hit;
                   });
  if (records.size() > limit) records.resize(limit);
  *out = std::move(records);
  return Status::Ok();
}

DashboardAccount DashboardAccountOf(const AccountRecord& a, int64_t now_ms) {
  DashboardAccount r;
  r.account = a.account;
  // The registry's state in force (an expired lock is flagged); a record from before the
  // registry (hits only) has none.
  r.state = a.state.empty() ? std::string() : a.EffectiveState(now_ms);
  r.hits = a.hits;
  r.last_hit = a.last_hit;
  r.last_entry = a.last_entry;
  auto put = [&](const char* name, const std::string& value) {
    if (!value.empty()) r.fields[name] = value;
  };
  put("first_seen", a.first_seen);
  put("last_seen", a.last_seen);
  if (a.hits != 0) put("hits", std::to_string(a.hits));
  put("last_entry", a.last_entry);
  put("last_recipient", a.last_recipient);
  put("last_client_ip", a.last_client_ip);
  put("state", r.state);
  put("state_at", a.state_at);
  put("state_by", a.state_by);
  put("state_reason", a.state_reason);
  put("flagged_at", a.flagged_at);
  if (a.state == "locked") put("lock_expires", std::to_string(a.lock_expires_ms));
  for (const auto& [target, status] : a.tickets) r.fields["ticket_" + target] = status;
  return r;
}

Status ReadDashboardCandidates(RedisClient* redis, const std::string& prefix, size_t limit,
                               std::vector<DashboardCandidate>* out) {
  out->clear();
  RedisReply reply;
  Status s = redis->Command({"HGETALL", Keys(prefix).discovery_candidates()}, &reply);
  if (!s.ok()) return s;
  for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    DashboardCandidate c;
    c.recipient = reply.elements[i].str;
    c.evidence = reply.elements[i + 1].str;
    nlohmann::json j = nlohmann::json::parse(c.evidence, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) {
      if (j.contains("time") && j["time"].is_string()) c.time = j["time"].get<std::string>();
      if (j.contains("sightings") && j["sightings"].is_array()) {
        for (const auto& sighting : j["sightings"]) {
          if (sighting.is_object() && sighting.contains("account") &&
              sighting["account"].is_string()) {
            c.accounts.push_back(sighting["account"].get<std::string>());
          }
        }
      }
    }
    out->push_back(std::move(c));
  }
  std::sort(out->begin(), out->end(), [](const DashboardCandidate& a, const DashboardCandidate& b) {
    return a.time > b.time;
  });
  if (out->size() > limit) out->resize(limit);
  return Status::Ok();
}

DashboardSource::DashboardSource(DashboardOptions options, MapInfoFn map_info)
    : options_(std::move(options)),
      map_info_(std::move(map_info)),
      trends_(options_.prefix, options_.rules) {}

std::shared_ptr<DashboardData> DashboardSource::Gather() {
  auto d = std::make_shared<DashboardData>();
  d->generated = Now();
  d->host = options_.host;
  d->version = options_.version;
  d->top_n = options_.top_n;
  d->min_history_days = options_.rules.min_history_days;
  if (map_info_) d->map = map_info_();
  if (!redis_) redis_ = std::make_unique<RedisClient>(options_.redis, options_.redis_timeout);
  Status s = ReadTop(redis_.get(), options_.prefix, d->generated, options_.top_n, &d->top);
  if (s.ok()) {
    s = ReadRecentEvents(redis_.get(), options_.prefix, "anomaly", (d->generated - 86400) * 1000,
                         options_.max_anomalies, &d->anomalies);
  }
  if (s.ok()) {
    s = ReadRecentEvents(redis_.get(), options_.prefix, "signal", (d->generated - 86400) * 1000,
                         options_.max_signals, &d->signals);
  }
  if (s.ok()) {
    s = ReadDashboardCandidates(redis_.get(), options_.prefix, options_.max_candidates,
                                &d->candidates);
  }
  if (s.ok()) {
    s = ReadRecentEvents(redis_.get(), options_.prefix, "hit",
                         (d->generated - kHitsLookBack) * 1000, options_.max_hits, &d->hits);
  }
  if (s.ok())
    s = ReadDashboardAccounts(redis_.get(), options_.prefix, options_.max_accounts, &d->accounts);
  if (s.ok()) {
    std::set<std::string> shown;
    for (const TopColumn* c : {&d->top.this_hour, &d->top.last_hour}) {
      for (const TopRow& r : c->rows) shown.insert(r.account);
    }
    s = trends_.ReadAccounts(redis_.get(), d->generated, shown, &d->trends);
  }
  if (s.ok()) s = trends_.ReadPlatform(redis_.get(), d->generated, &d->platform);
  if (!s.ok()) d->error = "Redis " + options_.redis.ToString() + ": " + s.message();
  return d;
}

std::shared_ptr<const DashboardData> DashboardSource::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (!cached_ || now - cached_at_ >= options_.cache_for) {
    cached_ = Gather();
    cached_at_ = now;
  }
  return cached_;
}

std::string TopViewJson(const TopView& top) { return Dump(TopJson(top)); }

std::string EventsJson(const std::vector<Event>& events) { return Dump(EventsArray(events)); }

std::string DashboardJson(const DashboardData& d, const std::string& part) {
  nlohmann::json j = {{"generated", d.generated}, {"host", d.host}};
  if (!d.error.empty()) j["error"] = d.error;
  bool all = part == "dashboard";
  if (all || part == "top") {
    j["top"] = TopJson(d.top);
    j["top_n"] = d.top_n;
  }
  if (all || part == "anomalies") j["anomalies"] = EventsArray(d.anomalies);
  if (all || part == "hits") j["hits"] = EventsArray(d.hits);
  if (all || part == "signals") j["signals"] = EventsArray(d.signals);
  if (all || part == "candidates") {
    nlohmann::json a = nlohmann::json::array();
    for (const DashboardCandidate& c : d.candidates) {
      a.push_back(nlohmann::json::parse(c.evidence, nullptr, false));
      if (a.back().is_discarded()) a.back() = {{"recipient", c.recipient}};
    }
    j["candidates"] = a;
  }
  if (all || part == "accounts") j["accounts"] = AccountsJson(d.accounts);
  if (all || part == "trends") j["trends"] = TrendsJson(d);
  if (all || part == "map") {
    j["map"] = MapJson(d.map);
    j["version"] = d.version;
  }
  return Dump(j);
}

}  // namespace compd
