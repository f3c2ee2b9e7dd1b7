#include "compd/detect/recipient_journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>

#include "compd/base/file.h"
#include "compd/base/utc_time.h"

namespace compd {

namespace {

constexpr int64_t kDayMs = int64_t{86400} * 1000;
constexpr const char* kSuffix = ".tsv";

int64_t DayOf(int64_t ms) { return ms >= 0 ? ms / kDayMs : (ms - kDayMs + 1) / kDayMs; }

void AppendField(std::string* line, std::string_view field) {
  line->push_back('\t');
  for (char c : field) line->push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
}

// A file name of the folder as a day number; false for any other name.
bool ParseDayName(const std::string& name, int64_t* day) {
  const size_t n = name.size();
  if (n != 10 + 4 || name.compare(10, 4, kSuffix) != 0) return false;
  int64_t ms;
  if (!ParseUtcMillis(name.substr(0, 10) + "T00:00:00Z", &ms)) return false;
  *day = DayOf(ms);
  return true;
}

bool ParseLine(std::string_view line, Message* m) {
  std::vector<std::string_view> f;
  size_t start = 0;
  while (true) {
    size_t tab = line.find('\t', start);
    f.push_back(line.substr(start, tab == std::string_view::npos ? tab : tab - start));
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  if (f.size() < 5 || f[1].empty()) return false;
  int64_t t = 0;
  auto [p, ec] = std::from_chars(f[0].data(), f[0].data() + f[0].size(), t);
  if (ec != std::errc() || p != f[0].data() + f[0].size()) return false;
  *m = Message();
  m->time_ms = t;
  m->account = std::string(f[1]);
  m->client_ip = std::string(f[2]);
  m->queue_id = std::string(f[3]);
  for (size_t i = 4; i < f.size(); ++i) {
    if (!f[i].empty()) m->recipients.emplace_back(f[i]);
  }
  return !m->recipients.empty();
}

}  // namespace

RecipientJournal::RecipientJournal(std::string dir) : dir_(std::move(dir)) {}

RecipientJournal::~RecipientJournal() {
  if (fd_ >= 0) close(fd_);
}

std::string RecipientJournal::PathOf(int64_t day) const {
  using namespace std::chrono;
  std::string date =
      FormatUtcMillis(system_clock::time_point(milliseconds(day * kDayMs))).substr(0, 10);
  return dir_ + "/" + date + kSuffix;
}

Status RecipientJournal::Open() {
  if (mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::IoError("recipient memory: cannot create " + dir_ + ": " + ErrnoText(errno));
  }
  return Status::Ok();
}

Status RecipientJournal::Append(const std::vector<Message>& messages) {
  // One write per day's file per batch.
  std::string text;
  int64_t text_day = 0;
  auto flush = [&]() -> Status {
    if (text.empty()) return Status::Ok();
    if (fd_ < 0 || fd_day_ != text_day) {
      if (fd_ >= 0) close(fd_);
      const std::string path = PathOf(text_day);
      fd_ = open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
      if (fd_ < 0) return Status::IoError("recipient memory: " + path + ": " + ErrnoText(errno));
      fd_day_ = text_day;
      // A line torn by a crash ends here first, so the next record starts a line of its own.
      struct stat st;
      char last = '\n';
      if (fstat(fd_, &st) == 0 && st.st_size > 0 && pread(fd_, &last, 1, st.st_size - 1) == 1 &&
          last != '\n') {
        text.insert(text.begin(), '\n');
      }
    }
    if (!WriteAll(fd_, text)) {
      return Status::IoError("recipient memory: " + PathOf(text_day) + ": " + ErrnoText(errno));
    }
    text.clear();
    return Status::Ok();
  };
  for (const Message& m : messages) {
    if (m.account.empty() || m.recipients.empty()) continue;
    int64_t day = DayOf(m.time_ms);
    if (day != text_day) {
      Status s = flush();
      if (!s.ok()) return s;
      text_day = day;
    }
    text += std::to_string(m.time_ms);
    AppendField(&text, m.account);
    AppendField(&text, m.client_ip);
    AppendField(&text, m.queue_id);
    for (const std::string& r : m.recipients) AppendField(&text, r);
    text.push_back('\n');
  }
  return flush();
}

Status RecipientJournal::Days(std::vector<int64_t>* out) const {
  out->clear();
  DIR* d = opendir(dir_.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return Status::Ok();
    return Status::IoError("recipient memory: cannot read " + dir_ + ": " + ErrnoText(errno));
  }
  while (struct dirent* e = readdir(d)) {
    int64_t day;
    if (ParseDayName(e->d_name, &day)) out->push_back(day);
  }
  closedir(d);
  std::sort(out->begin(), out->end());
  return Status::Ok();
}

Status RecipientJournal::Load(int64_t since_ms, const std::function<void(const Message&)>& fn,
                              size_t* bad) {
  *bad = 0;
  std::vector<int64_t> days;
  Status s = Days(&days);
  if (!s.ok()) return s;
  std::string text;
  Message m;
  for (int64_t day : days) {
    if ((day + 1) * kDayMs <= since_ms) continue;
    s = ReadFile(PathOf(day), &text);
    if (s.IsNotFound()) continue;
    if (!s.ok()) return s;
    size_t start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      if (nl == std::string::npos) {
        ++*bad;  // torn last line: a crash in the middle of a write
        break;
      }
      if (ParseLine(std::string_view(text).substr(start, nl - start), &m)) {
        if (m.time_ms >= since_ms) fn(m);
      } else {
        ++*bad;
      }
      start = nl + 1;
    }
  }
  return Status::Ok();
}

Status RecipientJournal::Forget(int64_t before_ms, size_t* deleted) {
  *deleted = 0;
  std::vector<int64_t> days;
  Status s = Days(&days);
  if (!s.ok()) return s;
  for (int64_t day : days) {
    if ((day + 1) * kDayMs > before_ms) break;
    if (fd_ >= 0 && fd_day_ == day) {
      close(fd_);
      fd_ = -1;
    }
    const std::string path = PathOf(day);
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Status::IoError("recipient memory: cannot delete " + path + ": " + ErrnoText(errno));
    }
    ++*deleted;
  }
  return Status::Ok();
}

}  // namespace compd
