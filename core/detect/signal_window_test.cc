#include "compd/detect/signal_window.h"

#include <catch2/catch.hpp>

#include "compd/testutil/detect.h"

namespace compd {
namespace {

constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kT0 = 1764547200000;  // 2025-12-01T00:00:00Z

SignalWindowOptions Options(int flag, int lock = 0) {
  SignalWindowOptions o;
  o.window_ms = 24 * kHour;
  o.weight.fill(3);
  o.weight[static_cast<size_t>(SignalId::kTestMessage)] = 6;
  o.weight[static_cast<size_t>(SignalId::kNewNetworks)] = 6;
  o.flag_score = flag;
  o.lock_score = lock;
  return o;
}

using testing::WindowEntryAt;

TEST_CASE("signal window: defaults from the settings never flag nor lock", "[detect]") {
  Config config;
  SignalWindowOptions o;
  REQUIRE(SignalWindowOptions::FromConfig(config, &o).ok());
  CHECK_FALSE(o.enabled());
  CHECK(o.lock_score == 0);
  SignalWindow w;
  AddToWindow(&w, WindowEntryAt(SignalId::kTestMessage, kT0, 100), kT0, o.window_ms);
  AddToWindow(&w, WindowEntryAt(SignalId::kNewNetworks, kT0, 100), kT0, o.window_ms);
  Signal s;
  ReactionKind k;
  CHECK_FALSE(CheckCombined(&w, o, kT0, &s, &k));
}

TEST_CASE("signal window: a lock below the flag score is refused", "[detect]") {
  Config config;
  REQUIRE(config.Set("combined_flag_score", "10", "test").ok());
  REQUIRE(config.Set("combined_lock_score", "5", "test").ok());
  SignalWindowOptions o;
  Status s = SignalWindowOptions::FromConfig(config, &o);
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("combined_lock_score") != std::string::npos);
}

TEST_CASE("signal window: two different signals combine, one alone does not", "[detect]") {
  const SignalWindowOptions o = Options(8);
  SignalWindow w;
  Signal s;
  ReactionKind k;
  REQUIRE(AddToWindow(&w, WindowEntryAt(SignalId::kTestMessage, kT0, 6), kT0, o.window_ms));
  CHECK_FALSE(CheckCombined(&w, o, kT0, &s, &k));  // 6 < 8, and one signal
  REQUIRE(AddToWindow(&w, WindowEntryAt(SignalId::kNewNetworks, kT0 + kHour, 2, "203.0.0.0/16"),
                      kT0 + kHour, o.window_ms));
  REQUIRE(CheckCombined(&w, o, kT0 + kHour, &s, &k));
  CHECK(k == ReactionKind::kFlag);
  CHECK(s.id == SignalId::kCombined);
  CHECK(s.evidence["score"] == 8);
  CHECK(s.evidence["threshold"] == 8);
  CHECK(s.evidence["since"] == "2025-12-01T00:00:00.000Z");
  REQUIRE(s.evidence["contributions"].size() == 2);
  CHECK(s.evidence["contributions"][0]["signal"] == "test_message");
  CHECK(s.evidence["contributions"][0]["evidence"]["at"] == kT0);
  CHECK(s.evidence["contributions"][1]["signal"] == "new_networks");
  // Reacted once in this window: not again for the same level.
  CHECK_FALSE(CheckCombined(&w, o, kT0 + 2 * kHour, &s, &k));

  // However strong, one signal alone is its own reaction's business.
  SignalWindow alone;
  AddToWindow(&alone, WindowEntryAt(SignalId::kDisplaySpoof, kT0, 3), kT0, o.window_ms);
  SignalWindowOptions big = o;
  big.weight[static_cast<size_t>(SignalId::kDisplaySpoof)] = 50;
  AddToWindow(&alone, WindowEntryAt(SignalId::kDisplaySpoof, kT0 + 1, 50), kT0 + 1, o.window_ms);
  CHECK(WindowScore(alone, big, kT0 + 1) == 50);
  CHECK_FALSE(CheckCombined(&alone, big, kT0 + 1, &s, &k));
}

TEST_CASE("signal window: a repeated signal does not stack beyond its weight", "[detect]") {
  const SignalWindowOptions o = Options(10);
  SignalWindow w;
  for (int i = 0; i < 5; ++i) {
    AddToWindow(&w, WindowEntryAt(SignalId::kTestMessage, kT0 + i * kHour, 4), kT0 + i * kHour,
                o.window_ms);
  }
  CHECK(WindowScore(w, o, kT0 + 5 * kHour) == 4);  // the strongest, not 20
  CHECK(w.entries.size() == 1);                    // the latest of equals is kept
  // Five distinct new groups: 2 each, at most weight_new_networks (6) together.
  for (int i = 0; i < 5; ++i) {
    AddToWindow(&w, WindowEntryAt(SignalId::kNewNetworks, kT0 + i, 2, "g" + std::to_string(i)),
                kT0 + i, o.window_ms);
  }
  CHECK(WindowScore(w, o, kT0 + 5 * kHour) == 4 + 6);
  // The same group again counts once.
  SignalWindow one;
  AddToWindow(&one, WindowEntryAt(SignalId::kNewNetworks, kT0, 2, "g"), kT0, o.window_ms);
  AddToWindow(&one, WindowEntryAt(SignalId::kNewNetworks, kT0 + kHour, 2, "g"), kT0 + kHour,
              o.window_ms);
  CHECK(WindowScore(one, o, kT0 + kHour) == 2);
  // The same entry merged twice (another node's, read again) changes nothing.
  CHECK_FALSE(AddToWindow(&one, WindowEntryAt(SignalId::kNewNetworks, kT0 + kHour, 2, "g"),
                          kT0 + kHour, o.window_ms));
}

TEST_CASE("signal window: signals older than the window no longer count", "[detect]") {
  const SignalWindowOptions o = Options(8);
  SignalWindow w;
  Signal s;
  ReactionKind k;
  AddToWindow(&w, WindowEntryAt(SignalId::kTestMessage, kT0, 6), kT0, o.window_ms);
  const int64_t later = kT0 + 24 * kHour + 1;
  AddToWindow(&w, WindowEntryAt(SignalId::kNewNetworks, later, 2, "g"), later, o.window_ms);
  CHECK(WindowScore(w, o, later) == 2);
  CHECK_FALSE(CheckCombined(&w, o, later, &s, &k));
  CHECK(w.entries.size() == 1);  // the expired one is gone
  // A stale entry (another node's, late) is not added at all.
  CHECK_FALSE(AddToWindow(&w, WindowEntryAt(SignalId::kTestMessage, kT0, 6), later, o.window_ms));
}

TEST_CASE("signal window: flag, then lock when the lock score is set", "[detect]") {
  const SignalWindowOptions o = Options(8, 12);
  SignalWindow w;
  Signal s;
  ReactionKind k;
  AddToWindow(&w, WindowEntryAt(SignalId::kTestMessage, kT0, 6), kT0, o.window_ms);
  AddToWindow(&w, WindowEntryAt(SignalId::kDayVolume, kT0, 3), kT0, o.window_ms);
  REQUIRE(CheckCombined(&w, o, kT0, &s, &k));
  CHECK(k == ReactionKind::kFlag);
  AddToWindow(&w, WindowEntryAt(SignalId::kDisplaySpoof, kT0 + 1, 3), kT0 + 1, o.window_ms);
  REQUIRE(CheckCombined(&w, o, kT0 + 1, &s, &k));
  CHECK(k == ReactionKind::kLock);
  CHECK(s.evidence["score"] == 12);
  CHECK(s.evidence["lock_score"] == 12);
  CHECK(s.evidence["contributions"].size() == 3);
}

}  // namespace
}  // namespace compd
