// The live detection state: loading stored groups (pure), and two nodes sharing them
// through a real redis-server (started and stopped by the tests themselves).
#include "compd/detect/redis_detect_state.h"

#include <catch2/catch.hpp>
#include <set>

#include "compd/base/keys.h"
#include "compd/detect/engine.h"
#include "compd/testutil/detect.h"
#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::NowMs;
using testing::RedisServer;
using testing::WaitUntil;

constexpr int64_t kMin = 60 * 1000;
constexpr int64_t kDay = 24 * 60 * kMin;
constexpr int64_t kHour = 60 * kMin;

std::set<std::string> RecentGroups(const AccountState& a) {
  std::set<std::string> out;
  for (const RecentNewGroup& r : a.recent) out.insert(r.group);
  return out;
}

StoredGroup Stored(const std::string& group, int64_t first, int64_t last) {
  StoredGroup g;
  g.group = group;
  g.network = group;
  g.first_ms = first;
  g.last_ms = last;
  return g;
}

TEST_CASE("stored groups: a long-known group used again lately is not new", "[detect]") {
  const int64_t now = 1764547200000;
  AccountState a;
  // Home and office for months, both used (and so written again) in the last hour; two
  // groups first used in the last hour.
  std::vector<StoredGroup> groups = {
      Stored("203.0.0.0/16", now - 100 * kDay, now - 10 * kMin),
      Stored("198.51.0.0/16", now - 50 * kDay, now - 5 * kMin),
      Stored("192.0.0.0/16", now - 20 * kMin, now - 20 * kMin),
      Stored("100.64.0.0/16", now - 10 * kMin, now - 2 * kMin),
  };
  CHECK(MergeStoredGroups(&a, groups, now, kHour) == 2);
  CHECK(RecentGroups(a) == std::set<std::string>{"192.0.0.0/16", "100.64.0.0/16"});
  CHECK(a.groups.size() == 4);
  CHECK(a.groups["203.0.0.0/16"].first_ms == now - 100 * kDay);
  CHECK(a.groups["203.0.0.0/16"].last_ms == now - 10 * kMin);
  CHECK(a.groups["100.64.0.0/16"].last_ms == now - 2 * kMin);
  CHECK(a.first_ms == now - 100 * kDay);
  // Loading again (Redis came back) changes nothing.
  CHECK(MergeStoredGroups(&a, groups, now, kHour) == 0);
  CHECK(a.recent.size() == 2);

  // A brand-new account: its first group is its history, not new.
  AccountState b;
  CHECK(MergeStoredGroups(&b,
                          {Stored("203.0.0.0/16", now - 30 * kMin, now - 30 * kMin),
                           Stored("198.51.0.0/16", now - 5 * kMin, now - 5 * kMin)},
                          now, kHour) == 1);
  CHECK(RecentGroups(b) == std::set<std::string>{"198.51.0.0/16"});
}

TEST_CASE("a group another node saw without the account's history is new here", "[detect]") {
  const int64_t now = 1764547200000;
  auto use = [](const std::string& group, int64_t t, bool was_new) {
    GroupUse u;
    u.group = group;
    u.network = group;
    u.client_ip = "192.0.2.1";
    u.time_ms = t;
    u.was_new = was_new;
    return u;
  };
  AccountState a;  // this node knows the account's home for months
  REQUIRE_FALSE(MergeGroupUse(&a, use("203.0.0.0/16", now - 90 * kDay, false), now, kHour));
  // Node b saw the account for the first time from 192.0/16: not new to b.
  CHECK(MergeGroupUse(&a, use("192.0.0.0/16", now - 5 * kMin, false), now, kHour));
  CHECK(RecentGroups(a) == std::set<std::string>{"192.0.0.0/16"});
  // Known groups used again (b's refresh of home) and old uses stay out.
  CHECK_FALSE(MergeGroupUse(&a, use("203.0.0.0/16", now - kMin, false), now, kHour));
  CHECK_FALSE(MergeGroupUse(&a, use("198.51.0.0/16", now - 2 * kHour, false), now, kHour));
  CHECK(RecentGroups(a) == std::set<std::string>{"192.0.0.0/16"});
  // An account this node never saw: its first group is history, not new.
  AccountState fresh;
  CHECK_FALSE(MergeGroupUse(&fresh, use("192.0.0.0/16", now - 5 * kMin, false), now, kHour));
  CHECK(fresh.recent.empty());
}

TEST_CASE("stored groups: the hash value is parsed strictly", "[detect]") {
  StoredGroup g;
  REQUIRE(ParseStoredGroup("203.0.0.0/16", "1000 2000 203.0.113.0/24", &g));
  CHECK(g.first_ms == 1000);
  CHECK(g.last_ms == 2000);
  CHECK(g.network == "203.0.113.0/24");
  REQUIRE(ParseStoredGroup("203.0.0.0/16", "1000 2000", &g));  // `history import` may omit it
  CHECK(g.network.empty());
  REQUIRE(ParseStoredGroup("203.0.0.0/16", "3000 2000 n", &g));
  CHECK(g.last_ms == 3000);  // never before the first use
  CHECK_FALSE(ParseStoredGroup("203.0.0.0/16", "", &g));
  CHECK_FALSE(ParseStoredGroup("203.0.0.0/16", "x 2000 n", &g));
  CHECK_FALSE(ParseStoredGroup("203.0.0.0/16", "1000", &g));
  CHECK_FALSE(ParseStoredGroup("203.0.0.0/16", "1000 y", &g));
  CHECK_FALSE(ParseStoredGroup("", "1000 2000 n", &g));
}

// One node: its state, its engine, and the reactions its sync thread raised.
struct Node {
  Node(const RedisServer& redis, const std::string& name, const Config& config = Config()) {
    RedisDetectOptions o;
    o.redis = redis.url();
    o.prefix = "t:";
    o.node = name;
    o.sync_interval = std::chrono::milliseconds(50);
    o.redis_timeout = std::chrono::milliseconds(1000);
    state = std::make_shared<RedisDetectState>(o, nullptr);
    EngineOptions eo;
    REQUIRE(EngineOptions::FromConfig(config, &eo).ok());
    engine = std::make_unique<Engine>(eo, state);
    state->SetOnRemote([this](const std::string& key) {
      std::vector<Reaction> rs = engine->Reevaluate(key, NowMs());
      std::lock_guard<std::mutex> lock(mu);
      for (Reaction& r : rs) remote.push_back(std::move(r));
    });
    REQUIRE(state->Start().ok());
  }
  ~Node() { state->Stop(); }
  std::vector<Reaction> Send(const std::string& ip, int64_t t,
                             const std::string& helo = "laptop.home.example", int64_t size = -1) {
    Message m;
    m.account = "alice@customer.example";
    m.client_ip = ip;
    m.helo = helo;
    m.size = size;
    m.subject = "Re: dinner";
    m.recipients = {"bob@partner.example"};
    return engine->Observe(m, t);
  }
  std::vector<Reaction> Remote() {
    std::lock_guard<std::mutex> lock(mu);
    return remote;
  }
  std::shared_ptr<RedisDetectState> state;
  std::unique_ptr<Engine> engine;
  std::mutex mu;
  std::vector<Reaction> remote;
};

bool NewNetworks(const std::vector<Reaction>& rs, size_t count) {
  return rs.size() == 1 && rs[0].signals.size() == 1 &&
         rs[0].signals[0].id == SignalId::kNewNetworks &&
         rs[0].signals[0].evidence.value("count", size_t{0}) == count;
}

TEST_CASE("a restarted node judges its first message with the groups it loaded",
          "[redis][detect]") {
  RedisServer redis;
  const int64_t now = NowMs();
  {
    Node a(redis, "a");
    a.Send("203.0.113.7", now - 2 * kDay);  // home
    a.Send("192.0.2.1", now - 2 * kMin);    // new 1
    a.Send("45.67.1.1", now - kMin);        // new 2
  }                                         // stops: one last write
  // A long-known group written again in the last hour (a refresh) must not count as new.
  RedisClient c(redis.url());
  REQUIRE(MergeKnownGroups(&c, "t:", "alice@customer.example",
                           {{"198.51.0.0/16", KnownGroup{now - 90 * kDay, now - 5 * kMin}}},
                           {"198.51.100.0/24"}, 120 * kDay)
              .ok());

  Node b(redis, "b");  // Start() returns with the state loaded: no wait
  CHECK(b.state->stats().loaded);
  CHECK(b.Send("198.51.100.20", now).empty());         // the office: known
  std::vector<Reaction> rs = b.Send("81.2.0.1", now);  // new 3
  REQUIRE(NewNetworks(rs, 3));
  std::set<std::string> groups;
  for (const auto& n : rs[0].signals[0].evidence["new"]) groups.insert(n["group"]);
  CHECK(groups == std::set<std::string>{"192.0.0.0/16", "45.67.0.0/16", "81.2.0.0/16"});
}

TEST_CASE("groups seen by another node complete new_networks within two sync intervals",
          "[redis][detect]") {
  RedisServer redis;
  Node a(redis, "a"), b(redis, "b");
  const int64_t now = NowMs();
  a.Send("203.0.113.7", now - 10 * kMin);
  b.Send("203.0.113.7", now - 9 * kMin);  // both know the account
  CHECK(a.Send("192.0.2.1", now - 2).empty());
  CHECK(b.Send("45.67.1.1", now - 1).empty());
  // Fires here only if b's group arrived already.
  std::vector<Reaction> local = a.Send("81.2.0.1", now);
  CHECK(local.size() <= 1);
  // Both nodes end up with the same three groups; each raises the reaction at most once,
  // and the event ids agree, so the recorder writes it once.
  REQUIRE(WaitUntil([&] {
    bool a_has = false, b_has = false;
    a.state->WithAccount("alice@customer.example",
                         [&](AccountState& s) { a_has = s.recent.size() == 3; });
    b.state->WithAccount("alice@customer.example",
                         [&](AccountState& s) { b_has = s.recent.size() == 3; });
    return a_has && b_has && !b.Remote().empty();
  }));
  std::vector<Reaction> from_b = b.Remote();
  REQUIRE(NewNetworks(from_b, 3));
  CHECK(from_b[0].kind == ReactionKind::kFlag);  // the default reaction
  std::set<std::string> ids = {from_b[0].ToEvent().id};
  for (const Reaction& r : a.Remote()) ids.insert(r.ToEvent().id);
  for (const Reaction& r : local) ids.insert(r.ToEvent().id);
  CHECK(ids.size() == 1);
}

bool Combined(const std::vector<Reaction>& rs) {
  for (const Reaction& r : rs) {
    if (r.signals.size() == 1 && r.signals[0].id == SignalId::kCombined) return true;
  }
  return false;
}

size_t WindowSize(Node& n) {
  size_t size = 0;
  n.state->WithAccount("alice@customer.example",
                       [&](AccountState& s) { size = s.window.entries.size(); });
  return size;
}

TEST_CASE("the signal window is shared by the nodes and survives a restart", "[redis][detect]") {
  RedisServer redis;
  Config config;
  REQUIRE(config.Set("combined_flag_score", "6", "test").ok());
  const int64_t now = NowMs();
  {
    Node a(redis, "a", config), b(redis, "b", config);
    a.Send("203.0.113.7", now - 2 * kDay);
    b.Send("203.0.113.7", now - 2 * kDay + 1);  // both know the account's home
    // On a, a weak test (small, localhost HELO: 4 points) from home: test_message 4 of 6.
    CHECK(a.Send("203.0.113.7", now - kMin, "localhost", 600).empty());
    REQUIRE(WaitUntil([&] { return WindowSize(b) == 1; }));  // within two sync intervals
    // On b, one new network (2 of 6): together 6, with b's own view alone it would be 2.
    std::vector<Reaction> local = b.Send("45.67.1.1", now);
    REQUIRE(Combined(local));
    const nlohmann::json& c = local.back().signals[0].evidence["contributions"];
    REQUIRE(c.size() == 2);
    CHECK(c[0]["signal"] == "test_message");
    CHECK(c[0]["evidence"]["helo"] == "localhost");
    CHECK(c[1]["signal"] == "new_networks");
    // a learns b's network and raises the same reaction: the same event id, written once.
    REQUIRE(WaitUntil([&] { return Combined(a.Remote()); }));
    CHECK(a.Remote().back().ToEvent().id == local.back().ToEvent().id);
  }  // both stop: one last write
  Node c(redis, "c", config);
  CHECK(WindowSize(c) == 2);
}

}  // namespace
}  // namespace compd
