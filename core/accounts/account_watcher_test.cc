// AccountWatcher and the MAIL gate: pure decisions, then against a real redis-server.
#include "compd/accounts/account_watcher.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "compd/accounts/accounts.h"
#include "compd/accounts/hook_runner.h"
#include "compd/accounts/recorder.h"
#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::LogCapture;
using testing::RedisServer;
using testing::TempDir;
using testing::WaitUntil;

int64_t NowMs() { return UnixMs(std::chrono::system_clock::now()); }

AccountWatcherOptions Options(const RedisUrl& url, const TempDir& tmp) {
  AccountWatcherOptions o = testing::TestRedisOptions<AccountWatcherOptions>(url);
  o.cache_file = tmp / "locked-accounts.json";
  o.poll_interval = std::chrono::milliseconds(5000);  // pub/sub must do it, not polling
  o.redis_timeout = std::chrono::milliseconds(300);
  o.retry_max = std::chrono::milliseconds(100);
  return o;
}

TEST_CASE("the gate refuses locked accounts with the configured reply", "[account_watcher]") {
  LockedAccounts snap;
  snap.locked = {{"alice@cust.example", 0}, {"bob@cust.example", 5000}};
  LockReply reply;
  CHECK(reply.rcode == "451");

  Verdict v = LockVerdict(snap, "Alice@Cust.Example", 1000, reply);
  CHECK(v.kind == Verdict::Kind::kTempfail);
  CHECK(v.rcode == "451");
  CHECK(v.xcode == "4.7.1");
  CHECK(v.text == "Account suspended: contact support");
  CHECK(LockVerdict(snap, "bob@cust.example", 4999, reply).kind == Verdict::Kind::kTempfail);
  CHECK(LockVerdict(snap, "bob@cust.example", 5000, reply).kind == Verdict::Kind::kContinue);
  CHECK(LockVerdict(snap, "carol@cust.example", 1000, reply).kind == Verdict::Kind::kContinue);

  Config config;
  REQUIRE(config.Set("lock_reply", "550", "t").ok());
  REQUIRE(config.Set("lock_text", "account suspended, 100% sure\r\n", "t").ok());
  REQUIRE(LockReply::FromConfig(config, &reply).ok());
  v = LockVerdict(snap, "alice@cust.example", 1000, reply);
  CHECK(v.kind == Verdict::Kind::kReject);
  CHECK(v.rcode == "550");
  CHECK(v.xcode == "5.7.1");
  CHECK(v.text == "account suspended, 100%% sure");  // libmilter's '%'
}

TEST_CASE("a lock made anywhere reaches the watcher within a second, and a release too",
          "[redis][account_watcher]") {
  RedisServer redis;
  TempDir tmp;
  LogCapture log;
  AccountWatcher watcher(Options(redis.url(), tmp), log.fn());
  REQUIRE(watcher.Start().ok());
  CHECK(watcher.Current()->source == "redis");
  auto gate = watcher.Gate(LockReply());
  CHECK(gate("alice@cust.example").kind == Verdict::Kind::kContinue);

  RedisClient c(redis.url());
  AccountRegistry reg(&c, "t:");
  REQUIRE(reg.Lock("alice@cust.example", "ops", "", 0, nullptr).ok());
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(WaitUntil([&] { return gate("ALICE@cust.example").kind != Verdict::Kind::kContinue; },
                    std::chrono::seconds(1)));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
  CHECK(watcher.stats().refused >= 1);
  CHECK(log.Contains("MAIL refused: account ALICE@cust.example is locked"));

  REQUIRE(reg.Release("alice@cust.example", "ops", "", nullptr).ok());
  REQUIRE(WaitUntil([&] { return gate("alice@cust.example").kind == Verdict::Kind::kContinue; },
                    std::chrono::seconds(1)));

  // The cache follows every load, mode 0600.
  REQUIRE(reg.Lock("bob@cust.example", "ops", "", 0, nullptr).ok());
  REQUIRE(WaitUntil([&] { return watcher.Current()->locked.count("bob@cust.example") == 1; },
                    std::chrono::seconds(1)));
  struct stat st;
  REQUIRE(stat((tmp / "locked-accounts.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("the watcher polls when a change message was missed", "[redis][account_watcher]") {
  RedisServer redis;
  TempDir tmp;
  LogCapture log;
  AccountWatcherOptions o = Options(redis.url(), tmp);
  o.poll_interval = std::chrono::milliseconds(200);
  AccountWatcher watcher(o, log.fn());
  REQUIRE(watcher.Start().ok());
  RedisClient c(redis.url());
  // Written by hand, without the PUBLISH.
  REQUIRE(c.Command({"HSET", "t:accounts:locked", "carol@cust.example", "0"}).ok());
  REQUIRE(c.Command({"INCR", "t:accounts:version"}).ok());
  REQUIRE(WaitUntil([&] { return watcher.Current()->IsLocked("carol@cust.example", NowMs()); },
                    std::chrono::seconds(2)));
}

TEST_CASE("locks hold through a Redis outage, expire without Redis, and come from the cache",
          "[redis][account_watcher]") {
  RedisServer redis;
  TempDir tmp;
  LogCapture log;
  {
    RedisClient c(redis.url());
    AccountRegistry reg(&c, "t:");
    REQUIRE(reg.Lock("dave@cust.example", "ops", "", 0, nullptr).ok());
    REQUIRE(reg.Lock("erin@cust.example", "ops", "", NowMs() + 700, nullptr).ok());
  }
  AccountWatcher watcher(Options(redis.url(), tmp), log.fn());
  REQUIRE(watcher.Start().ok());
  auto gate = watcher.Gate(LockReply());
  CHECK(gate("dave@cust.example").kind == Verdict::Kind::kTempfail);
  CHECK(gate("erin@cust.example").kind == Verdict::Kind::kTempfail);

  redis.Stop();
  REQUIRE(WaitUntil([&] { return !watcher.stats().redis_up; }, std::chrono::seconds(3)));
  CHECK(gate("dave@cust.example").kind == Verdict::Kind::kTempfail);
  REQUIRE(WaitUntil([&] { return gate("erin@cust.example").kind == Verdict::Kind::kContinue; },
                    std::chrono::seconds(2)));
  CHECK(gate("dave@cust.example").kind == Verdict::Kind::kTempfail);
  watcher.Stop();

  // A start without Redis enforces what the last run saw.
  LogCapture log2;
  AccountWatcher second(Options(redis.url(), tmp), log2.fn());
  REQUIRE(second.Start().ok());
  CHECK(second.Current()->source == "cache");
  CHECK(second.Gate(LockReply())("dave@cust.example").kind == Verdict::Kind::kTempfail);
  CHECK(log2.Contains("is unreachable; enforcing 2 locked accounts from cache"));

  // Redis is back: the watcher catches up, here with a release made meanwhile elsewhere.
  redis.Start();
  {
    RedisClient c(redis.url());
    AccountRegistry reg(&c, "t:");
    // (Redis ran without persistence: its data is gone, as after a FLUSHALL.)
    REQUIRE(reg.Lock("frank@cust.example", "ops", "", 0, nullptr).ok());
  }
  REQUIRE(WaitUntil([&] { return second.Current()->source == "redis"; }, std::chrono::seconds(3)));
  // The first read may come before the lock (the watcher polls while Redis starts); the
  // lock's version bump brings it within a poll.
  CHECK(WaitUntil([&] { return second.Current()->IsLocked("frank@cust.example", NowMs()); },
                  std::chrono::seconds(3)));
  CHECK_FALSE(second.Current()->IsLocked("dave@cust.example", NowMs()));
}

TEST_CASE("the cache survives what a crashed writer left beside it", "[redis][account_watcher]") {
  RedisServer redis;
  TempDir tmp;
  const AccountWatcherOptions options = Options(redis.url(), tmp);
  // A temporary name a crash left behind, or one another user owns since a run as root:
  // here a folder, which no writer can open. A writer that used a fixed temporary name
  // could never write the cache again.
  REQUIRE(mkdir((options.cache_file + ".tmp").c_str(), 0700) == 0);
  {
    RedisClient c(redis.url());
    AccountRegistry reg(&c, "t:");
    REQUIRE(reg.Lock("gina@cust.example", "ops", "", 0, nullptr).ok());
  }
  LogCapture log;
  {
    AccountWatcher watcher(options, log.fn());
    REQUIRE(watcher.Start().ok());
    CHECK(watcher.Current()->source == "redis");
  }
  CHECK_FALSE(log.Contains("cannot"));
  struct stat st;
  REQUIRE(stat(options.cache_file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // A node started while Redis is down still refuses the locked account.
  redis.Stop();
  LogCapture log2;
  AccountWatcher second(options, log2.fn());
  REQUIRE(second.Start().ok());
  CHECK(second.Current()->source == "cache");
  CHECK(second.Gate(LockReply())("gina@cust.example").kind == Verdict::Kind::kTempfail);
}

TEST_CASE("the daemon's options come from the settings", "[account_watcher]") {
  Config config;
  REQUIRE(config.Set("spool_dir", "/var/spool/compd", "t").ok());
  REQUIRE(config.Set("prefix", "p:", "t").ok());
  REQUIRE(config.Set("hostname", "mx1", "t").ok());
  RedisUrl url;
  url.port = 6390;

  AccountWatcherOptions accounts;
  accounts.redis = url;
  REQUIRE(AccountWatcherOptions::FromConfig(config, &accounts).ok());
  CHECK(accounts.cache_file == "/var/spool/compd/locked-accounts.json");
  CHECK(accounts.prefix == "p:");
  CHECK(accounts.redis.port == 6390);  // kept: it needs the password file

  RecorderOptions recorder;
  recorder.hostname = "mx1";
  REQUIRE(RecorderOptions::FromConfig(config, &recorder).ok());
  CHECK(recorder.spool_dir == "/var/spool/compd");
  CHECK(recorder.hostname == "mx1");
  CHECK(recorder.prefix == "p:");

  HookRunnerOptions hooks;
  REQUIRE(HookRunnerOptions::FromConfig(config, &hooks).ok());
  CHECK_FALSE(hooks.hooks.enabled());

  // Without a spool there is no cache, and a bad reaction setting is refused by name.
  REQUIRE(config.Set("spool_dir", "", "t").ok());
  REQUIRE(AccountWatcherOptions::FromConfig(config, &accounts).ok());
  CHECK(accounts.cache_file.empty());
  REQUIRE(config.Set("lock_allowlist", "@", "t").ok());
  CHECK(RecorderOptions::FromConfig(config, &recorder).IsInvalid());
}

TEST_CASE("without Redis or a cache the watcher refuses nobody and says so", "[account_watcher]") {
  TempDir tmp;
  LogCapture log;
  RedisUrl nowhere;
  nowhere.port = testing::FreePort();
  AccountWatcher watcher(Options(nowhere, tmp), log.fn());
  REQUIRE(watcher.Start().ok());
  CHECK(watcher.Current()->source == "empty");
  CHECK(watcher.Gate(LockReply())("a@b").kind == Verdict::Kind::kContinue);
  CHECK(log.Contains("no account is refused until Redis answers"));
}

}  // namespace
}  // namespace compd
