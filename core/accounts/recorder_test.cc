// Recorder against a real redis-server (started and stopped by the tests themselves).
#include "compd/accounts/recorder.h"

#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "compd/map/map_store.h"
#include "compd/testutil/accounts.h"
#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::LogCapture;
using testing::ReadLines;
using testing::RecorderFixture;
using testing::RedisServer;
using testing::TempDir;
using testing::WaitUntil;

Event Hit(const std::string& account, const std::string& recipient) {
  Event e = testing::HitEvent(account, recipient);
  e.auth_type = "PLAIN";
  e.sender = account;
  e.txn_id = "t1";
  return e;
}

RecorderOptions Options(const RedisUrl& url, const TempDir& tmp) {
  RecorderOptions o = testing::TestRecorderOptions(url, tmp);
  o.retry_max = std::chrono::milliseconds(200);
  return o;
}

// The events in the stream, oldest first.
std::vector<Event> StreamEvents(const RedisUrl& url, const std::string& prefix) {
  RedisClient c(url);
  RedisReply r;
  REQUIRE(c.Command({"XRANGE", Keys(prefix).events(), "-", "+"}, &r).ok());
  std::vector<Event> out;
  for (const RedisReply& entry : r.elements) {
    REQUIRE(entry.elements.size() == 2);
    const RedisReply& fields = entry.elements[1];
    REQUIRE(fields.elements.size() == 2);
    CHECK(fields.elements[0].str == "event");
    Event e;
    REQUIRE(Event::FromJson(fields.elements[1].str, &e).ok());
    out.push_back(e);
  }
  return out;
}

std::vector<std::string> Subjects(const std::vector<Event>& events) {
  std::vector<std::string> s;
  for (const auto& e : events) s.push_back(e.subject);
  return s;
}

std::vector<std::string> Numbered(int from, int to) {
  std::vector<std::string> s;
  for (int i = from; i < to; ++i) s.push_back("msg " + std::to_string(i));
  return s;
}

std::map<std::string, std::string> HashAll(const RedisUrl& url, const std::string& key) {
  RedisClient c(url);
  RedisReply r;
  REQUIRE(c.Command({"HGETALL", key}, &r).ok());
  std::map<std::string, std::string> m;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2)
    m[r.elements[i].str] = r.elements[i + 1].str;
  return m;
}

TEST_CASE_METHOD(RecorderFixture,
                 "recorder writes hits to the stream, the account record and the alert log",
                 "[redis][recorder]") {
  RecorderOptions opts = Options(redis.url(), tmp);
  Recorder& rec = StartRecorder(opts);

  Event first = Hit("alice@cust.example", "c1@bad.example");
  first.subject = "hello\r\nBcc: injected \xff";
  rec.Submit(first);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  rec.Submit(Hit("alice@cust.example", "c2@bad.example"));
  rec.Submit(Hit("bob@cust.example", "c1@bad.example"));
  REQUIRE(WaitUntil([&] { return rec.stats().written == 3; }));

  std::vector<Event> stream = StreamEvents(redis.url(), "t:");
  REQUIRE(stream.size() == 3);
  CHECK(stream[0].account == "alice@cust.example");
  CHECK(stream[0].recipient == "c1@bad.example");
  CHECK(stream[0].host == "mx-test");
  CHECK(stream[0].subject.rfind("hello\r\nBcc: injected ", 0) == 0);
  CHECK(stream[2].account == "bob@cust.example");
  std::set<std::string> ids;
  for (const Event& e : stream) {
    CHECK_FALSE(e.id.empty());
    CHECK(e.time.size() == 24);
    ids.insert(e.id);
  }
  CHECK(ids.size() == 3);

  auto alice = HashAll(redis.url(), "t:account:alice@cust.example");
  CHECK(alice["hits"] == "2");
  CHECK(alice["first_seen"] == stream[0].time);
  CHECK(alice["last_seen"] == stream[1].time);
  CHECK(alice["last_recipient"] == "c2@bad.example");
  CHECK(alice["last_entry"] == "c2@bad.example");
  CHECK(alice["last_client_ip"] == "192.0.2.7");
  CHECK(HashAll(redis.url(), "t:account:bob@cust.example")["hits"] == "1");
  {
    RedisClient c(redis.url());
    RedisReply r;
    REQUIRE(c.Command({"ZRANGE", "t:accounts", "0", "-1"}, &r).ok());
    REQUIRE(r.elements.size() == 2);
    REQUIRE(c.Command({"ZSCORE", "t:accounts", "alice@cust.example"}, &r).ok());
    int64_t ms = 0;
    REQUIRE(ParseUtcMillis(stream[1].time, &ms));
    CHECK(std::stoll(r.str) == ms / 1000);
  }

  // The alert log: one JSON line per event, private, escaped.
  std::vector<std::string> lines = ReadLines(opts.alert_log);
  REQUIRE(lines.size() == 3);
  Event logged;
  REQUIRE(Event::FromJson(lines[0], &logged).ok());
  CHECK(logged == stream[0]);
  struct stat st;
  REQUIRE(stat(opts.alert_log.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // logrotate: the file is moved away, Reopen starts a new one.
  REQUIRE(rename(opts.alert_log.c_str(), (tmp / "alerts.jsonl.1").c_str()) == 0);
  REQUIRE(rec.Reopen().ok());
  rec.Submit(Hit("carol@cust.example", "c1@bad.example"));
  REQUIRE(WaitUntil([&] { return rec.stats().written == 4; }));
  CHECK(ReadLines(opts.alert_log).size() == 1);
  CHECK(ReadLines(tmp / "alerts.jsonl.1").size() == 3);

  rec.Stop();
  RecorderStats st2 = rec.stats();
  CHECK(st2.submitted == 4);
  CHECK(st2.spooled == 0);
  CHECK(st2.dropped == 0);
  CHECK(st2.redis_up);
  CHECK(st2.queue_depth == 0);
}

TEST_CASE_METHOD(RecorderFixture,
                 "recorder flags and locks for detection signals, and says which signal",
                 "[redis][recorder]") {
  Recorder& rec = StartRecorder(Options(redis.url(), tmp));
  auto signal = [](const std::string& id, const std::string& rule, const std::string& action) {
    Event e = testing::SignalEvent("dave@cust.example", rule, action);
    e.id = id;
    e.client_ip = "198.51.100.4";
    e.evidence = "{\"" + rule + "\":{}}";
    e.detail = rule + " summary";
    return e;
  };
  rec.Submit(signal("s1", "test_message", "flag"));
  REQUIRE(WaitUntil([&] { return rec.stats().written == 1; }));
  auto dave = HashAll(redis.url(), "t:account:dave@cust.example");
  CHECK(dave["state"] == "flagged");
  CHECK(dave["hits"].empty());  // a signal is not a hit
  CHECK(
      log.Contains("dave@cust.example flagged: signal test_message (flag) from 198.51.100.4: "
                   "test_message summary"));
  rec.Submit(signal("s2", "new_networks", "lock"));
  REQUIRE(WaitUntil([&] { return rec.stats().written == 2; }));
  CHECK(HashAll(redis.url(), "t:account:dave@cust.example")["state"] == "locked");
  CHECK(log.Contains("LOCKED (was flagged): signal new_networks (lock)"));
  rec.Stop();
  CHECK_FALSE(log.Contains("hit on"));
}

TEST_CASE("recorder spools while Redis is down and replays exactly once, in order",
          "[redis][recorder]") {
  RedisServer redis(/*persist=*/true);
  TempDir tmp;
  LogCapture log;
  RecorderOptions opts = Options(redis.url(), tmp);
  Recorder rec(opts, log.fn());
  REQUIRE(rec.Start().ok());

  auto submit = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      Event e = Hit("alice@cust.example", "c@bad.example");
      e.subject = "msg " + std::to_string(i);
      rec.Submit(e);
    }
  };
  submit(0, 5);
  REQUIRE(WaitUntil([&] { return rec.stats().written == 5; }));

  redis.Stop();
  submit(5, 25);
  REQUIRE(WaitUntil([&] { return rec.stats().spooled == 20; }));
  CHECK_FALSE(rec.stats().redis_up);
  CHECK(rec.stats().spool_depth == 20);
  // The morning log does not wait for Redis.
  CHECK(ReadLines(opts.alert_log).size() == 25);
  CHECK(log.Contains("spooling events"));

  redis.Start();
  REQUIRE(WaitUntil([&] { return rec.stats().replayed == 20 && rec.stats().spool_depth == 0; }));
  submit(25, 30);
  REQUIRE(WaitUntil([&] { return rec.stats().written == 30; }));
  rec.Stop();

  std::vector<Event> stream = StreamEvents(redis.url(), "t:");
  CHECK(Subjects(stream) == Numbered(0, 30));
  CHECK(HashAll(redis.url(), "t:account:alice@cust.example")["hits"] == "30");
  RecorderStats st = rec.stats();
  CHECK(st.dropped == 0);
  CHECK(st.duplicates == 0);
  CHECK(st.redis_up);
  CHECK(st.redis_errors >= 1);
  CHECK(ReadLines(opts.alert_log).size() == 30);
  CHECK(testing::ReadFileOrEmpty(tmp / "spool/events.spool").empty());
  CHECK(testing::ReadFileOrEmpty(tmp / "spool/events.spool.replay").empty());
  CHECK(log.Contains("Redis answers again"));
}

TEST_CASE("recorder writes straight to a Redis that restarted while it was idle",
          "[redis][recorder]") {
  RedisServer redis;
  TempDir tmp;
  Recorder rec(Options(redis.url(), tmp), nullptr);
  REQUIRE(rec.Start().ok());
  rec.Submit(Hit("hal@cust.example", "c@bad.example"));
  REQUIRE(WaitUntil([&] { return rec.stats().written == 1; }));
  redis.Stop();
  redis.Start();  // empty again, and with an empty script cache
  rec.Submit(Hit("hal@cust.example", "c@bad.example"));
  REQUIRE(WaitUntil([&] { return rec.stats().written == 2; }));
  rec.Stop();
  CHECK(rec.stats().spooled == 0);
  CHECK(StreamEvents(redis.url(), "t:").size() == 1);
}

TEST_CASE_METHOD(RecorderFixture,
                 "recorder survives a Redis that stops answering mid-write, without duplicates",
                 "[redis][recorder]") {
  RecorderOptions opts = Options(redis.url(), tmp);
  opts.redis_timeout = std::chrono::milliseconds(300);
  Recorder& rec = StartRecorder(opts);
  auto submit = [&](int i) {
    Event e = Hit("gina@cust.example", "c@bad.example");
    e.subject = "msg " + std::to_string(i);
    rec.Submit(e);
  };
  submit(0);
  REQUIRE(WaitUntil([&] { return rec.stats().written == 1; }));

  // Redis freezes for 1.5 s: the writer's commands arrive, its wait times out, it spools
  // the batch; then Redis wakes and runs those commands anyway. The replay must not
  // write them a second time.
  Status slept;  // checked on this thread: Catch assertions are not thread-safe
  std::thread sleeper([&] {
    RedisClient c(redis.url(), std::chrono::milliseconds(5000));
    slept = c.Command({"DEBUG", "SLEEP", "1.5"});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int i = 1; i < 6; ++i) submit(i);
  REQUIRE(WaitUntil([&] { return rec.stats().spooled >= 1; }));
  sleeper.join();
  REQUIRE(slept.ok());
  REQUIRE(WaitUntil([&] { return rec.stats().spool_depth == 0 && rec.stats().redis_up; }));
  for (int i = 6; i < 8; ++i) submit(i);
  // Events the frozen Redis ran were never acknowledged; the replay finds them there.
  REQUIRE(WaitUntil([&] { return rec.stats().written + rec.stats().duplicates == 8; }));
  rec.Stop();

  CHECK(Subjects(StreamEvents(redis.url(), "t:")) == Numbered(0, 8));
  CHECK(HashAll(redis.url(), "t:account:gina@cust.example")["hits"] == "8");
  RecorderStats st = rec.stats();
  CHECK(st.duplicates >= 1);  // the frozen Redis did run the first timed-out batch
  CHECK(st.dropped == 0);
}

TEST_CASE_METHOD(RecorderFixture,
                 "recorder replays a spool left by an earlier run, skipping what Redis has and "
                 "corrupt lines",
                 "[redis][recorder]") {
  RecorderOptions opts = Options(redis.url(), tmp);

  std::vector<Event> events;
  for (int i = 0; i < 5; ++i) {
    Event e = Hit("dave@cust.example", "c@bad.example");
    e.id = "earlier-run:" + std::to_string(i);
    e.time = "2026-11-26T18:44:4" + std::to_string(i) + ".000Z";
    e.subject = "msg " + std::to_string(i);
    events.push_back(e);
  }
  {
    // An earlier run wrote the first three to Redis, then died before it could truncate
    // its spool (the reply was lost, say).
    Recorder earlier(opts, log.fn());
    REQUIRE(earlier.Start().ok());
    for (int i = 0; i < 3; ++i) earlier.Submit(events[i]);
    REQUIRE(WaitUntil([&] { return earlier.stats().written == 3; }));
  }
  REQUIRE((mkdir((tmp / "spool").c_str(), 0700) == 0 || errno == EEXIST));
  {
    std::ofstream out(tmp / "spool/events.spool", std::ios::binary);
    for (int i = 0; i < 5; ++i) {
      out << events[i].ToJson() << "\n";
      if (i == 3) out << "{\"id\":\"garbage\",\"subj\n";  // line 5
    }
    out << events[0].ToJson().substr(0, 40);  // a torn last line, line 7
  }

  Recorder& rec = StartRecorder(opts);
  REQUIRE(WaitUntil([&] { return rec.stats().spool_depth == 0; }));
  rec.Stop();

  std::vector<Event> stream = StreamEvents(redis.url(), "t:");
  CHECK(Subjects(stream) == Numbered(0, 5));
  RecorderStats st = rec.stats();
  CHECK(st.replayed == 2);
  CHECK(st.duplicates == 3);
  CHECK(st.corrupt == 2);
  CHECK(log.Contains("events.spool.replay:5: skipped unreadable event"));
  CHECK(log.Contains("events.spool.replay:7: skipped unreadable event"));
  CHECK(log.Contains("truncated last line"));
  CHECK(log.Contains("from an earlier run"));
  // The account record counts each hit once and keeps the true first and last times.
  auto dave = HashAll(redis.url(), "t:account:dave@cust.example");
  CHECK(dave["hits"] == "5");
  CHECK(dave["first_seen"] == events[0].time);
  CHECK(dave["last_seen"] == events[4].time);
}

TEST_CASE("recorder loses nothing when Redis is absent, the queue overflows and it stops",
          "[redis][recorder]") {
  TempDir tmp;
  LogCapture log;
  RedisUrl nowhere;
  nowhere.host = "127.0.0.1";
  nowhere.port = testing::FreePort();
  RecorderOptions opts = Options(nowhere, tmp);
  opts.queue_capacity = 2;
  opts.max_batch = 1;
  constexpr int kEvents = 200;
  uint64_t overflows = 0;
  {
    Recorder rec(opts, log.fn());
    REQUIRE(rec.Start().ok());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&rec, t] {
        for (int i = 0; i < kEvents / 4; ++i) {
          Event e = Hit("eve@cust.example", "c@bad.example");
          e.subject = std::to_string(t) + "/" + std::to_string(i);
          rec.Submit(e);
        }
      });
    }
    for (auto& th : threads) th.join();
    rec.Stop();  // whatever is still queued goes to the spool
    RecorderStats st = rec.stats();
    CHECK(st.submitted == kEvents);
    CHECK(st.spooled == kEvents);
    CHECK(st.dropped == 0);
    CHECK(st.written == 0);
    CHECK(st.queue_depth == 0);
    CHECK(st.spool_depth == kEvents);
    CHECK(st.overflowed > 0);
    overflows = st.overflowed;
  }
  CHECK(ReadLines(opts.alert_log).size() == kEvents);
  // The writer's failed retries moved the older part to the replay file.
  CHECK(ReadLines(tmp / "spool/events.spool").size() +
            ReadLines(tmp / "spool/events.spool.replay").size() ==
        kEvents);

  // Next start, with Redis there: everything arrives, once.
  RedisServer redis;
  opts.redis = redis.url();
  Recorder rec(opts, log.fn());
  REQUIRE(rec.Start().ok());
  REQUIRE(WaitUntil([&] { return rec.stats().spool_depth == 0; }));
  rec.Stop();
  CHECK(rec.stats().replayed == kEvents);
  std::vector<Event> stream = StreamEvents(redis.url(), "t:");
  std::set<std::string> subjects;
  for (const Event& e : stream) subjects.insert(e.subject);
  CHECK(stream.size() == kEvents);
  CHECK(subjects.size() == kEvents);
  // Each submitting thread's events stay in its own order, but for the batch the writer
  // held when the queue overflowed (max_batch = 1 here): at most one per overflow.
  std::map<std::string, int> last;
  int out_of_order = 0;
  for (const Event& e : stream) {
    std::string t = e.subject.substr(0, e.subject.find('/'));
    int i = std::stoi(e.subject.substr(e.subject.find('/') + 1));
    if (last.count(t) && i < last[t]) ++out_of_order;
    last[t] = std::max(last.count(t) ? last[t] : -1, i);
  }
  CHECK(out_of_order <= static_cast<int>(overflows));
  CHECK(HashAll(redis.url(), "t:account:eve@cust.example")["hits"] == std::to_string(kEvents));
  // Not re-logged on replay.
  CHECK(ReadLines(opts.alert_log).size() == kEvents);
}

TEST_CASE_METHOD(RecorderFixture,
                 "recorder writes a lone hit at once and a burst as one batch, and a stop does "
                 "not wait for the burst's batch",
                 "[redis][recorder]") {
  using std::chrono::milliseconds;
  using std::chrono::steady_clock;
  RecorderOptions opts = Options(redis.url(), tmp);
  opts.batch_spacing = milliseconds(5000);
  opts.max_batch = 4;
  Recorder& rec = StartRecorder(opts);
  rec.Submit(Hit("alice@cust.example", "c0@bad.example"));
  REQUIRE(WaitUntil([&] { return rec.stats().written == 1; }, milliseconds(2500)));
  // A full batch does not wait for the spacing either.
  for (int i = 1; i <= 4; ++i) rec.Submit(Hit("bob@cust.example", "b" + std::to_string(i) + "@x"));
  REQUIRE(WaitUntil([&] { return rec.stats().written == 5; }, milliseconds(2500)));
  // Two more are held for the rest of the 5 s after the last batch began...
  rec.Submit(Hit("carol@cust.example", "c1@bad.example"));
  rec.Submit(Hit("carol@cust.example", "c2@bad.example"));
  std::this_thread::sleep_for(milliseconds(500));
  CHECK(rec.stats().written == 5);
  CHECK(rec.stats().queue_depth == 2);
  // ...but not past a stop, which writes them at once.
  auto stop_at = steady_clock::now();
  rec.Stop();
  CHECK(steady_clock::now() - stop_at < milliseconds(2500));
  CHECK(rec.stats().written == 7);
  CHECK(rec.stats().spooled == 0);
  CHECK(ReadLines(opts.alert_log).size() == 7);
  CHECK(StreamEvents(redis.url(), "t:").size() == 7);
}

TEST_CASE_METHOD(RecorderFixture,
                 "recorder with a short queue writes a burst at half the queue, never "
                 "overflowing onto the mail path",
                 "[redis][recorder]") {
  RecorderOptions opts = Options(redis.url(), tmp);
  opts.batch_spacing = std::chrono::milliseconds(5000);
  opts.queue_capacity = 10;
  Recorder& rec = StartRecorder(opts);
  rec.Submit(Hit("alice@cust.example", "c0@bad.example"));
  REQUIRE(WaitUntil([&] { return rec.stats().written == 1; }, std::chrono::milliseconds(2500)));
  for (int i = 1; i <= 5; ++i) rec.Submit(Hit("bob@cust.example", "b" + std::to_string(i) + "@x"));
  REQUIRE(WaitUntil([&] { return rec.stats().written == 6; }, std::chrono::milliseconds(2500)));
  CHECK(rec.stats().overflowed == 0);
  CHECK(rec.stats().spooled == 0);
}

TEST_CASE("recorder counts events it cannot spool as dropped, loudly", "[redis][recorder]") {
  TempDir tmp;
  LogCapture log;
  RedisUrl nowhere;
  nowhere.port = testing::FreePort();
  RecorderOptions opts = Options(nowhere, tmp);
  opts.spool_dir = "";
  Recorder rec(opts, log.fn());
  REQUIRE(rec.Start().ok());
  rec.Submit(Hit("frank@cust.example", "c@bad.example"));
  REQUIRE(WaitUntil([&] { return rec.stats().dropped == 1; }));
  rec.Stop();
  CHECK(log.Contains("event LOST"));
  CHECK(ReadLines(opts.alert_log).size() == 1);  // still in the morning log
}

TEST_CASE("recorder refuses to start when the alert log cannot be opened", "[recorder]") {
  TempDir tmp;
  RecorderOptions opts;
  opts.alert_log = tmp / "no-such-dir/alerts.jsonl";
  opts.spool_dir = tmp / "spool";
  Recorder rec(opts, nullptr);
  Status s = rec.Start();
  CHECK(s.IsIoError());
  CHECK(s.message().find("no-such-dir/alerts.jsonl") != std::string::npos);
}

}  // namespace
}  // namespace compd
