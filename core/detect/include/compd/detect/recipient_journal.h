// RecipientJournal: the recipient memory's copy on disk, so that a restart of a node loses
// none of what it remembers. One append-only file per UTC day of message time under its
// folder (<spool_dir>/retro/2026-12-04.tsv), one line per message:
//   time_ms TAB account TAB client_ip TAB queue_id TAB recipient [TAB recipient ...]
// Control characters in a field become '?' (an envelope recipient never has any; accounts
// and queue ids come from the MTA). Forgetting a day is deleting its file.
//
// Lines are appended with WriteAll, not fsynced: the kernel keeps what a crashed process
// wrote; a crash of the machine may lose the last seconds (the MTA's own log has them).
//
// Not thread-safe: one owner (the RetroHunter's thread).
#ifndef COMPD_DETECT_RECIPIENT_JOURNAL_H_
#define COMPD_DETECT_RECIPIENT_JOURNAL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "compd/base/status.h"
#include "compd/events/message.h"

namespace compd {

class RecipientJournal {
 public:
  explicit RecipientJournal(std::string dir);
  ~RecipientJournal();
  RecipientJournal(const RecipientJournal&) = delete;
  RecipientJournal& operator=(const RecipientJournal&) = delete;

  // Creates the folder (0700: it names customers and whom they mail) if needed.
  Status Open();
  // Appends one line per message (only account, client IP, queue id, time, recipients).
  Status Append(const std::vector<Message>& messages);
  // Calls `fn` for every message in the files of days that end after `since_ms`, oldest
  // day first. `bad` counts lines that are not records (a torn last line after a crash).
  Status Load(int64_t since_ms, const std::function<void(const Message&)>& fn, size_t* bad);
  // Deletes the files of the days that ended before `before_ms`; `deleted` counts them.
  Status Forget(int64_t before_ms, size_t* deleted);

  const std::string& dir() const { return dir_; }

 private:
  // Day numbers (days since 1970-01-01, UTC) of the files in the folder, ascending.
  Status Days(std::vector<int64_t>* out) const;
  std::string PathOf(int64_t day) const;

  const std::string dir_;
  int fd_ = -1;
  int64_t fd_day_ = 0;
};

}  // namespace compd

#endif  // COMPD_DETECT_RECIPIENT_JOURNAL_H_
