// Accounts: the registry of SASL accounts that hit the map, and what happens to them.
//
// Owns the Redis layout of the registry and the operators' script. A hit's part is in the
// Recorder's per-event script (core/accounts/record.lua), so "the hit is recorded", "the
// account is flagged (and locked)" and "a ticket job is queued" happen together or not at
// all, exactly once per event, on whichever node (compd-milter or rspamd) saw the hit. mapctl
// changes states through AccountRegistry. AccountWatcher (account_watcher.h) turns the
// locked set into the MAIL gate; HookRunner (hook_runner.h) delivers the ticket jobs.
//
// Plain values and pure functions are safe from any thread. An AccountRegistry is not
// thread-safe (it uses one RedisClient); give each thread its own.
//
// Account names are compared ASCII-case-insensitively (AccountKey): Alice@Example.com and
// alice@example.com are one mailbox at every hosting provider, and a lock must not be
// sidestepped by changing case at AUTH. Events keep the name as the client sent it.
//
// Redis layout under the prefix (A = AccountKey(account); names from compd/base/keys.h):
//   account:A          hash: first_seen, last_seen, hits, last_entry, last_recipient,
//                      last_client_ip (written by the Recorder), and state (flagged|locked|
//                      released), state_at, state_by, state_reason, flagged_at,
//                      lock_expires (unix ms, 0: until released), ticket_exec,
//                      ticket_webhook (delivery status of the ticket hooks)
//   account-rcpts:A    hash: recipient hit -> count (at most kMaxEvidenceValues fields)
//   account-ips:A      hash: client IP seen with a hit -> count (same bound)
//   account-events:A   list: the account's last kMaxTimeline hit events (JSON), newest first
//   account-log:A      list: state changes, notes and ticket deliveries (JSON), newest first
//   account-quiet:A    string with a TTL: a ticket was opened within hook_quiet_period
//   accounts           sorted set: account -> unix seconds of its latest hit (Recorder)
//   accounts:changed   sorted set: account -> unix ms of its latest state change or note
//   accounts:locked    hash: account -> lock expiry (unix ms, 0: until released); the set
//                      every node enforces
//   accounts:version   int, bumped by every change of accounts:locked
//   accounts:changes   pub/sub channel; each change of accounts:locked publishes the version
//   accounts:reaction  string: the AccountReaction (JSON) compd-milter runs with; the
//                      rspamd plugin's hits follow it
//   hooks:due          sorted set: ticket job id -> unix ms when it is due
//   hook:<job id>      hash: one ticket job (see hook_runner.h)
//
// States: a hit flags an account that is new or was released (a release the operator made
// after the hit happened, i.e. while the hit waited in a spool, stands); with lock_on_hit
// it is locked instead, unless the allowlist exempts it. "Newly flagged" (new or released
// before) queues one ticket job per configured hook target, at most once per account per
// quiet period. A lock whose expiry has passed counts as flagged.
#ifndef COMPD_ACCOUNTS_ACCOUNTS_H_
#define COMPD_ACCOUNTS_ACCOUNTS_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "compd/base/keys.h"
#include "compd/base/redis.h"
#include "compd/base/settings.h"
#include "compd/base/status.h"
#include "compd/events/event.h"

namespace compd {

// Distinct recipients and client IPs kept per account: evidence, not an unbounded set a
// botnet could grow.
inline constexpr size_t kMaxEvidenceValues = 1000;
inline constexpr size_t kMaxTimeline = 100;    // hit events kept per account
inline constexpr size_t kMaxAccountLog = 200;  // log entries kept per account
inline constexpr size_t kMaxAccountLength = 512;

// The registry's key for an account: ASCII lower case.
std::string AccountKey(std::string_view account);

// kInvalid (naming the problem) for an account name that cannot be one: empty, too long,
// or containing control characters.
Status CheckAccountName(std::string_view account);

// Accounts that are flagged but never locked automatically: exact accounts and whole
// domains ("@example.com"), case-insensitive.
class AccountAllowlist {
 public:
  AccountAllowlist() = default;
  // Comma- or space-separated. kInvalid names a bad item.
  static Status Parse(std::string_view text, AccountAllowlist* out);
  bool Contains(std::string_view account) const;
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<std::string>& items() const { return items_; }  // lower case

 private:
  std::vector<std::string> items_;  // lower case
};

// What a hit does to its account. Fixed when the Recorder starts.
struct AccountReaction {
  bool lock_on_hit = false;
  AccountAllowlist allowlist;
  std::chrono::milliseconds lock_duration{0};  // automatic locks; 0: until released
  // A ticket job per target ("exec", "webhook") when an account is newly flagged.
  std::vector<std::string> hook_targets;
  std::chrono::milliseconds hook_quiet{std::chrono::hours(24)};

  // lock_on_hit, lock_allowlist, lock_duration, hook_quiet_period; a target for each of
  // hook_command and hook_url that is set. kInvalid names the setting.
  static Status FromConfig(const Config& config, AccountReaction* out);
  // What the Recorder's script (record.lua) reads; compd-milter also publishes it in Redis
  // (Keys::accounts_reaction) for the hits the rspamd plugin records. The script applies
  // it: only SASL accounts are locked automatically ("ip:ADDR", a trusted host relaying
  // for many users, and "local:...", sendmail submissions that cannot be refused, are
  // flagged only; an operator may still lock them with mapctl).
  std::string ToJson() const;
};

// What the Recorder's script reports for one account event (bits of its integer reply,
// above bit 0 which means "written").
inline constexpr long long kHitNewlyFlagged = 2;
inline constexpr long long kHitLocked = 4;
inline constexpr long long kHitTicketQueued = 8;

// One line of an account's log: a state change, a note or a ticket delivery.
struct AccountLogEntry {
  std::string time;  // ISO, as FormatUtcMillis
  std::string what;  // "flagged" | "locked" | "released" | "note" | "ticket"
  std::string by;
  std::string text;
  int64_t expires_ms = 0;  // "locked": lock expiry, 0 for none
  std::string ToJson() const;
  static AccountLogEntry FromJson(const std::string& json);  // tolerant
};

struct AccountRecord {
  std::string account;  // the AccountKey
  std::string state;    // as stored: "flagged" | "locked" | "released" | "" (hits only)
  std::string state_at, state_by, state_reason, flagged_at;
  int64_t lock_expires_ms = 0;
  std::string first_seen, last_seen;  // hit times, ISO
  int64_t hits = 0;
  std::string last_recipient, last_client_ip, last_entry;
  int64_t changed_ms = 0;  // latest state change or note, unix ms; 0 if none
  int64_t last_hit = 0;    // unix seconds of the latest hit (the hit index's score); 0: none
  // Evidence, most hits first (ties by name); filled when asked for.
  std::vector<std::pair<std::string, int64_t>> recipients, client_ips;
  std::vector<std::string> timeline;  // hit event JSON, newest first (Get only)
  std::vector<AccountLogEntry> log;   // newest first (Get only)
  std::vector<std::pair<std::string, std::string>> tickets;  // target -> delivery status

  // The state in force at `now_ms`: a lock past its expiry is "flagged", and an account
  // with hits but no state (recorded before the registry existed) is "flagged" too.
  std::string EffectiveState(int64_t now_ms) const;
  bool LockExpired(int64_t now_ms) const {
    return state == "locked" && lock_expires_ms != 0 && lock_expires_ms <= now_ms;
  }
  // Unix ms of the latest hit or state change, for --since.
  int64_t LastActivityMs() const;
};

struct AccountListOptions {
  int64_t since_ms = 0;        // only accounts active (hit or state change) at or after this
  bool with_evidence = false;  // fill recipients and client_ips
};

// Outcome of a state change by an operator.
struct AccountChange {
  std::string previous_state;  // "" when the account had no state
  uint64_t version = 0;        // accounts:version after a lock or release
};

class AccountRegistry {
 public:
  AccountRegistry(RedisClient* client, std::string prefix);

  // kNotFound when there is no record for the account.
  Status Get(const std::string& account, AccountRecord* out);
  // Every account with a record (hits or a state), most recent activity first.
  Status List(const AccountListOptions& options, std::vector<AccountRecord>* out);
  // The records of the `n` accounts with the latest hits or state changes (a signal's flag
  // or lock, the operator's), latest first (no evidence).
  Status Latest(size_t n, std::vector<AccountRecord>* out);

  // Locks (or re-locks, with the new reason and expiry) any account, known or not, and
  // publishes the change so every node refuses it at once. `expires_ms` (unix ms) 0: until
  // released.
  Status Lock(const std::string& account, const std::string& by, const std::string& reason,
              int64_t expires_ms, AccountChange* change);
  // Marks a known account released (and unlocked). kNotFound when it has no record.
  Status Release(const std::string& account, const std::string& by, const std::string& reason,
                 AccountChange* change);
  // Adds a note to a known account. kNotFound when it has no record.
  Status Note(const std::string& account, const std::string& by, const std::string& text);

  const Keys& keys() const { return keys_; }

 private:
  Status Change(const std::string& op, const std::string& account, const std::string& by,
                const std::string& text, int64_t expires_ms, AccountChange* change);
  RedisClient* client_;
  Keys keys_;
};

// "24h", "30m", "7d", "90s": a positive age for --since. False for anything else.
bool ParseAge(std::string_view text, std::chrono::milliseconds* out);

// Unix ms of `t`.
int64_t UnixMs(std::chrono::system_clock::time_point t);

}  // namespace compd

#endif  // COMPD_ACCOUNTS_ACCOUNTS_H_
