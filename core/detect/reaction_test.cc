#include "compd/detect/reaction.h"

#include <catch2/catch.hpp>

#include "compd/detect/signal_window.h"
#include "compd/testutil/detect.h"

namespace compd {
namespace {

constexpr int64_t kT0 = 1764547200000;  // 2025-12-01T00:00:00Z

using testing::WindowEntryAt;

TEST_CASE("reaction summary: a combination lists its contributions", "[detect]") {
  SignalWindowOptions o;
  o.weight.fill(6);
  o.flag_score = 8;
  SignalWindow w;
  AddToWindow(&w, WindowEntryAt(SignalId::kTestMessage, kT0, 4), kT0, o.window_ms);
  AddToWindow(&w, WindowEntryAt(SignalId::kNewNetworks, kT0 + 1, 2, "203.0.0.0/16"), kT0 + 1,
              o.window_ms);
  AddToWindow(&w, WindowEntryAt(SignalId::kNewNetworks, kT0 + 2, 2, "198.51.0.0/16"), kT0 + 2,
              o.window_ms);
  Reaction r;
  r.account = "a@customer.example";
  r.kind = ReactionKind::kFlag;
  r.signals.resize(1);
  REQUIRE(CheckCombined(&w, o, kT0 + 2, &r.signals[0], &r.kind));
  CHECK(r.Summary() == "combined 8 >= 8: test_message 4, new_networks 4 (2 groups)");
  // The event carries it as its detail: dashboard, alert log, the account's reason.
  CHECK(r.ToEvent().detail == r.Summary());

  // Four new groups weigh what weight_new_networks allows, as the score counts them.
  Signal capped;
  capped.id = SignalId::kCombined;
  capped.evidence = {{"score", 10}, {"threshold", 10}, {"contributions", nlohmann::json::array()}};
  capped.evidence["contributions"].push_back(
      {{"signal", "test_message"}, {"score", 4}, {"weight", 6}});
  for (int i = 0; i < 4; ++i) {
    capped.evidence["contributions"].push_back(
        {{"signal", "new_networks"}, {"score", 2}, {"weight", 6}});
  }
  CHECK(SignalSummary(capped) == "combined 10 >= 10: test_message 4, new_networks 6 (4 groups)");

  Signal spoof;
  spoof.id = SignalId::kDisplaySpoof;
  spoof.evidence = {{"header", "From"}, {"display", "service@paypal.com"}};
  r.signals.push_back(spoof);
  CHECK(r.Summary() ==
        "combined 8 >= 8: test_message 4, new_networks 4 (2 groups); From shows "
        "service@paypal.com");
}

TEST_CASE("reaction summary: the single signals in a few words", "[detect]") {
  Signal s;
  s.id = SignalId::kTestMessage;
  s.evidence = {{"recipient", "x@gmx.example"}, {"points", 7}};
  CHECK(SignalSummary(s) == "test to x@gmx.example (7 points)");
  s.id = SignalId::kNewNetworks;
  s.evidence = {{"count", 3}};
  CHECK(SignalSummary(s) == "3 new networks");
  s.id = SignalId::kDayVolume;
  s.evidence = {{"value", 600}, {"threshold", 300.0}};
  CHECK(SignalSummary(s) == "day_volume 600 > 300");
  s.id = SignalId::kHit;
  s.evidence = {{"hits", {{{"recipient", "t1@bad.example"}}}}};
  CHECK(SignalSummary(s) == "hit t1@bad.example");
  // Evidence of the wrong shape says less, never throws.
  s.id = SignalId::kCombined;
  s.evidence = {{"score", "x"}, {"contributions", 5}};
  CHECK(SignalSummary(s) == "combined 0 >= 0");
  s.id = SignalId::kHit;
  s.evidence = nlohmann::json::array();
  CHECK(SignalSummary(s) == "hit");
}

}  // namespace
}  // namespace compd
