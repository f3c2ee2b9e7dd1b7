// Anomaly rules as pure functions, and the detector against a real redis-server.
#include "compd/watch/anomaly.h"

#include <catch2/catch.hpp>
#include <mutex>
#include <nlohmann/json.hpp>

#include "compd/accounts/recorder.h"
#include "compd/events/event_stream.h"
#include "compd/map/map_store.h"
#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::RedisServer;
using testing::TempDir;
using testing::WaitUntil;

constexpr int64_t kDay = 86400;
constexpr int64_t kToday = 1795651200;  // 2026-11-26T00:00:00Z

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One message a day on each of the `n` days before `today`.
std::vector<DayCounts> OneADay(int64_t today, int n) {
  std::vector<DayCounts> days;
  for (int i = n; i >= 1; --i) days.push_back(DayCounts{DayId(today - i * kDay), 1, 1, 1});
  return days;
}

AccountTotals Totals(const std::string& account, int64_t hour_start, int64_t hour, int64_t day,
                     int64_t networks = 1) {
  AccountTotals t;
  t.account = account;
  t.hour_start = hour_start;
  t.hour_messages = hour;
  t.hour_recipients = hour;
  t.day_messages = day;
  t.hour_networks = networks;
  return t;
}

std::vector<std::string> Rules(const std::vector<Anomaly>& as) {
  std::vector<std::string> out;
  for (const auto& a : as) out.push_back(a.rule);
  std::sort(out.begin(), out.end());
  return out;
}

TEST_CASE("robust summary: median, interpolated percentile and MAD", "[anomaly]") {
  RobustSummary s = Summarize({1, 2, 3, 4, 100}, 50);
  CHECK(s.n == 5);
  CHECK(s.median == Approx(3));
  CHECK(s.high == Approx(3));
  CHECK(s.mad == Approx(1));  // deviations 2,1,0,1,97
  s = Summarize({1, 2, 3, 4, 100}, 100);
  CHECK(s.high == Approx(100));
  s = Summarize({10, 20}, 99);
  CHECK(s.median == Approx(15));
  CHECK(s.high == Approx(19.9));
  CHECK(s.UsualHigh(5) == Approx(std::max(19.9, 15 + 5 * 1.4826 * 5)));
  s = Summarize({}, 99);
  CHECK(s.n == 0);
  CHECK(s.UsualHigh(5) == 0);
}

TEST_CASE("a one-a-day year is a baseline of 1 with no spread", "[anomaly]") {
  AnomalyRules rules;
  Baseline b = BuildBaseline(OneADay(kToday, 400), kToday, rules);
  CHECK(b.day == "20261126");
  CHECK(b.history_days == 365);  // only the window counts
  CHECK(b.messages.n == 365);
  CHECK(b.messages.median == Approx(1));
  CHECK(b.messages.high == Approx(1));
  CHECK(b.messages.mad == Approx(0));
  CHECK(b.networks.high == Approx(1));
}

TEST_CASE("idle days count as zero from the first active day; today is left out", "[anomaly]") {
  AnomalyRules rules;
  std::vector<DayCounts> days = {{DayId(kToday - 10 * kDay), 50, 50, 1},
                                 {DayId(kToday - 2 * kDay), 50, 50, 1},
                                 {DayId(kToday), 5000, 5000, 9}};
  Baseline b = BuildBaseline(days, kToday, rules);
  CHECK(b.history_days == 10);
  CHECK(b.messages.n == 10);
  CHECK(b.messages.median == Approx(0));
  CHECK(b.networks.n == 2);
  Baseline none = BuildBaseline({}, kToday, rules);
  CHECK(none.history_days == 0);
}

TEST_CASE("one a day for a year, then 600: hour and day anomalies", "[anomaly]") {
  AnomalyRules rules;
  Baseline b = BuildBaseline(OneADay(kToday, 365), kToday, rules);
  int64_t hour = kToday + 15 * 3600;
  std::vector<Anomaly> as = Evaluate(Totals("alice", hour, 600, 600), b, rules);
  REQUIRE(Rules(as) == std::vector<std::string>{"day_volume", "hour_volume"});
  for (const Anomaly& a : as) {
    CHECK(a.value == 600);
    CHECK(a.baseline == Approx(1));
    if (a.rule == "day_volume") {
      CHECK(a.period == "2026-11-26");
      CHECK(a.threshold == Approx(100));  // the floor
    } else {
      CHECK(a.period == "2026-11-26T15");
      CHECK(a.threshold == Approx(50));
    }
  }
  Event e = as[0].ToEvent();
  CHECK(e.type == "anomaly");
  CHECK(e.account == "alice");
  CHECK(e.value == "600");
  CHECK(e.baseline == "1");
  CHECK(e.id == "anomaly:" + e.rule + ":" + e.period + ":alice");
  CHECK(e.detail.find("600") != std::string::npos);
  CHECK(e.detail.find("365 days") != std::string::npos);
}

TEST_CASE("floors keep tiny accounts quiet; busy accounts need a real jump", "[anomaly]") {
  AnomalyRules rules;
  Baseline tiny = BuildBaseline(OneADay(kToday, 365), kToday, rules);
  CHECK(Evaluate(Totals("t", kToday, 40, 90), tiny, rules).empty());
  CHECK_FALSE(MayBeAnomalous(Totals("t", kToday, 40, 90), rules));

  std::vector<DayCounts> busy;
  for (int i = 365; i >= 1; --i) {
    busy.push_back(DayCounts{DayId(kToday - i * kDay), 1000 + (i % 7) * 50, 0, 2});
  }
  Baseline b = BuildBaseline(busy, kToday, rules);
  CHECK(b.messages.median == Approx(1150));
  // An ordinary busy day and hour: nothing.
  CHECK(Evaluate(Totals("b", kToday, 120, 1300, 2), b, rules).empty());
  // Several times its busiest day: day anomaly (the hour too, being more than a day's worth).
  CHECK(Rules(Evaluate(Totals("b", kToday, 2000, 5000, 2), b, rules)) ==
        std::vector<std::string>{"day_volume", "hour_volume"});
}

TEST_CASE("new accounts: only their first busy day counts", "[anomaly]") {
  AnomalyRules rules;
  Baseline b = BuildBaseline(OneADay(kToday, 2), kToday, rules);
  CHECK(b.history_days == 2);
  CHECK(Evaluate(Totals("n", kToday, 150, 150), b, rules).empty());
  std::vector<Anomaly> as = Evaluate(Totals("n", kToday, 150, 250), b, rules);
  REQUIRE(Rules(as) == std::vector<std::string>{"new_account"});
  CHECK(as[0].threshold == Approx(200));
  CHECK(as[0].Describe().find("new") != std::string::npos);
}

TEST_CASE("a jump in distinct client networks", "[anomaly]") {
  AnomalyRules rules;
  Baseline b = BuildBaseline(OneADay(kToday, 100), kToday, rules);
  CHECK(Evaluate(Totals("a", kToday, 3, 3, 10), b, rules).empty());  // at the floor
  std::vector<Anomaly> as = Evaluate(Totals("a", kToday, 3, 3, 40), b, rules);
  REQUIRE(Rules(as) == std::vector<std::string>{"networks"});
  CHECK(as[0].value == 40);
  CHECK(as[0].baseline == Approx(1));
  CHECK(Evaluate(Totals("a", kToday, 3, 3, -1), b, rules).empty());  // none known
}

TEST_CASE("anomaly rules come from the settings", "[anomaly]") {
  Config c;
  REQUIRE(c.Set("anomaly_day_floor", "7", "test").ok());
  REQUIRE(c.Set("anomaly_percentile", "95", "test").ok());
  AnomalyRules r;
  REQUIRE(AnomalyRules::FromConfig(c, &r).ok());
  CHECK(r.day_floor == 7);
  CHECK(r.percentile == 95);
  CHECK(r.history_days == 365);
  REQUIRE(c.Set("anomaly_min_history_days", "400", "test").ok());
  Status s = AnomalyRules::FromConfig(c, &r);
  CHECK(s.IsInvalid());
  CHECK(s.message().find("anomaly_min_history_days") != std::string::npos);
}

// Writes a year of one-a-day history in the volume key format.
void SeedYear(RedisClient& c, const std::string& prefix, const std::string& account,
              int64_t today) {
  std::vector<std::vector<std::string>> cmds;
  for (int i = 365; i >= 1; --i) {
    std::string day = DayId(today - i * kDay);
    cmds.push_back(
        {"HSET", Keys(prefix).month(day.substr(0, 6), account), day.substr(6), "1 1 1"});
  }
  REQUIRE(c.Pipeline(cmds).ok());
}

TEST_CASE("detector raises one event per account, rule and period across nodes",
          "[redis][anomaly]") {
  RedisServer redis;
  RedisClient c(redis.url());
  const int64_t now = NowSeconds();
  SeedYear(c, "d:", "alice@example.test", DayStart(now));
  std::mutex mu;
  std::vector<Event> events;
  std::vector<std::string> heard;
  auto sink = [&](Event e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(std::move(e));
  };
  AnomalyOptions o;
  o.redis = redis.url();
  o.prefix = "d:";
  AnomalyDetector node1(o, sink, nullptr), node2(o, sink, nullptr);
  node1.SetListener([&](const Anomaly& a) { heard.push_back(a.rule); });
  std::vector<AccountTotals> t = {Totals("alice@example.test", HourStart(now), 600, 600),
                                  Totals("quiet@example.test", HourStart(now), 2, 2)};
  node1.Observe(t);
  node1.Observe(t);
  t[0].hour_messages = 700;
  t[0].day_messages = 700;
  node2.Observe(t);
  REQUIRE(events.size() == 2);
  std::sort(heard.begin(), heard.end());
  CHECK(heard == std::vector<std::string>{"day_volume", "hour_volume"});
  for (const Event& e : events) {
    CHECK(e.type == "anomaly");
    CHECK(e.account == "alice@example.test");
    CHECK(e.value == "600");
    CHECK(e.baseline == "1");
  }
  CHECK(node1.stats().raised == 2);
  CHECK(node2.stats().raised == 0);
  CHECK(node1.stats().baselines == 1);  // cached for the day; quiet never needed one
}

TEST_CASE("anomaly events reach the stream but not the account's hit record", "[redis][anomaly]") {
  RedisServer redis;
  TempDir tmp;
  RecorderOptions ro;
  ro.redis = redis.url();
  ro.prefix = "d:";
  ro.spool_dir = tmp / "spool";
  ro.hostname = "mx-test";
  Recorder recorder(ro, nullptr);
  REQUIRE(recorder.Start().ok());
  RedisClient c(redis.url());
  const int64_t now = NowSeconds();
  SeedYear(c, "d:", "bob@example.test", DayStart(now));
  AnomalyOptions o;
  o.redis = redis.url();
  o.prefix = "d:";
  AnomalyDetector d(
      o, [&](Event e) { recorder.Submit(std::move(e)); }, nullptr);
  d.Observe({Totals("bob@example.test", HourStart(now), 10, 600)});
  REQUIRE(WaitUntil([&] { return recorder.stats().written == 1; }));
  recorder.Stop();
  std::vector<Event> got;
  REQUIRE(ReadRecentEvents(&c, "d:", "anomaly", (now - 60) * 1000, 10, &got).ok());
  REQUIRE(got.size() == 1);
  CHECK(got[0].rule == "day_volume");
  CHECK(got[0].host == "mx-test");
  RedisReply r;
  REQUIRE(c.Command({"EXISTS", Keys("d:").account("bob@example.test")}, &r).ok());
  CHECK(r.integer == 0);
  REQUIRE(c.Command({"ZCARD", Keys("d:").accounts()}, &r).ok());
  CHECK(r.integer == 0);
}

TEST_CASE("ReadRecentEvents filters by type and time, newest first", "[redis][anomaly]") {
  RedisServer redis;
  RedisClient c(redis.url());
  const std::string stream = Keys("e:").events();
  const int64_t now_ms = NowSeconds() * 1000;
  auto add = [&](int64_t ms, const std::string& type, const std::string& account) {
    Event e;
    e.type = type;
    e.account = account;
    REQUIRE(c.Command({"XADD", stream, std::to_string(ms) + "-0", "event", e.ToJson()}).ok());
  };
  add(now_ms - 3 * 86400 * 1000, "anomaly", "old");
  add(now_ms - 5000, "hit", "h1");
  add(now_ms - 4000, "anomaly", "a1");
  add(now_ms - 3000, "hit", "h2");
  add(now_ms - 2000, "anomaly", "a2");
  REQUIRE(c.Command({"XADD", stream, std::to_string(now_ms - 1000) + "-0", "event", "{bad"}).ok());
  std::vector<Event> out;
  REQUIRE(ReadRecentEvents(&c, "e:", "anomaly", now_ms - 86400 * 1000, 10, &out).ok());
  REQUIRE(out.size() == 2);
  CHECK(out[0].account == "a2");
  CHECK(out[1].account == "a1");
  REQUIRE(ReadRecentEvents(&c, "e:", "", 0, 3, &out).ok());
  REQUIRE(out.size() == 3);
  CHECK(out[0].account == "a2");
  CHECK(out[2].account == "a1");
  REQUIRE(ReadRecentEvents(&c, "e:", "hit", 0, 10, &out, 2).ok());  // scan limit
  CHECK(out.empty());
}

}  // namespace
}  // namespace compd
