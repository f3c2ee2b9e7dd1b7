// Engine: the detection engine. Driven by a clock and a stream of Message facts, from
// compd-milter, the policy listener or a log reader alike, it raises signals ("this
// account may be compromised", with evidence) and turns them into reactions (monitor,
// flag, tempfail, lock) as the reaction_* settings say. The same code runs live and in
// `mapctl replay`; only the clock (the message's time) and the DetectState differ.
//
// Signals evaluated per message:
//   hit            a recipient is in the map (only when a Matcher is given: replay; live
//                  hits are the tripwire's and reach the accounts directly)
//   test_message   one external recipient and enough points: small, odd HELO, a network
//                  group new for an account with history, a random-looking subject
//   new_networks   new_networks_min distinct network groups the account never used (or
//                  not for known_network_days), first used within new_networks_window
//   display_spoof  From display name with an address of another domain family; To
//                  display name with another address
//   day_volume, hour_volume, networks, new_account  the anomaly rules (anomaly.h): live,
//                  from the AnomalyDetector's cluster-wide totals (ObserveAnomaly); in
//                  replay, from counts the engine keeps itself (count_volume)
// A signal fires at most once per account per signal_quiet_period (hits always).
//   combined       (signal_window.h) the signals of signal_window together, with partial
//                  ones (a test-like message under test_message_score, single new network
//                  groups), weigh combined_flag_score or combined_lock_score; its reaction
//                  is a reaction of its own, carrying every contribution's evidence
//
// Thread-safe: Observe may be called from many threads at once; per-account work happens
// under the state's account lock. No I/O, no Redis: the live store shares what it learned
// from a thread of its own.
#ifndef COMPD_DETECT_ENGINE_H_
#define COMPD_DETECT_ENGINE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compd/base/net.h"
#include "compd/base/settings.h"
#include "compd/base/status.h"
#include "compd/detect/detect_state.h"
#include "compd/detect/reaction.h"
#include "compd/detect/signal_window.h"
#include "compd/events/message.h"
#include "compd/map/matcher.h"
#include "compd/watch/anomaly.h"

namespace compd {

struct EngineOptions {
  ReactionTable reactions;
  std::vector<std::string> local_domains;  // lower case
  int64_t test_max_size = 2000;
  int test_score = 6;
  int64_t new_networks_window_ms = 3600 * 1000;
  int new_networks_min = 3;
  int group_ipv4_prefix = 16, group_ipv6_prefix = 32;
  int ipv4_prefix = 24, ipv6_prefix = 48;              // networks as the volume counters count them
  std::vector<Cidr> own_networks = PrivateNetworks();  // never an account's network
  int64_t known_network_ms = int64_t{120} * 86400 * 1000;
  int64_t quiet_ms = 3600 * 1000;
  // Replay: keep per-account day/hour counts and evaluate the anomaly rules here.
  bool count_volume = false;
  AnomalyRules anomaly;
  SignalWindowOptions combined;  // off unless combined_flag_score or combined_lock_score
  // Reads the detection settings (and volume_ipv*_prefix, anomaly_*, lock_on_hit).
  static Status FromConfig(const Config& config, EngineOptions* out);
};

struct EngineStats {
  uint64_t messages = 0;
  uint64_t reactions = 0;
};

class Engine {
 public:
  Engine(EngineOptions options, std::shared_ptr<DetectState> state);

  // The reactions `message` raises at `now_ms` (its time in replay), usually none (then
  // nothing is allocated). `matcher` (may be null) turns on the hit signal.
  std::vector<Reaction> Observe(const Message& message, int64_t now_ms,
                                const Matcher* matcher = nullptr);
  // An anomaly the cluster-wide detector raised: its signal and reaction (none when the
  // signal is quiet for the account).
  std::vector<Reaction> ObserveAnomaly(const Anomaly& anomaly, int64_t now_ms);
  // After another node's use of a network group was merged into the state: whether the
  // account now shows new_networks (the live store calls this; the event id makes nodes
  // that raise the same reaction write it once).
  std::vector<Reaction> Reevaluate(const std::string& account, int64_t now_ms);

  const EngineOptions& options() const { return options_; }
  DetectState* state() const { return state_.get(); }
  // Stable key of a reaction for its event id (same on every node for the same window).
  static std::string EventKey(const Reaction& r);

 private:
  void NewNetworksCheck(AccountState& a, int64_t now_ms, std::vector<Signal>* out) const;
  void CountVolume(AccountState& a, const Message& m, const std::string& network,
                   const std::string& key, int64_t now_ms, std::vector<Signal>* out) const;
  bool Quiet(AccountState& a, SignalId id, int64_t now_ms) const;
  // `kind`: the reaction a combination reached; without it, the strongest of the signals'.
  Reaction MakeReaction(const Message& m, std::vector<Signal> signals, int64_t now_ms,
                        std::optional<ReactionKind> kind = std::nullopt) const;
  // Puts `adds` in the account's window; the combined signal when it now reacts.
  void Combine(AccountState& a, std::vector<WindowEntry> adds, int64_t now_ms,
               std::vector<WindowEntry>* shared, std::vector<Signal>* combined,
               ReactionKind* kind) const;
  // The reactions of one message or event: its signals', then the combination's.
  std::vector<Reaction> Reactions(const Message& m, std::vector<Signal> signals,
                                  std::vector<Signal> combined, ReactionKind combined_kind,
                                  int64_t now_ms) const;
  void Share(const std::string& key, const std::vector<WindowEntry>& shared) const;

  const EngineOptions options_;
  const std::shared_ptr<DetectState> state_;
  std::set<std::string, std::less<>> local_domains_;  // looked up by string_view
};

// The signal an anomaly is, with its evidence.
Signal AnomalySignal(const Anomaly& anomaly);

}  // namespace compd

#endif  // COMPD_DETECT_ENGINE_H_
