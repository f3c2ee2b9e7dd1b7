// Test helpers (compd_tests only, subsystems from accounts up): Recorder options for a test's
// redis-server and folder, a fixture that starts a Recorder on them, and readers of what the
// Recorder wrote. The functions are stateless; each opens its own Redis connection. The fixture is
// for one test's own thread.
#ifndef COMPD_TESTUTIL_ACCOUNTS_H_
#define COMPD_TESTUTIL_ACCOUNTS_H_

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "compd/accounts/accounts.h"
#include "compd/accounts/recorder.h"
#include "compd/base/redis.h"
#include "compd/events/event.h"
#include "compd/testutil/events.h"
#include "compd/testutil/redis.h"

namespace compd::testing {

// Prefix "t:", host "mx-test", alert log and spool in `tmp`, short Redis timeouts.
inline RecorderOptions TestRecorderOptions(const RedisUrl& url, const TempDir& tmp) {
  RecorderOptions o;
  o.redis = url;
  o.prefix = "t:";
  o.alert_log = tmp / "alerts.jsonl";
  o.spool_dir = tmp / "spool";
  o.hostname = "mx-test";
  o.redis_timeout = std::chrono::milliseconds(500);
  o.retry_min = std::chrono::milliseconds(20);
  return o;
}

// A redis-server, a folder and a log capture of one test's own, and the Recorder the test
// starts on them: for TEST_CASE_METHOD. The Recorder is declared last, so it stops (and
// writes what it holds) while Redis and the folder are still there.
struct RecorderFixture {
  Recorder& StartRecorder(RecorderOptions options) {
    recorder = std::make_unique<Recorder>(std::move(options), log.fn());
    REQUIRE(recorder->Start().ok());
    return *recorder;
  }
  Recorder& StartRecorder() { return StartRecorder(TestRecorderOptions(redis.url(), tmp)); }
  // One whose hits do `reaction` to their accounts.
  Recorder& StartRecorder(AccountReaction reaction) {
    RecorderOptions o = TestRecorderOptions(redis.url(), tmp);
    o.accounts = std::move(reaction);
    return StartRecorder(std::move(o));
  }

  RedisServer redis;
  TempDir tmp;
  LogCapture log;
  std::unique_ptr<Recorder> recorder;
};

// Submits and waits until the Recorder wrote everything submitted so far.
inline void RecordAndWait(Recorder* rec, Event e) {
  uint64_t before = rec->stats().written + rec->stats().duplicates;
  rec->Submit(std::move(e));
  REQUIRE(WaitUntil([&] { return rec->stats().written + rec->stats().duplicates > before; }));
}

// The account's record through the registry, as mapctl and the dashboard read it.
inline AccountRecord GetAccount(const RedisUrl& url, const std::string& account,
                                const std::string& prefix = "t:") {
  RedisClient c(url);
  AccountRegistry reg(&c, prefix);
  AccountRecord r;
  Status s = reg.Get(account, &r);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return r;
}

inline int64_t ZCard(const RedisUrl& url, const std::string& key) {
  RedisClient c(url);
  RedisReply r;
  REQUIRE(c.Command({"ZCARD", key}, &r).ok());
  return r.integer;
}

}  // namespace compd::testing

#endif  // COMPD_TESTUTIL_ACCOUNTS_H_
