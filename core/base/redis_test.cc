#include "compd/base/redis.h"

#include <catch2/catch.hpp>
#include <map>

#include "compd/testutil/redis.h"

namespace compd {
namespace {

TEST_CASE("ParseRedisUrl accepts the documented forms", "[redis]") {
  struct Case {
    const char* url;
    const char* host;
    int port;
    const char* socket;
    int db;
    const char* user;
    const char* canonical;  // ToString()
  };
  const Case cases[] = {
      {"redis://127.0.0.1:6379/0", "127.0.0.1", 6379, "", 0, "", "redis://127.0.0.1:6379"},
      {"redis://localhost", "localhost", 6379, "", 0, "", "redis://localhost:6379"},
      {"redis://localhost/", "localhost", 6379, "", 0, "", "redis://localhost:6379"},
      {"redis://10.0.0.5:6380/3", "10.0.0.5", 6380, "", 3, "", "redis://10.0.0.5:6380/3"},
      {"redis://compd@redis.example:7000/1", "redis.example", 7000, "", 1, "compd",
       "redis://compd@redis.example:7000/1"},
      {"redis://[::1]:6379/2", "::1", 6379, "", 2, "", "redis://[::1]:6379/2"},
      {"redis://[::1]", "::1", 6379, "", 0, "", "redis://[::1]:6379"},
      // An empty host means the default one, as in other Redis clients.
      {"redis://", "127.0.0.1", 6379, "", 0, "", "redis://127.0.0.1:6379"},
      {"redis://:6380", "127.0.0.1", 6380, "", 0, "", "redis://127.0.0.1:6380"},
      {"unix:///run/redis/redis.sock", "127.0.0.1", 6379, "/run/redis/redis.sock", 0, "",
       "unix:///run/redis/redis.sock"},
      {"unix:///tmp/r.sock?db=4", "127.0.0.1", 6379, "/tmp/r.sock", 4, "",
       "unix:///tmp/r.sock?db=4"},
  };
  for (const auto& c : cases) {
    INFO(c.url);
    RedisUrl u;
    REQUIRE(ParseRedisUrl(c.url, &u).ok());
    CHECK(u.host == c.host);
    CHECK(u.port == c.port);
    CHECK(u.socket_path == c.socket);
    CHECK(u.db == c.db);
    CHECK(u.user == c.user);
    CHECK(u.password.empty());
    CHECK(u.ToString() == c.canonical);
    // What ToString prints parses back to the same thing.
    RedisUrl again;
    REQUIRE(ParseRedisUrl(u.ToString(), &again).ok());
    CHECK(again.ToString() == u.ToString());
  }
}

TEST_CASE("ParseRedisUrl rejects bad URLs with the reason", "[redis]") {
  struct Case {
    const char* url;
    const char* reason;
  };
  const Case cases[] = {
      {"http://x", "expected redis://host:port/db or unix:///path"},
      {"127.0.0.1:6379", "expected redis://host:port/db or unix:///path"},
      {"redis://[]:6379", "empty host"},
      {"redis://h:0", "port must be 1-65535"},
      {"redis://h:65536", "port must be 1-65535"},
      {"redis://h:port", "port must be 1-65535"},
      {"redis://h/x", "database must be a number"},
      {"redis://h/-1", "database must be a number"},
      {"redis://[::1", "unterminated [IPv6] host"},
      {"redis://[::1]x", "junk after ]"},
      {"unix://relative.sock", "unix socket path must be absolute"},
      {"unix://", "unix socket path must be absolute"},
      {"unix:///r.sock?timeout=3", "only ?db=N is understood after a unix socket path"},
  };
  for (const auto& c : cases) {
    INFO(c.url);
    RedisUrl u;
    Status s = ParseRedisUrl(c.url, &u);
    REQUIRE(s.IsInvalid());
    CHECK(s.message() == "redis URL '" + std::string(c.url) + "': " + c.reason);
  }
}

TEST_CASE("A password in the URL is refused and never echoed", "[redis]") {
  for (const char* url : {"redis://user:hunter2@h:6379/0", "redis://:hunter2@h"}) {
    INFO(url);
    RedisUrl u;
    Status s = ParseRedisUrl(url, &u);
    REQUIRE(s.IsInvalid());
    CHECK(s.message().find("a password in the URL is refused") != std::string::npos);
    CHECK(s.message().find("hunter2") == std::string::npos);
    CHECK(s.message().find("***@h") != std::string::npos);
  }
}

TEST_CASE("ToString never shows the password", "[redis]") {
  RedisUrl u;
  REQUIRE(ParseRedisUrl("redis://compd@h:1/2", &u).ok());
  u.password = "hunter2";
  CHECK(u.ToString() == "redis://compd@h:1/2");
}

TEST_CASE("ForEachHash reads every matching hash across SCAN pages, and no other key", "[redis]") {
  testing::RedisServer server;
  RedisClient c(server.url());
  std::vector<std::vector<std::string>> writes;
  for (int i = 0; i < 2500; ++i) {  // more than one SCAN page of COUNT 1000
    writes.push_back({"HSET", "p:h:" + std::to_string(i), "n", std::to_string(i), "m", "x"});
  }
  writes.push_back({"HSET", "p:other:1", "n", "1"});
  REQUIRE(c.Pipeline(writes).ok());
  std::map<std::string, std::vector<std::string>> seen;
  REQUIRE(
      ForEachHash(&c, "p:h:*", [&](const std::string& key, const std::vector<RedisReply>& fields) {
        for (const RedisReply& f : fields) seen[key].push_back(f.str);
      }).ok());
  REQUIRE(seen.size() == 2500);
  CHECK(seen["p:h:17"] == std::vector<std::string>{"n", "17", "m", "x"});
  CHECK(seen.count("p:other:1") == 0);
}

}  // namespace
}  // namespace compd
