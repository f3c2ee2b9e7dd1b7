// Volume counters: bucket names and networks as pure functions; the counter against a real
// redis-server (started and stopped by the tests).
#include "compd/watch/volume.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>

#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::LogCapture;
using testing::RedisServer;
using testing::WaitUntil;

constexpr int64_t kT = 1795718688;  // 2026-11-26T18:44:48Z

std::chrono::system_clock::time_point At(int64_t unix_seconds) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds));
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

MessageRecord Msg(const std::string& account, const std::string& ip, size_t rcpts, int64_t t = 0) {
  return MessageRecord{account, ip, rcpts, t == 0 ? std::chrono::system_clock::now() : At(t)};
}

VolumeOptions Options(const RedisUrl& url) {
  VolumeOptions o = testing::TestRedisOptions<VolumeOptions>(url, "v:");
  o.flush_interval = std::chrono::milliseconds(50);
  o.retry_max = std::chrono::milliseconds(100);
  return o;
}

int64_t ZScore(RedisClient& c, const std::string& key, const std::string& member) {
  RedisReply r;
  REQUIRE(c.Command({"ZSCORE", key, member}, &r).ok());
  return r.is_nil() ? 0 : std::stoll(r.str);
}

std::string HGet(RedisClient& c, const std::string& key, const std::string& field) {
  RedisReply r;
  REQUIRE(c.Command({"HGET", key, field}, &r).ok());
  return r.str;
}

// A redis-server of the test's own, a connection to it and the key names under the
// counters' prefix ("v:"): for TEST_CASE_METHOD, for tests that read the counters.
struct CountersInRedis {
  RedisServer redis;
  RedisClient c{redis.url()};
  Keys k{"v:"};
};

TEST_CASE("hour and day buckets are UTC and named YYYYMMDDHH / YYYYMMDD", "[volume]") {
  CHECK(HourId(kT) == "2026112618");
  CHECK(DayId(kT) == "20261126");
  CHECK(HourStart(kT) == kT - 44 * 60 - 48);
  CHECK(DayStart(kT) == kT - (18 * 3600 + 44 * 60 + 48));
  CHECK(HourLabel(kT) == "2026-11-26T18");
  CHECK(DayLabel(kT) == "2026-11-26");
  int64_t start = 0;
  REQUIRE(ParseDayId("20261126", &start));
  CHECK(start == DayStart(kT));
  CHECK_FALSE(ParseDayId("20260231", &start));
  CHECK_FALSE(ParseDayId("2026112", &start));
  CHECK_FALSE(ParseDayId("2026-1-26", &start));
}

TEST_CASE("client networks group addresses by prefix", "[volume]") {
  CHECK(ClientNetwork("192.0.2.77", 24, 48) == "192.0.2.0/24");
  CHECK(ClientNetwork("[192.0.2.77]", 16, 48) == "192.0.0.0/16");
  CHECK(ClientNetwork("::ffff:198.51.100.9", 24, 48) == "198.51.100.0/24");
  CHECK(ClientNetwork("2001:db8:abcd:12:1::5", 24, 48) == "2001:db8:abcd::/48");
  CHECK(ClientNetwork("IPv6:2001:db8:abcd:12:1::5", 24, 64) == "2001:db8:abcd:12::/64");
  CHECK(ClientNetwork("", 24, 48).empty());
  CHECK(ClientNetwork("localhost", 24, 48).empty());
}

TEST_CASE("volume counter writes messages, recipients and networks per hour and day",
          "[redis][volume]") {
  RedisServer redis;
  std::mutex mu;
  std::vector<AccountTotals> seen;
  VolumeCounter v(Options(redis.url()), nullptr);
  v.SetObserver([&](const std::vector<AccountTotals>& t) {
    std::lock_guard<std::mutex> lock(mu);
    seen.insert(seen.end(), t.begin(), t.end());
  });
  REQUIRE(v.Start().ok());
  const int64_t now = NowSeconds();
  for (int i = 0; i < 5; ++i) {
    v.Record(Msg("alice@example.test", "192.0.2." + std::to_string(i), 2, now));
  }
  v.Record(Msg("alice@example.test", "198.51.100.1", 1, now));
  v.Record(Msg("bob@example.test", "2001:db8::1", 3, now));
  REQUIRE(WaitUntil([&] { return v.stats().pending == 0 && v.stats().flushes > 0; }));

  RedisClient c(redis.url());
  Keys k("v:");
  std::string hour = HourId(now), day = DayId(now);
  CHECK(ZScore(c, k.hour_messages(hour), "alice@example.test") == 6);
  CHECK(ZScore(c, k.hour_recipients(hour), "alice@example.test") == 11);
  CHECK(ZScore(c, k.hour_messages(hour), "bob@example.test") == 1);
  const std::string month_key = k.month(day.substr(0, 6), "alice@example.test");
  CHECK(HGet(c, month_key, day.substr(6)) == "6 11 2");  // messages, recipients, two /24s
  RedisReply ttl;
  REQUIRE(c.Command({"TTL", k.hour_messages(hour)}, &ttl).ok());
  CHECK(ttl.integer > 48 * 3600);
  CHECK(ttl.integer <= 49 * 3600);
  // The platform's total of the hour, kept 8 days longer than the per-account hours.
  CHECK(HGet(c, k.hour_total(hour), "m") == "7");
  CHECK(HGet(c, k.hour_total(hour), "r") == "14");
  REQUIRE(c.Command({"TTL", k.hour_total(hour)}, &ttl).ok());
  CHECK(ttl.integer > (48 + 192) * 3600);
  CHECK(ttl.integer <= (49 + 192) * 3600);
  REQUIRE(c.Command({"TTL", month_key}, &ttl).ok());
  CHECK(ttl.integer > 400 * 86400);
  CHECK(ttl.integer <= 431 * 86400);
  RedisReply enc;
  REQUIRE(c.Command({"OBJECT", "ENCODING", month_key}, &enc).ok());
  CHECK(enc.str == "listpack");  // the compact encoding that keeps a year of days small
  std::vector<DayCounts> days;
  REQUIRE(ReadAccountDays(&c, "v:", "alice@example.test", now - 86400, now, &days).ok());
  REQUIRE(days.size() == 1);
  CHECK(days[0].day == day);
  CHECK(days[0].messages == 6);
  CHECK(days[0].networks == 2);
  CHECK(ReadAccountDays(&c, "v:", "nobody@example.test", now - 86400, now, &days).IsNotFound());

  std::lock_guard<std::mutex> lock(mu);
  auto alice = std::find_if(seen.begin(), seen.end(), [](const AccountTotals& t) {
    return t.account == "alice@example.test";
  });
  REQUIRE(alice != seen.end());
  CHECK(alice->hour_messages == 6);
  CHECK(alice->day_messages == 6);
  CHECK(alice->hour_networks == 2);
  CHECK(v.stats().messages == 7);
  CHECK(v.stats().recipients == 14);
}

TEST_CASE("the volume thread outlives an anomaly detector that throws", "[redis][volume]") {
  RedisServer redis;
  LogCapture log;
  std::atomic<int> calls{0};
  VolumeCounter v(Options(redis.url()), log.fn());
  // The observer is the anomaly detector, on the volume counter's thread.
  v.SetObserver([&](const std::vector<AccountTotals>&) {
    if (++calls == 1) throw std::bad_alloc();
  });
  REQUIRE(v.Start().ok());
  v.Record(Msg("alice@example.test", "192.0.2.1", 1));
  REQUIRE(WaitUntil([&] { return calls.load() == 1; }));
  // Counted once, and the thread carries on: the next message is counted and observed.
  v.Record(Msg("alice@example.test", "192.0.2.1", 1));
  REQUIRE(WaitUntil([&] { return calls.load() == 2; }, std::chrono::seconds(5)));
  CHECK(log.Contains("volume: unexpected error: std::bad_alloc; running again in"));
  RedisClient c(redis.url());
  CHECK(ZScore(c, Keys("v:").hour_messages(HourId(NowSeconds())), "alice@example.test") == 2);
  v.Stop();
}

TEST_CASE("volume counts from several nodes add up", "[redis][volume]") {
  RedisServer redis;
  VolumeCounter a(Options(redis.url()), nullptr), b(Options(redis.url()), nullptr);
  REQUIRE(a.Start().ok());
  REQUIRE(b.Start().ok());
  const int64_t now = NowSeconds();
  for (int i = 0; i < 30; ++i)
    (i % 2 ? a : b).Record(Msg("carol@example.test", "192.0.2.1", 1, now));
  a.Stop();
  b.Stop();
  RedisClient c(redis.url());
  CHECK(ZScore(c, Keys("v:").hour_messages(HourId(now)), "carol@example.test") == 30);
}

TEST_CASE("volume counter keeps counting while Redis is away and writes once when it returns",
          "[redis][volume]") {
  RedisServer redis;
  LogCapture log;
  redis.Stop();
  VolumeCounter v(Options(redis.url()), log.fn());
  REQUIRE(v.Start().ok());
  const int64_t now = NowSeconds();
  for (int i = 0; i < 10; ++i) v.Record(Msg("dave@example.test", "192.0.2.1", 1, now));
  REQUIRE(WaitUntil([&] { return v.stats().redis_errors >= 2; }));
  CHECK(v.stats().pending == 1);  // one (account, hour) pair, aggregated
  for (int i = 0; i < 5; ++i) v.Record(Msg("dave@example.test", "192.0.2.1", 1, now));
  redis.Start();
  REQUIRE(WaitUntil([&] { return v.stats().pending == 0; }));
  v.Stop();
  RedisClient c(redis.url());
  CHECK(ZScore(c, Keys("v:").hour_messages(HourId(now)), "dave@example.test") == 15);
  CHECK(log.Contains("cannot write counters"));
  CHECK(log.Contains("Redis is back"));
}

TEST_CASE_METHOD(CountersInRedis, "a key of the wrong type costs only its own account's counts",
                 "[redis][volume]") {
  LogCapture log;
  const int64_t now = NowSeconds();
  const std::string day = DayId(now);
  REQUIRE(c.Command({"SET", k.month(day.substr(0, 6), "poison@example.test"), "x"}).ok());
  VolumeCounter v(Options(redis.url()), log.fn());
  REQUIRE(v.Start().ok());
  v.Record(Msg("poison@example.test", "192.0.2.1", 1, now));
  v.Record(Msg("fine@example.test", "192.0.2.1", 1, now));
  REQUIRE(WaitUntil([&] { return v.stats().flushes > 0 && v.stats().pending == 0; }));
  v.Record(Msg("fine@example.test", "192.0.2.1", 1, now));  // later batches still flow
  v.Stop();
  CHECK(HGet(c, k.month(day.substr(0, 6), "fine@example.test"), day.substr(6)) == "2 2 1");
  CHECK(v.stats().rejected == 1);
  CHECK(log.Contains("refused the counts of poison@example.test"));
  CHECK(log.Contains("WRONGTYPE"));
}

TEST_CASE("volume counter bounds what waits for Redis and counts what it drops",
          "[redis][volume]") {
  RedisServer redis;
  redis.Stop();
  VolumeOptions o = Options(redis.url());
  o.max_pending = 3;
  VolumeCounter v(o, nullptr);
  REQUIRE(v.Start().ok());
  const int64_t now = NowSeconds();
  for (int i = 0; i < 5; ++i) v.Record(Msg("u" + std::to_string(i) + "@example.test", "", 1, now));
  v.Record(Msg("u0@example.test", "", 1, now));  // an account already waiting still counts
  VolumeStats st = v.stats();
  CHECK(st.pending == 3);
  CHECK(st.dropped == 2);
  CHECK(st.messages == 6);
}

TEST_CASE_METHOD(CountersInRedis,
                 "a late flush counts the day but skips hours past their retention",
                 "[redis][volume]") {
  const int64_t now = NowSeconds();
  const int64_t three_days_ago = now - 3 * 86400;
  VolumeCounter v(Options(redis.url()), nullptr);
  REQUIRE(v.Start().ok());
  v.Record(Msg("erin@example.test", "192.0.2.1", 1, three_days_ago));
  v.Record(Msg("erin@example.test", "192.0.2.1", 1, now - 500 * 86400));  // beyond retention
  v.Stop();
  RedisReply r;
  REQUIRE(c.Command({"EXISTS", k.hour_messages(HourId(three_days_ago))}, &r).ok());
  CHECK(r.integer == 0);
  std::string day = DayId(three_days_ago);
  CHECK(HGet(c, k.month(day.substr(0, 6), "erin@example.test"), day.substr(6)) == "1 1 0");
  std::string ancient = DayId(now - 500 * 86400);
  REQUIRE(c.Command({"EXISTS", k.month(ancient.substr(0, 6), "erin@example.test")}, &r).ok());
  CHECK(r.integer == 0);
}

TEST_CASE_METHOD(CountersInRedis, "ReadTop gives this hour and last hour with change and newcomers",
                 "[redis][volume]") {
  const int64_t now = NowSeconds();
  const std::string h0 = HourId(now), h1 = HourId(now - 3600), h2 = HourId(now - 7200);
  auto zadd = [&](const std::string& hour, const std::string& account, int msgs) {
    REQUIRE(c.Command({"ZADD", k.hour_messages(hour), std::to_string(msgs), account}).ok());
    REQUIRE(c.Command({"ZADD", k.hour_recipients(hour), std::to_string(msgs * 2), account}).ok());
  };
  zadd(h0, "spike@example.test", 600);
  zadd(h0, "steady@example.test", 40);
  zadd(h0, "small@example.test", 1);
  zadd(h1, "steady@example.test", 35);
  zadd(h1, "old@example.test", 20);
  zadd(h2, "steady@example.test", 30);
  REQUIRE(c.Command({"PFADD", k.hour_networks(h0, "spike@example.test"), "a", "b", "c"}).ok());

  TopView top;
  REQUIRE(ReadTop(&c, "v:", now, 2, &top).ok());
  REQUIRE(top.this_hour.rows.size() == 2);
  CHECK(top.this_hour.hour == h0);
  CHECK(top.this_hour.rows[0].account == "spike@example.test");
  CHECK(top.this_hour.rows[0].messages == 600);
  CHECK(top.this_hour.rows[0].recipients == 1200);
  CHECK(top.this_hour.rows[0].networks == 3);
  CHECK(top.this_hour.rows[0].previous == 0);
  CHECK(top.this_hour.rows[0].new_to_top);
  CHECK(top.this_hour.rows[1].account == "steady@example.test");
  CHECK(top.this_hour.rows[1].previous == 35);
  CHECK_FALSE(top.this_hour.rows[1].new_to_top);
  REQUIRE(top.last_hour.rows.size() == 2);
  CHECK(top.last_hour.rows[0].account == "steady@example.test");
  CHECK(top.last_hour.rows[0].previous == 30);
  CHECK_FALSE(top.last_hour.rows[0].new_to_top);
  CHECK(top.last_hour.rows[1].account == "old@example.test");
  CHECK(top.last_hour.rows[1].new_to_top);
}

TEST_CASE("ParseMonthDays reads the day fields and skips malformed ones", "[volume]") {
  auto s = [](const std::string& v) {
    RedisReply r;
    r.type = RedisReply::Type::kString;
    r.str = v;
    return r;
  };
  std::vector<RedisReply> h = {s("25"),    s("3 4 2"), s("24"),    s("1 1 1"), s("junk"),
                               s("9 9 9"), s("31"),    s("5 5 5"), s("26"),    s("garbage")};
  std::vector<DayCounts> days = ParseMonthDays("202611", h);  // November has no 31st
  REQUIRE(days.size() == 2);
  CHECK(days[0].day == "20261124");
  CHECK(days[0].messages == 1);
  CHECK(days[1].day == "20261125");
  CHECK(days[1].messages == 3);
  CHECK(days[1].recipients == 4);
  CHECK(days[1].networks == 2);
  CHECK(NextMonthStart(kT) == 1796083200);                           // 2026-12-01
  CHECK(NextMonthStart(1796083200 + 31 * 86400 - 1) == 1798761600);  // 2027-01-01
}

}  // namespace
}  // namespace compd
