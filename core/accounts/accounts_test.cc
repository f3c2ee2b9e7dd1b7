// The account registry: pure parts, and the hit reaction through a real Recorder and a
// real redis-server.
#include "compd/accounts/accounts.h"

#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>

#include "compd/accounts/recorder.h"
#include "compd/testutil/accounts.h"
#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::GetAccount;
using testing::HitEvent;
using testing::RecordAndWait;
using testing::RecorderFixture;
using testing::RedisServer;
using testing::TestRecorderOptions;
using testing::WaitUntil;
using testing::ZCard;

std::map<std::string, std::string> Locked(const RedisUrl& url) {
  RedisClient c(url);
  RedisReply r;
  REQUIRE(c.Command({"HGETALL", "t:accounts:locked"}, &r).ok());
  std::map<std::string, std::string> m;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2)
    m[r.elements[i].str] = r.elements[i + 1].str;
  return m;
}

int64_t NowMs() { return UnixMs(std::chrono::system_clock::now()); }

TEST_CASE("account names compare case-insensitively and reject control characters", "[accounts]") {
  CHECK(AccountKey("Alice@Customer.EXAMPLE") == "alice@customer.example");
  CHECK(CheckAccountName("alice@customer.example").ok());
  CHECK(CheckAccountName("ip:2001:db8::1").ok());
  CHECK(CheckAccountName("").IsInvalid());
  CHECK(CheckAccountName("a\r\nb").IsInvalid());
  CHECK(CheckAccountName(std::string(kMaxAccountLength + 1, 'a')).IsInvalid());
}

TEST_CASE("the allowlist takes accounts and whole domains", "[accounts]") {
  AccountAllowlist list;
  REQUIRE(
      AccountAllowlist::Parse("Monitor@Cust.example, @partner.example  ops@x.example", &list).ok());
  CHECK(list.size() == 3);
  CHECK(list.Contains("monitor@cust.example"));
  CHECK(list.Contains("MONITOR@cust.example"));
  CHECK(list.Contains("anyone@partner.example"));
  CHECK(list.Contains("ops@x.example"));
  CHECK_FALSE(list.Contains("other@cust.example"));
  CHECK_FALSE(list.Contains("partner.example"));
  CHECK_FALSE(list.Contains("x@notpartner.example.org"));
  CHECK_FALSE(AccountAllowlist().Contains("a@b"));

  Status s = AccountAllowlist::Parse("a@b, @", &list);
  CHECK(s.IsInvalid());
  CHECK(s.message().find("'@'") != std::string::npos);
}

TEST_CASE("the reaction comes from the settings", "[accounts]") {
  Config config;
  AccountReaction r;
  REQUIRE(AccountReaction::FromConfig(config, &r).ok());
  CHECK_FALSE(r.lock_on_hit);
  CHECK(r.hook_targets.empty());
  CHECK(r.hook_quiet == std::chrono::hours(24));

  REQUIRE(config.Set("lock_on_hit", "yes", "t").ok());
  REQUIRE(config.Set("lock_allowlist", "vip@cust.example", "t").ok());
  REQUIRE(config.Set("lock_duration", "2h", "t").ok());
  REQUIRE(config.Set("hook_command", "/usr/local/bin/ticket {account}", "t").ok());
  REQUIRE(config.Set("hook_url", "http://127.0.0.1:9/x", "t").ok());
  REQUIRE(AccountReaction::FromConfig(config, &r).ok());
  CHECK(r.lock_on_hit);
  CHECK(r.allowlist.Contains("VIP@cust.example"));
  CHECK(r.lock_duration == std::chrono::hours(2));
  CHECK(r.hook_targets == std::vector<std::string>{"exec", "webhook"});
  // What the record script (and the rspamd plugin, through Redis) reads.
  CHECK(nlohmann::json::parse(r.ToJson()) ==
        nlohmann::json::parse(R"({"lock_on_hit":true,"lock_allowlist":["vip@cust.example"],)"
                              R"("lock_duration_ms":7200000,"hook_quiet_ms":86400000,)"
                              R"("hook_targets":["exec","webhook"]})"));

  REQUIRE(config.Set("lock_allowlist", "a\x01@b", "compd.conf:3").ok());
  Status s = AccountReaction::FromConfig(config, &r);
  CHECK(s.IsInvalid());
  CHECK(s.message().rfind("lock_allowlist: ", 0) == 0);
}

TEST_CASE("ages for --since", "[accounts]") {
  std::chrono::milliseconds d;
  REQUIRE(ParseAge("24h", &d));
  CHECK(d == std::chrono::hours(24));
  REQUIRE(ParseAge("90s", &d));
  CHECK(d == std::chrono::seconds(90));
  REQUIRE(ParseAge("2w", &d));
  CHECK(d == std::chrono::hours(24 * 14));
  for (const char* bad : {"", "0h", "24", "-1h", "1y"}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(ParseAge(bad, &d));
  }
}

TEST_CASE("effective state: expired locks and pre-registry hits count as flagged", "[accounts]") {
  AccountRecord r;
  r.hits = 2;
  CHECK(r.EffectiveState(1000) == "flagged");
  r.state = "locked";
  r.lock_expires_ms = 0;
  CHECK(r.EffectiveState(1000) == "locked");
  r.lock_expires_ms = 2000;
  CHECK(r.EffectiveState(1000) == "locked");
  CHECK(r.EffectiveState(2000) == "flagged");
  CHECK(r.LockExpired(2000));
  r.state = "released";
  CHECK(r.EffectiveState(5000) == "released");
}

TEST_CASE_METHOD(RecorderFixture, "a hit flags its account and keeps the evidence",
                 "[redis][accounts]") {
  Recorder& rec = StartRecorder();

  RecordAndWait(&rec, HitEvent("Alice@Cust.example", "t1@bad.example", "192.0.2.1"));
  RecordAndWait(&rec, HitEvent("alice@cust.example", "t2@bad.example", "192.0.2.2"));
  RecordAndWait(&rec, HitEvent("alice@cust.example", "t1@bad.example", "192.0.2.2"));

  AccountRecord r = GetAccount(redis.url(), "ALICE@cust.example");
  CHECK(r.account == "alice@cust.example");
  CHECK(r.state == "flagged");
  CHECK(r.hits == 3);
  CHECK(r.state_by == "compd@mx-test");
  CHECK(r.state_reason == "hit on t1@bad.example");
  CHECK_FALSE(r.flagged_at.empty());
  using Counts = std::vector<std::pair<std::string, int64_t>>;
  CHECK(r.recipients == Counts{{"t1@bad.example", 2}, {"t2@bad.example", 1}});
  CHECK(r.client_ips == Counts{{"192.0.2.2", 2}, {"192.0.2.1", 1}});
  REQUIRE(r.timeline.size() == 3);
  Event newest;
  REQUIRE(Event::FromJson(r.timeline[0], &newest).ok());
  CHECK(newest.recipient == "t1@bad.example");
  CHECK(newest.client_ip == "192.0.2.2");
  REQUIRE(r.log.size() == 1);  // flagged once, not per hit
  CHECK(r.log[0].what == "flagged");
  CHECK(Locked(redis.url()).empty());             // lock_on_hit is off
  CHECK(ZCard(redis.url(), "t:hooks:due") == 0);  // no hook configured
  CHECK(log.Contains("account Alice@Cust.example flagged: hit on t1@bad.example"));
}

TEST_CASE_METHOD(RecorderFixture,
                 "lock_on_hit locks, except allowlisted accounts; jobs once per newly flagged",
                 "[redis][accounts]") {
  AccountReaction reaction;
  reaction.lock_on_hit = true;
  REQUIRE(AccountAllowlist::Parse("@partner.example", &reaction.allowlist).ok());
  reaction.hook_targets = {"exec", "webhook"};
  RecorderOptions options = TestRecorderOptions(redis.url(), tmp);
  options.accounts = reaction;
  options.publish_reaction = true;
  Recorder& rec = StartRecorder(options);

  RecordAndWait(&rec, HitEvent("bob@cust.example", "t1@bad.example"));
  RecordAndWait(&rec, HitEvent("watch@partner.example", "t1@bad.example"));

  AccountRecord bob = GetAccount(redis.url(), "bob@cust.example");
  CHECK(bob.state == "locked");
  CHECK(bob.lock_expires_ms == 0);
  CHECK(bob.state_reason == "hit on t1@bad.example; lock_on_hit");
  AccountRecord watch = GetAccount(redis.url(), "watch@partner.example");
  CHECK(watch.state == "flagged");
  CHECK(watch.state_reason == "hit on t1@bad.example; not locked: in lock_allowlist");
  auto locked = Locked(redis.url());
  CHECK(locked.size() == 1);
  CHECK(locked["bob@cust.example"] == "0");
  {
    RedisClient c(redis.url());
    RedisReply r;
    REQUIRE(c.Command({"GET", "t:accounts:version"}, &r).ok());
    CHECK(r.str == "1");
  }
  // Two targets, two newly flagged accounts.
  CHECK(ZCard(redis.url(), "t:hooks:due") == 4);
  CHECK(
      log.Contains("account bob@cust.example LOCKED: hit on t1@bad.example from 192.0.2.7; "
                   "ticket queued"));

  // A second hit of a flagged (allowlisted) account is no news: no new job.
  RecordAndWait(&rec, HitEvent("watch@partner.example", "t2@bad.example"));
  CHECK(ZCard(redis.url(), "t:hooks:due") == 4);
  CHECK(GetAccount(redis.url(), "watch@partner.example").hits == 2);

  // A release, then a new hit: flagged (locked) again, but within the quiet period no ticket.
  {
    RedisClient c(redis.url());
    AccountRegistry reg(&c, "t:");
    AccountChange change;
    REQUIRE(reg.Release("bob@cust.example", "ops", "password reset", &change).ok());
    CHECK(change.previous_state == "locked");
  }
  CHECK(Locked(redis.url()).empty());
  RecordAndWait(&rec, HitEvent("bob@cust.example", "t3@bad.example"));
  CHECK(GetAccount(redis.url(), "bob@cust.example").state == "locked");
  CHECK(ZCard(redis.url(), "t:hooks:due") == 4);

  // The job carries what the hook needs.
  RedisClient c(redis.url());
  RedisReply ids;
  REQUIRE(c.Command({"ZRANGE", "t:hooks:due", "0", "-1"}, &ids).ok());
  bool found = false;
  for (const RedisReply& id : ids.elements) {
    RedisReply job;
    REQUIRE(c.Command({"HGETALL", "t:hook:" + id.str}, &job).ok());
    std::map<std::string, std::string> f;
    for (size_t i = 0; i + 1 < job.elements.size(); i += 2)
      f[job.elements[i].str] = job.elements[i + 1].str;
    if (f["account"] != "bob@cust.example" || f["target"] != "webhook") continue;
    found = true;
    CHECK(f["state"] == "locked");
    CHECK(f["attempts"] == "0");
    CHECK(f["id"] == id.str);
    Event e;
    REQUIRE(Event::FromJson(f["event"], &e).ok());
    CHECK(e.recipient == "t1@bad.example");
  }
  CHECK(found);

  // Only SASL accounts lock automatically.
  RecordAndWait(&rec, HitEvent("ip:192.0.2.5", "t1@bad.example"));  // a whole trusted host
  RecordAndWait(&rec,
                HitEvent("local:www-data@host.example", "t1@bad.example"));  // cannot be refused
  for (const char* a : {"ip:192.0.2.5", "local:www-data@host.example"}) {
    AccountRecord r = GetAccount(redis.url(), a);
    CHECK(r.state == "flagged");
    CHECK(r.state_reason == "hit on t1@bad.example; not locked: not a SASL account");
  }
  CHECK(Locked(redis.url()).size() == 1);
  // The reaction the rspamd plugin's hits get.
  REQUIRE(WaitUntil([&] {
    return c.Command({"GET", Keys("t:").accounts_reaction()}, &ids).ok() &&
           ids.str == reaction.ToJson();
  }));
}

TEST_CASE_METHOD(RecorderFixture,
                 "quiet period 0 opens a ticket per newly flagged; duplicates change nothing",
                 "[redis][accounts]") {
  AccountReaction reaction;
  reaction.hook_targets = {"exec"};
  reaction.hook_quiet = std::chrono::milliseconds(0);
  Recorder& rec = StartRecorder(reaction);

  Event e = HitEvent("carol@cust.example", "t1@bad.example");
  e.id = "fixed-id-1";
  RecordAndWait(&rec, e);
  RecordAndWait(&rec, e);  // a replay of the same event: counted nowhere twice
  AccountRecord r = GetAccount(redis.url(), "carol@cust.example");
  CHECK(r.hits == 1);
  CHECK(r.recipients.size() == 1);
  CHECK(r.recipients[0].second == 1);
  CHECK(r.timeline.size() == 1);
  CHECK(ZCard(redis.url(), "t:hooks:due") == 1);

  RedisClient c(redis.url());
  AccountRegistry reg(&c, "t:");
  REQUIRE(reg.Release("carol@cust.example", "ops", "", nullptr).ok());
  RecordAndWait(&rec, HitEvent("carol@cust.example", "t1@bad.example"));
  CHECK(GetAccount(redis.url(), "carol@cust.example").state == "flagged");
  CHECK(ZCard(redis.url(), "t:hooks:due") == 2);
}

TEST_CASE_METHOD(RecorderFixture,
                 "a release made after a spooled hit happened is not undone by its replay",
                 "[redis][accounts]") {
  AccountReaction reaction;
  reaction.lock_on_hit = true;
  Recorder& rec = StartRecorder(reaction);
  RedisClient c(redis.url());
  AccountRegistry reg(&c, "t:");

  RecordAndWait(&rec, HitEvent("dave@cust.example", "t1@bad.example"));
  REQUIRE(reg.Release("dave@cust.example", "ops", "reset", nullptr).ok());
  Event old = HitEvent("dave@cust.example", "t2@bad.example");
  old.time = FormatUtcMillis(std::chrono::system_clock::now() - std::chrono::minutes(5));
  RecordAndWait(&rec, old);
  AccountRecord r = GetAccount(redis.url(), "dave@cust.example");
  CHECK(r.state == "released");
  CHECK(r.hits == 2);  // still evidence
  CHECK(Locked(redis.url()).empty());

  RecordAndWait(&rec, HitEvent("dave@cust.example", "t3@bad.example"));
  CHECK(GetAccount(redis.url(), "dave@cust.example").state == "locked");
}

TEST_CASE_METHOD(RecorderFixture, "automatic locks expire; a hit after the expiry locks again",
                 "[redis][accounts]") {
  AccountReaction reaction;
  reaction.lock_on_hit = true;
  reaction.lock_duration = std::chrono::milliseconds(200);
  Recorder& rec = StartRecorder(reaction);

  int64_t before = NowMs();
  RecordAndWait(&rec, HitEvent("erin@cust.example", "t1@bad.example"));
  AccountRecord r = GetAccount(redis.url(), "erin@cust.example");
  CHECK(r.state == "locked");
  CHECK(r.lock_expires_ms >= before + 200);
  CHECK(r.lock_expires_ms <= NowMs() + 200);
  CHECK(r.EffectiveState(NowMs()) == "locked");
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  r = GetAccount(redis.url(), "erin@cust.example");
  CHECK(r.EffectiveState(NowMs()) == "flagged");

  RecordAndWait(&rec, HitEvent("erin@cust.example", "t2@bad.example"));
  r = GetAccount(redis.url(), "erin@cust.example");
  CHECK(r.EffectiveState(NowMs()) == "locked");
  CHECK(r.lock_expires_ms > NowMs());
}

TEST_CASE_METHOD(RecorderFixture, "operators lock, release and annotate; list filters by activity",
                 "[redis][accounts]") {
  Recorder& rec = StartRecorder();
  RecordAndWait(&rec, HitEvent("frank@cust.example", "t1@bad.example"));

  RedisClient c(redis.url());
  AccountRegistry reg(&c, "t:");
  AccountChange change;
  // Any account can be locked, with or without a record.
  REQUIRE(reg.Lock("Gina@Cust.example", "ops", "phoned in", NowMs() + 60000, &change).ok());
  CHECK(change.previous_state.empty());
  CHECK(change.version == 1);
  CHECK(Locked(redis.url()).count("gina@cust.example") == 1);
  REQUIRE(reg.Lock("frank@cust.example", "ops", "ticket 4711", 0, &change).ok());
  CHECK(change.previous_state == "flagged");
  CHECK(change.version == 2);
  REQUIRE(reg.Note("frank@cust.example", "ops", "customer called back").ok());

  AccountRecord frank = GetAccount(redis.url(), "frank@cust.example");
  CHECK(frank.state == "locked");
  CHECK(frank.state_by == "ops");
  CHECK(frank.state_reason == "ticket 4711");
  REQUIRE(frank.log.size() == 3);
  CHECK(frank.log[0].what == "note");
  CHECK(frank.log[0].text == "customer called back");
  CHECK(frank.log[1].what == "locked");
  CHECK(frank.log[2].what == "flagged");

  CHECK(reg.Release("nobody@cust.example", "ops", "", nullptr).IsNotFound());
  CHECK(reg.Note("nobody@cust.example", "ops", "x").IsNotFound());
  AccountRecord none;
  CHECK(reg.Get("nobody@cust.example", &none).IsNotFound());
  CHECK(reg.Lock("", "ops", "", 0, nullptr).IsInvalid());

  std::vector<AccountRecord> all;
  REQUIRE(reg.List({}, &all).ok());
  REQUIRE(all.size() == 2);
  CHECK(all[0].account == "frank@cust.example");  // the note is the latest activity
  CHECK(all[1].account == "gina@cust.example");
  CHECK(all[1].hits == 0);

  AccountListOptions recent;
  recent.since_ms = NowMs() + 60000;
  REQUIRE(reg.List(recent, &all).ok());
  CHECK(all.empty());
  AccountListOptions evidence;
  evidence.with_evidence = true;
  REQUIRE(reg.List(evidence, &all).ok());
  REQUIRE(all.size() == 2);
  CHECK(all[0].recipients.size() == 1);
}

TEST_CASE_METHOD(RecorderFixture,
                 "a signal's flag shows its summary, and the latest accounts include it",
                 "[redis][accounts]") {
  Recorder& rec = StartRecorder();
  RecordAndWait(&rec, HitEvent("frank@cust.example", "t1@bad.example"));
  Event e = testing::SignalEvent("kim@cust.example", "combined", "flag");
  e.detail = "combined 7 >= 6: test_message 5, new_networks 2";
  // Longer than the reason keeps: the summary before it must survive the cut.
  e.evidence = "{\"combined\":{\"contributions\":[\"" + std::string(400, 'x') + "\"]}}";
  RecordAndWait(&rec, e);
  AccountRecord kim = GetAccount(redis.url(), "kim@cust.example");
  CHECK(kim.state == "flagged");
  CHECK(kim.state_reason.rfind("signal combined (flag): " + e.detail + " {\"combined\"", 0) == 0);

  // The dashboard's list: the flagged account has no hit, and must be there all the same.
  RedisClient c(redis.url());
  AccountRegistry reg(&c, "t:");
  std::vector<AccountRecord> latest;
  REQUIRE(reg.Latest(10, &latest).ok());
  REQUIRE(latest.size() == 2);
  CHECK(latest[0].account == "kim@cust.example");  // the latest activity first
  CHECK(latest[0].state == "flagged");
  CHECK(latest[1].account == "frank@cust.example");
  CHECK(latest[1].last_hit > 0);
  REQUIRE(reg.Latest(1, &latest).ok());
  CHECK(latest.size() == 1);
}

TEST_CASE("the registry reports a Redis outage as unavailable, never as not found",
          "[redis][accounts]") {
  RedisServer redis;
  RedisClient c(redis.url(), std::chrono::milliseconds(300));
  AccountRegistry reg(&c, "t:");
  redis.Stop();
  AccountRecord r;
  CHECK(reg.Get("a@b", &r).IsUnavailable());
  std::vector<AccountRecord> all;
  CHECK(reg.List({}, &all).IsUnavailable());
  CHECK(reg.Lock("a@b", "ops", "", 0, nullptr).IsUnavailable());
  CHECK(reg.Release("a@b", "ops", "", nullptr).IsUnavailable());
}

}  // namespace
}  // namespace compd
