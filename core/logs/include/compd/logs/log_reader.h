// LogReader: the authenticated submissions recorded in MTA log files (Exim mainlog,
// Postfix maillog), as compd::Message, in time order. What `mapctl replay` and
// `mapctl history import` run the detection engine on.
//
// Owns the open files (plain or gzip, recognised by content) and the partly read
// messages. Not thread-safe: one reader, one thread.
//
// What it guarantees:
//   - Next() returns messages in non-decreasing time_ms order across all files (several
//     files are merged by time, in whatever order they are given: mainlog.1.gz, mainlog),
//     each complete: an Exim message's recipients come from its `for` list
//     (+received_recipients) or else from its delivery lines; a Postfix message is
//     assembled from smtpd, cleanup, qmgr and delivery agent lines by host and queue id.
//     A message split over two rotated files is still one message.
//   - Only mail with an authenticated account comes out; the rest is counted.
//   - A line it cannot read is counted and sampled (`file:line: text`), never fatal; only
//     a file that cannot be opened is an error (naming it).
//   - Timestamps without a zone are local time (TZ); classic syslog timestamps have no
//     year: each is placed in the latest year that does not put it after the reference
//     time (the file's modification time unless given), so a file that crosses New
//     Year reads right.
//   - Memory holds only the messages not yet complete or not yet safe to hand out
//     (a minute of log time), not the files.
#ifndef COMPD_LOGS_LOG_READER_H_
#define COMPD_LOGS_LOG_READER_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "compd/base/status.h"
#include "compd/events/message.h"

namespace compd {

enum class LogFormat { kAuto, kExim, kPostfix };

// "auto", "exim", "postfix".
const char* LogFormatName(LogFormat format);
// The inverse of LogFormatName; false for anything else.
bool ParseLogFormat(std::string_view name, LogFormat* format);

struct LogReaderOptions {
  // kAuto decides per file from its first readable line.
  LogFormat format = LogFormat::kAuto;
  // Only messages with since_ms <= time_ms < until_ms come out (Unix ms, UTC).
  int64_t since_ms = std::numeric_limits<int64_t>::min();
  int64_t until_ms = std::numeric_limits<int64_t>::max();
  // Where a timestamp without a year may lie at the latest (Unix ms); 0: each file's
  // modification time (a log file's last line is written just before it).
  int64_t reference_ms = 0;
  // How many unreadable lines are kept as samples.
  size_t max_samples = 10;
};

struct LogCounts {
  uint64_t lines = 0;            // lines read
  uint64_t messages = 0;         // authenticated messages handed out (inside the window)
  uint64_t outside_window = 0;   // authenticated messages before since_ms or after until_ms
  uint64_t unauthenticated = 0;  // messages without an authenticated account: skipped
  uint64_t ignored = 0;          // other programs' lines, MTA lines that say nothing needed
  uint64_t not_understood = 0;   // garbage: no timestamp, or an MTA line that does not parse
};

struct LogFileStats {
  std::string path;
  LogFormat format = LogFormat::kAuto;  // as detected; kAuto while no line was recognised
  LogCounts counts;                     // a message counts for the file holding its arrival line
};

struct LogReadStats {
  LogCounts total;
  std::vector<LogFileStats> files;  // in the order given to Open
  // `file:line: text` of the first max_samples lines not understood (text shortened), and
  // of read errors.
  std::vector<std::string> samples;
};

class LogReader {
 public:
  // Opens every file (kIoError naming the first that cannot be opened, kInvalid for
  // options that make no sense). Reading starts with the first Next().
  static Status Open(const std::vector<std::string>& paths, const LogReaderOptions& options,
                     std::unique_ptr<LogReader>* reader);

  virtual ~LogReader() = default;

  // The next message in time order; false at the end of all files. `out` is overwritten
  // entirely (its buffers are reused).
  virtual bool Next(Message* out) = 0;

  // Counts so far; complete once Next() returned false.
  virtual const LogReadStats& stats() const = 0;

  // Ok, or the first error met while reading (a truncated or corrupt .gz, a failing
  // disk): the rest of that file is skipped, the other files are still read.
  virtual const Status& status() const = 0;
};

}  // namespace compd

#endif  // COMPD_LOGS_LOG_READER_H_
