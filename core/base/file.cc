#include "compd/base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <system_error>

#include "compd/base/text.h"

namespace compd {

std::string ErrnoText(int err) { return std::generic_category().message(err); }

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

Status ReadFile(const std::string& path, std::string* out) {
  out->clear();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("cannot read " + path + ": " + ErrnoText(errno));
    return Status::IoError("cannot read " + path + ": " + ErrnoText(errno));
  }
  std::string chunk(1 << 16, '\0');
  for (;;) {
    const ssize_t r = read(fd, chunk.data(), chunk.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int err = errno;
      close(fd);
      out->clear();
      return Status::IoError("cannot read " + path + ": " + ErrnoText(err));
    }
    if (r == 0) break;
    out->append(chunk.data(), static_cast<size_t>(r));
  }
  close(fd);
  return Status::Ok();
}

Status ForEachLine(
    const std::string& path, std::string_view blanks,
    const std::function<Status(const std::string& where, std::string_view line)>& line_fn) {
  std::ifstream in(path);
  if (!in) return Status::IoError(path + ": cannot read: " + ErrnoText(errno));
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::string_view l = TrimChars(line, blanks);
    if (l.empty() || l[0] == '#') continue;
    Status s = line_fn(path + ":" + std::to_string(lineno), l);
    if (!s.ok()) return s;
  }
  if (in.bad()) return Status::IoError(path + ": read error");
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("cannot sync the folder " + dir + ": " + ErrnoText(errno));
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) return Status::IoError("cannot sync the folder " + dir + ": " + ErrnoText(err));
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode) {
  // Same folder, so that rename() is atomic; mkostemp makes the name unique, so two
  // writers, or a temporary file a crash left behind, never get in the way.
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) {
    return Status::IoError("cannot create a temporary file beside " + path + ": " +
                           ErrnoText(errno));
  }
  auto fail = [&](const std::string& what, int err, bool close_fd) {
    if (close_fd) close(fd);
    unlink(tmp.c_str());
    return Status::IoError(what + ": " + ErrnoText(err));
  };
  if (!WriteAll(fd, contents)) return fail("cannot write " + path, errno, true);
  // Without this a crash soon after the rename can leave the new name with no contents.
  if (fsync(fd) != 0) return fail("cannot write " + path, errno, true);
  // mkostemp creates 0600; set the mode explicitly, independent of the umask.
  if (fchmod(fd, mode) != 0) return fail("cannot set the mode of " + path, errno, true);
  if (close(fd) != 0) return fail("cannot write " + path, errno, false);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return fail("cannot replace " + path, errno, false);
  }
  // The rename itself must reach the disk, or a crash could bring back the old file.
  Status s = SyncDir(DirName(path));
  if (!s.ok()) return Status::IoError("cannot sync the folder of " + path + ": " + s.message());
  return Status::Ok();
}

}  // namespace compd
