#include "compd/map/rspamd_map.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace compd {
namespace {

std::string ErrnoText(int err) { return std::generic_category().message(err); }

constexpr const char* kExactHeader =
    "# compd exact recipients (rspamd plain map); written by compd, do not edit";
constexpr const char* kPatternHeader =
    "# compd recipient patterns (rspamd regexp map); written by compd, do not edit";

std::string FormatMap(const char* header, std::vector<std::string_view> lines) {
  // A snapshot's texts come sorted already; a million of them take 0.1 s to sort again.
  if (!std::is_sorted(lines.begin(), lines.end())) std::sort(lines.begin(), lines.end());
  lines.erase(std::unique(lines.begin(), lines.end()), lines.end());
  size_t size = std::strlen(header) + 1;
  for (std::string_view l : lines) size += l.size() + 1;
  std::string out;
  out.reserve(size);
  out += header;
  out += '\n';
  for (std::string_view l : lines) {
    out += l;
    out += '\n';
  }
  return out;
}

std::vector<std::string_view> TextsOf(const std::vector<Entry>& entries, EntryKind kind) {
  std::vector<std::string_view> texts;
  for (const Entry& e : entries) {
    if (e.kind == kind) texts.push_back(e.text);
  }
  return texts;
}

std::string FormatPatternTexts(std::vector<std::string_view> texts) {
  if (!std::is_sorted(texts.begin(), texts.end())) std::sort(texts.begin(), texts.end());
  std::vector<std::string> kept(texts.begin(), texts.end());
  DropRspamdDuplicates(&kept);
  return FormatMap(kPatternHeader, std::vector<std::string_view>(kept.begin(), kept.end()));
}

}  // namespace

std::string FormatExactMap(const std::vector<Entry>& entries) {
  return FormatMap(kExactHeader, TextsOf(entries, EntryKind::kExact));
}

std::string FormatPatternMap(const std::vector<Entry>& entries) {
  return FormatPatternTexts(TextsOf(entries, EntryKind::kPattern));
}

Status WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode) {
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  // Same folder, so that rename() is atomic; mkostemp makes the name unique.
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
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t w = write(fd, contents.data() + done, contents.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write " + path, errno, true);
    }
    done += static_cast<size_t>(w);
  }
  if (fsync(fd) != 0) return fail("cannot write " + path, errno, true);
  // mkostemp creates 0600; set the mode explicitly, independent of the umask.
  if (fchmod(fd, mode) != 0) return fail("cannot set the mode of " + path, errno, true);
  if (close(fd) != 0) return fail("cannot write " + path, errno, false);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return fail("cannot replace " + path, errno, false);
  }
  // The rename itself must reach the disk, or a crash could bring back the old file.
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return Status::IoError("cannot sync the folder of " + path + ": " + ErrnoText(errno));
  const int rc = fsync(dfd);
  const int err = errno;
  close(dfd);
  if (rc != 0) return Status::IoError("cannot sync the folder of " + path + ": " + ErrnoText(err));
  return Status::Ok();
}

Status WriteMapFiles(const std::string& dir, const std::vector<Entry>& entries) {
  return WriteMapFiles(dir, TextsOf(entries, EntryKind::kExact),
                       TextsOf(entries, EntryKind::kPattern));
}

Status WriteMapFiles(const std::string& dir, std::vector<std::string_view> exact,
                     std::vector<std::string_view> patterns) {
  const std::string base = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  Status st = WriteFileAtomically(base + kExactMapFile, FormatMap(kExactHeader, std::move(exact)));
  if (!st.ok()) return st;
  return WriteFileAtomically(base + kPatternMapFile, FormatPatternTexts(std::move(patterns)));
}

}  // namespace compd
