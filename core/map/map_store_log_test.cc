// MapStore's change log and in-place read, against a real redis-server: what lets a milter
// apply a small change instead of reloading the whole map.
#include <catch2/catch.hpp>

#include "compd/map/map_store.h"
#include "compd/map/matcher.h"
#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::RedisServer;

StoredEntry Stored(const std::string& text) {
  StoredEntry e;
  const Status s = ParseEntry(text, &e.entry);
  if (!s.ok()) throw std::runtime_error(text + ": " + s.ToString());
  e.meta.added_by = "test";
  return e;
}

std::vector<std::string> Texts(const std::vector<Entry>& entries) {
  std::vector<std::string> out;
  for (const Entry& e : entries)
    out.push_back(std::string(e.kind == EntryKind::kExact ? "e " : "p ") + e.text);
  return out;
}

// The id of `version` as the log records it ("" for 0): what a watcher holding that
// version knows. "none" when the log does not hold it.
std::string IdOf(RedisClient& client, uint64_t version) {
  if (version == 0) return "";
  RedisReply r;
  REQUIRE(client.Command({"LRANGE", "t:map:log", "0", "-1"}, &r).ok());
  const std::string prefix = "compd1 " + std::to_string(version) + " ";
  for (const RedisReply& e : r.elements) {
    if (e.str.rfind(prefix, 0) != 0) continue;
    std::string head = e.str.substr(prefix.size(), e.str.find('\n') - prefix.size());
    if (head.size() > 5 && head.compare(head.size() - 5, 5, " full") == 0)
      head.resize(head.size() - 5);
    return head;
  }
  return "none";
}

Status Since(MapStore& store, RedisClient& client, uint64_t since, std::vector<MapChange>* out,
             uint64_t* version) {
  std::string id;
  return store.ChangesSince(since, IdOf(client, since), out, version, &id);
}

TEST_CASE("the change log tells each version's change, oldest first", "[redis][map_store]") {
  RedisServer redis;
  RedisClient client(redis.url());
  MapStore store(&client, "t:");
  std::vector<bool> flags;
  ChangeResult r;
  REQUIRE(store.Add({Stored("a@x.example"), Stored("/^spam[0-9]+@/i")}, "test", &flags, &r).ok());
  REQUIRE(r.version == 1);
  // Adding what is there changes nothing and logs nothing.
  REQUIRE(store.Add({Stored("a@x.example")}, "test", &flags, &r).ok());
  REQUIRE(r.version == 1);
  REQUIRE(store
              .Remove({Stored("a@x.example").entry, Stored("nothere@x.example").entry}, "test",
                      &flags, &r)
              .ok());
  REQUIRE(r.version == 2);
  REQUIRE(store.Replace({Stored("b@x.example"), Stored("c@x.example")}, "test", &r).ok());
  REQUIRE(r.version == 3);

  std::vector<MapChange> changes;
  uint64_t version = 0;
  REQUIRE(Since(store, client, 0, &changes, &version).ok());
  CHECK(version == 3);
  REQUIRE(changes.size() == 3);
  CHECK(changes[0].version == 1);
  CHECK(Texts(changes[0].added) == std::vector<std::string>{"e a@x.example", "p /^spam[0-9]+@/i"});
  CHECK(changes[0].added[1].regex == "^spam[0-9]+@");  // parsed, ready to compile
  CHECK(changes[0].removed.empty());
  CHECK(Texts(changes[1].removed) == std::vector<std::string>{"e a@x.example"});
  CHECK(Texts(changes[2].added) == std::vector<std::string>{"e b@x.example", "e c@x.example"});
  CHECK(Texts(changes[2].removed) == std::vector<std::string>{"p /^spam[0-9]+@/i"});

  REQUIRE(Since(store, client, 2, &changes, &version).ok());
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].version == 3);
  REQUIRE(Since(store, client, 3, &changes, &version).ok());
  CHECK(changes.empty());

  // Applied to an empty snapshot, the log gives what a full load gives.
  std::shared_ptr<const Matcher> m;
  REQUIRE(Matcher::Build({}, &m).ok());
  REQUIRE(Since(store, client, 0, &changes, &version).ok());
  for (const MapChange& c : changes) REQUIRE(m->Apply(c.added, c.removed, &m).ok());
  std::vector<std::string> loaded;
  REQUIRE(store
              .ReadEntries([&](const MapEntriesView& map) {
                for (std::string_view t : map.exact) loaded.emplace_back(t);
                for (const Entry& e : map.patterns) loaded.push_back(e.text);
                return Status::Ok();
              })
              .ok());
  std::sort(loaded.begin(), loaded.end());
  std::vector<std::string> applied;
  for (std::string_view t : m->ExactTexts()) applied.emplace_back(t);
  for (std::string_view t : m->PatternTexts()) applied.emplace_back(t);
  CHECK(applied == loaded);
}

TEST_CASE("the change log says when it cannot tell", "[redis][map_store]") {
  RedisServer redis;
  RedisClient client(redis.url());
  MapStore store(&client, "t:");
  std::vector<bool> flags;
  std::vector<MapChange> changes;
  uint64_t version = 0;

  SECTION("a change too large to log") {
    std::vector<StoredEntry> many;
    for (size_t i = 0; i <= MapStore::kLogMaxEntries; ++i) {
      many.push_back(Stored("u" + std::to_string(i) + "@x.example"));
    }
    REQUIRE(store.Add(many, "test", &flags).ok());
    REQUIRE(store.Add({Stored("small@x.example")}, "test", &flags).ok());
    const Status s = Since(store, client, 0, &changes, &version);
    CHECK(s.IsNotFound());
    CHECK(s.message().find("too large") != std::string::npos);
    CHECK(version == 2);
    // After the big one, the log is fine again.
    REQUIRE(Since(store, client, 1, &changes, &version).ok());
    CHECK(changes.size() == 1);
  }
  SECTION("further back than the log keeps") {
    for (size_t i = 0; i < MapStore::kLogKeep + 3; ++i) {
      REQUIRE(store.Add({Stored("v" + std::to_string(i) + "@x.example")}, "test", &flags).ok());
    }
    CHECK(Since(store, client, 0, &changes, &version).IsNotFound());
    // The record of the caller's own version must be there too, to check it is the same.
    CHECK(Since(store, client, 3, &changes, &version).IsNotFound());
    REQUIRE(Since(store, client, 4, &changes, &version).ok());
    CHECK(changes.size() == MapStore::kLogKeep - 1);
  }
  SECTION("the version went backwards (Redis flushed or restored)") {
    REQUIRE(store.Add({Stored("w@x.example")}, "test", &flags).ok());
    const Status s = Since(store, client, 7, &changes, &version);
    CHECK(s.IsNotFound());
    CHECK(version == 1);
  }
  SECTION("a map written before the log existed") {
    REQUIRE(store.Add({Stored("w@x.example")}, "test", &flags).ok());
    REQUIRE(client.Command({"DEL", "t:map:log"}).ok());
    CHECK(Since(store, client, 0, &changes, &version).IsNotFound());
  }
  SECTION("the same version number, another state (failover to a replica that missed writes)") {
    REQUIRE(store.Add({Stored("w@x.example")}, "test", &flags).ok());
    REQUIRE(store.Add({Stored("v@x.example")}, "test", &flags).ok());
    std::string id;
    // Our version 1 had another id: Redis' version 1 is not ours, whatever came after.
    Status s = store.ChangesSince(1, "1700000000.123", &changes, &version, &id);
    CHECK(s.IsNotFound());
    CHECK(s.message().find("not the one version 1 came from") != std::string::npos);
    // Same number as Redis' current version, another id.
    s = store.ChangesSince(2, "1700000000.123", &changes, &version, &id);
    CHECK(s.IsNotFound());
    // With the right ids all is well, and the current id comes back.
    REQUIRE(store.ChangesSince(1, IdOf(client, 1), &changes, &version, &id).ok());
    CHECK(changes.size() == 1);
    CHECK(id == IdOf(client, 2));
    CHECK(changes[0].id == id);
    REQUIRE(store.ChangesSince(2, id, &changes, &version, &id).ok());
    CHECK(changes.empty());
  }
  SECTION("a record it cannot read (a newer compd wrote it, or it is corrupt)") {
    REQUIRE(store.Add({Stored("w@x.example")}, "test", &flags).ok());
    REQUIRE(client.Command({"RPUSH", "t:map:log", "compd2 2 x\n+e3:a@b"}).ok());
    REQUIRE(client.Command({"INCR", "t:map:version"}).ok());
    const Status s = Since(store, client, 1, &changes, &version);
    CHECK(s.IsNotFound());
    CHECK(s.message().find("unreadable change log record") != std::string::npos);
  }
  SECTION("Redis down is not 'cannot tell'") {
    redis.Stop();
    const Status s = Since(store, client, 0, &changes, &version);
    CHECK(s.code() == Status::Code::kUnavailable);
  }
}

TEST_CASE("ReadEntries reports fields that are not entries and skips them", "[redis][map_store]") {
  RedisServer redis;
  RedisClient client(redis.url());
  MapStore store(&client, "t:");
  std::vector<bool> flags;
  REQUIRE(store.Add({Stored("ok@x.example"), Stored("/^ok/")}, "test", &flags).ok());
  REQUIRE(client.Command({"HSET", "t:map:exact", "Upper@x.example", "{}"}).ok());
  REQUIRE(client.Command({"HSET", "t:map:exact", "no-at-sign", "{}"}).ok());
  REQUIRE(client.Command({"HSET", "t:map:re", "/(/", "{}"}).ok());
  std::vector<std::string> exact, patterns, invalid;
  uint64_t version = 0;
  REQUIRE(store
              .ReadEntries([&](const MapEntriesView& map) {
                for (std::string_view t : map.exact) exact.emplace_back(t);
                for (const Entry& e : map.patterns) patterns.push_back(e.text);
                invalid = map.invalid;
                version = map.version;
                return Status::Ok();
              })
              .ok());
  CHECK(exact == std::vector<std::string>{"ok@x.example"});
  CHECK(patterns == std::vector<std::string>{"/^ok/"});
  CHECK(version == 1);
  std::sort(invalid.begin(), invalid.end());
  REQUIRE(invalid.size() == 3);
  CHECK(invalid[0] == "t:map:exact: 'Upper@x.example': not in canonical (lower-case) form");
  CHECK(invalid[1] == "t:map:exact: 'no-at-sign': not an address");
  CHECK(invalid[2].rfind("t:map:re: '/(/': ", 0) == 0);
  // The connection reads ordinary replies again after the packed one.
  RedisReply pong;
  REQUIRE(client.Command({"PING"}, &pong).ok());
  CHECK(pong.str == "PONG");
  // A key of the wrong type is Redis failing, named, never an empty map.
  REQUIRE(client.Command({"SET", "u:map:exact", "x"}).ok());
  MapStore wrong(&client, "u:");
  const Status ws = wrong.ReadEntries([](const MapEntriesView&) { return Status::Ok(); });
  CHECK(ws.code() == Status::Code::kUnavailable);
  CHECK(ws.message().find("WRONGTYPE") != std::string::npos);
  REQUIRE(client.Command({"PING"}, &pong).ok());
  // The callback's status is the call's.
  CHECK(
      store.ReadEntries([](const MapEntriesView&) { return Status::Internal("stop"); }).message() ==
      "stop");
}

}  // namespace
}  // namespace compd
