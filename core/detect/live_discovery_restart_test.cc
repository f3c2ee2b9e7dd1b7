// Discovery's "first mail" memory across a restart of a node: retro-hunt's files refill it.
#include <catch2/catch.hpp>
#include <chrono>

#include "compd/detect/live_discovery.h"
#include "compd/detect/retro_hunter.h"
#include "compd/testutil/detect.h"
#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::LogCapture;
using testing::NowMs;
using testing::RedisServer;
using testing::TempDir;
using testing::WaitUntil;

constexpr int64_t kDay = int64_t{86400} * 1000;

// The thread's test message, as compd-milter sees it.
Message Test(const std::string& account, const std::string& rcpt, int64_t t) {
  Message m = testing::ThreadTestMessage(account, rcpt, t);
  m.queue_id = "4Zq" + std::to_string(t);
  return m;
}

TEST_CASE("discovery: a pair remembered before is no first mail", "[discovery]") {
  DiscoveryOptions o;
  Discovery d(o);
  d.Remember(Test("Anna@Shop.example", "<Sales@Supplier.example>", 1000));
  CHECK(d.Mailed("anna@shop.example", "sales@supplier.example"));
  Sighting s;
  CHECK_FALSE(
      d.Sight(Test("anna@shop.example", "sales@supplier.example", 2000), 2000, true, {}, &s));
  CHECK(d.stats().test_like == 1);
  CHECK(d.stats().first_mails == 0);
  CHECK(d.Sight(Test("bert@shop.example", "sales@supplier.example", 3000), 3000, true, {}, &s));
}

TEST_CASE("live discovery: after a restart, a long-time contact is not a first mail",
          "[redis][discovery][retro]") {
  RedisServer redis;
  TempDir spool;
  LogCapture log;
  const std::string dir = spool / "retro";
  const int64_t now = NowMs();
  {
    // Before the restart: retro-hunt remembers this node's mail on disk.
    RetroHunterOptions ro;
    ro.dir = dir;
    ro.node = "mx1";
    ro.redis = redis.url();
    RetroHunter retro(ro, log.fn(), [](Event) {});
    REQUIRE(retro.Start().ok());
    retro.Observe(Test("register@a.example", "toeweb@gmx.com", now - 2 * kDay));
    // Older than retro_window: forgotten.
    retro.Observe(Test("old@c.example", "toeweb@gmx.com", now - 8 * kDay));
    retro.Stop();
  }
  LiveDiscoveryOptions o;
  o.discovery.mode = DiscoveryMode::kPropose;
  o.redis = redis.url();
  o.prefix = "t:";
  o.hostname = "mx1";
  o.retry = std::chrono::milliseconds(100);
  o.memory_dir = dir;
  LiveDiscovery live(
      o, {}, [](std::vector<Event>) {}, log.fn());
  REQUIRE(live.Start().ok());
  REQUIRE(WaitUntil([&] { return live.stats().loaded; }, std::chrono::seconds(5)));
  CHECK(live.stats().reloaded == 1);
  CHECK(log.Contains("discovery: who mailed whom, from " + dir + ": 1 messages"));
  live.Observe(Test("register@a.example", "toeweb@gmx.com", now), true);
  CHECK(live.stats().discovery.test_like == 1);
  CHECK(live.stats().discovery.first_mails == 0);
  // An account that never mailed it, and one whose mail was too old: first mails.
  live.Observe(Test("winfield@b.example", "toeweb@gmx.com", now), true);
  live.Observe(Test("old@c.example", "toeweb@gmx.com", now), true);
  CHECK(live.stats().discovery.first_mails == 2);
  live.Stop();
}

TEST_CASE("live discovery: no memory folder yet is an empty memory", "[redis][discovery]") {
  RedisServer redis;
  TempDir spool;
  LogCapture log;
  LiveDiscoveryOptions o;
  o.redis = redis.url();
  o.memory_dir = spool / "retro";
  LiveDiscovery live(
      o, {}, [](std::vector<Event>) {}, log.fn());
  REQUIRE(live.Start().ok());
  REQUIRE(WaitUntil([&] { return live.stats().loaded; }, std::chrono::seconds(5)));
  CHECK(live.stats().reloaded == 0);
  CHECK_FALSE(log.Contains("error"));
  live.Stop();
}

}  // namespace
}  // namespace compd
