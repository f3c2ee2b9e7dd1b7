// Reactions: what the detection engine decides for one account, with the signals and the
// evidence behind it, and how the settings map each signal to a reaction.
//
// Plain values and pure functions; safe from any thread.
//
// Reactions are ordered: monitor < flag < tempfail < lock. flag marks the account (and
// queues the ticket hooks), tempfail flags it and answers the message that raised it with
// 451 when the MTA still waits, lock locks the account on every node (its current message
// is answered 451 too). Several signals on one message react with the strongest.
#ifndef COMPD_DETECT_REACTION_H_
#define COMPD_DETECT_REACTION_H_

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "compd/base/settings.h"
#include "compd/base/status.h"
#include "compd/events/event.h"

namespace compd {

enum class ReactionKind { kMonitor = 0, kFlag = 1, kTempfail = 2, kLock = 3 };
const char* ReactionName(ReactionKind kind);
bool ParseReaction(std::string_view name, ReactionKind* out);

// The signals, in the order they are evaluated and listed.
enum class SignalId {
  kHit,
  kTestMessage,
  kNewNetworks,
  kDisplaySpoof,
  kDayVolume,
  kHourVolume,
  kNetworks,
  kNewAccount,
  // Several weaker signals within signal_window (signal_window.h): its reaction comes
  // from combined_flag_score and combined_lock_score, not from a reaction_* setting.
  kCombined,
  kCount
};
inline constexpr size_t kSignalCount = static_cast<size_t>(SignalId::kCount);
const char* SignalName(SignalId id);
bool ParseSignal(std::string_view name, SignalId* out);

// One signal that fired, with its evidence (a JSON object of plain values).
struct Signal {
  SignalId id = SignalId::kHit;
  nlohmann::json evidence = nlohmann::json::object();
};

// One signal in a few words, its evidence's gist: "test to x@gmx.example (5 points)",
// "3 new networks", "combined 7 >= 6: test_message 5, new_networks 2", "day_volume 600 > 300".
std::string SignalSummary(const Signal& s);

// The engine's decision for one account at one time.
struct Reaction {
  int64_t time_ms = 0;
  std::string account;
  ReactionKind kind = ReactionKind::kMonitor;
  std::vector<Signal> signals;
  std::string queue_id;
  std::string node;
  std::string client_ip;
  std::string origin;  // file:line in replay
  // What makes this reaction the same on every node (a window's start, an anomaly's
  // period, a queue id): part of its event id. Not in the JSON.
  std::string event_key;

  // The replay contract, one line: {"time","account","reaction","signals","evidence",
  // "queue_id","node"} (queue_id, node and origin only when known); evidence maps each
  // signal's name to its evidence object.
  std::string ToJson() const;
  std::string SignalNames() const;  // "test_message,new_networks"
  // One line for humans, the SignalSummary of each signal joined by "; ": what replay's
  // short text, the event's detail (dashboard, alert log, account reason) show.
  std::string Summary() const;
  // The event for the stream, alert log and account timeline: type "signal". Its id is
  // derived from the account, the first signal and event_key, so nodes that raise the
  // same reaction write it once.
  Event ToEvent() const;
};

// What each signal does, from the reaction_* settings (hit: lock_on_hit).
struct ReactionTable {
  std::array<ReactionKind, kSignalCount> of{};
  ReactionKind operator[](SignalId id) const { return of[static_cast<size_t>(id)]; }
  static Status FromConfig(const Config& config, ReactionTable* out);
};

}  // namespace compd

#endif  // COMPD_DETECT_REACTION_H_
