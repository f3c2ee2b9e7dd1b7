#include "compd/detect/recipient_memory.h"

#include <catch2/catch.hpp>

#include "compd/detect/recipient_journal.h"
#include "compd/detect/retro_hunt.h"
#include "compd/map/entry.h"
#include "compd/testutil/redis.h"
#include "compd/testutil/tripwire.h"

namespace compd {
namespace {

constexpr int64_t kDay = int64_t{86400} * 1000;
constexpr int64_t kT0 = int64_t{20000} * kDay + 3600 * 1000;  // 01:00 UTC

Message Mail(const std::string& account, std::vector<std::string> rcpts, int64_t t,
             const std::string& qid, const std::string& ip = "192.0.2.7") {
  Message m;
  m.time_ms = t;
  m.account = account;
  m.recipients = std::move(rcpts);
  m.queue_id = qid;
  m.client_ip = ip;
  return m;
}

using testing::BuildMatcher;

TEST_CASE("recipient memory: an exact entry finds who mailed it, with the evidence", "[retro]") {
  RecipientMemory mem;
  mem.Add(Mail("alice@c1.example", {"<Probe@GMX.com>", "friend@x.example"}, kT0, "Q1"));
  mem.Add(Mail("bob@c2.example", {"friend@x.example"}, kT0 + 1000, "Q2", "198.51.100.1"));
  mem.Add(Mail("bob@c2.example", {"probe@gmx.com"}, kT0 + kDay, "Q3", "198.51.100.1"));
  auto finds = mem.Hunt(*BuildMatcher({"probe@gmx.com"}), nullptr, 0, 100);
  REQUIRE(finds.size() == 2);
  CHECK(finds[0].account == "alice@c1.example");
  CHECK(finds[0].recipient == "Probe@GMX.com");  // as the MTA passed it, brackets gone
  CHECK(finds[0].queue_id == "Q1");
  CHECK(finds[0].client_ip == "192.0.2.7");
  CHECK(finds[0].time_ms == kT0);
  CHECK(finds[0].entry == "probe@gmx.com");
  CHECK(finds[0].entry_kind == "exact");
  CHECK(finds[1].account == "bob@c2.example");
  CHECK(finds[1].queue_id == "Q3");
  // since: only the second day's mail.
  CHECK(mem.Hunt(*BuildMatcher({"probe@gmx.com"}), nullptr, kT0 + 1, 100).size() == 1);
  // Nobody mailed it.
  CHECK(mem.Hunt(*BuildMatcher({"other@gmx.com"}), nullptr, 0, 100).empty());
  RecipientMemoryStats st = mem.stats();
  CHECK(st.messages == 3);
  CHECK(st.pairs == 4);
  CHECK(st.recipients == 3);  // Probe@GMX.com and probe@gmx.com are two strings
  CHECK(st.accounts == 2);
  CHECK(st.days == 2);
  CHECK(st.oldest_ms == kT0);
}

TEST_CASE("recipient memory: patterns, the map before, limits", "[retro]") {
  RecipientMemory mem;
  mem.Add(Mail("a@c.example", {"promo-1@spam.example"}, kT0, "Q1"));
  mem.Add(Mail("b@c.example", {"promo-2@spam.example"}, kT0 + 1, "Q2"));
  mem.Add(Mail("c@c.example", {"promo@spam.example"}, kT0 + 2, "Q3"));
  auto re = BuildMatcher({"/^promo-[0-9]+@spam\\.example$/"});
  auto finds = mem.Hunt(*re, nullptr, 0, 100);
  REQUIRE(finds.size() == 2);
  CHECK(finds[1].entry_kind == "pattern");
  // What the map already matched is not new.
  CHECK(mem.Hunt(*re, BuildMatcher({"promo-1@spam.example"}).get(), 0, 100).size() == 1);
  bool truncated = false;
  CHECK(mem.Hunt(*re, nullptr, 0, 1, &truncated).size() == 1);
  CHECK(truncated);
}

TEST_CASE("recipient memory: forgetting drops whole days and their strings", "[retro]") {
  RecipientMemory mem;
  mem.Add(Mail("old@c.example", {"gone@x.example"}, kT0, "Q1"));
  mem.Add(Mail("new@c.example", {"kept@x.example"}, kT0 + 2 * kDay, "Q2"));
  CHECK(mem.Forget(kT0 + kDay) == 1);
  RecipientMemoryStats st = mem.stats();
  CHECK(st.messages == 1);
  CHECK(st.recipients == 1);
  CHECK(st.accounts == 1);
  CHECK(mem.Hunt(*BuildMatcher({"gone@x.example"}), nullptr, 0, 100).empty());
  auto finds = mem.Hunt(*BuildMatcher({"kept@x.example"}), nullptr, 0, 100);
  REQUIRE(finds.size() == 1);
  CHECK(finds[0].account == "new@c.example");
  CHECK(finds[0].queue_id == "Q2");
  CHECK(mem.Forget(kT0 + kDay) == 0);
}

TEST_CASE("recipient memory: forgetting on a copy leaves the memory as it was", "[retro]") {
  RecipientMemory mem;
  mem.Add(Mail("old@c.example", {"gone@x.example", "kept@x.example"}, kT0, "Q1"));
  mem.Add(Mail("new@c.example", {"kept@x.example"}, kT0 + 2 * kDay, "Q2", "198.51.100.4"));
  size_t dropped = 9;
  CHECK(mem.Without(kT0, &dropped) == nullptr);  // no day is that old
  CHECK(dropped == 0);
  std::unique_ptr<RecipientMemory> next = mem.Without(kT0 + kDay, &dropped);
  REQUIRE(next != nullptr);
  CHECK(dropped == 1);
  // The original still answers in full (readers use it until the swap).
  CHECK(mem.stats().messages == 2);
  CHECK(mem.Hunt(*BuildMatcher({"gone@x.example"}), nullptr, 0, 100).size() == 1);
  // The copy has what Forget would keep, its strings rebuilt.
  RecipientMemoryStats st = next->stats();
  CHECK(st.messages == 1);
  CHECK(st.recipients == 1);
  CHECK(st.accounts == 1);
  CHECK(st.client_ips == 1);
  CHECK(next->Hunt(*BuildMatcher({"gone@x.example"}), nullptr, 0, 100).empty());
  auto finds = next->Hunt(*BuildMatcher({"kept@x.example"}), nullptr, 0, 100);
  REQUIRE(finds.size() == 1);
  CHECK(finds[0].account == "new@c.example");
  CHECK(finds[0].client_ip == "198.51.100.4");
  CHECK(finds[0].queue_id == "Q2");
  // And it keeps growing like the original.
  next->Add(Mail("more@c.example", {"kept@x.example"}, kT0 + 2 * kDay + 5, "Q3"));
  CHECK(next->Hunt(*BuildMatcher({"kept@x.example"}), nullptr, 0, 100).size() == 2);
}

TEST_CASE("recipient journal: what was appended comes back after a restart", "[retro]") {
  testing::TempDir dir;
  const std::string folder = dir / "retro";
  {
    RecipientJournal j(folder);
    REQUIRE(j.Open().ok());
    REQUIRE(j.Append({Mail("a@c.example", {"x@y.example", "z@y.example"}, kT0, "Q1"),
                      Mail("b\tc@c.example", {"x@y.example"}, kT0 + kDay, "Q\n2")})
                .ok());
  }
  // A torn last line (a crash in the middle of a write) is skipped, and the next record
  // still starts a line of its own.
  {
    FILE* f = fopen((folder + "/" + "2024-10-05.tsv").c_str(), "a");
    REQUIRE(f != nullptr);
    fputs("123\ttorn", f);
    fclose(f);
    RecipientJournal j(folder);
    REQUIRE(j.Append({Mail("c@c.example", {"w@y.example"}, kT0 + kDay + 5, "Q3")}).ok());
  }
  RecipientJournal j(folder);
  std::vector<Message> got;
  size_t bad = 0;
  REQUIRE(j.Load(
               0, [&](const Message& m) { got.push_back(m); }, &bad)
              .ok());
  CHECK(bad == 1);
  REQUIRE(got.size() == 3);
  CHECK(got[0].recipients == std::vector<std::string>{"x@y.example", "z@y.example"});
  CHECK(got[1].account == "b?c@c.example");  // a control character cannot split a line
  CHECK(got[1].queue_id == "Q?2");
  CHECK(got[2].account == "c@c.example");
  size_t deleted = 0;
  REQUIRE(j.Forget(kT0 + kDay, &deleted).ok());
  CHECK(deleted == 1);
  got.clear();
  REQUIRE(j.Load(
               0, [&](const Message& m) { got.push_back(m); }, &bad)
              .ok());
  CHECK(got.size() == 2);
}

TEST_CASE("retro-hunt: one event per entry and account, the same id on every node", "[retro]") {
  RetroFind f;
  f.time_ms = kT0;
  f.account = "Alice@C.example";
  f.recipient = "probe@gmx.com";
  f.client_ip = "192.0.2.7";
  f.queue_id = "Q1";
  f.entry = "probe@gmx.com";
  f.entry_kind = "exact";
  RetroFind g = f;
  g.time_ms = kT0 + 1000;
  g.queue_id = "Q2";
  auto a = RetroHitEvents({f, g}, "mx1");
  auto b = RetroHitEvents({g}, "mx2");
  REQUIRE(a.size() == 1);
  REQUIRE(b.size() == 1);
  CHECK(a[0].id == "retro:probe@gmx.com:alice@c.example");
  CHECK(a[0].id == b[0].id);
  CHECK(a[0].type == "hit");
  CHECK(a[0].queue_id == "Q2");  // the newest
  CHECK(a[0].evidence.find("\"Q1\"") != std::string::npos);
  HuntRequest r{"ab", "/x/", 5, 6}, back;
  REQUIRE(HuntRequest::FromJson(r.ToJson(), &back));
  CHECK((back.id == "ab" && back.entry == "/x/" && back.since_ms == 5 && back.at_ms == 6));
  CHECK_FALSE(HuntRequest::FromJson("{\"id\":1}", &back));
}

}  // namespace
}  // namespace compd
