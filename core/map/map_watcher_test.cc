// MapWatcher against a real redis-server (started and stopped by the tests themselves).
#include "compd/map/map_watcher.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <mutex>

#include "compd/map/map_store.h"
#include "compd/map/rspamd_map.h"
#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::LogCapture;
using testing::ReadFileOrEmpty;
using testing::RedisServer;
using testing::TempDir;
using testing::WaitUntil;

StoredEntry Exact(const std::string& address) {
  StoredEntry e;
  e.entry.kind = EntryKind::kExact;
  e.entry.text = address;
  e.meta.added_by = "test";
  return e;
}

StoredEntry Pattern(const std::string& regex) {
  StoredEntry e;
  e.entry.kind = EntryKind::kPattern;
  e.entry.regex = regex;
  e.entry.text = "/" + regex + "/";
  e.meta.added_by = "test";
  return e;
}

// What `mapctl add` does: another client, another connection.
void AddToMap(const RedisUrl& url, const std::vector<StoredEntry>& entries) {
  RedisClient client(url);
  MapStore store(&client, "t:");
  std::vector<bool> added;
  Status s = store.Add(entries, "test", &added);
  INFO(s.ToString());
  REQUIRE(s.ok());
}

bool Listed(const MapWatcher& w, const std::string& address) {
  return w.Current()->matcher->Lookup(address).has_value();
}

// Until the watcher's thread listens on the change channel, as a running milter's would
// be: a change published before that is heard only by the next poll.
void WaitForListener(const RedisUrl& url) {
  RedisClient probe(url);
  REQUIRE(WaitUntil([&] {
    RedisReply r;
    return probe.Command({"PUBSUB", "NUMSUB", "t:map:changes"}, &r).ok() &&
           r.elements.size() == 2 && r.elements[1].integer == 1;
  }));
}

MapWatcherOptions Options(const RedisUrl& url) {
  return testing::TestRedisOptions<MapWatcherOptions>(url);
}

TEST_CASE("map watcher enforces a change published by another client within a second",
          "[redis][map_watcher]") {
  RedisServer redis;
  TempDir tmp;
  LogCapture log;
  AddToMap(redis.url(), {Exact("old@bad.example")});

  MapWatcherOptions opts = Options(redis.url());
  opts.map_dir = tmp.path();
  opts.poll_interval = std::chrono::minutes(10);  // only the change channel can be fast
  MapWatcher watcher(opts, log.fn());
  REQUIRE(watcher.Start().ok());
  auto first = watcher.Current();
  CHECK(first->source == "redis");
  CHECK(first->exact == 1);
  CHECK(Listed(watcher, "old@bad.example"));
  CHECK_FALSE(Listed(watcher, "new@bad.example"));
  // The files for rspamd, and for a start without Redis.
  CHECK(ReadFileOrEmpty(tmp / kExactMapFile).find("old@bad.example") != std::string::npos);

  WaitForListener(redis.url());
  AddToMap(redis.url(), {Exact("new@bad.example"), Pattern("^spam[0-9]+@evil\\.example$")});
  CHECK(WaitUntil([&] { return Listed(watcher, "new@bad.example"); },
                  std::chrono::milliseconds(1000)));
  auto now = watcher.Current();
  CHECK(now->version > first->version);
  CHECK(now->exact == 2);
  CHECK(now->patterns == 1);
  CHECK(Listed(watcher, "spam42@evil.example"));
  // Readers holding the old snapshot keep a consistent view.
  CHECK_FALSE(first->matcher->Lookup("new@bad.example").has_value());
  // The files follow the snapshot (enforcement first).
  CHECK(WaitUntil([&] {
    return ReadFileOrEmpty(tmp / kExactMapFile).find("new@bad.example") != std::string::npos &&
           ReadFileOrEmpty(tmp / kPatternMapFile).find("spam[0-9]+") != std::string::npos;
  }));
  watcher.Stop();
  CHECK(watcher.stats().loads == 2);
}

TEST_CASE("map watcher tells its listener what each new snapshot added", "[redis][map_watcher]") {
  RedisServer redis;
  LogCapture log;
  AddToMap(redis.url(), {Exact("old@bad.example")});
  MapWatcherOptions opts = Options(redis.url());
  opts.poll_interval = std::chrono::minutes(10);
  MapWatcher watcher(opts, log.fn());
  std::mutex mu;
  std::vector<MapChangeNote> notes;
  watcher.SetChangeListener([&](const MapChangeNote& n) {
    std::lock_guard<std::mutex> lock(mu);
    notes.push_back(n);
  });
  REQUIRE(watcher.Start().ok());
  {
    std::lock_guard<std::mutex> lock(mu);
    REQUIRE(notes.size() == 1);  // the first load: a whole read, from nothing
    CHECK(notes[0].whole);
    CHECK(notes[0].before->source != "redis");
    CHECK(notes[0].after->exact == 1);
  }
  WaitForListener(redis.url());
  AddToMap(redis.url(), {Exact("new@bad.example"), Pattern("^spam[0-9]+@evil\\.example$")});
  REQUIRE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(mu);
    return notes.size() == 2;
  }));
  watcher.Stop();
  const MapChangeNote& n = notes[1];
  CHECK_FALSE(n.whole);
  CHECK(n.before->version < n.after->version);
  CHECK_FALSE(n.before->matcher->Lookup("new@bad.example").has_value());
  std::vector<std::string> added;
  for (const Entry& e : n.added) added.push_back(e.text);
  std::sort(added.begin(), added.end());
  CHECK(added == std::vector<std::string>{"/^spam[0-9]+@evil\\.example$/", "new@bad.example"});
}

// What `mapctl remove` does.
void RemoveFromMap(const RedisUrl& url, const std::vector<StoredEntry>& entries) {
  RedisClient client(url);
  MapStore store(&client, "t:");
  std::vector<Entry> list;
  for (const StoredEntry& e : entries) list.push_back(e.entry);
  std::vector<bool> removed;
  Status s = store.Remove(list, "test", &removed);
  INFO(s.ToString());
  REQUIRE(s.ok());
}

TEST_CASE("map watcher applies small changes from the log, and reads the whole map otherwise",
          "[redis][map_watcher]") {
  RedisServer redis;
  TempDir tmp;
  LogCapture log;
  std::vector<StoredEntry> base;
  for (int i = 0; i < 2000; ++i) base.push_back(Exact("base" + std::to_string(i) + "@x.example"));
  AddToMap(redis.url(), base);

  MapWatcherOptions opts = Options(redis.url());
  opts.map_dir = tmp.path();
  opts.poll_interval = std::chrono::milliseconds(200);
  opts.files_interval = std::chrono::milliseconds(300);
  MapWatcher watcher(opts, log.fn());
  REQUIRE(watcher.Start().ok());
  REQUIRE(watcher.stats().full_loads == 1);

  // A burst of small changes: each applied from the log, none read the whole map.
  for (int i = 0; i < 20; ++i) {
    AddToMap(redis.url(), {Exact("burst" + std::to_string(i) + "@x.example")});
  }
  RemoveFromMap(redis.url(), {Exact("base7@x.example")});
  AddToMap(redis.url(), {Pattern("^late[0-9]+@")});
  CHECK(WaitUntil([&] { return Listed(watcher, "late1@y.example"); }));
  CHECK(Listed(watcher, "burst19@x.example"));
  CHECK_FALSE(Listed(watcher, "base7@x.example"));
  CHECK(Listed(watcher, "base8@x.example"));
  CHECK(watcher.Current()->exact == 2000 + 20 - 1);
  CHECK(watcher.stats().full_loads == 1);
  CHECK(log.Contains("applied from the change log"));
  // The files catch up with the burst (written at most every files_interval).
  CHECK(WaitUntil([&] {
    const std::string exact = ReadFileOrEmpty(tmp / kExactMapFile);
    return exact.find("burst19@x.example") != std::string::npos &&
           exact.find("base7@x.example") == std::string::npos &&
           ReadFileOrEmpty(tmp / kPatternMapFile).find("/^late[0-9]+@/") != std::string::npos;
  }));

  // An import too large for the log: the whole map is read again.
  std::vector<StoredEntry> import;
  for (size_t i = 0; i <= MapStore::kLogMaxEntries; ++i) {
    import.push_back(Exact("import" + std::to_string(i) + "@x.example"));
  }
  AddToMap(redis.url(), import);
  CHECK(WaitUntil([&] { return Listed(watcher, "import10000@x.example"); }));
  CHECK(watcher.stats().full_loads == 2);
  CHECK(log.Contains("reading the whole map: change"));
  CHECK(watcher.Current()->exact == 2000 + 20 - 1 + MapStore::kLogMaxEntries + 1);
  // And small changes after it come from the log again.
  RemoveFromMap(redis.url(), {Exact("import3@x.example")});
  CHECK(WaitUntil([&] { return !Listed(watcher, "import3@x.example"); }));
  CHECK(watcher.stats().full_loads == 2);
}

// Replaces every map key of `to` with `from`'s, in one transaction, and tells the
// watchers: what a failover to a replica (or a restored backup) looks like to them.
void SwapInMap(const RedisUrl& from, const RedisUrl& to, uint64_t version) {
  RedisClient src(from), dst(to);
  std::vector<std::vector<std::string>> tx = {{"MULTI"}};
  for (const char* key :
       {"t:map:exact", "t:map:re", "t:map:version", "t:map:changed", "t:map:log"}) {
    RedisReply dump;
    REQUIRE(src.Command({"DUMP", key}, &dump).ok());
    tx.push_back({"DEL", key});
    if (!dump.is_nil()) tx.push_back({"RESTORE", key, "0", dump.str});
  }
  tx.push_back({"EXEC"});
  tx.push_back({"PUBLISH", "t:map:changes", std::to_string(version)});
  REQUIRE(dst.Pipeline(tx).ok());
}

TEST_CASE("map watcher notices another map under the same version number (failover)",
          "[redis][map_watcher]") {
  RedisServer primary, replica;
  LogCapture log;
  // The replica missed the last write: both are at version 2, with other entries.
  AddToMap(primary.url(), {Exact("a@x.example")});
  AddToMap(primary.url(), {Exact("lost@x.example")});
  AddToMap(replica.url(), {Exact("a@x.example")});
  AddToMap(replica.url(), {Exact("other@x.example")});

  MapWatcherOptions opts = Options(primary.url());
  opts.poll_interval = std::chrono::minutes(10);  // the change message is what it gets
  MapWatcher watcher(opts, log.fn());
  REQUIRE(watcher.Start().ok());
  REQUIRE(Listed(watcher, "lost@x.example"));
  REQUIRE(watcher.Current()->version == 2);
  WaitForListener(primary.url());

  SwapInMap(replica.url(), primary.url(), 2);
  CHECK(WaitUntil([&] { return Listed(watcher, "other@x.example"); }));
  CHECK_FALSE(Listed(watcher, "lost@x.example"));
  CHECK(watcher.Current()->version == 2);
  CHECK(log.Contains("not the one version 2 came from"));
  // And the log path works again from the new state.
  AddToMap(primary.url(), {Exact("after@x.example")});
  CHECK(WaitUntil([&] { return Listed(watcher, "after@x.example"); }));
  CHECK(watcher.stats().full_loads == 2);
}

TEST_CASE("map watcher keeps its map when Redis comes back without one", "[redis][map_watcher]") {
  RedisServer redis;
  TempDir tmp;
  LogCapture log;
  AddToMap(redis.url(), {Exact("keep@x.example"), Pattern("^keep[0-9]+@")});
  MapWatcherOptions opts = Options(redis.url());
  opts.map_dir = tmp.path();
  opts.poll_interval = std::chrono::milliseconds(200);
  opts.files_interval = std::chrono::milliseconds(0);
  {
    MapWatcher watcher(opts, log.fn());
    REQUIRE(watcher.Start().ok());
    // Redis restarted without persistence (or somebody flushed it).
    RedisClient c(redis.url());
    REQUIRE(c.Command({"FLUSHALL"}).ok());
    CHECK(WaitUntil([&] { return log.Contains("holds no map (version 0"); }));
    CHECK(Listed(watcher, "keep@x.example"));
    CHECK(Listed(watcher, "keep7@y.example"));
    // The files still hold the map: nothing rewrote them from the empty Redis.
    CHECK(ReadFileOrEmpty(tmp / kExactMapFile).find("keep@x.example") != std::string::npos);
  }
  {
    // A milter started now, with the files from before, serves them rather than nothing.
    LogCapture log2;
    MapWatcher watcher(opts, log2.fn());
    REQUIRE(watcher.Start().ok());
    CHECK(watcher.Current()->source == "files");
    CHECK(Listed(watcher, "keep@x.example"));
    CHECK(log2.Contains("holds no map (version 0)"));
    // ... and leaves them as they are: they hold the map Redis lost.
    CHECK(ReadFileOrEmpty(tmp / kExactMapFile).find("keep@x.example") != std::string::npos);

    // A stray add now would make a one-entry map every milter takes: refused, and why.
    RedisClient client(redis.url());
    MapStore store(&client, "t:");
    std::vector<bool> flags;
    Status s = store.Add({Exact("new@x.example")}, "test", &flags);
    CHECK(s.code() == Status::Code::kUnavailable);
    CHECK(s.message().find("Redis lost the map (compd-milter") != std::string::npos);
    CHECK(s.message().find("mapctl import --replace") != std::string::npos);
    s = store.Remove({Exact("keep@x.example").entry}, "test", &flags);
    CHECK(s.code() == Status::Code::kUnavailable);
    CHECK(Listed(watcher, "keep@x.example"));

    // Restoring it (mapctl import --replace) makes it the map again, and clears the mark.
    REQUIRE(store.Replace({Exact("keep@x.example"), Exact("new@x.example")}, "test").ok());
    CHECK(WaitUntil([&] { return Listed(watcher, "new@x.example"); }));
    CHECK(Listed(watcher, "keep@x.example"));
    CHECK(watcher.Current()->source == "redis");
    AddToMap(redis.url(), {Exact("after@x.example")});
    CHECK(WaitUntil([&] { return Listed(watcher, "after@x.example"); }));
  }
  {
    // Emptying the map on purpose after a loss: a replace with nothing is a new version.
    RedisClient c(redis.url());
    REQUIRE(c.Command({"FLUSHALL"}).ok());
    LogCapture log3;
    MapWatcher watcher(opts, log3.fn());
    REQUIRE(watcher.Start().ok());
    REQUIRE(Listed(watcher, "after@x.example"));  // from the files
    MapStore store(&c, "t:");
    REQUIRE(store.Replace({}, "test").ok());
    CHECK(WaitUntil([&] { return !Listed(watcher, "after@x.example"); }));
    CHECK(watcher.Current()->source == "redis");
    CHECK(watcher.Current()->version == 1);
  }
}

TEST_CASE("map watcher compacts a grown overlay after enforcing the change",
          "[redis][map_watcher]") {
  RedisServer redis;
  LogCapture log;
  AddToMap(redis.url(), {Exact("base@x.example")});
  MapWatcherOptions opts = Options(redis.url());
  opts.poll_interval = std::chrono::milliseconds(200);
  MapWatcher watcher(opts, log.fn());
  REQUIRE(watcher.Start().ok());
  std::vector<StoredEntry> batch;  // logged (under kLogMaxEntries), but a big overlay
  for (int i = 0; i < 5000; ++i) batch.push_back(Exact("b" + std::to_string(i) + "@x.example"));
  AddToMap(redis.url(), batch);
  CHECK(WaitUntil([&] { return log.Contains("compacted the changes"); }));
  CHECK(Listed(watcher, "b4999@x.example"));
  CHECK(Listed(watcher, "base@x.example"));
  CHECK(watcher.Current()->matcher->overlay_size() == 0);
  CHECK(watcher.Current()->exact == 5001);
  CHECK(watcher.stats().full_loads == 1);
}

TEST_CASE("map watcher keeps the old snapshot when a change does not compile",
          "[redis][map_watcher]") {
  RedisServer redis;
  LogCapture log;
  AddToMap(redis.url(), {Exact("keep@x.example")});
  MapWatcherOptions opts = Options(redis.url());
  // Room for small patterns only: a big one cannot compile, though ParseEntry takes it.
  opts.matcher.re2_max_mem = 64 << 10;
  MapWatcher watcher(opts, log.fn());
  REQUIRE(watcher.Start().ok());
  const uint64_t before = watcher.Current()->version;
  AddToMap(redis.url(), {Pattern("^(a|b|c|d|e|f|g|h){1,1000}[0-9]{1,1000}@huge\\.example$")});
  CHECK(WaitUntil([&] { return log.Contains("NOT applied"); }));
  CHECK(watcher.Current()->version == before);
  CHECK(Listed(watcher, "keep@x.example"));
  CHECK(watcher.stats().load_errors >= 1);
  // The next good change is applied (the bad pattern still fails, so it is read whole).
  RemoveFromMap(redis.url(), {Pattern("^(a|b|c|d|e|f|g|h){1,1000}[0-9]{1,1000}@huge\\.example$")});
  AddToMap(redis.url(), {Exact("next@x.example")});
  CHECK(WaitUntil([&] { return Listed(watcher, "next@x.example"); }));
  CHECK(Listed(watcher, "keep@x.example"));
}

TEST_CASE("map watcher polls the version when a change message is missed", "[redis][map_watcher]") {
  RedisServer redis;
  MapWatcherOptions opts = Options(redis.url());
  opts.poll_interval = std::chrono::milliseconds(200);
  MapWatcher watcher(opts, nullptr);
  REQUIRE(watcher.Start().ok());
  // A change made without PUBLISH (as if the message were lost).
  RedisClient c(redis.url());
  REQUIRE(c.Command({"HSET", "t:map:exact", "quiet@bad.example", "{}"}).ok());
  REQUIRE(c.Command({"INCR", "t:map:version"}).ok());
  CHECK(WaitUntil([&] { return Listed(watcher, "quiet@bad.example"); }));
}

TEST_CASE("map watcher keeps its snapshot through a Redis outage and catches up after",
          "[redis][map_watcher]") {
  RedisServer redis(/*persist=*/true);
  LogCapture log;
  AddToMap(redis.url(), {Exact("a@bad.example")});
  MapWatcherOptions opts = Options(redis.url());
  opts.poll_interval = std::chrono::minutes(10);  // catching up must not wait for a poll
  MapWatcher watcher(opts, log.fn());
  REQUIRE(watcher.Start().ok());
  REQUIRE(Listed(watcher, "a@bad.example"));
  REQUIRE(WaitUntil([&] { return watcher.stats().redis_up; }));

  redis.Stop();
  REQUIRE(WaitUntil([&] { return !watcher.stats().redis_up; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(Listed(watcher, "a@bad.example"));
  CHECK(watcher.Current()->source == "redis");
  CHECK(log.Contains("keeping the current map"));

  redis.Start();
  AddToMap(redis.url(), {Exact("b@bad.example")});
  CHECK(WaitUntil([&] { return Listed(watcher, "b@bad.example"); }));
  CHECK(Listed(watcher, "a@bad.example"));
  CHECK(log.Contains("answers again"));
}

TEST_CASE("map watcher serves the local files when Redis is absent at start",
          "[redis][map_watcher]") {
  TempDir tmp;
  LogCapture log;
  RedisServer redis(/*persist=*/true);
  AddToMap(redis.url(), {Exact("a@bad.example"), Pattern("^x[0-9]@evil\\.example$")});
  MapWatcherOptions opts = Options(redis.url());
  opts.map_dir = tmp.path();
  {
    MapWatcher earlier(opts, log.fn());
    REQUIRE(earlier.Start().ok());
  }
  redis.Stop();

  opts.poll_interval = std::chrono::minutes(10);  // switching over must not wait for a poll
  MapWatcher watcher(opts, log.fn());
  REQUIRE(watcher.Start().ok());
  auto snap = watcher.Current();
  CHECK(snap->source == "files");
  CHECK(snap->exact == 1);
  CHECK(snap->patterns == 1);
  CHECK(Listed(watcher, "a@bad.example"));
  CHECK(Listed(watcher, "x7@evil.example"));
  CHECK_FALSE(Listed(watcher, "b@bad.example"));
  CHECK(log.Contains("serving 1 exact, 1 patterns, from files"));

  // Redis comes back: the watcher switches over without a change being published.
  redis.Start();
  CHECK(WaitUntil([&] { return watcher.Current()->source == "redis"; }));
  CHECK(Listed(watcher, "a@bad.example"));
}

TEST_CASE("map watcher with neither Redis nor files serves an empty map and says so",
          "[redis][map_watcher]") {
  TempDir tmp;
  LogCapture log;
  RedisUrl nowhere;
  nowhere.port = testing::FreePort();
  MapWatcherOptions opts = Options(nowhere);
  opts.map_dir = tmp.path();
  MapWatcher watcher(opts, log.fn());
  REQUIRE(watcher.Start().ok());
  auto snap = watcher.Current();
  REQUIRE(snap->matcher != nullptr);
  CHECK(snap->source == "empty");
  CHECK_FALSE(Listed(watcher, "a@bad.example"));
  CHECK(log.Contains("serving an EMPTY map"));
  CHECK_FALSE(watcher.stats().redis_up);
  watcher.Stop();
}

}  // namespace
}  // namespace compd
