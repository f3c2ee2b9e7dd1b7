// Keys: the name of every Redis key and channel compd uses, built from the prefix (default
// "compd:"), in one place, like LevelDB's filename.h. Code that reads or writes Redis asks
// Keys for a name instead of spelling it; the Lua scripts get theirs as KEYS or ARGV from
// the C++ that calls them; the rspamd plugin gets the names it needs from here too, as Lua
// that compd's build generates (compd/accounts/rspamd_plugin.h).
//
// What each key holds is documented by its owner: the map (compd/map/map_store.h), the
// event stream (compd/events/event_stream.h, compd/accounts/recorder.h), the account
// registry and ticket jobs (compd/accounts/accounts.h, hook_runner.h), the volume counters
// (compd/watch/volume.h), the anomaly claims (compd/watch/anomaly.h) and the retro-hunt's
// requests (compd/detect/retro_hunter.h).
//
// A plain value: safe to share between threads.
#ifndef COMPD_BASE_KEYS_H_
#define COMPD_BASE_KEYS_H_

#include <string>
#include <utility>

namespace compd {

inline constexpr const char* kDefaultPrefix = "compd:";

struct Keys {
  explicit Keys(std::string prefix = kDefaultPrefix) : prefix(std::move(prefix)) {}
  std::string prefix;

  // The map (map_store.h).
  std::string exact() const { return prefix + "map:exact"; }
  std::string patterns() const { return prefix + "map:re"; }
  std::string version() const { return prefix + "map:version"; }
  std::string changed() const { return prefix + "map:changed"; }
  std::string channel() const { return prefix + "map:changes"; }
  std::string log() const { return prefix + "map:log"; }
  // Set by a milter that found Redis without a map while it holds one (Redis lost its
  // data); adds and removes are refused until a replace (mapctl import --replace).
  std::string lost() const { return prefix + "map:lost"; }
  // A large batch staged before one script applies it; `id` is random.
  std::string staging(const std::string& id) const { return prefix + "map:staging:" + id; }

  // The event stream and the Recorder's dedup marker of an event that reached it.
  std::string events() const { return prefix + "events"; }
  std::string event_seen(const std::string& id) const { return prefix + "seen:" + id; }

  // The account registry (accounts.h). `a` is an AccountKey (ASCII lower case).
  std::string account(const std::string& a) const { return prefix + "account:" + a; }
  std::string account_recipients(const std::string& a) const {
    return prefix + "account-rcpts:" + a;
  }
  std::string account_ips(const std::string& a) const { return prefix + "account-ips:" + a; }
  std::string account_events(const std::string& a) const { return prefix + "account-events:" + a; }
  std::string account_log(const std::string& a) const { return prefix + "account-log:" + a; }
  std::string account_quiet(const std::string& a) const { return prefix + "account-quiet:" + a; }
  std::string accounts() const { return prefix + "accounts"; }  // the hit index
  std::string accounts_changed() const { return prefix + "accounts:changed"; }
  std::string accounts_locked() const { return prefix + "accounts:locked"; }
  std::string accounts_version() const { return prefix + "accounts:version"; }
  std::string accounts_channel() const { return prefix + "accounts:changes"; }
  // What a hit does to its account, as compd-milter is configured (the rspamd plugin's
  // hits get the same consequences from it).
  std::string accounts_reaction() const { return prefix + "accounts:reaction"; }
  // Ticket jobs (hook_runner.h).
  std::string hooks_due() const { return prefix + "hooks:due"; }
  std::string hook_job(const std::string& id) const { return prefix + "hook:" + id; }

  // Volume counters (volume.h): hours are HourIds, months YYYYMM.
  std::string hour_messages(const std::string& hour) const {
    return prefix + "vol:h:" + hour + ":msgs";
  }
  std::string hour_recipients(const std::string& hour) const {
    return prefix + "vol:h:" + hour + ":rcpts";
  }
  std::string hour_networks(const std::string& hour, const std::string& account) const {
    return prefix + "vol:h:" + hour + ":nets:" + account;
  }
  // The platform's total of an hour, every account (the wall page's chart).
  std::string hour_total(const std::string& hour) const { return prefix + "vol:t:" + hour; }
  std::string month(const std::string& yyyymm, const std::string& account) const {
    return prefix + "vol:m:" + yyyymm + ":" + account;
  }
  std::string volume_flush(const std::string& id) const { return prefix + "vol:flush:" + id; }

  // The claim that one node raises an anomaly (anomaly.h).
  std::string anomaly(const std::string& rule, const std::string& period,
                      const std::string& account) const {
    return prefix + "anomaly:" + rule + ":" + period + ":" + account;
  }

  // Detection state shared by the nodes (redis_detect_state.h): an account's known network
  // groups and window of signals, the customer domains seen authenticating, the feed of new
  // sightings.
  std::string detect_groups(const std::string& account) const {
    return prefix + "detect:groups:" + account;
  }
  std::string detect_groups_pattern() const { return prefix + "detect:groups:*"; }
  // An account's window of weighted signals (signal_window.h), and all of them.
  std::string detect_window(const std::string& account) const {
    return prefix + "detect:window:" + account;
  }
  std::string detect_window_pattern() const { return prefix + "detect:window:*"; }
  std::string detect_domains() const { return prefix + "detect:domains"; }
  std::string detect_feed() const { return prefix + "detect:feed"; }

  // Discovery (candidate_store.h): candidates waiting for an operator, refused ones, and
  // the sightings of a recipient every node adds to. `r` is a canonical address.
  std::string discovery_candidates() const { return prefix + "discovery:candidates"; }
  std::string discovery_rejected() const { return prefix + "discovery:rejected"; }

  // Retro-hunt on demand (retro_hunter.h): mapctl hunt pushes its request on the list and
  // publishes its id on the channel; every node answers on the request's reply list.
  std::string retro_requests() const { return prefix + "retro:requests"; }
  std::string retro_channel() const { return prefix + "retro:hunt"; }
  std::string retro_reply(const std::string& id) const { return prefix + "retro:reply:" + id; }
  std::string discovery_sightings(const std::string& r) const {
    return prefix + "discovery:sightings:" + r;
  }
};

}  // namespace compd

#endif  // COMPD_BASE_KEYS_H_
