#include "compd/detect/discovery.h"

#include <catch2/catch.hpp>

#include "compd/testutil/detect.h"

namespace compd {
namespace {

constexpr int64_t kT0 = int64_t{1776000000} * 1000;
constexpr int64_t kMin = 60 * 1000;

// The thread's test message: small, HELO localhost, random subject, no Message-ID.
Message Test(const std::string& account, const std::string& rcpt, int64_t t) {
  Message m = testing::ThreadTestMessage(account, rcpt, t);
  m.size = 735;
  m.queue_id = "1nh9qH-0008OE-RW";
  m.source = "exim-log";
  return m;
}

// An ordinary first mail to a supplier from a laptop.
Message Benign(const std::string& account, const std::string& rcpt, int64_t t) {
  Message m = Test(account, rcpt, t);
  m.helo = "Annas-MacBook-Pro.local";
  m.size = 24000;
  m.subject = "Order 4711 for next week";
  m.message_id = "abc@example";
  return m;
}

DiscoveryOptions Options() {
  DiscoveryOptions o;
  o.local_domains = {"hosted.example"};
  return o;
}

TEST_CASE("discovery: two unrelated customers' test messages make a candidate", "[discovery]") {
  Discovery d(Options());
  CHECK(d.Observe(Test("winfield@a.example", "toeweb@gmx.com", kT0), kT0, false).empty());
  auto c = d.Observe(Test("register@b.example", "ToeWeb@gmx.com", kT0 + 18000), kT0 + 18000, false);
  REQUIRE(c.size() == 1);
  CHECK(c[0].recipient == "toeweb@gmx.com");
  REQUIRE(c[0].sightings.size() == 2);
  nlohmann::json e = c[0].Evidence();
  CHECK(e["domains"] == 2);
  CHECK(e["sightings"][0]["account"] == "winfield@a.example");
  CHECK(e["sightings"][0]["helo"] == "localhost");
  CHECK(e["sightings"][0]["size"] == 735);
  CHECK(e["sightings"][1]["node"] == "mx1");
  ReactionTable table;
  table.of[static_cast<size_t>(SignalId::kHit)] = ReactionKind::kLock;
  auto rs = c[0].AccountReactions(table);
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].kind == ReactionKind::kLock);
  CHECK(rs[1].account == "register@b.example");
  CHECK(rs[1].signals[0].evidence["discovered"]["recipient"] == "toeweb@gmx.com");
  // Proposed once: a third account adds nothing.
  CHECK(d.Observe(Test("x@c.example", "toeweb@gmx.com", kT0 + kMin), kT0 + kMin, false).empty());
}

TEST_CASE("discovery: colleagues of one customer are one domain", "[discovery]") {
  Discovery d(Options());
  CHECK(d.Observe(Test("a@shop.example", "supplier@big.example", kT0), kT0, false).empty());
  CHECK(d.Observe(Test("b@shop.example", "supplier@big.example", kT0 + kMin), kT0 + kMin, false)
            .empty());
  CHECK(d.Observe(Test("c@mail.shop.example", "supplier@big.example", kT0 + 2 * kMin),
                  kT0 + 2 * kMin, false)
            .empty());
}

TEST_CASE("discovery: ordinary mail to a shared contact is not test-like", "[discovery]") {
  Discovery d(Options());
  for (int i = 0; i < 20; ++i) {
    const std::string account = "u@c" + std::to_string(i) + ".example";
    CHECK(d.Observe(Benign(account, "orders@bank.example", kT0 + i * kMin), kT0 + i * kMin, false)
              .empty());
  }
  CHECK(d.stats().test_like == 0);
}

TEST_CASE("discovery: a recipient the account mailed before is not a first mail", "[discovery]") {
  Discovery d(Options());
  d.Observe(Benign("a@one.example", "friend@gmx.com", kT0), kT0, false);
  CHECK(d.Mailed("A@One.example", "friend@gmx.com"));
  d.Observe(Benign("b@two.example", "friend@gmx.com", kT0), kT0, false);
  CHECK(d.Observe(Test("a@one.example", "friend@gmx.com", kT0 + kMin), kT0 + kMin, false).empty());
  CHECK(d.Observe(Test("b@two.example", "friend@gmx.com", kT0 + kMin), kT0 + kMin, false).empty());
  CHECK(d.stats().test_like == 2);
  CHECK(d.stats().first_mails == 0);
}

TEST_CASE("discovery: the window, rejections, local recipients and off", "[discovery]") {
  DiscoveryOptions o = Options();
  o.window_ms = 3600 * 1000;
  Discovery d(o);
  d.Observe(Test("a@one.example", "t@gmx.com", kT0), kT0, false);
  const int64_t late = kT0 + 2 * 3600 * 1000;
  CHECK(d.Observe(Test("b@two.example", "t@gmx.com", late), late, false).empty());
  CHECK(d.Observe(Test("c@three.example", "t@gmx.com", late + kMin), late + kMin, false).size() ==
        1);

  d.Suppress("R@gmx.com");
  d.Observe(Test("a@one.example", "r@gmx.com", kT0), kT0, false);
  CHECK(d.Observe(Test("b@two.example", "r@gmx.com", kT0), kT0, false).empty());

  d.Observe(Test("a@one.example", "x@hosted.example", kT0), kT0, false);
  CHECK(d.Observe(Test("b@two.example", "x@hosted.example", kT0), kT0, false).empty());
  auto learned = [](const std::string& domain) { return domain == "learned.example"; };
  d.Observe(Test("a@one.example", "x@learned.example", kT0), kT0, false, learned);
  CHECK(d.Observe(Test("b@two.example", "x@learned.example", kT0), kT0, false, learned).empty());

  o.mode = DiscoveryMode::kOff;
  Discovery off(o);
  off.Observe(Test("a@one.example", "t@gmx.com", kT0), kT0, false);
  CHECK(off.Observe(Test("b@two.example", "t@gmx.com", kT0), kT0, false).empty());
}

TEST_CASE("discovery: the engine's signal counts when the features alone do not", "[discovery]") {
  Discovery d(Options());
  Message a = Benign("a@one.example", "t@gmx.com", kT0);
  Message b = Benign("b@two.example", "t@gmx.com", kT0);
  CHECK(d.Observe(a, kT0, true).empty());
  auto c = d.Observe(b, kT0, true);
  REQUIRE(c.size() == 1);
  CHECK(c[0].sightings[0].engine_signal);
}

TEST_CASE("discovery: Sight gives the sighting live nodes share, and its JSON reads back",
          "[discovery]") {
  Discovery d(Options());
  Sighting s;
  REQUIRE(d.Sight(Test("winfield@a.example", "ToeWeb@gmx.com", kT0), kT0, false, {}, &s));
  CHECK(s.recipient == "toeweb@gmx.com");
  CHECK(s.domain == "a.example");
  CHECK(s.points == 8);
  // The same account again is no first mail; ordinary mail is no sighting.
  CHECK_FALSE(d.Sight(Test("winfield@a.example", "toeweb@gmx.com", kT0), kT0, false, {}, &s));
  CHECK_FALSE(d.Sight(Benign("b@b.example", "toeweb@gmx.com", kT0), kT0, false, {}, &s));
  d.Suppress("known@gmx.com");
  CHECK_FALSE(d.Sight(Test("c@c.example", "known@gmx.com", kT0), kT0, false, {}, &s));

  REQUIRE(d.Sight(Test("register@b.example", "toeweb@gmx.com", kT0), kT0, true, {}, &s));
  Sighting back = Sighting::FromJson(s.ToJson(), s.recipient, s.time_ms);
  CHECK(back.ToJson() == s.ToJson());
  CHECK(back.domain == "b.example");
  CHECK(back.engine_signal);
  Candidate c;
  CHECK_FALSE(Candidate::Completes({back}, 2, kT0, &c));
  Sighting colleague = back;
  colleague.account = "x@mail.b.example";
  colleague.domain = "mail.b.example";
  CHECK_FALSE(Candidate::Completes({back, colleague}, 2, kT0, &c));
  Sighting other = back;
  other.account = "y@c.example";
  other.domain = "c.example";
  REQUIRE(Candidate::Completes({back, colleague, other}, 2, kT0 + kMin, &c));
  CHECK(c.recipient == "toeweb@gmx.com");
  CHECK(c.time_ms == kT0 + kMin);
  CHECK(c.Evidence()["domains"] == 2);
}

}  // namespace
}  // namespace compd
