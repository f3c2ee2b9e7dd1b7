#include "compd/detect/retro_replay.h"

#include <catch2/catch.hpp>
#include <set>

#include "compd/detect/retro_hunt.h"
#include "compd/map/entry.h"

namespace compd {
namespace {

constexpr int64_t kDay = int64_t{86400} * 1000;
constexpr int64_t kT0 = int64_t{20000} * kDay + 3600 * 1000;  // 01:00 UTC
constexpr int64_t kWeek = 7 * kDay;

Message Mail(const std::string& node, const std::string& account, const std::string& rcpt,
             int64_t t, const std::string& qid, const std::string& ip) {
  Message m;
  m.node = node;
  m.time_ms = t;
  m.account = account;
  m.recipients = {rcpt};
  m.queue_id = qid;
  m.client_ip = ip;
  return m;
}

std::set<std::string> Accounts(const std::vector<Event>& events) {
  std::set<std::string> out;
  for (const Event& e : events) out.insert(e.account);
  return out;
}

TEST_CASE("retro replay: an entry added during the replay flags who mailed it before",
          "[retro][replay]") {
  RetroReplay retro(kWeek, 100, Matcher::Options());
  // Eight days before: out of the window by the time the entry enters.
  retro.Observe(Mail("mx1", "old@c0.example", "probe@gmx.com", kT0 - 8 * kDay, "Q0", "192.0.2.1"));
  retro.Observe(Mail("mx1", "alice@c1.example", "Probe@GMX.com", kT0, "Q1", "192.0.2.7"));
  retro.Observe(Mail("mx2", "bob@c2.example", "probe@gmx.com", kT0 + 1000, "Q2", "198.51.100.1"));
  retro.Observe(Mail("mx2", "carl@c3.example", "friend@gmx.com", kT0 + 2000, "Q3", "192.0.2.9"));
  RetroReplayResult r;
  REQUIRE(retro.EntryAdded("probe@gmx.com", kT0 + kDay, nullptr, &r).ok());
  REQUIRE(r.finds.size() == 2);
  CHECK(r.over_cap.empty());
  CHECK(Accounts(r.events) == std::set<std::string>{"alice@c1.example", "bob@c2.example"});
  for (const Event& e : r.events) {
    CHECK(e.type == "hit");
    CHECK(e.source == "retro");
    CHECK(e.time == "2024-10-05T01:00:00.000Z");  // when the entry entered
    nlohmann::json ev = nlohmann::json::parse(e.evidence);
    const nlohmann::json& msg = ev["retro"]["messages"][0];
    if (e.account == "bob@c2.example") {
      // Evidence as a node gives it: its node, the time, client IP and queue id.
      CHECK(e.host == "mx2");
      CHECK(msg["node"] == "mx2");
      CHECK(msg["time"] == "2024-10-04T01:00:01.000Z");
      CHECK(msg["client_ip"] == "198.51.100.1");
      CHECK(msg["queue_id"] == "Q2");
    } else {
      CHECK(e.host == "mx1");
      CHECK(msg["queue_id"] == "Q1");
    }
  }
  // An entry already in the map before is no news; a bad entry is an error.
  std::shared_ptr<const Matcher> before;
  Entry e;
  REQUIRE(ParseEntry("probe@gmx.com", &e).ok());
  REQUIRE(Matcher::Build({e}, &before).ok());
  REQUIRE(retro.EntryAdded("probe@gmx.com", kT0 + kDay, before.get(), &r).ok());
  CHECK(r.finds.empty());
  CHECK(r.events.empty());
  CHECK_FALSE(retro.EntryAdded("/(unclosed/", kT0 + kDay, nullptr, &r).ok());
  // The mail of eight days before was forgotten as the logs went on.
  CHECK(retro.stats().messages == 3);
}

TEST_CASE("retro: an entry that matches more accounts than retro_max_accounts flags nobody",
          "[retro][cap]") {
  std::vector<RetroFind> finds;
  for (int i = 0; i < 4; ++i) {
    RetroFind f;
    f.time_ms = kT0 + i;
    f.account = "user" + std::to_string(i) + "@c" + std::to_string(i) + ".example";
    f.recipient = "info@bank.example";
    f.entry = "/@bank\\.example$/";
    f.entry_kind = "pattern";
    finds.push_back(f);
  }
  RetroFind probe;
  probe.time_ms = kT0 + 10;
  probe.account = "user0@c0.example";
  probe.recipient = "probe@gmx.com";
  probe.entry = "probe@gmx.com";
  probe.entry_kind = "exact";
  finds.push_back(probe);
  // The same account in another case counts once.
  probe.account = "USER0@c0.example";
  finds.push_back(probe);

  SECTION("at the cap: everyone flagged") {
    RetroJudgement j = JudgeRetroFinds(finds, false, 4, "mx1");
    CHECK(j.over_cap.empty());
    CHECK(j.events.size() == 5);  // four for the pattern, one for the probe
  }
  SECTION("over it: the entry flags nobody, the others still do, and it is reported") {
    RetroJudgement j = JudgeRetroFinds(finds, false, 3, "mx1");
    REQUIRE(j.over_cap.size() == 1);
    CHECK(j.over_cap[0].entry == "/@bank\\.example$/");
    CHECK(j.over_cap[0].accounts == 4);
    CHECK_FALSE(j.over_cap[0].truncated);
    REQUIRE(j.events.size() == 1);
    CHECK(j.events[0].entry == "probe@gmx.com");
    CHECK(RetroOverCapMessage(j.over_cap[0], 3, kWeek) ==
          "/@bank\\.example$/ matches the mail of 4 accounts in the last 7d, more than "
          "retro_max_accounts (3): not a test address, nobody flagged; mapctl hunt "
          "'/@bank\\.example$/' lists them");
  }
  SECTION("a truncated hunt: any entry of more than one account is over") {
    RetroJudgement j = JudgeRetroFinds(finds, true, 100, "mx1");
    REQUIRE(j.over_cap.size() == 1);
    CHECK(j.over_cap[0].truncated);
    CHECK(RetroOverCapMessage(j.over_cap[0], 100, kWeek).find("4 or more accounts") !=
          std::string::npos);
    REQUIRE(j.events.size() == 1);
    CHECK(j.events[0].entry == "probe@gmx.com");  // one account, twice: not over
  }
  SECTION("in replay, through a hunt of the memory") {
    RetroReplay retro(kWeek, 3, Matcher::Options());
    for (int i = 0; i < 4; ++i) {
      retro.Observe(Mail("mx1", finds[i].account, "info@bank.example", kT0 + i,
                         "Q" + std::to_string(i), "192.0.2.1"));
    }
    RetroReplayResult r;
    REQUIRE(retro.EntryAdded("/@bank\\.example$/", kT0 + 100, nullptr, &r).ok());
    CHECK(r.finds.size() == 4);
    CHECK(r.events.empty());
    REQUIRE(r.over_cap.size() == 1);
    CHECK(r.over_cap[0].accounts == 4);
  }
}

}  // namespace
}  // namespace compd
