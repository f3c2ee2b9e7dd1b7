#include "compd/map_watcher.h"

#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include "compd/event.h"
#include "compd/rspamd_map.h"

namespace compd {

namespace {

// How long one wait for a pub/sub message lasts: bounds how long Stop takes.
constexpr std::chrono::milliseconds kReadSlice{200};

std::shared_ptr<const Snapshot> EmptySnapshot(const Matcher::Options& options) {
  auto snap = std::make_shared<Snapshot>();
  Status s = Matcher::Build({}, options, &snap->matcher);
  (void)s;  // an empty matcher cannot fail to build; `matcher` is checked by callers below
  snap->loaded = std::chrono::system_clock::now();
  snap->source = "empty";
  return snap;
}

std::string Describe(const Snapshot& s) {
  std::string d = std::to_string(s.exact) + " exact, " + std::to_string(s.patterns) +
                  " patterns, from " + s.source;
  if (s.source == "redis") d += " (version " + std::to_string(s.version) + ")";
  return d;
}

}  // namespace

MapWatcher::MapWatcher(MapWatcherOptions options, LogFn log)
    : options_(std::move(options)),
      log_(std::move(log)),
      snapshot_(EmptySnapshot(options_.matcher)) {}

MapWatcher::~MapWatcher() { Stop(); }

void MapWatcher::Log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, message);
}

std::shared_ptr<const Snapshot> MapWatcher::Current() const { return std::atomic_load(&snapshot_); }

void MapWatcher::Install(std::shared_ptr<const Snapshot> snap) {
  std::atomic_store(&snapshot_, std::move(snap));
  ++loads_;
}

Status MapWatcher::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return Status::Internal("map watcher started twice");
    started_ = true;
  }
  redis_ = std::make_unique<RedisClient>(options_.redis, options_.redis_timeout);
  store_ = std::make_unique<MapStore>(redis_.get(), options_.prefix);
  if (!LoadFromRedis() && !LoadFromFiles()) {
    Log(LogLevel::kError,
        "map: Redis " + options_.redis.ToString() + " is unreachable and " +
            (options_.map_dir.empty() ? std::string("no map_dir is set")
                                      : "there are no map files in " + options_.map_dir) +
            ": serving an EMPTY map (nothing is blocked) until Redis answers");
  }
  thread_ = std::thread(&MapWatcher::Loop, this);
  return Status::Ok();
}

void MapWatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool MapWatcher::stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stop_;
}

bool MapWatcher::WaitFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, d, [&] { return stop_; });
}

void MapWatcher::NoteRedisFailure(const Status& s) {
  ++redis_errors_;
  redis_up_ = false;
  backoff_ =
      backoff_.count() == 0 ? options_.retry_min : std::min(backoff_ * 2, options_.retry_max);
  if (!failing_) {
    Log(LogLevel::kError, "map: " + s.ToString() + "; keeping the current map (" +
                              Describe(*Current()) + ") and retrying");
  } else {
    Log(LogLevel::kDebug, "map: still unavailable: " + s.ToString());
  }
  failing_ = true;
}

void MapWatcher::NoteRedisSuccess() {
  if (failing_) Log(LogLevel::kInfo, "map: Redis " + options_.redis.ToString() + " answers again");
  failing_ = false;
  backoff_ = std::chrono::milliseconds(0);
  redis_up_ = true;
}

bool MapWatcher::LoadFromRedis() {
  MapState state;
  bool was_connected = redis_->connected();
  Status s = store_->Load(&state);
  if (!s.ok() && was_connected) s = store_->Load(&state);  // see CheckVersion
  if (!s.ok()) {
    redis_->Disconnect();
    NoteRedisFailure(s);
    return false;
  }
  NoteRedisSuccess();
  if (has_failed_version_ && state.version == failed_version_) return true;

  std::vector<Entry> entries;
  entries.reserve(state.entries.size());
  for (StoredEntry& e : state.entries) entries.push_back(std::move(e.entry));
  auto snap = std::make_shared<Snapshot>();
  s = Matcher::Build(entries, options_.matcher, &snap->matcher);
  if (!s.ok() || snap->matcher == nullptr) {
    ++load_errors_;
    failed_version_ = state.version;
    has_failed_version_ = true;
    Log(LogLevel::kError, "map: version " + std::to_string(state.version) + " NOT applied: " +
                              s.ToString() + "; still enforcing " + Describe(*Current()));
    return true;  // Redis is fine; the map is not
  }
  has_failed_version_ = false;
  snap->version = state.version;
  snap->loaded = std::chrono::system_clock::now();
  snap->exact = snap->matcher->exact_count();
  snap->patterns = snap->matcher->pattern_count();
  snap->source = "redis";
  auto old = Current();
  Log(LogLevel::kInfo, "map: loaded " + Describe(*snap) + "; was " + Describe(*old));
  Install(snap);

  if (!options_.map_dir.empty()) {
    s = WriteMapFiles(options_.map_dir, entries);
    if (!s.ok()) {
      Log(LogLevel::kError,
          "map: cannot write the map files for rspamd and for starting without "
          "Redis: " +
              s.ToString());
    }
  }
  return true;
}

bool MapWatcher::LoadFromFiles() {
  if (options_.map_dir.empty()) return false;
  std::vector<Entry> entries;
  bool any = false;
  std::string newest;
  const std::pair<const char*, MapKind> files[] = {{kExactMapFile, MapKind::kPlain},
                                                   {kPatternMapFile, MapKind::kRegexp}};
  for (const auto& [name, kind] : files) {
    std::string path = options_.map_dir + "/" + name;
    struct stat st;
    if (stat(path.c_str(), &st) != 0) continue;
    MapReadResult result;
    Status s = ReadRspamdMapFile(path, kind, &result);
    if (!s.ok()) {
      Log(LogLevel::kError, "map: " + s.ToString());
      continue;
    }
    any = true;
    std::string mtime = FormatUtcMillis(std::chrono::system_clock::from_time_t(st.st_mtime));
    newest = std::max(newest, mtime);
    for (const MapHazard& h : result.hazards) {
      if (h.severity == MapHazard::Severity::kError)
        Log(LogLevel::kWarning, "map: " + h.Format(path));
    }
    for (MapLine& line : result.lines) {
      if (line.converted) entries.push_back(std::move(line.entry));
    }
  }
  if (!any) return false;
  auto snap = std::make_shared<Snapshot>();
  Status s = Matcher::Build(entries, options_.matcher, &snap->matcher);
  if (!s.ok() || snap->matcher == nullptr) {
    ++load_errors_;
    Log(LogLevel::kError,
        "map: the files in " + options_.map_dir + " do not compile: " + s.ToString());
    return false;
  }
  snap->loaded = std::chrono::system_clock::now();
  snap->exact = snap->matcher->exact_count();
  snap->patterns = snap->matcher->pattern_count();
  snap->source = "files";
  Log(LogLevel::kWarning, "map: Redis " + options_.redis.ToString() + " is unreachable; serving " +
                              Describe(*snap) + " in " + options_.map_dir + " (written " + newest +
                              ") until it answers");
  Install(snap);
  return true;
}

bool MapWatcher::CheckVersion() {
  uint64_t version = 0;
  bool was_connected = redis_->connected();
  Status s = store_->Version(&version);
  // A connection from before an outage fails once after Redis is back: try a fresh one
  // at once rather than serve a stale map until the next poll.
  if (!s.ok() && was_connected) s = store_->Version(&version);
  if (!s.ok()) {
    redis_->Disconnect();
    NoteRedisFailure(s);
    return false;
  }
  NoteRedisSuccess();
  auto cur = Current();
  if (cur->source == "redis" && cur->version == version) return true;
  if (has_failed_version_ && version == failed_version_) return true;
  return LoadFromRedis();
}

void MapWatcher::Loop() {
  RedisClient sub(options_.redis, options_.redis_timeout);
  Keys keys(options_.prefix);
  bool subscribed = false;
  auto next_poll = std::chrono::steady_clock::now() + options_.poll_interval;
  while (!stopping()) {
    if (!subscribed) {
      Status s = sub.Subscribe({keys.channel()});
      if (!s.ok()) {
        sub.Disconnect();
        NoteRedisFailure(s);
        if (WaitFor(backoff_)) break;
        continue;
      }
      subscribed = true;
      // Changes made while we were not listening sent messages nobody heard.
      bool ok = CheckVersion();
      next_poll = std::chrono::steady_clock::now() + (ok ? options_.poll_interval : backoff_);
    }
    auto now = std::chrono::steady_clock::now();
    auto until_poll = std::chrono::duration_cast<std::chrono::milliseconds>(next_poll - now);
    auto slice = std::clamp(until_poll, std::chrono::milliseconds(0), kReadSlice);
    std::string channel, payload;
    Status s = sub.ReadMessage(slice, &channel, &payload);
    if (s.ok()) {
      // The payload is the new version; asking Redis is as cheap and cannot be fooled
      // by messages arriving out of order.
      bool ok = CheckVersion();
      next_poll = std::chrono::steady_clock::now() + (ok ? options_.poll_interval : backoff_);
      continue;
    }
    if (!s.IsNotFound()) {
      sub.Disconnect();
      subscribed = false;
      NoteRedisFailure(s);
      if (WaitFor(backoff_)) break;
      continue;
    }
    if (std::chrono::steady_clock::now() >= next_poll) {
      // After a failure, try again after the backoff, not a whole poll interval later.
      bool ok = CheckVersion();
      next_poll = std::chrono::steady_clock::now() + (ok ? options_.poll_interval : backoff_);
    }
  }
}

MapWatcherStats MapWatcher::stats() const {
  MapWatcherStats st;
  auto cur = Current();
  st.version = cur->version;
  st.source = cur->source;
  st.loads = loads_;
  st.load_errors = load_errors_;
  st.redis_errors = redis_errors_;
  st.redis_up = redis_up_;
  return st;
}

}  // namespace compd
