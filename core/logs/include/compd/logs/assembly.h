// The parts the format readers (Exim, Postfix) share inside LogReader: one log line as
// handed to them, the counters they bump, and the pool of messages being assembled with
// the queue of finished ones in time order.
//
// Not thread-safe: owned by one LogReader.
#ifndef COMPD_LOGS_ASSEMBLY_H_
#define COMPD_LOGS_ASSEMBLY_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "compd/events/message.h"
#include "compd/logs/log_reader.h"

namespace compd {

// One timestamped line. Views point into the reading buffer: valid during the call.
struct LogLine {
  size_t file = 0;
  uint64_t number = 0;  // 1-based line number in its file
  int64_t time_ms = 0;
  std::string_view raw;      // the whole line, for samples
  std::string_view host;     // syslog only
  std::string_view program;  // syslog only: postfix/submission/smtpd
  std::string_view pid;      // syslog only
  std::string_view text;     // after the timestamp (Exim) or the syslog tag
};

// Counts per file and in total, and the samples of lines not understood.
class Tally {
 public:
  Tally(LogReadStats* stats, size_t max_samples) : stats_(stats), max_samples_(max_samples) {}
  void Ignored(size_t file) { Bump(file, &LogCounts::ignored); }
  void Unauthenticated(size_t file) { Bump(file, &LogCounts::unauthenticated); }
  void Message(size_t file) { Bump(file, &LogCounts::messages); }
  void OutsideWindow(size_t file) { Bump(file, &LogCounts::outside_window); }
  void Line(size_t file) { Bump(file, &LogCounts::lines); }
  // A garbage line: counted, and sampled as `file:line: text`.
  void NotUnderstood(size_t file, uint64_t number, std::string_view raw);
  // A read error: sampled even when the samples are full.
  void Error(const std::string& text) { stats_->samples.push_back(text); }

 private:
  void Bump(size_t file, uint64_t LogCounts::*field) {
    ++(stats_->total.*field);
    ++(stats_->files[file].counts.*field);
  }
  LogReadStats* stats_;
  size_t max_samples_;
  size_t sampled_ = 0;
};

// Messages under assembly live in slots whose buffers are reused; finished ones wait in a
// min-heap on (time, order finished) until the reader may hand them out.
class MessagePool {
 public:
  // A cleared message in a free slot.
  size_t Acquire();
  Message& at(size_t slot) { return slots_[slot].message; }
  size_t& file_of(size_t slot) { return slots_[slot].file; }
  void Release(size_t slot) { free_.push_back(slot); }
  // The message is complete: it joins the time-ordered queue.
  void Finish(size_t slot);
  // The earliest finished message if its time is <= limit.
  bool PopUpTo(int64_t limit, size_t* slot);
  bool empty_ready() const { return ready_.empty(); }

 private:
  struct Slot {
    Message message;
    size_t file = 0;
  };
  struct Ready {
    int64_t time_ms;
    uint64_t order;
    size_t slot;
  };
  // Later = larger: std heaps are max-heaps.
  static bool Later(const Ready& a, const Ready& b);
  std::vector<Slot> slots_;
  std::vector<size_t> free_;
  std::vector<Ready> ready_;  // a heap
  uint64_t order_ = 0;
};

// The messages begun but not finished, by key (Exim's message id, Postfix's host and
// queue id), and in the order they began.
class PendingMessages {
 public:
  struct Entry {
    size_t slot = 0;  // in the MessagePool
    int64_t start_ms = 0;
    uint64_t seq = 0;
    int64_t nrcpt = -1;   // Postfix: recipients announced by qmgr
    bool queued = false;  // Postfix: accepted into the queue (or rejected after DATA)
  };
  // nullptr when there is no such entry. Valid until the next Add or Take.
  Entry* Find(std::string_view key);
  // The caller has taken an entry with the same key before.
  Entry* Add(std::string_view key, size_t slot, int64_t start_ms);
  // Removes the entry; its slot.
  size_t Take(std::string_view key);
  // INT64_MAX when empty.
  int64_t OldestStart() const {
    return by_start_.empty() ? INT64_MAX : by_start_.begin()->first.first;
  }
  // Must not be empty.
  const std::string& OldestKey() const { return by_start_.begin()->second; }

 private:
  std::string key_;  // lookups without allocating
  std::unordered_map<std::string, Entry> entries_;
  std::map<std::pair<int64_t, uint64_t>, std::string> by_start_;
  uint64_t seq_ = 0;
};

// One log format's state machine. Messages it finishes go to the pool; lines it has no
// use for are counted as ignored. It keeps the messages it has begun in pending().
class Assembler {
 public:
  // base_names: per file, for Message::origin.
  Assembler(MessagePool* pool, Tally* tally, const std::vector<std::string>* base_names)
      : pool_(pool), tally_(tally), base_names_(base_names) {}
  virtual ~Assembler() = default;
  virtual void Line(const LogLine& line) = 0;
  // The arrival time of the oldest message not finished yet; INT64_MAX when none. No
  // message finished later can be earlier than that.
  int64_t OldestPending() const { return pending_.OldestStart(); }
  // Finishes, with what is known, the messages begun before `time_ms` (their last lines
  // are not in these logs: still queued, or cut off by the end of the file).
  void Expire(int64_t time_ms);

 protected:
  // Finishes the pending message under `key` with what is known (Expire's step).
  virtual void FinishPending(const std::string& key) = 0;
  MessagePool* pool() const { return pool_; }
  Tally* tally() const { return tally_; }
  PendingMessages& pending() { return pending_; }
  // Message::origin for a message that begins at `line`.
  void SetOriginOf(const LogLine& line, std::string* out) const;

 private:
  MessagePool* pool_;
  Tally* tally_;
  const std::vector<std::string>* base_names_;
  PendingMessages pending_;
};

// `mainlog:88123` (the file's base name).
void SetOrigin(std::string_view base_name, uint64_t line, std::string* out);
// Appends `addr` unless it is empty or there already.
void AddRecipient(std::string_view addr, std::vector<std::string>* recipients);
// A byte below 0x20 or 0x7f: no real login has one, and it must not reach keys or output.
bool HasControlChar(std::string_view s);

}  // namespace compd

#endif  // COMPD_LOGS_ASSEMBLY_H_
