// CandidateStore: discovery's state in Redis, shared by every node and mapctl: the
// sightings the nodes gather per recipient, the candidates waiting for an operator
// (discovery = propose), and the recipients an operator refused.
//
// Key layout under the prefix (names built by Keys, compd/base/keys.h):
//   {prefix}discovery:candidates  hash  canonical recipient -> evidence JSON (Candidate::Evidence)
//   {prefix}discovery:rejected    hash  canonical recipient -> {"by","at"} JSON
//   {prefix}discovery:sightings:R hash  AccountKey -> "<unix ms> <Sighting JSON>", one per
//                                 account (its first), at most kMaxSharedSightings, those
//                                 older than discovery_window dropped at each write; the
//                                 key expires discovery_window after its last write and is
//                                 deleted once R is proposed or added
// A rejected recipient is never proposed again; an accepted one leaves the hash (it is then
// in the map, which discovery does not propose).
//
// Not thread-safe (it uses the caller's RedisClient, which is not). Errors keep "not
// there" (kNotFound) apart from "Redis failed" (kUnavailable).
#ifndef COMPD_DETECT_CANDIDATE_STORE_H_
#define COMPD_DETECT_CANDIDATE_STORE_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compd/base/keys.h"
#include "compd/base/redis.h"
#include "compd/base/status.h"
#include "compd/detect/discovery.h"
#include "compd/events/event.h"

namespace compd {

// What CandidateStore::Sight found.
struct SightResult {
  // The recipient is in the map, waits for review or was rejected: nothing was added, and
  // it needs no more sightings.
  bool known = false;
  // Every node's sightings of the recipient within the window, oldest first (this one
  // included).
  std::vector<Sighting> sightings;
};

class CandidateStore {
 public:
  CandidateStore(RedisClient* client, std::string prefix);

  // Adds `s` to its recipient's sightings unless the recipient is known (see SightResult)
  // or the account has a sighting there already, drops those older than `window_ms`, and
  // returns them all: one script, so two nodes adding at once both see both.
  Status Sight(const Sighting& s, int64_t window_ms, SightResult* out);
  // Forgets a recipient's sightings (it became a candidate).
  Status DropSightings(const std::string& recipient);
  // A botnet's list address must not grow without bound.
  static constexpr size_t kMaxSharedSightings = 64;

  // Stores `c` unless its recipient was rejected or waits already; `stored` says which.
  Status Propose(const Candidate& c, bool* stored);
  // Every waiting candidate's evidence, ordered by recipient.
  Status List(std::vector<nlohmann::json>* out);
  // The evidence of one waiting candidate; kNotFound when it does not wait.
  Status Get(const std::string& recipient, nlohmann::json* evidence);
  // Takes a candidate out of the waiting list (after it was added to the map).
  Status Remove(const std::string& recipient);
  // Remembers the refusal and drops the candidate; `was_waiting` says whether it waited.
  Status Reject(const std::string& recipient, const std::string& by, int64_t at_unix,
                bool* was_waiting);
  Status IsRejected(const std::string& recipient, bool* rejected);

 private:
  RedisClient* client_;
  Keys keys_;
};

// The hit events for the accounts behind a candidate (Candidate::Evidence() form), one per
// account, as the Recorder writes hits: the account is flagged (or locked, lock_on_hit)
// with the candidate's evidence. Their ids ("discovered:<recipient>:<account>") make a
// second accept, or two nodes adding the same candidate, record them once. `action`: what
// the MTA did with the sighted messages ("monitor": they went out).
std::vector<Event> DiscoveredHitEvents(const nlohmann::json& evidence, const std::string& host);

}  // namespace compd

#endif  // COMPD_DETECT_CANDIDATE_STORE_H_
