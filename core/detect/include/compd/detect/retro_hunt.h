// Retro-hunt's messages: what an on-demand hunt asks the nodes and what they answer, and
// the hit events the finds of a hunt after a map change become. Shared by the nodes
// (RetroHunter) and `mapctl hunt`, so both sides of the protocol live in one place.
//
// On demand (`mapctl hunt` without log files), over Redis (names in compd/base/keys.h):
//   mapctl  LPUSH {prefix}retro:requests <request JSON>, LTRIM to the newest 64, EXPIRE;
//           PUBLISH {prefix}retro:hunt <id>: its reply is how many nodes listen;
//           BLPOP {prefix}retro:reply:<id> until that many answered or the wait is over.
//   node    on the message (or at its next poll, if it missed it), every request younger
//           than kHuntRequestTtlMs it has not answered: RPUSH its answer, EXPIRE the list.
// Every node answers from its own memory: a node that was down, or is not subscribed,
// does not; mapctl names the nodes that answered.
//
// Plain values and functions; AskNodes uses the caller's RedisClient (not thread-safe).
#ifndef COMPD_DETECT_RETRO_HUNT_H_
#define COMPD_DETECT_RETRO_HUNT_H_

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compd/base/keys.h"
#include "compd/base/redis.h"
#include "compd/base/status.h"
#include "compd/detect/recipient_memory.h"
#include "compd/events/event.h"

namespace compd {

// Requests older than this are not answered (mapctl stopped waiting long ago). Ages are
// taken between mapctl's clock and the node's, which NTP keeps within far less.
inline constexpr int64_t kHuntRequestTtlMs = 30000;
// Finds a node sends back for one request, and keeps for one entry's events.
inline constexpr size_t kHuntMaxFinds = 10000;

struct HuntRequest {
  std::string id;     // RandomHex
  std::string entry;  // as ParseEntry takes it: an address or /regex/flags
  int64_t since_ms = 0;
  int64_t at_ms = 0;  // when it was asked
  std::string ToJson() const;
  // False when `text` is not a request.
  static bool FromJson(const std::string& text, HuntRequest* out);
};

// One find as JSON: time, account, recipient, node, client_ip, queue_id, entry.
nlohmann::json RetroFindJson(const RetroFind& f, const std::string& node);

// The hit events for the finds of one hunt after a map change: one per (entry, account),
// the account flagged (or locked, lock_on_hit) as for any hit. Their ids
// ("retro:<entry>:<account key>") make two nodes that remember mail of the same account
// record it once. Evidence: {"retro":{"entry","messages":[the account's finds, newest 20]}}.
std::vector<Event> RetroHitEvents(const std::vector<RetroFind>& finds, const std::string& node);

// What a hunt after a map change flags, decided the same way on a node (RetroHunter) and in
// `mapctl replay`: the hit events of `finds` (RetroHitEvents), except for an entry that
// matches the mail of more than `max_accounts` accounts, or of more than one when the hunt
// was `truncated` (its count is a lower bound): that is not a test address (a whole domain,
// a typo'd pattern) and flags nobody; it is reported in `over_cap` instead.
struct RetroOverCap {
  std::string entry;
  size_t accounts = 0;     // distinct accounts among the finds
  bool truncated = false;  // the hunt stopped at its limit: `accounts` or more
};
struct RetroJudgement {
  std::vector<Event> events;  // one per (entry, account) to flag
  std::vector<RetroOverCap> over_cap;
};
RetroJudgement JudgeRetroFinds(const std::vector<RetroFind>& finds, bool truncated,
                               int max_accounts, const std::string& node);
// The log line for an entry over the cap, naming `mapctl hunt` to list the accounts.
std::string RetroOverCapMessage(const RetroOverCap& o, int max_accounts, int64_t window_ms);

// mapctl's side: publishes `request` and collects the answers of the nodes that heard it,
// waiting at most `wait`. `listening`: how many heard it (0: no node listens, and nothing
// is waited for). kUnavailable when Redis fails.
Status AskNodes(RedisClient* client, const Keys& keys, const HuntRequest& request,
                std::chrono::milliseconds wait, std::vector<nlohmann::json>* answers,
                long long* listening);

}  // namespace compd

#endif  // COMPD_DETECT_RETRO_HUNT_H_
