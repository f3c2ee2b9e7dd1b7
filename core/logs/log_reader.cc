#include "compd/logs/log_reader.h"

#include <algorithm>
#include <utility>

#include "compd/logs/assembly.h"
#include "compd/logs/exim_assembler.h"
#include "compd/logs/line_file.h"
#include "compd/logs/log_time.h"
#include "compd/logs/postfix_assembler.h"

namespace compd {

namespace {

// Lines of one file are nearly but not strictly in time order (processes writing at the
// same time): a finished message waits until the logs' clock is this far past it.
constexpr int64_t kOrderSlackMs = 60 * 1000;
// A message whose last lines never come (still queued when the log was rotated away, or
// the log starts in its middle) is handed out with what is known after this much log time.
constexpr int64_t kPendingTimeoutMs = 15 * 60 * 1000;

struct Source {
  std::unique_ptr<LineFile> file;
  LogFormat format = LogFormat::kAuto;
  YearGuess year;
  LocalClock clock;
  LogLine line;  // the current line, once read
  // The time of its first line: of two lines with the same time, the one from the file
  // that began earlier goes first, so a rotated log (mainlog.1 before mainlog) keeps its
  // order within a second whichever order the files were given in.
  int64_t first_ms = INT64_MIN;
  // When both began in the same second: logrotate's name says which is older
  // (mainlog.2.gz < mainlog.1 < mainlog), then the modification time.
  int rotation = 0;
};

// N of `name.N` or `name.N.gz`; 0 for a live log.
int RotationNumber(std::string_view name) {
  if (name.size() > 3 && name.substr(name.size() - 3) == ".gz") name.remove_suffix(3);
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot + 1 == name.size() || name.size() - dot > 6) return 0;
  int n = 0;
  for (char c : name.substr(dot + 1)) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + (c - '0');
  }
  return n;
}

class Reader : public LogReader {
 public:
  Reader(const LogReaderOptions& options, std::vector<Source> sources,
         std::vector<std::string> base_names, LogReadStats stats)
      : options_(options),
        sources_(std::move(sources)),
        base_names_(std::move(base_names)),
        stats_(std::move(stats)),
        tally_(&stats_, options.max_samples),
        exim_(&pool_, &tally_, &base_names_),
        postfix_(&pool_, &tally_, &base_names_) {}

  bool Next(Message* out) override;
  const LogReadStats& stats() const override { return stats_; }
  const Status& status() const override { return status_; }

 private:
  bool Advance(size_t i);
  void Step();
  int64_t Watermark() const;
  static bool Later(const Source* a, const Source* b) {
    if (a->line.time_ms != b->line.time_ms) return a->line.time_ms > b->line.time_ms;
    if (a->first_ms != b->first_ms) return a->first_ms > b->first_ms;
    if (a->rotation != b->rotation) return a->rotation < b->rotation;
    if (a->file->mtime_ms() != b->file->mtime_ms()) {
      return a->file->mtime_ms() > b->file->mtime_ms();
    }
    return a->line.file > b->line.file;
  }

  LogReaderOptions options_;
  std::vector<Source> sources_;
  std::vector<std::string> base_names_;
  LogReadStats stats_;
  Status status_;
  Tally tally_;
  MessagePool pool_;
  EximAssembler exim_;
  PostfixAssembler postfix_;
  std::vector<Source*> active_;  // a heap on the current line's time
  bool started_ = false;
  bool drained_ = false;
  int64_t clock_ = INT64_MIN;  // the latest line time seen
  int64_t last_out_ = INT64_MIN;
};

bool Reader::Advance(size_t i) {
  Source& s = sources_[i];
  LogLine& l = s.line;
  std::string_view raw;
  while (s.file->ReadLine(&raw)) {
    tally_.Line(i);
    l.file = i;
    l.number = s.file->line_number();
    l.raw = raw;
    if (s.format != LogFormat::kPostfix && ParseEximStamp(raw, &s.clock, &l.time_ms, &l.text)) {
      if (s.format == LogFormat::kAuto) s.format = stats_.files[i].format = LogFormat::kExim;
      l.host = l.program = l.pid = {};
      return true;
    }
    SyslogLine sl;
    if (s.format != LogFormat::kExim && ParseSyslogLine(raw, s.year, &s.clock, &sl)) {
      if (s.format == LogFormat::kAuto) s.format = stats_.files[i].format = LogFormat::kPostfix;
      l.time_ms = sl.unix_ms;
      l.host = sl.host;
      l.program = sl.program;
      l.pid = sl.pid;
      l.text = sl.text;
      return true;
    }
    if (raw.find_first_not_of(" \t") == std::string_view::npos) {
      tally_.Ignored(i);  // blank lines carry nothing
    } else {
      tally_.NotUnderstood(i, l.number, raw);
    }
  }
  if (!s.file->status().ok()) {
    if (status_.ok()) status_ = s.file->status();
    tally_.Error(s.file->status().message());
  }
  return false;
}

void Reader::Step() {
  std::pop_heap(active_.begin(), active_.end(), Later);
  Source* s = active_.back();
  active_.pop_back();
  const LogLine& l = s->line;
  if (l.time_ms > clock_) clock_ = l.time_ms;
  if (s->format == LogFormat::kExim) {
    exim_.Line(l);
  } else {
    postfix_.Line(l);
  }
  if (Advance(l.file)) {
    active_.push_back(s);
    std::push_heap(active_.begin(), active_.end(), Later);
  }
  int64_t limit = clock_ - kPendingTimeoutMs;
  if (exim_.OldestPending() < limit) exim_.Expire(limit);
  if (postfix_.OldestPending() < limit) postfix_.Expire(limit);
}

int64_t Reader::Watermark() const {
  if (drained_) return INT64_MAX;
  int64_t w = clock_ < INT64_MIN + kOrderSlackMs ? INT64_MIN : clock_ - kOrderSlackMs;
  w = std::min(w, exim_.OldestPending());
  return std::min(w, postfix_.OldestPending());
}

bool Reader::Next(Message* out) {
  if (!started_) {
    started_ = true;
    for (size_t i = 0; i < sources_.size(); ++i) {
      if (!Advance(i)) continue;
      sources_[i].first_ms = sources_[i].line.time_ms;
      active_.push_back(&sources_[i]);
    }
    std::make_heap(active_.begin(), active_.end(), Later);
  }
  for (;;) {
    size_t slot;
    if (pool_.PopUpTo(Watermark(), &slot)) {
      Message& m = pool_.at(slot);
      size_t file = pool_.file_of(slot);
      // Only a line more than kOrderSlackMs out of order gets here: keep the promise.
      if (m.time_ms < last_out_) m.time_ms = last_out_;
      if (m.time_ms < options_.since_ms || m.time_ms >= options_.until_ms) {
        tally_.OutsideWindow(file);
        pool_.Release(slot);
        continue;
      }
      last_out_ = m.time_ms;
      tally_.Message(file);
      std::swap(*out, m);
      pool_.Release(slot);
      return true;
    }
    if (!active_.empty()) {
      Step();
      continue;
    }
    if (!drained_) {
      drained_ = true;
      exim_.Expire(INT64_MAX);
      postfix_.Expire(INT64_MAX);
      continue;
    }
    return false;
  }
}

}  // namespace

const char* LogFormatName(LogFormat format) {
  switch (format) {
    case LogFormat::kExim:
      return "exim";
    case LogFormat::kPostfix:
      return "postfix";
    case LogFormat::kAuto:
      break;
  }
  return "auto";
}

bool ParseLogFormat(std::string_view name, LogFormat* format) {
  for (LogFormat f : {LogFormat::kAuto, LogFormat::kExim, LogFormat::kPostfix}) {
    if (name == LogFormatName(f)) {
      *format = f;
      return true;
    }
  }
  return false;
}

Status LogReader::Open(const std::vector<std::string>& paths, const LogReaderOptions& options,
                       std::unique_ptr<LogReader>* reader) {
  if (paths.empty()) return Status::Invalid("no log files given");
  if (options.since_ms >= options.until_ms) {
    return Status::Invalid("the time window is empty: since must be before until");
  }
  std::vector<Source> sources(paths.size());
  std::vector<std::string> base_names;
  LogReadStats stats;
  for (size_t i = 0; i < paths.size(); ++i) {
    Status s = LineFile::Open(paths[i], &sources[i].file);
    if (!s.ok()) return s;
    int64_t ref = options.reference_ms != 0 ? options.reference_ms : sources[i].file->mtime_ms();
    sources[i].year = YearGuess(ref);
    sources[i].format = options.format;
    size_t slash = paths[i].rfind('/');
    base_names.push_back(slash == std::string::npos ? paths[i] : paths[i].substr(slash + 1));
    sources[i].rotation = RotationNumber(base_names.back());
    LogFileStats fs;
    fs.path = paths[i];
    fs.format = options.format;
    stats.files.push_back(std::move(fs));
  }
  *reader = std::make_unique<Reader>(options, std::move(sources), std::move(base_names),
                                     std::move(stats));
  return Status::Ok();
}

}  // namespace compd
