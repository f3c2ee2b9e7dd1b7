#include "compd/events/spool.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::ReadFileOrEmpty;
using testing::TempDir;

Event Ev(const std::string& id) {
  Event e;
  e.id = id;
  e.time = "2026-11-26T18:44:48.123Z";
  e.account = "acct-" + id;
  e.recipient = "x@bad.example";
  return e;
}

std::vector<std::string> Ids(const std::vector<Event>& events) {
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.id);
  return ids;
}

TEST_CASE("spool parser reads events in order and names unreadable lines", "[spool]") {
  std::string text = Ev("a").ToJson() + "\n" + "\n" + "{\"id\":\"b\",\"acc\n" + Ev("c").ToJson() +
                     "\n" + "{\"account\":\"no id\"}\n" + "[\"not an object\"]\n" +
                     Ev("d").ToJson() + "\n" + "{\"id\":\"e\",\"ti";
  SpoolContents c = ParseSpool(text, "spool/events.spool");
  CHECK(Ids(c.events) == std::vector<std::string>{"a", "c", "d"});
  CHECK(c.lines == 7);
  REQUIRE(c.problems.size() == 4);
  CHECK(c.problems[0].rfind("spool/events.spool:3: skipped unreadable event", 0) == 0);
  CHECK(c.problems[1].rfind("spool/events.spool:5: skipped unreadable event: event without an id",
                            0) == 0);
  CHECK(c.problems[2].rfind("spool/events.spool:6:", 0) == 0);
  CHECK(c.problems[3].rfind("spool/events.spool:8:", 0) == 0);
  CHECK(c.problems[3].find("truncated last line") != std::string::npos);
}

TEST_CASE("spool parser accepts a complete last line without newline", "[spool]") {
  SpoolContents c = ParseSpool(Ev("a").ToJson() + "\n" + Ev("b").ToJson(), "f");
  CHECK(Ids(c.events) == std::vector<std::string>{"a", "b"});
  CHECK(c.problems.empty());
  CHECK(ParseSpool("", "f").events.empty());
}

TEST_CASE("spool appends durably, privately, and replays oldest first", "[spool]") {
  TempDir tmp;
  std::string dir = tmp / "spool";  // created by Open
  Spool spool(dir);
  REQUIRE(spool.Open().ok());
  CHECK_FALSE(spool.pending());
  SpoolContents c;
  CHECK(spool.BeginReplay(&c).IsNotFound());

  REQUIRE(spool.Append({Ev("1"), Ev("2")}).ok());
  REQUIRE(spool.Append({Ev("3")}).ok());
  CHECK(spool.depth() == 3);
  struct stat st;
  REQUIRE(stat(spool.path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);

  REQUIRE(spool.BeginReplay(&c).ok());
  CHECK(Ids(c.events) == std::vector<std::string>{"1", "2", "3"});
  // Events arriving during the replay go to a fresh file, not into the one being read.
  REQUIRE(spool.Append({Ev("4")}).ok());
  CHECK(spool.depth() == 4);

  // An interrupted replay (outage) leaves the replay file; it comes back first, again.
  Spool again(dir);
  REQUIRE(again.Open().ok());
  CHECK(again.depth() == 4);
  REQUIRE(again.BeginReplay(&c).ok());
  CHECK(Ids(c.events) == std::vector<std::string>{"1", "2", "3"});
  REQUIRE(again.FinishReplay().ok());
  CHECK(again.depth() == 1);
  REQUIRE(again.BeginReplay(&c).ok());
  CHECK(Ids(c.events) == std::vector<std::string>{"4"});
  REQUIRE(again.FinishReplay().ok());
  CHECK_FALSE(again.pending());
  CHECK(again.BeginReplay(&c).IsNotFound());
  CHECK(ReadFileOrEmpty(again.replay_path()).empty());
}

TEST_CASE("spool append after a torn last line does not glue events together", "[spool]") {
  TempDir tmp;
  Spool spool(tmp.path());
  REQUIRE(spool.Open().ok());
  {
    std::ofstream out(spool.path(), std::ios::binary);
    std::string whole = Ev("old").ToJson();
    out << Ev("first").ToJson() << "\n" << whole.substr(0, whole.size() / 2);
  }
  REQUIRE(spool.Open().ok());
  CHECK(spool.depth() == 2);
  REQUIRE(spool.Append({Ev("new")}).ok());
  SpoolContents c;
  REQUIRE(spool.BeginReplay(&c).ok());
  CHECK(Ids(c.events) == std::vector<std::string>{"first", "new"});
  REQUIRE(c.problems.size() == 1);
  CHECK(c.problems[0].find("events.spool.replay:2: skipped unreadable event") != std::string::npos);
}

TEST_CASE("spool without a folder refuses to append", "[spool]") {
  Spool spool("");
  REQUIRE(spool.Open().ok());
  CHECK(spool.Append({Ev("1")}).IsIoError());
  Spool bad("/proc/compd-no-such/spool");
  CHECK_FALSE(bad.Open().ok());
}

}  // namespace
}  // namespace compd
