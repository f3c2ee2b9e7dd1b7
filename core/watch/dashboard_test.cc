#include "compd/watch/dashboard.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "compd/accounts/accounts.h"
#include "compd/map/map_store.h"
#include "compd/testutil/events.h"
#include "compd/testutil/redis.h"
#include "compd/watch/anomaly.h"
#include "compd/watch/dashboard_page.h"

namespace compd {
namespace {

using testing::RedisServer;

constexpr int64_t kT = 1795718688;  // 2026-11-26T18:44:48Z

DashboardData Sample() {
  DashboardData d;
  d.generated = kT;
  d.host = "mx1.example.net";
  d.version = "0.1.0";
  d.top.this_hour.hour_start = HourStart(kT);
  d.top.this_hour.rows = {{"spike@customer.example", 600, 600, 14, 0, true},
                          {"steady@customer.example", 40, 80, 1, 35, false}};
  d.top.last_hour.hour_start = HourStart(kT) - 3600;
  d.top.last_hour.rows = {{"steady@customer.example", 35, 70, 1, 30, false},
                          {"<script>alert(1)</script>@x", 3, 3, 1, 0, true}};
  Event a =
      Anomaly{"spike@customer.example", "hour_volume", HourLabel(kT), 600, 1, 50, {}}.ToEvent();
  a.time = "2026-11-26T18:40:00.000Z";
  d.anomalies = {a};
  Event h = testing::HitEvent("leaky@customer.example", "collector@bad.example");
  h.time = "2026-11-26T18:41:00.000Z";
  d.hits = {h};
  DashboardAccount r;
  r.account = "leaky@customer.example";
  r.state = "locked";
  r.hits = 2;
  r.last_hit = kT - 240;
  d.accounts = {r};
  d.map = MapInfo{12, 1234, 5, "redis", kT - 60};
  return d;
}

TEST_CASE("dashboard page renders before any data was generated", "[dashboard]") {
  // A dashboard whose first read has not finished yet has no time: the page says so
  // instead of failing (it threw std::out_of_range cutting the clock out of "-").
  DashboardData d;
  d.host = "mx1.example.net";
  std::string page;
  REQUIRE_NOTHROW(page = RenderDashboardPage(d, 10));
  CHECK(page.find("<span class=\"clock\">never</span>") != std::string::npos);
  CHECK(page.find("generated never") != std::string::npos);
  CHECK(page.find("mx1.example.net") != std::string::npos);
}

TEST_CASE("dashboard page shows both columns, highlights, and escapes", "[dashboard]") {
  std::string page = RenderDashboardPage(Sample(), 10);
  CHECK(page.find("<meta http-equiv=\"refresh\" content=\"10\">") != std::string::npos);
  size_t this_hour = page.find("id=\"this-hour\"");
  size_t last_hour = page.find("id=\"last-hour\"");
  REQUIRE(this_hour != std::string::npos);
  REQUIRE(last_hour != std::string::npos);
  CHECK(page.find("spike@customer.example", this_hour) < last_hour);
  CHECK(page.find("<tr class=\"new anomaly\" data-account=\"spike@customer.example\"") !=
        std::string::npos);
  CHECK(page.find("18:00–now (44 min) UTC") != std::string::npos);
  CHECK(page.find("17:00–18:00 UTC") != std::string::npos);
  CHECK(page.find("+5") != std::string::npos);  // steady: 40 against 35
  CHECK(page.find("<script>") == std::string::npos);
  CHECK(page.find("&lt;script&gt;alert(1)&lt;/script&gt;@x") != std::string::npos);
  CHECK(page.find("map v12 · 1,234 exact · 5 patterns") != std::string::npos);
  CHECK(page.find("collector@bad.example") != std::string::npos);
  CHECK(page.find("state locked") != std::string::npos);
  CHECK(page.find("http://") == std::string::npos);  // no external assets
  CHECK(page.find("https://") == std::string::npos);
}

TEST_CASE("dashboard JSON parts", "[dashboard]") {
  DashboardData d = Sample();
  auto top = nlohmann::json::parse(DashboardJson(d, "top"));
  CHECK(top["top"]["this_hour"]["rows"][0]["account"] == "spike@customer.example");
  CHECK(top["top"]["this_hour"]["rows"][1]["change"] == 5);
  CHECK(top["top"]["this_hour"]["hour"] == "2026-11-26T18");
  CHECK(top.find("hits") == top.end());
  auto all = nlohmann::json::parse(DashboardJson(d, "dashboard"));
  CHECK(all["anomalies"][0]["rule"] == "hour_volume");
  CHECK(all["hits"][0]["recipient"] == "collector@bad.example");
  CHECK(all["accounts"][0]["state"] == "locked");
  CHECK(all["map"]["exact"] == 1234);
  d.error = "Redis down";
  CHECK(nlohmann::json::parse(DashboardJson(d, "map"))["error"] == "Redis down");
}

TEST_CASE("account records: locked, then flagged, released left out", "[redis][dashboard]") {
  RedisServer redis;
  RedisClient c(redis.url());
  Keys k("a:");
  auto put = [&](const std::string& acct, int64_t score, const std::string& state) {
    REQUIRE(c.Command({"ZADD", k.accounts(), std::to_string(score), acct}).ok());
    std::vector<std::string> cmd = {"HSET", k.account(acct), "hits", "3", "last_entry", "x@y"};
    if (!state.empty()) {
      cmd.push_back("state");
      cmd.push_back(state);
    }
    REQUIRE(c.Command(cmd).ok());
  };
  put("a@x", 100, "flagged");
  put("b@x", 300, "released");
  put("c@x", 50, "locked");
  put("d@x", 200, "flagged");
  std::vector<DashboardAccount> out;
  REQUIRE(ReadDashboardAccounts(&c, "a:", 10, &out).ok());
  REQUIRE(out.size() == 3);
  CHECK(out[0].account == "c@x");
  CHECK(out[1].account == "d@x");
  CHECK(out[2].account == "a@x");
  CHECK(out[0].hits == 3);
  CHECK(out[0].last_hit == 50);

  // Without a registry (hit records only), the latest hits.
  RedisServer plain;
  RedisClient p(plain.url());
  REQUIRE(p.Command({"ZADD", k.accounts(), "5", "old@x", "9", "new@x"}).ok());
  REQUIRE(p.Command({"HSET", k.account("new@x"), "hits", "1"}).ok());
  REQUIRE(ReadDashboardAccounts(&p, "a:", 10, &out).ok());
  REQUIRE(out.size() == 2);
  CHECK(out[0].account == "new@x");
  CHECK(out[0].state.empty());
}

TEST_CASE("account records: an expired lock shows as flagged (as mapctl shows it)",
          "[redis][dashboard]") {
  RedisServer redis;
  RedisClient c(redis.url());
  Keys k("a:");
  const int64_t now_ms = UnixMs(std::chrono::system_clock::now());
  REQUIRE(c.Command({"ZADD", k.accounts(), "100", "expired@x", "200", "current@x"}).ok());
  REQUIRE(c.Command({"HSET", k.account("expired@x"), "hits", "1", "state", "locked", "lock_expires",
                     std::to_string(now_ms - 60000)})
              .ok());
  REQUIRE(c.Command({"HSET", k.account("current@x"), "hits", "1", "state", "locked", "lock_expires",
                     std::to_string(now_ms + 3600000)})
              .ok());
  std::vector<DashboardAccount> out;
  REQUIRE(ReadDashboardAccounts(&c, "a:", 10, &out).ok());
  REQUIRE(out.size() == 2);
  CHECK(out[0].account == "current@x");
  CHECK(out[0].state == "locked");
  CHECK(out[1].account == "expired@x");
  CHECK(out[1].state == "flagged");
  AccountRecord record;
  REQUIRE(AccountRegistry(&c, "a:").Get("expired@x", &record).ok());
  CHECK(out[1].state == record.EffectiveState(now_ms));
  DashboardData d;
  d.accounts = out;
  auto j = nlohmann::json::parse(DashboardJson(d, "accounts"));
  CHECK(j["accounts"][1]["state"] == "flagged");
}

TEST_CASE("dashboard source reports a Redis outage instead of failing", "[redis][dashboard]") {
  RedisServer redis;
  redis.Stop();
  DashboardOptions o;
  o.redis = redis.url();
  o.redis_timeout = std::chrono::milliseconds(300);
  DashboardSource source(o, [] { return MapInfo{3, 1, 0, "files", 0}; });
  auto d = source.Get();
  REQUIRE(d != nullptr);
  CHECK_FALSE(d->error.empty());
  REQUIRE(d->map.has_value());
  CHECK(d->map->source == "files");
  CHECK(RenderDashboardPage(*d, 10).find("class=\"error\"") != std::string::npos);
}

}  // namespace
}  // namespace compd
