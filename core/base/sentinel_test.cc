#include "compd/base/sentinel.h"

#include <catch2/catch.hpp>
#include <thread>

#include "compd/base/redis_config.h"
#include "compd/base/settings.h"

namespace compd {
namespace {

RedisReply Str(const std::string& s) {
  RedisReply r;
  r.type = RedisReply::Type::kString;
  r.str = s;
  return r;
}

RedisReply Array(std::vector<RedisReply> elements) {
  RedisReply r;
  r.type = RedisReply::Type::kArray;
  r.elements = std::move(elements);
  return r;
}

TEST_CASE("Sentinel lists: host:port, IPv6 in brackets", "[sentinel]") {
  std::vector<HostPort> list;
  REQUIRE(
      ParseSentinelList("10.0.0.1:26379, sentinel-b.example:26380,[2001:db8::7]:5000", &list).ok());
  REQUIRE(list.size() == 3);
  CHECK(list[0] == HostPort{"10.0.0.1", 26379});
  CHECK(list[1] == HostPort{"sentinel-b.example", 26380});
  CHECK(list[2] == HostPort{"2001:db8::7", 5000});
  CHECK(list[2].ToString() == "[2001:db8::7]:5000");
  CHECK(ParseSentinelList(" a:1 ,, b:2 ", &list).ok());
  CHECK(list.size() == 2);
}

TEST_CASE("Sentinel list errors name the item", "[sentinel]") {
  std::vector<HostPort> list;
  CHECK(ParseSentinelList("a:1,2001:db8::7:5000", &list).message() ==
        "'2001:db8::7:5000' needs brackets around an IPv6 address: [::1]:8891");
  CHECK(ParseSentinelList("a:1,b", &list).message() == "'b' is not HOST:PORT");
  CHECK(ParseSentinelList("a:70000", &list).message() ==
        "'a:70000' has a port out of range 1..65535");
  CHECK(ParseSentinelList("[::1:5", &list).message() == "'[::1:5' has an unclosed [IPv6] address");
  CHECK(ParseSentinelList(" , ", &list).IsInvalid());
}

TEST_CASE("get-master-addr-by-name replies", "[sentinel]") {
  HostPort hp;
  REQUIRE(ParseMasterAddrReply(Array({Str("127.0.0.1"), Str("6380")}), &hp).ok());
  CHECK(hp == HostPort{"127.0.0.1", 6380});
  REQUIRE(ParseMasterAddrReply(Array({Str("::1"), Str("6379")}), &hp).ok());
  CHECK(hp.ToString() == "[::1]:6379");
  // A sentinel that does not monitor the name answers nil: not found, not an outage.
  CHECK(ParseMasterAddrReply(RedisReply(), &hp).IsNotFound());
  CHECK(ParseMasterAddrReply(Array({Str("h")}), &hp).IsUnavailable());
  CHECK(ParseMasterAddrReply(Array({Str("h"), Str("port")}), &hp).IsUnavailable());
  CHECK(ParseMasterAddrReply(Array({Str(""), Str("1")}), &hp).IsUnavailable());
  RedisReply err;
  err.type = RedisReply::Type::kError;
  err.str = "NOAUTH Authentication required.";
  CHECK(ParseMasterAddrReply(err, &hp).message() == "NOAUTH Authentication required.");
}

TEST_CASE("ROLE replies", "[sentinel]") {
  std::string role;
  RedisReply offset;
  offset.type = RedisReply::Type::kInteger;
  REQUIRE(ParseRoleReply(Array({Str("master"), offset, Array({})}), &role).ok());
  CHECK(role == "master");
  REQUIRE(ParseRoleReply(Array({Str("slave"), Str("127.0.0.1"), offset}), &role).ok());
  CHECK(role == "slave");
  CHECK(ParseRoleReply(Str("master"), &role).IsUnavailable());
  CHECK(ParseRoleReply(Array({}), &role).IsUnavailable());
}

TEST_CASE("+switch-master messages", "[sentinel]") {
  HostPort to;
  REQUIRE(ParseSwitchMaster("compd 127.0.0.1 6379 127.0.0.1 6380", "compd", &to));
  CHECK(to == HostPort{"127.0.0.1", 6380});
  REQUIRE(ParseSwitchMaster("compd ::1 6379 2001:db8::2 6379", "compd", &to));
  CHECK(to.ToString() == "[2001:db8::2]:6379");
  for (const char* other : {"other 127.0.0.1 6379 127.0.0.1 6380", "compd 127.0.0.1 6379 127.0.0.1",
                            "compd 127.0.0.1 6379 127.0.0.1 x", ""}) {
    INFO("'" << other << "'");
    CHECK_FALSE(ParseSwitchMaster(other, "compd", &to));
  }
}

TEST_CASE("No sentinel answering is Redis unavailable, counted", "[sentinel]") {
  SentinelOptions o;
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  o.sentinels = {{"127.0.0.1", 1}, {"127.0.0.1", 2}};
  o.master = "compd";
  o.timeout = std::chrono::milliseconds(200);
  auto sentinel = std::make_shared<Sentinel>(o);
  Primary p;
  Status s = sentinel->Resolve(&p);
  CHECK(s.IsUnavailable());
  CHECK(s.message().find("no sentinel answered") != std::string::npos);
  CHECK(s.message().find("127.0.0.1:2") != std::string::npos);
  SentinelStats st = sentinel->stats();
  CHECK(st.sentinel_errors == 2);
  CHECK_FALSE(st.primary_up);
  CHECK(st.primary.empty());
  // A client on these sentinels fails the same way: an outage, never a wrong answer.
  RedisUrl url;
  url.sentinel = sentinel;
  RedisClient client(url, std::chrono::milliseconds(200));
  CHECK(client.Command({"PING"}).IsUnavailable());
  CHECK(url.ToString() == "master compd via sentinels 127.0.0.1:1,127.0.0.1:2");
}

TEST_CASE("Time without a primary runs from a loss to a confirmation", "[sentinel]") {
  SentinelOptions o;
  o.sentinels = {{"127.0.0.1", 1}};
  o.master = "compd";
  Sentinel sentinel(o);
  sentinel.ReportConfirmed(sentinel.generation());
  CHECK(sentinel.stats().primary_up);
  const double before = sentinel.stats().seconds_without_primary;
  sentinel.ReportLost(sentinel.generation(), "test");
  CHECK_FALSE(sentinel.stats().primary_up);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // News about another generation (a client still on an old primary) changes nothing.
  sentinel.ReportConfirmed(sentinel.generation() + 1);
  CHECK_FALSE(sentinel.stats().primary_up);
  sentinel.ReportConfirmed(sentinel.generation());
  SentinelStats st = sentinel.stats();
  CHECK(st.primary_up);
  CHECK(st.seconds_without_primary - before >= 0.05);
  CHECK(st.switches == 0);
}

TEST_CASE("Sentinel settings", "[sentinel][settings]") {
  Config c;
  RedisUrl url;
  REQUIRE(RedisUrlFromConfig(c, &url).ok());
  CHECK(url.sentinel == nullptr);
  REQUIRE(c.Set("redis_sentinels", "127.0.0.1:26379,[::1]:26380", "t").ok());
  CHECK(RedisUrlFromConfig(c, &url).message().rfind("redis_sentinel_master: required", 0) == 0);
  REQUIRE(c.Set("redis_sentinel_master", "compd", "t").ok());
  REQUIRE(c.Set("redis_url", "redis://compd@ignored:1/3", "t").ok());
  REQUIRE(RedisUrlFromConfig(c, &url).ok());
  REQUIRE(url.sentinel != nullptr);
  CHECK(url.db == 3);
  CHECK(url.user == "compd");
  CHECK(url.sentinel->options().sentinels.size() == 2);
  REQUIRE(c.Set("redis_sentinels", "127.0.0.1", "t").ok());
  CHECK(RedisUrlFromConfig(c, &url).message() == "redis_sentinels: '127.0.0.1' is not HOST:PORT");
  REQUIRE(c.Set("redis_sentinels", "127.0.0.1:26379", "t").ok());
  REQUIRE(c.Set("redis_url", "unix:///run/redis.sock", "t").ok());
  CHECK(RedisUrlFromConfig(c, &url).IsInvalid());
  REQUIRE(c.Set("redis_url", "redis://h/0", "t").ok());
  REQUIRE(c.Set("redis_sentinel_password_file", "/nonexistent/sentinel.pw", "t").ok());
  CHECK(RedisUrlFromConfig(c, &url).IsIoError());
}

}  // namespace
}  // namespace compd
