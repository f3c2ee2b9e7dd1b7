#include "compd/detect/engine.h"

#include <catch2/catch.hpp>

#include "compd/map/entry.h"

namespace compd {
namespace {

constexpr int64_t kMin = 60 * 1000;
constexpr int64_t kHour = 60 * kMin;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kT0 = 1764547200000;  // 2025-12-01T00:00:00Z

EngineOptions Defaults() {
  EngineOptions o;
  Config config;
  REQUIRE(EngineOptions::FromConfig(config, &o).ok());
  return o;
}

struct Fixture {
  explicit Fixture(EngineOptions o = Defaults())
      : engine(std::move(o), std::make_shared<MemoryDetectState>()) {}
  std::vector<Reaction> Send(const std::string& ip, int64_t t, const std::string& rcpt,
                             const std::string& helo = "laptop.home.example",
                             const std::string& subject = "Re: dinner", int64_t size = 5000) {
    Message m;
    m.account = "alice@customer.example";
    m.client_ip = ip;
    m.helo = helo;
    m.subject = subject;
    m.size = size;
    m.recipients = {rcpt};
    m.queue_id = "Q" + std::to_string(t);
    return engine.Observe(m, t);
  }
  // Three weeks of ordinary mail from home (203.0.113.x) and the office (198.51.100.x).
  void History() {
    for (int d = 0; d < 21; ++d) {
      Send("203.0.113.7", kT0 + d * kDay + 8 * kHour, "bob@partner.example");
      Send("198.51.100.20", kT0 + d * kDay + 14 * kHour, "carol@partner.example");
    }
  }
  Engine engine;
};

bool Has(const std::vector<Reaction>& rs, SignalId id) {
  for (const Reaction& r : rs) {
    for (const Signal& s : r.signals) {
      if (s.id == id) return true;
    }
  }
  return false;
}

const int64_t kNow = kT0 + 22 * kDay;

TEST_CASE("test_message: the thread's credential test from a new network fires", "[detect]") {
  Fixture f;
  f.History();
  auto rs =
      f.Send("79.10.109.221", kNow, "toewebvastsatw@gmx.example", "localhost", "ZYaeD, X ", 735);
  REQUIRE(rs.size() == 1);
  CHECK(Has(rs, SignalId::kTestMessage));
  CHECK(rs[0].kind == ReactionKind::kFlag);  // default reaction
  const nlohmann::json& e = rs[0].signals[0].evidence;
  CHECK(e["points"] == 9);
  CHECK(e["helo_kind"] == "localhost");
  CHECK(e["new_network"] == "79.10.109.0/24");
  CHECK(e["size"] == 735);
  std::string json = rs[0].ToJson();
  CHECK(json.find("\"reaction\":\"flag\"") != std::string::npos);
  CHECK(json.find("\"signals\":[\"test_message\"]") != std::string::npos);
  // Within the quiet period the same signal does not fire again.
  CHECK(f.Send("79.10.109.221", kNow + kMin, "x2@gmx.example", "localhost", "wFd2, MkRWa2 A", 700)
            .empty());
}

TEST_CASE("test_message: a first message from a new laptop does not fire", "[detect]") {
  Fixture f;
  f.History();
  // New network, small, a Windows machine name as HELO, an ordinary subject: 5 points.
  auto rs = f.Send("192.0.2.44", kNow, "friend@gmail.example", "DESKTOP-4F2K1", "Photos", 1200);
  CHECK_FALSE(Has(rs, SignalId::kTestMessage));
}

TEST_CASE("test_message: a mail client behind a home router on a trip does not fire", "[detect]") {
  Fixture f;
  f.History();
  // Thunderbird announces its LAN address: a private literal weighs 1, so small (2) + new
  // network (2) + private literal (1) stay below 6. A public literal (a bot naming itself)
  // weighs 2 and, with a random subject, fires.
  auto rs =
      f.Send("192.0.2.44", kNow, "friend@gmail.example", "[192.168.178.68]", "Delivery", 1405);
  CHECK_FALSE(Has(rs, SignalId::kTestMessage));
  rs =
      f.Send("192.0.2.45", kNow + kMin, "friend@gmail.example", "[10.31.43.155]", "Re: quote", 800);
  CHECK_FALSE(Has(rs, SignalId::kTestMessage));
  rs = f.Send("79.10.109.221", kNow + 2 * kMin, "x@gmx.example", "[79.10.109.221]", "wFd2, MkRWa2",
              700);
  REQUIRE(Has(rs, SignalId::kTestMessage));
  CHECK(rs[0].signals[0].evidence["helo_kind"] == "address literal");
}

TEST_CASE("new_networks: webmail (a loopback client) is never a new network", "[detect]") {
  Fixture f;
  f.History();
  // The provider's webmail submits from 127.0.0.1; with two new networks of a trip it made a
  // third "new network" and flagged webmail users.
  CHECK(f.Send("127.0.0.1", kNow, "a@x.example").empty());
  CHECK(f.Send("10.1.2.3", kNow + kMin, "a@x.example").empty());
  CHECK(f.Send("79.10.109.221", kNow + 2 * kMin, "b@y.example").empty());
  CHECK(f.Send("149.255.169.82", kNow + 3 * kMin, "c@z.example").empty());
  CHECK(Has(f.Send("85.12.3.4", kNow + 4 * kMin, "d@w.example"), SignalId::kNewNetworks));
}

TEST_CASE("test_message: internal recipients and several recipients never fire", "[detect]") {
  EngineOptions o = Defaults();
  o.local_domains = {"hosted.example"};
  Fixture f(o);
  f.History();
  CHECK(f.Send("79.10.109.221", kNow, "x@hosted.example", "localhost", "ZYaeD, X ", 700).empty());
  CHECK(f.Send("79.10.109.221", kNow, "x@customer.example", "localhost", "ZYaeD, X ", 700).empty());
  Message m;
  m.account = "alice@customer.example";
  m.client_ip = "79.10.109.221";
  m.helo = "localhost";
  m.subject = "ZYaeD, X ";
  m.size = 700;
  m.recipients = {"a@gmx.example", "b@gmx.example"};
  CHECK(f.engine.Observe(m, kNow).empty());
}

TEST_CASE("new_networks: a botnet's residential addresses fire, with evidence", "[detect]") {
  Fixture f;
  f.History();
  CHECK(f.Send("79.10.109.221", kNow, "a@x.example").empty());
  CHECK(f.Send("149.255.169.82", kNow + 5 * kMin, "b@y.example").empty());
  auto rs = f.Send("85.12.3.4", kNow + 9 * kMin, "c@z.example");
  REQUIRE(Has(rs, SignalId::kNewNetworks));
  const nlohmann::json& e = rs[0].signals[0].evidence;
  CHECK(e["count"] == 3);
  CHECK(e["new"][0]["network"] == "79.10.109.0/24");
  CHECK(e["known_groups"] == 2);
  CHECK(rs[0].event_key == "2025-12-23T00:00:00.000Z");
}

TEST_CASE("new_networks: carrier NAT within one group does not fire", "[detect]") {
  Fixture f;
  f.History();
  // A phone behind a carrier's NAT pool: a new /24 every few minutes, all in 85.76/16.
  f.Send("85.76.1.9", kNow - 10 * kDay, "bob@partner.example");  // the phone, known
  for (int i = 0; i < 20; ++i) {
    CHECK(f.Send("85.76." + std::to_string(10 + i) + ".3", kNow + i * kMin, "b@p.example").empty());
  }
}

TEST_CASE("new_networks: travel (one new network for days) does not fire", "[detect]") {
  Fixture f;
  f.History();
  for (int d = 0; d < 4; ++d) {
    for (int h = 8; h < 20; h += 3) {
      CHECK(f.Send("192.0.2.10", kNow + d * kDay + h * kHour, "b@p.example").empty());
    }
  }
  // Airport, then hotel: two new groups in an hour, still under the minimum.
  CHECK(f.Send("198.18.0.1", kNow + 5 * kDay, "b@p.example").empty());
  CHECK(f.Send("62.210.5.5", kNow + 5 * kDay + 30 * kMin, "b@p.example").empty());
}

TEST_CASE("new_networks: spread wider than the window does not fire", "[detect]") {
  Fixture f;
  f.History();
  CHECK(f.Send("79.10.109.221", kNow, "a@x.example").empty());
  CHECK(f.Send("149.255.169.82", kNow + 2 * kHour, "a@x.example").empty());
  CHECK(f.Send("85.12.3.4", kNow + 4 * kHour, "a@x.example").empty());
}

TEST_CASE("display_spoof and reactions follow the settings", "[detect]") {
  EngineOptions o = Defaults();
  o.reactions.of[static_cast<size_t>(SignalId::kDisplaySpoof)] = ReactionKind::kTempfail;
  Fixture f(o);
  f.History();
  Message m;
  m.account = "engineering@customer.example";
  m.client_ip = "203.0.113.7";
  m.recipients = {"a@x.example", "b@y.example"};
  m.from_header = "\"service@paypal.com\" <engineering@customer.example>";
  auto rs = f.engine.Observe(m, kNow);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].kind == ReactionKind::kTempfail);
  CHECK(rs[0].signals[0].evidence["display"] == "service@paypal.com");
  Event e = rs[0].ToEvent();
  CHECK(e.type == "signal");
  CHECK(e.rule == "display_spoof");
  CHECK(e.action == "tempfail");
  CHECK(e.evidence.find("paypal") != std::string::npos);
}

TEST_CASE("defaults: nothing but a hit locks", "[detect]") {
  EngineOptions o = Defaults();
  for (size_t i = 1; i < kSignalCount; ++i) CHECK(o.reactions.of[i] != ReactionKind::kLock);
  Config config;
  REQUIRE(config.Set("lock_on_hit", "yes", "test").ok());
  REQUIRE(EngineOptions::FromConfig(config, &o).ok());
  CHECK(o.reactions[SignalId::kHit] == ReactionKind::kLock);
}

TEST_CASE("hit: replay computes hits with the map's matcher", "[detect]") {
  Fixture f;
  std::vector<Entry> entries;
  Entry e;
  REQUIRE(ParseEntry("toewebvastsatw@gmx.example", &e).ok());
  entries.push_back(e);
  std::shared_ptr<const Matcher> m;
  REQUIRE(Matcher::Build(entries, &m).ok());
  Message msg;
  msg.account = "a@customer.example";
  msg.recipients = {"<Toewebvastsatw@gmx.example>"};
  auto rs = f.engine.Observe(msg, kNow, m.get());
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].signals[0].id == SignalId::kHit);
  CHECK(rs[0].kind == ReactionKind::kFlag);
}

TEST_CASE("volume in replay: a newsletter day is not an anomaly, a burst is", "[detect]") {
  EngineOptions o = Defaults();
  o.count_volume = true;
  Fixture f(o);
  Message m;
  m.account = "shop@customer.example";
  m.client_ip = "203.0.113.7";
  m.recipients = {"r@x.example"};
  // A shop that sends about 40 a day and a 300-recipient newsletter every Monday.
  for (int d = 0; d < 60; ++d) {
    int n = (d % 7 == 0) ? 300 : 40;
    for (int i = 0; i < n; ++i) {
      auto rs = f.engine.Observe(m, kT0 + d * kDay + 9 * kHour + i * 1000);
      if (d >= 14) CHECK(rs.empty());
    }
  }
  // Then 2,000 in one afternoon.
  bool fired = false;
  for (int i = 0; i < 2000; ++i) {
    auto rs = f.engine.Observe(m, kT0 + 61 * kDay + 14 * kHour + i * 1000);
    if (Has(rs, SignalId::kDayVolume) || Has(rs, SignalId::kHourVolume)) fired = true;
  }
  CHECK(fired);
}

EngineOptions Combining(int flag, int lock = 0) {
  EngineOptions o;
  Config config;
  REQUIRE(config.Set("combined_flag_score", std::to_string(flag), "test").ok());
  REQUIRE(config.Set("combined_lock_score", std::to_string(lock), "test").ok());
  REQUIRE(EngineOptions::FromConfig(config, &o).ok());
  return o;
}

TEST_CASE("combined: a weak test message from one new network flags where neither would",
          "[detect]") {
  // Small (2) from a new network (2): 4 points, under test_message_score; one new group,
  // under new_networks_min.
  auto weak = [](Fixture& f) {
    return f.Send("79.10.109.221", kNow, "x@gmx.example", "laptop.home.example", "Re: dinner", 735);
  };
  Fixture alone;
  alone.History();
  CHECK(weak(alone).empty());  // the defaults: no combination

  Fixture f(Combining(6));
  f.History();
  auto rs = weak(f);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].kind == ReactionKind::kFlag);
  REQUIRE(rs[0].signals.size() == 1);
  const Signal& s = rs[0].signals[0];
  CHECK(s.id == SignalId::kCombined);
  CHECK(s.evidence["score"] == 6);  // 6 * 4/6 + 6/3
  const nlohmann::json& c = s.evidence["contributions"];
  REQUIRE(c.size() == 2);
  CHECK(c[0]["signal"] == "test_message");
  CHECK(c[0]["evidence"]["points"] == 4);
  CHECK(c[0]["evidence"]["recipient"] == "x@gmx.example");
  CHECK(c[1]["signal"] == "new_networks");
  CHECK(c[1]["evidence"]["network"] == "79.10.109.0/24");
  // What the alert log, the stream and the timeline show: every contribution's evidence.
  Event e = rs[0].ToEvent();
  CHECK(e.rule == "combined");
  CHECK(e.action == "flag");
  CHECK(e.evidence.find("\"points\":4") != std::string::npos);
  CHECK(e.evidence.find("79.10.109.0/24") != std::string::npos);
  CHECK(rs[0].ToJson().find("\"signals\":[\"combined\"]") != std::string::npos);
  // The same window does not flag again.
  CHECK(f.Send("79.11.1.1", kNow + kMin, "y@gmx.example", "laptop.home.example", "Re: x", 700)
            .empty());
}

TEST_CASE("combined: a lock after a flag in one window is an event of its own", "[detect]") {
  Fixture f(Combining(6, 8));
  f.History();
  // 4 + 2: flagged; a second new network (2 more): locked.
  auto flag = f.Send("79.10.109.221", kNow, "x@gmx.example", "laptop.home.example", "Re: x", 735);
  REQUIRE(flag.size() == 1);
  CHECK(flag[0].kind == ReactionKind::kFlag);
  auto lock =
      f.Send("79.11.1.1", kNow + kMin, "y@gmx.example", "laptop.home.example", "Re: y", 700);
  REQUIRE(lock.size() == 1);
  CHECK(lock[0].kind == ReactionKind::kLock);
  const Event a = flag[0].ToEvent(), b = lock[0].ToEvent();
  CHECK(b.action == "lock");
  // Same first contribution, other level: the recorder would drop a lock carrying the
  // flag's id as a duplicate, and the account would never be locked.
  CHECK(a.id != b.id);
  CHECK(b.id.find(":lock:") != std::string::npos);
  CHECK(b.detail == "combined 8 >= 8: test_message 4, new_networks 4 (2 groups)");
}

TEST_CASE("combined: the lock threshold is off by default", "[detect]") {
  EngineOptions d = Defaults();
  CHECK(d.combined.flag_score == 0);
  CHECK(d.combined.lock_score == 0);
  // Flag on, lock untouched: weak tests from six new networks only ever flag.
  Fixture f(Combining(6));
  f.History();
  bool flagged = false;
  for (int i = 0; i < 6; ++i) {
    for (const Reaction& r : f.Send("79." + std::to_string(10 + i) + ".1.1", kNow + i * kMin,
                                    "t" + std::to_string(i) + "@gmx.example", "laptop.home.example",
                                    "Re: dinner", 735)) {
      CHECK(r.kind != ReactionKind::kLock);
      if (r.signals[0].id == SignalId::kCombined) flagged = true;
    }
  }
  CHECK(flagged);
}

TEST_CASE("combined: replay is deterministic", "[detect]") {
  auto run = [] {
    Fixture f(Combining(6, 12));
    f.History();
    std::string out;
    for (int i = 0; i < 40; ++i) {
      const std::string ip = "79." + std::to_string(10 + i % 7) + ".1." + std::to_string(i);
      for (const Reaction& r :
           f.Send(ip, kNow + i * 7 * kMin, "t" + std::to_string(i) + "@x.example",
                  i % 3 ? "laptop.home.example" : "localhost", "Re: dinner", 500 + i)) {
        out += r.ToJson() + "\n";
      }
    }
    return out;
  };
  const std::string first = run();
  CHECK(first.find("combined") != std::string::npos);
  CHECK(run() == first);
}

}  // namespace
}  // namespace compd
