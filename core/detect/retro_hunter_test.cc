#include "compd/detect/retro_hunter.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <set>

#include "compd/map/entry.h"
#include "compd/testutil/detect.h"
#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::LogCapture;
using testing::NowMs;
using testing::RedisServer;
using testing::WaitUntil;

Message Mail(const std::string& account, const std::string& rcpt, int64_t t) {
  Message m;
  m.time_ms = t;
  m.account = account;
  m.recipients = {rcpt};
  m.client_ip = "192.0.2.7";
  m.queue_id = "Q" + account.substr(0, account.find('@'));
  return m;
}

std::shared_ptr<const Snapshot> Snap(uint64_t version, const std::vector<Entry>& entries) {
  auto s = std::make_shared<Snapshot>();
  s->version = version;
  s->source = "redis";
  std::shared_ptr<const Matcher> m;
  REQUIRE(Matcher::Build(entries, &m).ok());
  s->matcher = m;
  return s;
}

Entry E(const std::string& text) {
  Entry e;
  REQUIRE(ParseEntry(text, &e).ok());
  return e;
}

TEST_CASE("retro-hunt on a node: retro_max_accounts holds, and the node says why",
          "[redis][retro][cap]") {
  RedisServer redis;
  LogCapture log;
  std::mutex mu;
  std::set<std::string> flagged;
  RetroHunterOptions o;
  o.node = "mx1";
  o.redis = redis.url();
  o.max_accounts = 3;
  RetroHunter retro(o, log.fn(), [&](Event e) {
    std::lock_guard<std::mutex> lock(mu);
    flagged.insert(e.account);
  });
  REQUIRE(retro.Start().ok());
  const int64_t now = NowMs();
  // Four customers mail their bank (a whole domain is no test address); one mails a probe.
  for (int i = 0; i < 4; ++i) {
    retro.Observe(Mail("u" + std::to_string(i) + "@c" + std::to_string(i) + ".example",
                       "info@bank.example", now - 3600 * 1000 + i));
  }
  retro.Observe(Mail("u0@c0.example", "probe@gmx.com", now - 60 * 1000));
  REQUIRE(WaitUntil([&] { return retro.stats().memory.messages == 5; }, std::chrono::seconds(5)));
  MapChangeNote note;
  note.before = Snap(1, {E("listed@bad.example")});
  note.after = Snap(2, {E("listed@bad.example"), E("/@bank\\.example$/"), E("probe@gmx.com")});
  note.added = {E("/@bank\\.example$/"), E("probe@gmx.com")};
  retro.MapChanged(note);
  REQUIRE(WaitUntil([&] { return retro.stats().hunts == 1; }, std::chrono::seconds(5)));
  retro.Stop();
  RetroHunterStats st = retro.stats();
  CHECK(st.over_cap == 1);
  CHECK(st.flagged == 1);
  {
    std::lock_guard<std::mutex> lock(mu);
    CHECK(flagged == std::set<std::string>{"u0@c0.example"});  // for the probe only
  }
  CHECK(log.Contains(
      "retro: /@bank\\.example$/ matches the mail of 4 accounts in the last 7d, more than "
      "retro_max_accounts (3): not a test address, nobody flagged; mapctl hunt "
      "'/@bank\\.example$/' lists them"));
  CHECK(log.Contains("flagging u0@c0.example"));
}

}  // namespace
}  // namespace compd
