#include "compd/watch/trends.h"

#include <catch2/catch.hpp>

#include "compd/base/keys.h"
#include "compd/testutil/events.h"
#include "compd/testutil/redis.h"
#include "compd/watch/dashboard.h"
#include "compd/watch/dashboard_charts.h"
#include "compd/watch/dashboard_page.h"
#include "compd/watch/volume.h"

namespace compd {
namespace {

using testing::RedisServer;

constexpr int64_t kT = 1795718688;  // 2026-11-26T18:44:48Z
constexpr int64_t kHour = 3600, kDay = 86400;

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// Each of `shown` stands in the page's panel `panel_id` (or after it).
void CheckPanelShows(const std::string& page, const std::string& panel_id,
                     std::initializer_list<const char*> shown) {
  size_t panel = page.find("id=\"" + panel_id + "\"");
  REQUIRE(panel != std::string::npos);
  for (const char* text : shown) {
    INFO(panel_id << ": " << text);
    CHECK(page.find(text, panel) != std::string::npos);
  }
}

AccountTrend OneADayThen600() {
  AccountTrend t;
  t.hours.assign(kTrendHours, 0);
  t.hours[10] = 1;  // yesterday's one mail
  t.hours[kTrendHours - 1] = 600;
  t.usual_day = 1;
  t.history_days = 365;
  return t;
}

TEST_CASE("sparkline: 600 in an hour over a usual day of 1 is a full red bar", "[dashboard]") {
  const int64_t first = HourStart(kT) - (kTrendHours - 1) * kHour;
  std::string svg = SparklineSvg(OneADayThen600(), first, 7);
  CHECK(svg.rfind("<svg class=\"spark\"", 0) == 0);
  CHECK(Count(svg, "class=\"bar") == 2);
  // The current hour: above the band, full height (y 0 of 40).
  CHECK(svg.find("class=\"bar over now\" x=\"235.5\" y=\"0\"") != std::string::npos);
  // Yesterday's one mail is at the band, not above it.
  CHECK(svg.find("class=\"bar\" x=\"50.5\"") != std::string::npos);
  CHECK(svg.find("class=\"band\"") != std::string::npos);
  CHECK(svg.find("600 this hour; usual busy day 1;") != std::string::npos);
  CHECK(Count(svg, "class=\"mid\"") == 2);  // two midnights in 48 hours
  CHECK(svg.find("http") == std::string::npos);

  // A new account has no usual day: bars, no band, nothing red.
  AccountTrend fresh = OneADayThen600();
  fresh.history_days = 2;
  svg = SparklineSvg(fresh, first, 7);
  CHECK(svg.find("band") == std::string::npos);
  CHECK(svg.find("over") == std::string::npos);
  CHECK(svg.find("usual busy day unknown") != std::string::npos);

  // Nothing at all still draws an (empty) chart.
  svg = SparklineSvg(AccountTrend{}, first, 7);
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(Count(svg, "<rect") == 0);
}

TEST_CASE("platform chart: this week's line against last week's area", "[dashboard]") {
  PlatformTrend p;
  p.first_hour = HourStart(kT) - (kTrendHours - 1) * kHour;
  p.hours.assign(kTrendHours, 100);
  p.week_ago.assign(kTrendHours, 80);
  p.hours.back() = 40;  // the hour in progress
  p.week_ago_known = true;
  std::string svg = PlatformChartSvg(p);
  CHECK(svg.find("class=\"thisweek\"") != std::string::npos);
  CHECK(svg.find("class=\"lastweek\"") != std::string::npos);
  CHECK(svg.find("class=\"nowdot\"") != std::string::npos);
  CHECK(svg.find(">200</text>") != std::string::npos);  // a round axis top above 105
  CHECK(svg.find(" 00:00</text>") != std::string::npos);
  p.week_ago_known = false;
  svg = PlatformChartSvg(p);
  CHECK(svg.find("lastweek") == std::string::npos);
  CHECK(svg.find("a week earlier") == std::string::npos);
}

TEST_CASE("the page works with no data at all", "[dashboard]") {
  DashboardData d;
  d.generated = kT;
  std::string page = RenderDashboardPage(d, 10);
  CHECK(page.find("no authenticated mail") != std::string::npos);
  CHECK(page.find("</html>") != std::string::npos);
  CHECK(page.find("<script") == std::string::npos);
}

TEST_CASE("the page lists detection signals and marks their accounts' rows", "[dashboard]") {
  DashboardData d;
  d.generated = kT;
  d.top.this_hour.hour_start = HourStart(kT);
  d.top.this_hour.rows = {{"botted@customer.example", 30, 30, 9, 0, true}};
  Event e = testing::SignalEvent("botted@customer.example", "test_message,new_networks", "flag");
  e.time = "2026-11-26T18:40:00.000Z";
  e.detail = "HELO localhost, 5 new networks in 10 min";
  d.signals = {e};
  std::string page = RenderDashboardPage(d, 10);
  CheckPanelShows(page, "signals",
                  {"<span class=\"react flag\">flag</span>", "test_message, new_networks",
                   "HELO localhost, 5 new networks in 10 min"});
  CHECK(page.find("<tr class=\"new signal\" data-account=\"botted@customer.example\"") !=
        std::string::npos);
  CHECK(page.find("<span class=\"badge signal\">SIGNAL</span>") != std::string::npos);
}

TEST_CASE("the page lists discovery candidates waiting for review", "[redis][dashboard]") {
  RedisServer redis;
  RedisClient c(redis.url());
  const std::string evidence =
      R"({"recipient":"toewebvastsatw@gmx.example","time":"2026-11-26T18:30:00.000Z",)"
      R"("domains":2,"sightings":[{"account":"winfield@a.example"},)"
      R"({"account":"register@b.example"}]})";
  REQUIRE(
      c.Command({"HSET", Keys("t:").discovery_candidates(), "toewebvastsatw@gmx.example", evidence})
          .ok());
  REQUIRE(c.Command({"HSET", Keys("t:").discovery_candidates(), "old@x.example",
                     R"({"time":"2026-11-20T00:00:00.000Z","sightings":[]})"})
              .ok());
  DashboardData d;
  d.generated = kT;
  REQUIRE(ReadDashboardCandidates(&c, "t:", 12, &d.candidates).ok());
  REQUIRE(d.candidates.size() == 2);
  CHECK(d.candidates[0].recipient == "toewebvastsatw@gmx.example");  // newest first
  CHECK(d.candidates[0].accounts ==
        std::vector<std::string>{"winfield@a.example", "register@b.example"});
  std::string page = RenderDashboardPage(d, 10);
  CheckPanelShows(page, "candidates",
                  {"toewebvastsatw@gmx.example", "winfield@a.example, register@b.example",
                   "mapctl candidates accept|reject ADDRESS"});
  CHECK(DashboardJson(d, "candidates").find("\"domains\":2") != std::string::npos);
  DashboardData empty;
  empty.generated = kT;
  CHECK(RenderDashboardPage(empty, 10).find("none waiting") != std::string::npos);
}

TEST_CASE("trend reader: hours, usual day and the platform from the counters",
          "[redis][dashboard]") {
  RedisServer redis;
  RedisClient c(redis.url());
  Keys k("t:");
  const int64_t now = kT;
  const std::string acct = "yearly@customer.example";
  // A year of one mail a day, then 600 this hour and 1 two hours ago.
  for (int64_t d = 1; d <= 365; ++d) {
    int64_t day = DayStart(now) - d * kDay;
    std::string id = DayId(day);
    REQUIRE(c.Command({"HSET", k.month(id.substr(0, 6), acct), id.substr(6, 2), "1 1 1"}).ok());
  }
  REQUIRE(c.Command({"ZADD", k.hour_messages(HourId(now)), "600", acct}).ok());
  REQUIRE(c.Command({"ZADD", k.hour_messages(HourId(now - 2 * kHour)), "1", acct}).ok());
  REQUIRE(c.Command({"HSET", k.hour_total(HourId(now)), "m", "700"}).ok());
  REQUIRE(c.Command({"HSET", k.hour_total(HourId(now - 7 * kDay)), "m", "650"}).ok());

  TrendReader reader("t:", AnomalyRules{});
  std::map<std::string, AccountTrend> trends;
  REQUIRE(reader.ReadAccounts(&c, now, {acct, "quiet@x"}, &trends).ok());
  const AccountTrend& t = trends[acct];
  REQUIRE(t.hours.size() == static_cast<size_t>(kTrendHours));
  CHECK(t.hours.back() == 600);
  CHECK(t.hours[kTrendHours - 3] == 1);
  CHECK(t.usual_day == Approx(1));
  CHECK(t.history_days == 365);
  CHECK(trends["quiet@x"].history_days == 0);

  PlatformTrend p;
  REQUIRE(reader.ReadPlatform(&c, now, &p).ok());
  CHECK(p.hours.back() == 700);
  CHECK(p.week_ago.back() == 650);
  CHECK(p.week_ago_known);
  CHECK(p.first_hour == HourStart(now) - (kTrendHours - 1) * kHour);

  // Settled hours come from the cache: a change to one no longer shows, the current
  // hour's does.
  REQUIRE(c.Command({"ZADD", k.hour_messages(HourId(now - 2 * kHour)), "9", acct}).ok());
  REQUIRE(c.Command({"ZADD", k.hour_messages(HourId(now)), "601", acct}).ok());
  REQUIRE(reader.ReadAccounts(&c, now, {acct}, &trends).ok());
  CHECK(trends[acct].hours[kTrendHours - 3] == 1);
  CHECK(trends[acct].hours.back() == 601);

  // A fresh install: no week-old counters, so last week is unknown rather than zero.
  RedisServer fresh;
  RedisClient f(fresh.url());
  TrendReader empty("t:", AnomalyRules{});
  REQUIRE(empty.ReadPlatform(&f, now, &p).ok());
  CHECK_FALSE(p.week_ago_known);
  CHECK(p.hours.back() == 0);
}

}  // namespace
}  // namespace compd
