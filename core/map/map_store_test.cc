// The pure parts of the map store; its Redis side is exercised by tests/mapctl_test.py
// against a real redis-server.
#include "compd/map/map_store.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace compd {
namespace {

TEST_CASE("EntryMeta survives a JSON round trip", "[map_store]") {
  EntryMeta m{1714564800, "alice", "ticket \"17\"\nline two", "import:/etc/x.map:12"};
  EntryMeta back = EntryMeta::FromJson(m.ToJson());
  CHECK(back.added_at == m.added_at);
  CHECK(back.added_by == m.added_by);
  CHECK(back.note == m.note);
  CHECK(back.source == m.source);
}

TEST_CASE("EntryMeta JSON has the documented field names", "[map_store]") {
  auto j = nlohmann::json::parse(EntryMeta{5, "bob", "n", "mapctl"}.ToJson());
  CHECK(j["added_at"] == 5);
  CHECK(j["added_by"] == "bob");
  CHECK(j["note"] == "n");
  CHECK(j["source"] == "mapctl");
}

TEST_CASE("EntryMeta::FromJson is tolerant", "[map_store]") {
  struct Case {
    const char* json;
    int64_t added_at;
    const char* added_by;
  };
  const Case cases[] = {
      {"", 0, ""},
      {"not json", 0, ""},
      {"[1,2]", 0, ""},
      {"{}", 0, ""},
      {R"({"added_at":"yesterday","added_by":7})", 0, ""},
      {R"({"added_at":12,"added_by":"carol","extra":true})", 12, "carol"},
      {R"({"added_at":12.5,"added_by":"carol"})", 0, "carol"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    EntryMeta m = EntryMeta::FromJson(c.json);
    CHECK(m.added_at == c.added_at);
    CHECK(m.added_by == c.added_by);
  }
}

TEST_CASE("EntryMeta::ToJson does not throw on invalid UTF-8 in a note", "[map_store]") {
  EntryMeta m;
  m.note = std::string("caf\xe9 \xff", 6);
  std::string json;
  REQUIRE_NOTHROW(json = m.ToJson());
  CHECK(nlohmann::json::parse(json)["note"].is_string());
}

TEST_CASE("Keys spell every key under the prefix", "[map_store]") {
  Keys k;
  CHECK(k.exact() == "compd:map:exact");
  CHECK(k.patterns() == "compd:map:re");
  CHECK(k.version() == "compd:map:version");
  CHECK(k.changed() == "compd:map:changed");
  CHECK(k.channel() == "compd:map:changes");
  CHECK(Keys("t1:").exact() == "t1:map:exact");
}

}  // namespace
}  // namespace compd
