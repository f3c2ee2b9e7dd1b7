#include "compd/detect/live_discovery.h"

#include <catch2/catch.hpp>
#include <chrono>

#include "compd/base/keys.h"
#include "compd/detect/candidate_store.h"
#include "compd/map/map_store.h"
#include "compd/testutil/detect.h"
#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::LogCapture;
using testing::RedisServer;
using testing::WaitUntil;

constexpr int64_t kT0 = int64_t{1776000000} * 1000;
constexpr int64_t kMin = 60 * 1000;
const std::string kPrefix = "t:";

// The thread's test message, as compd-milter sees it (no size).
Message Test(const std::string& account, const std::string& rcpt, const std::string& node,
             int64_t t) {
  Message m = testing::ThreadTestMessage(account, rcpt, t, node);
  m.queue_id = "4Zq" + node;
  return m;
}

Sighting At(const std::string& account, const std::string& rcpt, int64_t t) {
  Sighting s;
  s.recipient = rcpt;
  s.account = account;
  s.domain = account.substr(account.find('@') + 1);
  s.time_ms = t;
  s.helo = "localhost";
  s.node = "mx1";
  return s;
}

LiveDiscoveryOptions Options(const RedisServer& redis, DiscoveryMode mode,
                             const std::string& node) {
  LiveDiscoveryOptions o;
  o.discovery.mode = mode;
  o.redis = redis.url();
  o.prefix = kPrefix;
  o.hostname = node;
  o.retry = std::chrono::milliseconds(100);
  return o;
}

TEST_CASE("shared sightings: every node's meet, one per account, within the window",
          "[redis][discovery]") {
  RedisServer redis;
  RedisClient c(redis.url());
  CandidateStore store(&c, kPrefix);
  const int64_t window = 3600 * 1000;
  SightResult r;
  REQUIRE(store.Sight(At("a@one.example", "t@gmx.com", kT0), window, &r).ok());
  CHECK_FALSE(r.known);
  REQUIRE(r.sightings.size() == 1);
  // The same account again counts once, with its first sighting.
  REQUIRE(store.Sight(At("A@one.example", "t@gmx.com", kT0 + kMin), window, &r).ok());
  REQUIRE(r.sightings.size() == 1);
  CHECK(r.sightings[0].time_ms == kT0);
  Sighting b = At("b@two.example", "t@gmx.com", kT0 + 2 * kMin);
  b.node = "mx2";
  b.subject = "ZYaeD, X ";
  b.size = 735;
  REQUIRE(store.Sight(b, window, &r).ok());
  REQUIRE(r.sightings.size() == 2);
  CHECK(r.sightings[0].account == "a@one.example");
  CHECK(r.sightings[1].node == "mx2");
  CHECK(r.sightings[1].subject == "ZYaeD, X ");
  CHECK(r.sightings[1].size == 735);
  CHECK(r.sightings[1].domain == "two.example");
  Candidate cand;
  CHECK(Candidate::Completes(r.sightings, 2, kT0 + 2 * kMin, &cand));
  CHECK(cand.recipient == "t@gmx.com");
  // Older than the window: dropped at the next write.
  REQUIRE(store.Sight(At("c@three.example", "t@gmx.com", kT0 + 2 * window), window, &r).ok());
  REQUIRE(r.sightings.size() == 1);
  CHECK(r.sightings[0].account == "c@three.example");
  RedisReply ttl;
  REQUIRE(c.Command({"PTTL", Keys(kPrefix).discovery_sightings("t@gmx.com")}, &ttl).ok());
  CHECK(ttl.integer > 0);
  CHECK(ttl.integer <= window);

  // Known recipients take no sightings: waiting, rejected, in the map.
  bool stored = false;
  REQUIRE(store.Propose(cand, &stored).ok());
  REQUIRE(store.Sight(At("d@four.example", "t@gmx.com", kT0 + 2 * window), window, &r).ok());
  CHECK(r.known);
  CHECK(r.sightings.empty());
  bool waited = false;
  REQUIRE(store.Reject("r@gmx.com", "ops", 1, &waited).ok());
  REQUIRE(store.Sight(At("d@four.example", "r@gmx.com", kT0), window, &r).ok());
  CHECK(r.known);
  REQUIRE(c.Command({"HSET", Keys(kPrefix).exact(), "m@gmx.com", "{}"}).ok());
  REQUIRE(store.Sight(At("d@four.example", "m@gmx.com", kT0), window, &r).ok());
  CHECK(r.known);
  REQUIRE(store.DropSightings("t@gmx.com").ok());
}

TEST_CASE("shared sightings: a recipient keeps at most kMaxSharedSightings", "[redis][discovery]") {
  RedisServer redis;
  RedisClient c(redis.url());
  CandidateStore store(&c, kPrefix);
  SightResult r;
  for (size_t i = 0; i <= CandidateStore::kMaxSharedSightings; ++i) {
    const std::string account = "u@c" + std::to_string(i) + ".example";
    REQUIRE(store.Sight(At(account, "list@gmx.com", kT0 + static_cast<int64_t>(i)), kMin, &r).ok());
  }
  CHECK(r.sightings.size() == CandidateStore::kMaxSharedSightings);
  CHECK(r.sightings.front().account == "u@c1.example");  // the oldest went
}

TEST_CASE("live discovery: two nodes' sightings propose one candidate", "[redis][discovery]") {
  RedisServer redis;
  LogCapture log;
  std::vector<Event> hits;
  auto collect = [&hits](std::vector<Event> e) {
    for (Event& x : e) hits.push_back(std::move(x));
  };
  LiveDiscovery one(Options(redis, DiscoveryMode::kPropose, "mx1"), {}, collect, log.fn());
  LiveDiscovery two(Options(redis, DiscoveryMode::kPropose, "mx2"), {}, collect, log.fn());
  REQUIRE(one.Start().ok());
  REQUIRE(two.Start().ok());
  // Colleagues of one customer, one through each node: nothing.
  one.Observe(Test("anna@shop.example", "sales@supplier.example", "mx1", kT0), false);
  two.Observe(Test("bert@shop.example", "sales@supplier.example", "mx2", kT0 + kMin), false);
  one.Observe(Test("register@a.example", "toeweb@gmx.com", "mx1", kT0), false);
  two.Observe(Test("winfield@b.example", "toeweb@gmx.com", "mx2", kT0 + 18000), false);
  RedisClient c(redis.url());
  CandidateStore store(&c, kPrefix);
  nlohmann::json ev;
  REQUIRE(
      WaitUntil([&] { return store.Get("toeweb@gmx.com", &ev).ok(); }, std::chrono::seconds(5)));
  CHECK(ev["domains"] == 2);
  REQUIRE(ev["sightings"].size() == 2);
  CHECK(ev["sightings"][0]["node"] == "mx1");
  CHECK(ev["sightings"][1]["node"] == "mx2");
  one.Stop();
  two.Stop();
  CHECK(one.stats().sightings + two.stats().sightings == 4);
  CHECK(one.stats().candidates + two.stats().candidates == 1);
  CHECK(log.Contains("toeweb@gmx.com proposed as a test recipient"));
  std::vector<nlohmann::json> list;
  REQUIRE(store.List(&list).ok());
  CHECK(list.size() == 1);
  CHECK(hits.empty());  // proposing flags nobody
  RedisReply gone;
  REQUIRE(c.Command({"EXISTS", Keys(kPrefix).discovery_sightings("toeweb@gmx.com")}, &gone).ok());
  CHECK(gone.integer == 0);
}

TEST_CASE("live discovery: add puts the recipient in the map and hands over the hits",
          "[redis][discovery]") {
  RedisServer redis;
  LogCapture log;
  std::mutex mu;
  std::vector<Event> hits;
  auto collect = [&](std::vector<Event> e) {
    std::lock_guard<std::mutex> lock(mu);
    for (Event& x : e) hits.push_back(std::move(x));
  };
  LiveDiscovery one(Options(redis, DiscoveryMode::kAdd, "mx1"), {}, collect, log.fn());
  REQUIRE(one.Start().ok());
  // Redis goes away under the first sighting: it waits and is sent once Redis is back.
  redis.Stop();
  one.Observe(Test("register@a.example", "toeweb@gmx.com", "mx1", kT0), false);
  one.Observe(Test("winfield@b.example", "toeweb@gmx.com", "mx1", kT0 + kMin), false);
  REQUIRE(WaitUntil([&] { return one.stats().redis_errors > 0; }, std::chrono::seconds(5)));
  redis.Start();
  RedisClient c(redis.url());
  MapStore map(&c, kPrefix);
  MapState state;
  REQUIRE(WaitUntil([&] { return map.Load(&state).ok() && state.entries.size() == 1; },
                    std::chrono::seconds(5)));
  one.Stop();
  CHECK(state.entries[0].entry.text == "toeweb@gmx.com");
  CHECK(state.entries[0].meta.source == "discovered");
  CHECK(state.entries[0].meta.added_by == "discovery@mx1");
  nlohmann::json note = nlohmann::json::parse(state.entries[0].meta.note);
  CHECK(note["sightings"].size() == 2);
  REQUIRE(hits.size() == 2);
  CHECK(hits[0].type == "hit");
  CHECK(hits[0].id == "discovered:toeweb@gmx.com:register@a.example");
  CHECK(hits[1].account == "winfield@b.example");
  CHECK(log.Contains("added to the map as a test recipient"));
  CHECK(log.Contains("Redis answers again"));
}

TEST_CASE("live discovery: off starts nothing", "[discovery]") {
  LiveDiscoveryOptions o;
  o.discovery.mode = DiscoveryMode::kOff;
  LiveDiscovery d(o, {}, {}, {});
  REQUIRE(d.Start().ok());
  d.Observe(Test("register@a.example", "toeweb@gmx.com", "mx1", kT0), false);
  d.Stop();
  CHECK(d.stats().sightings == 0);
  CHECK(d.stats().dropped == 0);
}

}  // namespace
}  // namespace compd
