// RecipientMemory: who mailed whom through this node in the last retro_window, kept compact
// enough that a week of a large provider fits in memory, so that an entry added to the map
// can be hunted back in time (retro-hunt): which accounts sent to it, when, from where.
//
// What it keeps, per delivered message: the time (ms), the account, the client IP and the
// queue id; per (message, recipient): the recipient. Strings that repeat (accounts,
// recipients, client IPs) are interned once each; queue ids are unique and kept as text.
// Bytes (bench/retro_bench.cc measures them; docs/detection.md has the figures):
//   per message            20 (time, account, client IP, end of its queue id, first
//                          recipient) + the queue id's text
//   per further recipient  8 (message index, recipient id)
//   per distinct string    its text + 1, a 4-byte offset, 5 to 11 bytes of hash table
// Tables grow by a quarter, not by doubling, and a day's are shrunk to fit once it is over.
// Messages sit in one bucket per UTC day, so forgetting is dropping whole days (Forget);
// the string tables are rebuilt then, so a string only dropped days used goes with them.
//
// Not thread-safe: one owner (the RetroHunter's thread under its lock, or mapctl replay).
#ifndef COMPD_DETECT_RECIPIENT_MEMORY_H_
#define COMPD_DETECT_RECIPIENT_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "compd/events/message.h"
#include "compd/map/matcher.h"

namespace compd {

// One remembered (message, recipient) that a hunt matched.
struct RetroFind {
  int64_t time_ms = 0;
  std::string account;
  std::string recipient;
  std::string client_ip;
  std::string queue_id;
  std::string entry;       // the entry that matched it
  std::string entry_kind;  // "exact" | "pattern"
};

struct RecipientMemoryStats {
  size_t messages = 0;
  size_t pairs = 0;                                     // (message, recipient)
  size_t recipients = 0, accounts = 0, client_ips = 0;  // distinct
  size_t days = 0;
  int64_t oldest_ms = 0;  // 0 when empty
  size_t bytes = 0;       // heap held by the tables (capacities, not just sizes)
};

class RecipientMemory {
 public:
  RecipientMemory();
  ~RecipientMemory();
  RecipientMemory(const RecipientMemory&) = delete;
  RecipientMemory& operator=(const RecipientMemory&) = delete;

  // Remembers `m` (its account, client IP, queue id, time and every recipient, as
  // EnvelopeAddress gives it; recipients it cannot parse are skipped). A message without
  // account or recipients is ignored. Out-of-order times are fine.
  void Add(const Message& m);

  // Every remembered (message, recipient) at or after `since_ms` whose recipient `matcher`
  // matches and `except` (may be null: the map before a change) does not, oldest first.
  // At most `limit` finds; `truncated` (may be null) says whether more matched.
  std::vector<RetroFind> Hunt(const Matcher& matcher, const Matcher* except, int64_t since_ms,
                              size_t limit, bool* truncated = nullptr) const;

  // Drops every day that ended before `before_ms` and rebuilds the string tables; shrinks
  // the tables of the days before the newest to fit. Returns the number of messages dropped.
  size_t Forget(int64_t before_ms);
  // Forget without touching this memory: a new one with the days that end after
  // `before_ms`, its tables rebuilt and fitted; `dropped` counts the messages left out.
  // Null when no day is that old (nothing to drop). Rebuilding a week takes seconds: the
  // owner builds it while readers keep using this one, and only swaps under its lock.
  // Costs the kept days' bytes again until the old memory is freed.
  std::unique_ptr<RecipientMemory> Without(int64_t before_ms, size_t* dropped) const;
  // Shrinks the tables of the days before the newest to fit (Forget does it too).
  void Seal();

  RecipientMemoryStats stats() const;

 private:
  class Strings;
  struct Day;
  Day* DayFor(int64_t day);
  // Interns the strings `days_` use into new tables; their ids index `from`'s tables.
  void Rebuild(const RecipientMemory& from);

  std::vector<Day> days_;  // by day, ascending
  // Interned strings: recipients, accounts, client IPs.
  std::unique_ptr<Strings> recipients_, accounts_, ips_;
};

}  // namespace compd

#endif  // COMPD_DETECT_RECIPIENT_MEMORY_H_
