// Files: the one place compd writes local files, and the reading helpers beside it.
//
// Owns how a file reaches the disk. A file that is replaced (the rspamd map files, the
// locked-accounts cache, the pid file) is written with WriteFileAtomically: a reader, or
// a start after a crash, sees the old contents or the new ones, never an empty or half
// written file. Append-only files (the spool, the alert log) are appended with WriteAll
// and made durable with fsync and SyncDir by their owners.
//
// Stateless functions; thread-safe as long as two threads do not write the same path.
#ifndef COMPD_BASE_FILE_H_
#define COMPD_BASE_FILE_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>

#include "compd/base/status.h"

namespace compd {

// Writes `contents` to `path` atomically: a temporary file with a unique name in the same
// folder, write, fsync, the mode set, rename over `path`, fsync of the folder. The old
// file stays intact on any failure and no temporary file is left behind. kIoError names
// `path` and the reason.
Status WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode = 0644);

// Writes all of `data` to `fd`, retrying short writes and EINTR. False on failure, with
// errno set.
bool WriteAll(int fd, std::string_view data);

// Reads the whole file. kNotFound when it does not exist (apart from any other failure,
// kIoError naming `path`).
Status ReadFile(const std::string& path, std::string* out);

// Reads a line-based settings file: calls `line_fn(where, line)` with "path:N" and the line
// trimmed of the bytes in `blanks`, skipping empty lines and lines starting with '#'.
// Stops at the first error line_fn returns; kIoError naming `path` when it cannot be read.
Status ForEachLine(
    const std::string& path, std::string_view blanks,
    const std::function<Status(const std::string& where, std::string_view line)>& line_fn);

// fsyncs the folder itself, so that a file created or renamed in it survives a crash.
Status SyncDir(const std::string& dir);

// The folder holding `path`: "." for a bare name, "/" for a file at the root.
std::string DirName(const std::string& path);

// strerror for `err`, thread-safe.
std::string ErrnoText(int err);

}  // namespace compd

#endif  // COMPD_BASE_FILE_H_
