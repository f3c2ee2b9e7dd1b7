// SignalWindow: the combination of weaker signals. Per account, the signals of the last
// signal_window, each with a score (its weight_* setting, or a share of it for a partial
// signal: a test-like message under test_message_score, one new network of the
// new_networks_min needed), so two weak signals together can flag where neither alone
// would. A signal counts at most its weight however often it repeats; the new networks
// of the window add up to that cap. The reaction carries every contributing signal with
// its evidence (the "combined" signal's contributions).
//
// Plain values and pure functions on one account's window; callers hold the account's
// lock (DetectState::WithAccount). Safe from any thread otherwise.
#ifndef COMPD_DETECT_SIGNAL_WINDOW_H_
#define COMPD_DETECT_SIGNAL_WINDOW_H_

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compd/base/settings.h"
#include "compd/base/status.h"
#include "compd/detect/reaction.h"

namespace compd {

struct SignalWindowOptions {
  int64_t window_ms = int64_t{24} * 3600 * 1000;
  std::array<int, kSignalCount> weight{};
  int test_min_points = 4;  // a test-like message under test_message_score counts from here
  int flag_score = 0;       // 0: the combination never flags
  int lock_score = 0;       // 0: the combination never locks (the default)
  bool enabled() const { return flag_score > 0 || lock_score > 0; }
  int Weight(SignalId id) const { return weight[static_cast<size_t>(id)]; }
  static Status FromConfig(const Config& config, SignalWindowOptions* out);
};

// One signal (or a partial one) in an account's window.
struct WindowEntry {
  SignalId id = SignalId::kHit;
  int64_t time_ms = 0;
  int score = 0;
  // Entries with the same non-empty part add up (each new network group once); entries
  // without one count as their strongest.
  std::string part;
  nlohmann::json evidence = nlohmann::json::object();
};

struct SignalWindow {
  std::vector<WindowEntry> entries;  // oldest first, within the window
  int64_t raised_ms = 0;             // when the combination last reacted
  int raised_kind = -1;              // and how (ReactionKind), -1: not in this window
};

// Adds `e` (dropping what left the window and what `e` makes irrelevant); false when it
// changed nothing (an entry already known: another node's, merged twice).
bool AddToWindow(SignalWindow* w, WindowEntry e, int64_t now_ms, int64_t window_ms);

// The window's score at `now_ms`: per signal, its strongest entry (or the sum of its
// parts, at most its weight). `parts` (may be null) gets the counting entries.
int WindowScore(const SignalWindow& w, const SignalWindowOptions& o, int64_t now_ms,
                std::vector<const WindowEntry*>* parts = nullptr);

// When the window reaches combined_flag_score (or combined_lock_score) with at least two
// different signals and has not reacted so in this window: the "combined" signal with
// every contribution's evidence, and the reaction it takes.
bool CheckCombined(SignalWindow* w, const SignalWindowOptions& o, int64_t now_ms, Signal* out,
                   ReactionKind* kind);

}  // namespace compd

#endif  // COMPD_DETECT_SIGNAL_WINDOW_H_
