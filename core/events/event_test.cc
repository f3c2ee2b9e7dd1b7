#include "compd/events/event.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace compd {
namespace {

Event Sample() {
  Event e;
  e.id = "mx1:1:7";
  e.time = "2026-11-26T18:44:48.123Z";
  e.host = "mx1.example.net";
  e.account = "alice@customer.example";
  e.auth_type = "PLAIN";
  e.client_ip = "192.0.2.7";
  e.client_name = "unknown";
  e.helo = "[192.0.2.7]";
  e.sender = "alice@customer.example";
  e.recipient = "collector@bad.example";
  e.where = "envelope";
  e.entry = "collector@bad.example";
  e.entry_kind = "exact";
  e.action = "reject";
  e.queue_id = "4XyZ1";
  e.txn_id = "t42";
  e.subject = "test";
  e.message_id = "<1@x>";
  e.source = "milter";
  return e;
}

TEST_CASE("event JSON round trip keeps every field", "[event]") {
  Event e = Sample();
  std::string json = e.ToJson();
  CHECK(json.find('\n') == std::string::npos);
  CHECK(json.rfind("{\"time\":\"2026-11-26T18:44:48.123Z\"", 0) == 0);
  Event back;
  REQUIRE(Event::FromJson(json, &back).ok());
  CHECK(back == e);
  auto j = nlohmann::json::parse(json);
  CHECK(j["type"] == "hit");
  CHECK(j["account"] == "alice@customer.example");
  CHECK(j["where"] == "envelope");
}

TEST_CASE("event JSON escapes control characters from hostile input", "[event]") {
  Event e = Sample();
  e.subject = std::string("line1\r\nX-Injected: yes\0tail", 27);
  e.recipient = "a\nb@x.com";
  std::string json = e.ToJson();
  CHECK(json.find('\n') == std::string::npos);
  CHECK(json.find('\r') == std::string::npos);
  CHECK(json.find('\0') == std::string::npos);
  CHECK(json.find("\\r\\n") != std::string::npos);
  CHECK(json.find("\\u0000") != std::string::npos);
  Event back;
  REQUIRE(Event::FromJson(json, &back).ok());
  CHECK(back.subject == e.subject);
  CHECK(back.recipient == e.recipient);
}

TEST_CASE("event JSON replaces invalid UTF-8 instead of throwing", "[event]") {
  Event e = Sample();
  e.subject = "caf\xe9 \xff\xfe ok \xc3\xa9";  // Latin-1 bytes, then valid UTF-8 é
  std::string json;
  REQUIRE_NOTHROW(json = e.ToJson());
  Event back;
  REQUIRE(Event::FromJson(json, &back).ok());
  CHECK(back.subject.find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD
  CHECK(back.subject.find("\xc3\xa9") != std::string::npos);      // valid text kept
  CHECK(back.subject.rfind("caf", 0) == 0);
}

TEST_CASE("event FromJson is tolerant of missing and unknown keys, strict on types", "[event]") {
  Event e;
  REQUIRE(Event::FromJson(R"({"id":"x","account":"bob","future_field":42})", &e).ok());
  CHECK(e.id == "x");
  CHECK(e.account == "bob");
  CHECK(e.type == "hit");
  CHECK(e.recipient.empty());

  Status s = Event::FromJson(R"({"id":"x","account":7})", &e);
  CHECK(s.IsInvalid());
  CHECK(s.message().find("account") != std::string::npos);
  CHECK(Event::FromJson("[1,2]", &e).IsInvalid());
  CHECK(Event::FromJson("{\"id\":\"x\",\"acc", &e).IsInvalid());
  CHECK(Event::FromJson("", &e).IsInvalid());
}

TEST_CASE("UTC times with milliseconds format and parse", "[event]") {
  using std::chrono::milliseconds;
  std::chrono::system_clock::time_point t(milliseconds(1795718688123));
  CHECK(FormatUtcMillis(t) == "2026-11-26T18:44:48.123Z");
  CHECK(FormatUtcMillis(std::chrono::system_clock::time_point(milliseconds(5))) ==
        "1970-01-01T00:00:00.005Z");
  int64_t ms = 0;
  REQUIRE(ParseUtcMillis("2026-11-26T18:44:48.123Z", &ms));
  CHECK(ms == 1795718688123);
  REQUIRE(ParseUtcMillis("2026-11-26T18:44:48Z", &ms));
  CHECK(ms == 1795718688000);
  for (const char* bad : {"2026-11-26 18:44:48Z", "2026-11-26T18:44:48.12Z",
                          "2026-13-26T18:44:48.123Z", "2026-11-26T18:44:48.123", ""}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(ParseUtcMillis(bad, &ms));
  }
}

TEST_CASE("event anomaly fields are omitted when empty and round-trip when set", "[event]") {
  Event hit = Sample();
  auto j = nlohmann::json::parse(hit.ToJson());
  for (const char* key : {"rule", "period", "value", "baseline", "threshold", "detail"}) {
    CHECK(j.find(key) == j.end());
  }
  Event a;
  a.type = "anomaly";
  a.account = "alice@customer.example";
  a.rule = "day_volume";
  a.period = "2026-11-26";
  a.value = "600";
  a.baseline = "1";
  a.threshold = "100";
  a.detail = "600 messages today";
  std::string json = a.ToJson();
  j = nlohmann::json::parse(json);
  CHECK(j["rule"] == "day_volume");
  CHECK(j["value"] == "600");
  Event back;
  REQUIRE(Event::FromJson(json, &back).ok());
  CHECK(back == a);
  Event other = a;
  other.threshold = "99";
  CHECK(other != a);
}

}  // namespace
}  // namespace compd
