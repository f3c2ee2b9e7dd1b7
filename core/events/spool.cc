#include "compd/events/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "compd/base/file.h"

namespace compd {

namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

size_t CountLines(std::string_view contents) {
  size_t n = 0;
  size_t pos = 0;
  while (pos < contents.size()) {
    size_t nl = contents.find('\n', pos);
    size_t end = nl == std::string_view::npos ? contents.size() : nl;
    if (contents.find_first_not_of(" \t\r", pos) < end) ++n;
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return n;
}

}  // namespace

SpoolContents ParseSpool(std::string_view contents, std::string_view name) {
  SpoolContents out;
  size_t pos = 0;
  int line = 0;
  while (pos < contents.size()) {
    ++line;
    size_t nl = contents.find('\n', pos);
    bool last_unterminated = nl == std::string_view::npos;
    size_t end = last_unterminated ? contents.size() : nl;
    std::string_view text = contents.substr(pos, end - pos);
    pos = last_unterminated ? contents.size() : nl + 1;
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    ++out.lines;
    Event e;
    Status s = Event::FromJson(text, &e);
    if (s.ok() && e.id.empty()) s = Status::Invalid("event without an id");
    if (!s.ok()) {
      std::string why = s.message();
      // A crash during a write leaves the last line short: say so, it is the usual cause.
      if (last_unterminated) why += " (truncated last line)";
      out.problems.push_back(std::string(name) + ":" + std::to_string(line) +
                             ": skipped unreadable event: " + why);
      continue;
    }
    out.events.push_back(std::move(e));
  }
  return out;
}

Spool::Spool(std::string dir) : dir_(std::move(dir)) {}

std::string Spool::path() const { return dir_ + "/" + kSpoolFile; }
std::string Spool::replay_path() const { return dir_ + "/" + kSpoolReplayFile; }

Status Spool::Open() {
  if (dir_.empty()) return Status::Ok();
  if (mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::IoError(Errno("spool folder " + dir_));
  }
  struct stat st;
  if (stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::IoError("spool folder " + dir_ + ": not a folder");
  }
  size_t depth = 0;
  for (const std::string& p : {replay_path(), path()}) {
    std::string contents;
    Status s = ReadFile(p, &contents);
    if (s.IsNotFound()) continue;
    if (!s.ok()) return s;
    depth += CountLines(contents);
  }
  depth_ = depth;
  return Status::Ok();
}

Status Spool::Append(const std::vector<Event>& events) {
  if (events.empty()) return Status::Ok();
  if (dir_.empty()) return Status::IoError("no spool folder configured (spool_dir)");
  std::string data;
  for (const Event& e : events) {
    data += e.ToJson();
    data += '\n';
  }
  std::lock_guard<std::mutex> lock(mu_);
  const std::string p = path();
  int fd = open(p.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);  // RDWR: pread below
  if (fd < 0) return Status::IoError(Errno(p));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    Status s = Status::IoError(Errno(p));
    close(fd);
    return s;
  }
  bool created = st.st_size == 0;
  if (st.st_size > 0) {
    char last = '\n';
    if (pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n') data.insert(0, "\n");
  }
  if (!WriteAll(fd, data) || fsync(fd) != 0) {
    Status s = Status::IoError(Errno("writing " + p));
    close(fd);
    return s;
  }
  if (close(fd) != 0) return Status::IoError(Errno("closing " + p));
  // A new file's name must be durable too, or a crash could lose the whole file.
  if (created) {
    Status s = SyncDir(dir_);
    if (!s.ok()) return s;
  }
  depth_ += events.size();
  return Status::Ok();
}

Status Spool::BeginReplay(SpoolContents* out) {
  *out = SpoolContents();
  if (dir_.empty()) return Status::NotFound("no spool folder");
  const std::string rp = replay_path();
  std::string contents;
  Status s = ReadFile(rp, &contents);
  if (s.IsNotFound()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (rename(path().c_str(), rp.c_str()) != 0) {
      if (errno == ENOENT) {
        depth_ = 0;  // nothing on disk: no count drift may keep the writer polling
        return Status::NotFound("spool is empty");
      }
      return Status::IoError(Errno("renaming " + path() + " to " + rp));
    }
    // Durable, so that a crash cannot undo it and put the chunk through a second replay.
    s = SyncDir(dir_);
    if (!s.ok()) return s;
    s = ReadFile(rp, &contents);
  }
  if (!s.ok()) return s;
  *out = ParseSpool(contents, rp);
  replay_lines_ = out->lines;
  return Status::Ok();
}

Status Spool::FinishReplay() {
  const std::string rp = replay_path();
  if (unlink(rp.c_str()) != 0 && errno != ENOENT) return Status::IoError(Errno("removing " + rp));
  size_t cur = depth_.load();
  while (!depth_.compare_exchange_weak(cur, cur >= replay_lines_ ? cur - replay_lines_ : 0)) {
  }
  replay_lines_ = 0;
  return Status::Ok();
}

}  // namespace compd
