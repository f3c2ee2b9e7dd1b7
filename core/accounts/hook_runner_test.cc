// HookRunner: the document, the backoff, and delivery of jobs the Recorder queued, against a
// real redis-server and real programs.
#include "compd/accounts/hook_runner.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "compd/accounts/recorder.h"
#include "compd/testutil/accounts.h"
#include "compd/testutil/redis.h"

namespace compd {
namespace {

using Json = nlohmann::json;
using testing::LogCapture;
using testing::ReadLines;
using testing::RedisServer;
using testing::TempDir;
using testing::WaitUntil;
using testing::ZCard;

Event Hit(const std::string& account, const std::string& recipient) {
  return testing::HitEvent(account, recipient, "192.0.2.9");
}

// A Recorder that queues "exec" jobs.
struct Node {
  Node(const RedisUrl& url, const TempDir& tmp, bool lock_on_hit = false) {
    RecorderOptions o = testing::TestRecorderOptions(url, tmp);
    o.accounts.lock_on_hit = lock_on_hit;
    o.accounts.hook_targets = {"exec"};
    rec = std::make_unique<Recorder>(o, log.fn());
    REQUIRE(rec->Start().ok());
  }
  void Record(Event e) { testing::RecordAndWait(rec.get(), std::move(e)); }
  LogCapture log;
  std::unique_ptr<Recorder> rec;
};

HookRunnerOptions RunnerOptions(const RedisUrl& url, std::vector<std::string> command) {
  HookRunnerOptions o;
  o.redis = url;
  o.prefix = "t:";
  o.hostname = "mx-test";
  o.hooks.command = std::move(command);
  o.hooks.timeout = std::chrono::seconds(5);
  o.hooks.retry_min = std::chrono::milliseconds(100);
  o.hooks.retry_max = std::chrono::milliseconds(400);
  o.poll_interval = std::chrono::milliseconds(50);
  return o;
}

TEST_CASE("hook backoff doubles up to the maximum", "[hooks]") {
  using ms = std::chrono::milliseconds;
  const struct {
    int64_t attempts;
    ms min, max, backoff;
  } kCases[] = {
      {1, ms(30000), ms(3600000), ms(30000)},         {2, ms(30000), ms(3600000), ms(60000)},
      {4, ms(30000), ms(3600000), ms(240000)},        {9, ms(30000), ms(3600000), ms(3600000)},
      {1000000, ms(30000), ms(3600000), ms(3600000)}, {0, ms(100), ms(400), ms(100)},
  };
  for (const auto& c : kCases) {
    INFO("attempt " << c.attempts << " between " << c.min.count() << " and " << c.max.count()
                    << " ms");
    CHECK(HookBackoff(c.attempts, c.min, c.max) == c.backoff);
  }
}

TEST_CASE("the hook document carries the job, the hit and the account's evidence", "[hooks]") {
  HookJob job;
  job.id = "mx1:1:7/exec";
  job.target = "exec";
  job.account = "alice@cust.example";
  job.state = "locked";
  job.queued_at_ms = 1714564800123;
  job.attempts = 2;
  Event e = Hit("Alice@cust.example", "t1@bad.example");
  e.time = "2024-05-01T12:00:00.000Z";
  job.event_json = e.ToJson();
  AccountRecord r;
  r.state = "locked";
  r.hits = 3;
  r.first_seen = "2024-05-01T11:00:00.000Z";
  r.last_seen = "2024-05-01T12:00:00.000Z";
  r.recipients = {{"t1@bad.example", 2}, {"t2@bad.example", 1}};
  r.client_ips = {{"192.0.2.9", 3}};

  Json doc = Json::parse(HookDocument(job, &r));
  CHECK(doc["type"] == "account_flagged");
  CHECK(doc["job"] == "mx1:1:7/exec");
  CHECK(doc["attempt"] == 2);
  CHECK(doc["account"] == "alice@cust.example");
  CHECK(doc["state"] == "locked");
  CHECK(doc["queued_at"] == "2024-05-01T12:00:00.123Z");
  CHECK(doc["event"]["account"] == "Alice@cust.example");
  CHECK(doc["event"]["recipient"] == "t1@bad.example");
  CHECK(doc["record"]["hits"] == 3);
  CHECK(doc["record"]["recipients"]["t1@bad.example"] == 2);
  CHECK(doc["record"]["client_ips"]["192.0.2.9"] == 3);
  CHECK_FALSE(Json::parse(HookDocument(job, nullptr)).contains("record"));
}

TEST_CASE("hook settings are checked when the configuration is read", "[hooks]") {
  TempDir tmp;
  Config config;
  HookOptions o;
  REQUIRE(HookOptions::FromConfig(config, &o).ok());
  CHECK_FALSE(o.enabled());

  REQUIRE(config.Set("hook_command", "ticket.sh", "t").ok());
  Status s = HookOptions::FromConfig(config, &o);
  CHECK(s.IsInvalid());
  CHECK(s.message().rfind("hook_command: the program must be an absolute path", 0) == 0);

  REQUIRE(config.Set("hook_command", "/usr/bin/logger -t compd {account}", "t").ok());
  REQUIRE(config.Set("hook_url", "https://u:p@helpdesk.example/", "t").ok());
  s = HookOptions::FromConfig(config, &o);
  CHECK(s.IsInvalid());
  CHECK(s.message().rfind("hook_url: credentials do not belong in the URL", 0) == 0);

  REQUIRE(config.Set("hook_url", "https://helpdesk.example/api", "t").ok());
  REQUIRE(config.Set("hook_headers_file", tmp / "missing", "t").ok());
  s = HookOptions::FromConfig(config, &o);
  CHECK(s.IsIoError());
  CHECK(s.message().rfind("hook_headers_file: ", 0) == 0);

  std::ofstream(tmp / "headers") << "Authorization: Bearer t0ken\n";
  REQUIRE(config.Set("hook_headers_file", tmp / "headers", "t").ok());
  REQUIRE(config.Set("hook_retry_min", "2m", "t").ok());
  REQUIRE(config.Set("hook_retry_max", "1m", "t").ok());
  CHECK(HookOptions::FromConfig(config, &o).IsInvalid());
  REQUIRE(config.Set("hook_retry_max", "2h", "t").ok());
  REQUIRE(HookOptions::FromConfig(config, &o).ok());
  CHECK(o.enabled());
  CHECK(o.command.size() == 4);
  CHECK(o.url.host == "helpdesk.example");
  CHECK(o.headers.size() == 1);
}

TEST_CASE("a failing hook is retried until it succeeds, and the record says so", "[redis][hooks]") {
  RedisServer redis;
  TempDir tmp;
  Node node(redis.url(), tmp, /*lock_on_hit=*/true);
  node.Record(Hit("alice@cust.example", "t1@bad.example"));
  node.Record(Hit("alice@cust.example", "t2@bad.example"));
  CHECK(ZCard(redis.url(), "t:hooks:due") == 1);  // queued with the hit, before any runner

  // Fails the first time (the helpdesk is down), then appends its input to `docs`.
  std::string script = "if [ ! -e " + tmp / "up" + " ]; then touch " + tmp / "up" +
                       "; echo 'helpdesk down' >&2; exit 1; fi; cat >> " + tmp / "docs" +
                       "; echo \"$1 $COMPD_ACCOUNT $COMPD_ATTEMPT\" >> " + tmp / "args";
  LogCapture log;
  HookRunner runner(RunnerOptions(redis.url(), {"/bin/sh", "-c", script, "hook", "{account}"}),
                    log.fn());
  REQUIRE(runner.Start().ok());
  REQUIRE(WaitUntil([&] { return runner.stats().delivered == 1; }, std::chrono::seconds(10)));
  CHECK(runner.stats().failures == 1);
  runner.Stop();

  std::vector<std::string> docs = ReadLines(tmp / "docs");
  REQUIRE(docs.size() == 1);
  Json doc = Json::parse(docs[0]);
  CHECK(doc["account"] == "alice@cust.example");
  CHECK(doc["state"] == "locked");
  CHECK(doc["attempt"] == 2);
  CHECK(doc["event"]["recipient"] == "t1@bad.example");
  CHECK(doc["record"]["hits"] == 2);
  CHECK(doc["record"]["state"] == "locked");
  CHECK(testing::ReadFileOrEmpty(tmp / "args") == "alice@cust.example alice@cust.example 2\n");
  CHECK(log.Contains("failed: exit status 1: helpdesk down; retrying in 100ms"));
  CHECK(ZCard(redis.url(), "t:hooks:due") == 0);

  RedisClient c(redis.url());
  AccountRegistry reg(&c, "t:");
  AccountRecord r;
  REQUIRE(reg.Get("alice@cust.example", &r).ok());
  REQUIRE(r.tickets.size() == 1);
  CHECK(r.tickets[0].first == "exec");
  CHECK(r.tickets[0].second.rfind("delivered ", 0) == 0);
  CHECK(r.tickets[0].second.find("(attempt 2)") != std::string::npos);
  REQUIRE(r.log.size() >= 3);
  CHECK(r.log[0].what == "ticket");
  CHECK(r.log[0].text == "exec delivered (attempt 2)");
  CHECK(r.log[1].what == "ticket");
  CHECK(r.log[1].text.rfind("exec failed: exit status 1: helpdesk down", 0) == 0);
}

TEST_CASE("two nodes' runners deliver each job once", "[redis][hooks]") {
  RedisServer redis;
  TempDir tmp;
  Node node(redis.url(), tmp);
  for (int i = 0; i < 6; ++i) {
    node.Record(Hit("user" + std::to_string(i) + "@cust.example", "t1@bad.example"));
  }
  std::string script = "cat >> " + tmp / "docs" + "; echo >> " + tmp / "docs";
  LogCapture log;
  HookRunner a(RunnerOptions(redis.url(), {"/bin/sh", "-c", script}), log.fn());
  HookRunner b(RunnerOptions(redis.url(), {"/bin/sh", "-c", script}), log.fn());
  REQUIRE(a.Start().ok());
  REQUIRE(b.Start().ok());
  REQUIRE(WaitUntil([&] { return a.stats().delivered + b.stats().delivered == 6; },
                    std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  a.Stop();
  b.Stop();
  CHECK(a.stats().delivered + b.stats().delivered == 6);
  std::set<std::string> accounts;
  for (const std::string& line : ReadLines(tmp / "docs")) {
    accounts.insert(Json::parse(line)["account"].get<std::string>());
  }
  CHECK(accounts.size() == 6);
  CHECK(ReadLines(tmp / "docs").size() == 6);
}

TEST_CASE("stopping kills a running hook and leaves its job due", "[redis][hooks]") {
  RedisServer redis;
  TempDir tmp;
  Node node(redis.url(), tmp);
  node.Record(Hit("slow@cust.example", "t1@bad.example"));
  LogCapture log;
  HookRunner runner(
      RunnerOptions(redis.url(), {"/bin/sh", "-c", "touch " + tmp / "ran" + "; sleep 30"}),
      log.fn());
  REQUIRE(runner.Start().ok());
  REQUIRE(WaitUntil([&] { return access((tmp / "ran").c_str(), F_OK) == 0; }));
  auto t0 = std::chrono::steady_clock::now();
  runner.Stop();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  CHECK(log.Contains("interrupted by stop; due again now"));
  RedisClient c(redis.url());
  RedisReply r;
  REQUIRE(c.Command({"ZRANGE", "t:hooks:due", "0", "-1", "WITHSCORES"}, &r).ok());
  REQUIRE(r.elements.size() == 2);
  CHECK(std::stoll(r.elements[1].str) <= UnixMs(std::chrono::system_clock::now()));
}

}  // namespace
}  // namespace compd
