// Spool: events that could not reach Redis yet, kept in a local append-only JSON-lines
// file until the Recorder replays them.
//
// Owns two files in the spool folder (created 0700; files 0600, since events name
// customers' accounts):
//   events.spool         new events are appended here, one JSON line each, fsync'd per Append
//   events.spool.replay  the chunk being replayed. BeginReplay renames events.spool to it,
//                        so Appends that arrive during a replay go to a fresh events.spool
//                        and never race the reader. A replay interrupted by an outage or a
//                        crash leaves this file behind; it is replayed first next time.
// Order is kept: the replay file holds older events than events.spool.
//
// Thread-safe: Append may run on any thread (milter threads overflow straight into the
// spool) while the writer thread replays.
#ifndef COMPD_EVENTS_SPOOL_H_
#define COMPD_EVENTS_SPOOL_H_

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "compd/base/status.h"
#include "compd/events/event.h"

namespace compd {

inline constexpr const char* kSpoolFile = "events.spool";
inline constexpr const char* kSpoolReplayFile = "events.spool.replay";

struct SpoolContents {
  std::vector<Event> events;  // in file order
  // One per line that could not be read, as "file:line: reason" (a line torn by a crash
  // or edited by hand); the other lines are still returned.
  std::vector<std::string> problems;
  size_t lines = 0;  // non-empty lines, readable or not
};

// Pure parser of spool text. `name` prefixes the problems.
SpoolContents ParseSpool(std::string_view contents, std::string_view name);

class Spool {
 public:
  // An empty `dir` means no spool: Append fails (the caller counts the loss).
  explicit Spool(std::string dir);
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Creates the folder if needed and counts what earlier runs left behind.
  Status Open();

  // Appends the events and fsyncs before returning, so an acknowledged Append survives
  // a crash. A file that a crash left without a final newline gets one first, so a torn
  // last line never swallows the next event.
  Status Append(const std::vector<Event>& events);

  // Lines waiting to be replayed (both files).
  size_t depth() const { return depth_.load(); }
  bool pending() const { return depth() > 0; }

  // Reads the next chunk to replay into `out`: the replay file if one was left behind,
  // else events.spool renamed to the replay file. kNotFound when nothing is spooled.
  Status BeginReplay(SpoolContents* out);
  // Every event of the chunk is safely in Redis: deletes the replay file.
  Status FinishReplay();

  const std::string& dir() const { return dir_; }
  std::string path() const;
  std::string replay_path() const;

 private:
  std::string dir_;
  std::mutex mu_;  // serialises Append against the rename in BeginReplay
  std::atomic<size_t> depth_{0};
  size_t replay_lines_ = 0;  // lines of the chunk being replayed; writer thread only
};

}  // namespace compd

#endif  // COMPD_EVENTS_SPOOL_H_
