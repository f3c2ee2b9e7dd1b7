// Discovery: learns new test recipients from the traffic. A recipient becomes a candidate
// when accounts of several unrelated customer domains each send it a test-like message
// (the engine's test_message signal, or enough of its features) that is their first mail
// to it, within discovery_window. "First mail" needs a memory of who mailed whom: the
// (account, recipient) pairs of the last retro_window, kept here as 64-bit hashes. A node
// refills it at start from retro-hunt's files (Remember; LiveDiscovery), so that after a
// restart a long-time contact is not taken for a new one.
//
// Why not "two accounts mailed the same new address": customers share contacts (suppliers,
// banks, authorities); on the simulator, unrelated first mails to one address happen
// hundreds of times a day. The test-like mark is what makes the rule precise; the
// unrelated-domain and first-mail conditions keep colleagues and old contacts out.
//
// Each candidate carries its evidence (account, time, node, client IP, HELO, subject, size,
// queue id per sighting) and the accounts behind it, which get the hit reaction once.
//
// The same class runs live and in `mapctl replay`; only the clock and where the sightings
// meet differ. Sight() decides whether a message is a test-like first mail (the rule) and
// returns its sighting; Completes() decides whether a recipient's sightings make a
// candidate. Replay keeps the sightings here (Observe); each live node sends its own to
// Redis, where every node's sightings of a recipient meet (LiveDiscovery).
//
// Thread-safe: one mutex around all state (Sight and Observe are cheap: hashes and a small
// vector per test-like recipient; no I/O).
#ifndef COMPD_DETECT_DISCOVERY_H_
#define COMPD_DETECT_DISCOVERY_H_

#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "compd/base/settings.h"
#include "compd/base/status.h"
#include "compd/detect/engine.h"
#include "compd/detect/pair_times.h"
#include "compd/detect/reaction.h"
#include "compd/events/message.h"

namespace compd {

enum class DiscoveryMode { kOff, kPropose, kAdd };
const char* DiscoveryModeName(DiscoveryMode mode);

struct DiscoveryOptions {
  DiscoveryMode mode = DiscoveryMode::kPropose;
  int64_t window_ms = int64_t{7} * 86400 * 1000;        // sightings count this long
  int64_t retro_window_ms = int64_t{7} * 86400 * 1000;  // pair memory ("first mail")
  int min_domains = 2;                                  // unrelated customer domains
  // Test-like without the engine's signal: small 2, the engine's HELO points (HeloPoints),
  // random subject 3, no Message-ID 1 (the network point needs account state,
  // which the engine's signal has).
  int test_points = 5;
  int64_t test_max_size = 2000;
  std::vector<std::string> local_domains;  // lower case
  // Reads discovery, discovery_window, discovery_min_domains, discovery_test_points and
  // retro_window; the engine's options give local_domains and test_message_max_size.
  static Status FromConfig(const Config& config, const EngineOptions& engine,
                           DiscoveryOptions* out);
};

// One test-like first mail to a recipient.
struct Sighting {
  std::string recipient;  // canonical; not in the JSON (the candidate's evidence names it)
  std::string account;
  std::string domain;  // the account's domain
  int64_t time_ms = 0;
  std::string node, client_ip, helo, subject, queue_id, origin;
  int64_t size = -1;
  int points = 0;
  bool engine_signal = false;  // the engine's test_message fired for it
  nlohmann::json ToJson() const;
  // Reads ToJson's form back (time and recipient are given: the JSON's time is for people).
  static Sighting FromJson(const nlohmann::json& j, const std::string& recipient, int64_t time_ms);
};

// How many unrelated domain families `sightings` come from (the first of each family
// counts; shop.example and mail.shop.example are one family).
size_t UnrelatedDomains(const std::vector<Sighting>& sightings);

struct Candidate {
  std::string recipient;  // canonical lower-case address
  int64_t time_ms = 0;    // when it became a candidate
  std::vector<Sighting> sightings;
  // The candidate `sightings` (one per account, within discovery_window, oldest first)
  // make, if they come from at least `min_domains` unrelated domains.
  static bool Completes(const std::vector<Sighting>& sightings, int min_domains, int64_t now_ms,
                        Candidate* out);
  // {"recipient","time","domains","sightings":[...]}: the map entry's metadata and the
  // evidence of the accounts' hit reactions.
  nlohmann::json Evidence() const;
  // The hit reactions for the accounts behind it (one per account, kind from `table`),
  // each with signal hit and evidence {"discovered": Evidence()}.
  std::vector<Reaction> AccountReactions(const ReactionTable& table) const;
};

struct DiscoveryStats {
  uint64_t test_like = 0;    // single-external-recipient messages that looked like tests
  uint64_t first_mails = 0;  // of those, the account's first mail to the recipient
  uint64_t candidates = 0;
  uint64_t pairs = 0;  // (account, recipient) pairs in memory
};

class Discovery {
 public:
  explicit Discovery(DiscoveryOptions options);

  // Learns from `message` (all its recipients enter the pair memory) and returns its
  // sighting when it is a test-like first mail to a recipient not suppressed, else false.
  // `engine_test_signal`: whether the engine's reactions for this message carry
  // test_message. `is_local(domain)` (may be empty) adds the domains the engine learned
  // are hosted here.
  bool Sight(const Message& message, int64_t now_ms, bool engine_test_signal,
             const std::function<bool(const std::string&)>& is_local, Sighting* out);
  // Sight, with the sightings kept here: the candidates `message` completes (usually
  // none). What replay runs.
  std::vector<Candidate> Observe(const Message& message, int64_t now_ms, bool engine_test_signal,
                                 const std::function<bool(const std::string&)>& is_local = {});
  // Enters `message`'s (account, recipient) pairs into the pair memory at its time, and
  // nothing else: mail seen before (a node's memory reloaded from disk at start).
  void Remember(const Message& message);
  // Never propose `recipient` again (mapctl candidates reject; already in the map).
  void Suppress(const std::string& recipient);
  // Whether `account` mailed `recipient` within the pair memory.
  bool Mailed(const std::string& account, const std::string& recipient) const;
  DiscoveryStats stats() const;
  const DiscoveryOptions& options() const { return options_; }

 private:
  // What a message looks like, before the lock: no state but the options.
  struct Look {
    bool learn = false;           // an account's message, and discovery on
    std::vector<uint64_t> pairs;  // PairHash of the account and each valid recipient
    std::string rcpt;             // the one recipient, canonical (when there is one)
    std::string account_domain;   // set with `rcpt`
    bool external = false;        // one recipient, external
    int points = 0;
  };
  Look Features(const Message& m, const std::function<bool(const std::string&)>& is_local) const;
  void Prune(int64_t now_ms);
  bool SightLocked(const Message& m, const Look& look, int64_t now_ms, bool engine_test_signal,
                   Sighting* out);

  const DiscoveryOptions options_;
  std::unordered_set<std::string> local_domains_;
  mutable std::mutex mu_;
  PairTimes pairs_;  // hash(account, recipient) -> last ms
  std::unordered_map<std::string, std::vector<Sighting>> sightings_;
  std::unordered_set<std::string> done_;  // proposed, added or rejected
  int64_t last_prune_ms_ = 0;
  int64_t last_pair_prune_ms_ = 0;
  DiscoveryStats stats_;
};

// Whether `reactions` (the engine's, for one message) carry the test_message signal.
bool HasTestSignal(const std::vector<Reaction>& reactions);

}  // namespace compd

#endif  // COMPD_DETECT_DISCOVERY_H_
