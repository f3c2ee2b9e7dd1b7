#include "compd/watch/dashboard.h"

#include <algorithm>
#include <nlohmann/json.hpp>

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
  Keys keys(prefix);
  RedisReply reply;
  Status s = redis->Command(
      {"ZREVRANGE", keys.accounts(), "0", std::to_string(kAccountsScanned - 1), "WITHSCORES"},
      &reply);
  if (!s.ok()) return s;
  std::vector<DashboardAccount> records;
  std::vector<std::vector<std::string>> cmds;
  for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    DashboardAccount r;
    r.account = reply.elements[i].str;
    r.last_hit = std::strtoll(reply.elements[i + 1].str.c_str(), nullptr, 10);
    cmds.push_back({"HGETALL", keys.account(r.account)});
    records.push_back(std::move(r));
  }
  if (records.empty()) return Status::Ok();
  std::vector<RedisReply> replies;
  s = redis->Pipeline(cmds, &replies);
  if (!s.ok()) return s;
  bool registry = false;  // does any record carry a state (the account registry)?
  for (size_t i = 0; i < records.size() && i < replies.size(); ++i) {
    DashboardAccount& r = records[i];
    const auto& el = replies[i].elements;
    for (size_t k = 0; k + 1 < el.size(); k += 2) r.fields[el[k].str] = el[k + 1].str;
    r.state = r.fields.count("state") ? r.fields["state"] : "";
    if (!r.state.empty()) registry = true;
    r.hits = r.fields.count("hits") ? std::strtoll(r.fields["hits"].c_str(), nullptr, 10) : 0;
    r.last_entry = r.fields.count("last_entry") ? r.fields["last_entry"] : "";
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
  if (all || part == "accounts") j["accounts"] = AccountsJson(d.accounts);
  if (all || part == "trends") j["trends"] = TrendsJson(d);
  if (all || part == "map") {
    j["map"] = MapJson(d.map);
    j["version"] = d.version;
  }
  return Dump(j);
}

}  // namespace compd
