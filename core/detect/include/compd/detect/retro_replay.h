// RetroReplay: retro-hunt in `mapctl replay`, so a backtest over MTA logs shows what it would
// have caught. Like every node, it remembers who mailed whom (one RecipientMemory per node
// named in the logs, as each node remembers only its own mail), and when an entry enters
// the map during the replay (a discovered candidate) it hunts that entry back over
// retro_window and judges the finds with the nodes' own rule (JudgeRetroFinds): the same
// events, the same retro_max_accounts cap. Time is the logs' time.
//
// Not thread-safe: one owner (replay's loop).
#ifndef COMPD_DETECT_RETRO_REPLAY_H_
#define COMPD_DETECT_RETRO_REPLAY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compd/base/status.h"
#include "compd/detect/reaction.h"
#include "compd/detect/recipient_memory.h"
#include "compd/detect/retro_hunt.h"
#include "compd/events/event.h"
#include "compd/events/message.h"
#include "compd/map/matcher.h"

namespace compd {

struct RetroReplayResult {
  std::vector<nlohmann::json> finds;  // RetroFindJson of every remembered message, by node
  std::vector<Event> events;          // the accounts to flag (time: when the entry entered)
  std::vector<RetroOverCap> over_cap;
};

// Replay's form of a retro event (one reaction per line, as for every signal): the hit
// reaction (kind from `table`) at `time_ms`, when the entry entered, with the event's
// evidence ({"retro":{"entry","messages":[...]}}) as the hit signal's, and the last
// message's node, client IP and queue id.
Reaction RetroReaction(const Event& event, int64_t time_ms, const ReactionTable& table);

class RetroReplay {
 public:
  RetroReplay(int64_t window_ms, int max_accounts, Matcher::Options matcher);

  // Remembers a delivered message (in its node's memory); days older than the window, in
  // the logs' time, are forgotten as the logs go on.
  void Observe(const Message& m);
  // `entry` (as ParseEntry takes it) entered the map at `now_ms`; `before` (may be null) is
  // the map it joined, whose recipients are no news. kInvalid when `entry` is not an entry.
  Status EntryAdded(const std::string& entry, int64_t now_ms, const Matcher* before,
                    RetroReplayResult* out);
  // Summed over the nodes.
  RecipientMemoryStats stats() const;

 private:
  const int64_t window_ms_;
  const int max_accounts_;
  const Matcher::Options matcher_;
  std::map<std::string, std::unique_ptr<RecipientMemory>> nodes_;
  int64_t last_forget_ms_ = 0;
};

}  // namespace compd

#endif  // COMPD_DETECT_RETRO_REPLAY_H_
