#include "compd/map/map_watcher.h"

#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "compd/base/keys.h"
#include "compd/base/thread_guard.h"
#include "compd/base/utc_time.h"
#include "compd/map/rspamd_map.h"

namespace compd {

namespace {

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

Status MapWatcherOptions::FromConfig(const Config& config, MapWatcherOptions* out) {
  MapWatcherOptions o;
  o.redis = out->redis;
  o.hostname = out->hostname;
  o.prefix = config.GetString("prefix");
  o.map_dir = config.GetString("map_dir");
  o.poll_interval = std::chrono::milliseconds(config.GetDurationMs("map_poll_interval"));
  o.redis_timeout = std::chrono::milliseconds(config.GetDurationMs("redis_timeout"));
  o.load_timeout = std::chrono::milliseconds(config.GetDurationMs("map_load_timeout"));
  o.matcher.canon.strip_subaddress = config.GetBool("canon_strip_subaddress");
  o.matcher.canon.gmail_dots = config.GetBool("canon_gmail_dots");
  *out = std::move(o);
  return Status::Ok();
}

MapWatcher::MapWatcher(MapWatcherOptions options, LogFn log)
    : options_(std::move(options)),
      log_(std::move(log)),
      snapshot_(EmptySnapshot(options_.matcher)),
      watch_({options_.redis, Keys(options_.prefix).channel(), options_.poll_interval,
              options_.redis_timeout, options_.retry_min, options_.retry_max},
             "map", log_, [this] { return "the current map (" + Describe(*Current()) + ")"; }) {}

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
  if (started_.exchange(true)) return Status::Internal("map watcher started twice");
  redis_ = std::make_unique<RedisClient>(options_.redis, options_.redis_timeout);
  store_ = std::make_unique<MapStore>(redis_.get(), options_.prefix);
  const std::string redis = "Redis " + options_.redis.ToString();
  if (!LoadFromRedis()) {
    if (!LoadFromFiles(redis + " is unreachable")) {
      Log(LogLevel::kError,
          "map: " + redis + " is unreachable and " +
              (options_.map_dir.empty() ? std::string("no map_dir is set")
                                        : "there are no map files in " + options_.map_dir) +
              ": serving an EMPTY map (nothing is blocked) until Redis answers");
    }
  } else if (Current()->source == "empty") {
    LoadFromFiles("the map in " + redis + " does not compile");
  } else if (Current()->version == 0 && Current()->exact + Current()->patterns == 0 &&
             LoadFromFiles(redis + " holds no map (version 0)")) {
    // A Redis restarted without persistence, or flushed: the files written from the map
    // it held are the better guess, until somebody writes the map again.
    if (Current()->exact + Current()->patterns > 0) NoteMapLost(*Current());
  }
  // The first files before Start returns, so that rspamd finds them at once.
  std::shared_ptr<const Snapshot> first;
  {
    std::lock_guard<std::mutex> lock(files_mu_);
    first = std::move(files_snapshot_);
    files_snapshot_.reset();
  }
  // Not when the files were served instead (Redis without a map): they would be
  // overwritten with the empty map they replaced.
  if (first != nullptr && first == Current()) WriteFiles(*first);
  thread_ = StartLoopThread(
      "map", log_, [this] { watch_.Run([this] { return CheckVersion(); }); },
      [this] { return watch_.stopping(); });
  if (!options_.map_dir.empty()) {
    files_thread_ = StartLoopThread(
        "map files", log_, [this] { FilesLoop(); }, FlagUnder(&files_mu_, &files_stop_));
  }
  return Status::Ok();
}

void MapWatcher::Stop() {
  watch_.Stop();
  if (thread_.joinable()) thread_.join();
  // After the watcher: the last version it applied still gets its files.
  {
    std::lock_guard<std::mutex> lock(files_mu_);
    files_stop_ = true;
  }
  files_cv_.notify_all();
  if (files_thread_.joinable()) files_thread_.join();
}

void MapWatcher::NoteBadVersion(uint64_t version, const std::string& id, const Status& s) {
  ++load_errors_;
  failed_version_ = version;
  failed_id_ = id;
  has_failed_version_ = true;
  Log(LogLevel::kError, "map: version " + std::to_string(version) + " NOT applied: " +
                            s.ToString() + "; still enforcing " + Describe(*Current()));
}

bool MapWatcher::KeepOverEmptyRedis(uint64_t version) {
  auto cur = Current();
  const bool has_map = cur->exact + cur->patterns > 0 &&
                       (cur->source == "files" || (cur->source == "redis" && cur->version > 0));
  if (version != 0 || !has_map) {
    no_map_warned_ = false;
    return false;
  }
  if (!no_map_warned_) NoteMapLost(*cur);
  return true;
}

void MapWatcher::NoteMapLost(const Snapshot& kept) {
  no_map_warned_ = true;
  const std::string files =
      options_.map_dir.empty() ? std::string("an export")
                               : options_.map_dir + "/" + kExactMapFile + " and " + kPatternMapFile;
  Log(LogLevel::kError, "map: Redis " + options_.redis.ToString() +
                            " holds no map (version 0: restarted without persistence, or "
                            "flushed?); keeping " +
                            Describe(kept) +
                            " until the map is written again: mapctl import --replace of " + files +
                            " --apply");
  // Tell mapctl too: until the map is restored, an add or remove would make a tiny map
  // that every milter would take in place of the real one.
  Status s = redis_->Command(
      {"SET", Keys(options_.prefix).lost(),
       "compd-milter" + (options_.hostname.empty() ? std::string() : " on " + options_.hostname) +
           " holds " + Describe(kept) + ", seen " +
           FormatUtcMillis(std::chrono::system_clock::now())});
  if (!s.ok())
    Log(LogLevel::kWarning, "map: cannot mark the map as lost in Redis: " + s.ToString());
}

bool MapWatcher::LoadFromRedis() {
  auto snap = std::make_shared<Snapshot>();
  Status built;
  std::vector<std::string> invalid;
  bool skipped = false;
  auto read = [&] {
    // Connecting gets redis_timeout, as everything else; only the read of the whole map,
    // which takes seconds at a million entries, gets load_timeout.
    redis_->set_timeout(options_.redis_timeout);
    Status c = redis_->Connect();
    if (!c.ok()) return c;
    redis_->set_timeout(std::max(options_.redis_timeout, options_.load_timeout));
    c = store_->ReadEntries([&](const MapEntriesView& map) {
      snap->version = map.version;
      snap->id = map.id;
      invalid = map.invalid;
      // A version that did not compile before is not compiled again, and a Redis that
      // lost the map does not replace the one we have.
      skipped = (has_failed_version_ && map.version == failed_version_ && map.id == failed_id_) ||
                KeepOverEmptyRedis(map.version);
      if (skipped) return Status::Ok();
      built = Matcher::Build(map.exact, map.patterns, options_.matcher, &snap->matcher);
      return Status::Ok();
    });
    redis_->set_timeout(options_.redis_timeout);
    return c;
  };
  const bool was_connected = redis_->connected();
  const auto t0 = std::chrono::steady_clock::now();
  Status s = read();
  // A connection from before an outage fails at once after Redis is back: try a fresh one
  // (see CheckVersion). Not after a timeout, which would only double the wait.
  if (!s.ok() && was_connected && std::chrono::steady_clock::now() - t0 < options_.redis_timeout) {
    redis_->Disconnect();
    s = read();
  }
  if (!s.ok()) {
    redis_->Disconnect();
    watch_.Failed(s);
    return false;
  }
  watch_.Succeeded();
  if (skipped) return true;
  if (!invalid.empty()) {
    Log(LogLevel::kWarning, "map: " + std::to_string(invalid.size()) +
                                " field(s) in Redis are not valid entries and are never "
                                "matched (written by hand?); the first: " +
                                invalid.front());
  }
  if (!built.ok() || snap->matcher == nullptr) {
    NoteBadVersion(snap->version, snap->id, built);
    return true;  // Redis is fine; the map is not
  }
  has_failed_version_ = false;
  snap->loaded = std::chrono::system_clock::now();
  snap->exact = snap->matcher->exact_count();
  snap->patterns = snap->matcher->pattern_count();
  snap->source = "redis";
  auto old = Current();
  Log(LogLevel::kInfo, "map: loaded " + Describe(*snap) + "; was " + Describe(*old));
  Install(snap);
  NotifyChange(std::move(old), snap, {}, true);
  ++full_loads_;
  QueueFiles(std::move(snap));
  // The reply and the previous snapshot were freed in the middle of the heap; give those
  // pages back, or the milter keeps its peak size (twice the map) for good.
  malloc_trim(0);
  return true;
}

bool MapWatcher::ApplyChanges(const std::vector<MapChange>& changes, uint64_t version,
                              const std::string& id) {
  // The net effect of the changes, applied at once: a burst costs one Apply, and a change
  // that did not compile (a pattern too big) stops blocking once a later one undoes it.
  std::unordered_map<std::string, const Entry*> net_added, net_removed;  // by kind + text
  for (const MapChange& c : changes) {
    for (const Entry& e : c.removed) {
      const std::string id = EntryKindName(e.kind) + (" " + e.text);
      net_added.erase(id);
      net_removed[id] = &e;
    }
    for (const Entry& e : c.added) {
      const std::string id = EntryKindName(e.kind) + (" " + e.text);
      net_removed.erase(id);
      net_added[id] = &e;
    }
  }
  std::vector<Entry> added, removed;
  for (const auto& [id, e] : net_added) added.push_back(*e);
  for (const auto& [id, e] : net_removed) removed.push_back(*e);
  std::shared_ptr<const Matcher> m;
  Status s = Current()->matcher->Apply(added, removed, &m);
  if (!s.ok()) {
    NoteBadVersion(version, id, s);
    return false;
  }
  has_failed_version_ = false;
  auto snap = std::make_shared<Snapshot>();
  snap->matcher = std::move(m);
  snap->version = version;
  snap->id = id;
  snap->loaded = std::chrono::system_clock::now();
  snap->exact = snap->matcher->exact_count();
  snap->patterns = snap->matcher->pattern_count();
  snap->source = "redis";
  Log(LogLevel::kInfo, "map: version " + std::to_string(version) +
                           " applied from the change log (" + std::to_string(changes.size()) +
                           " change(s): +" + std::to_string(added.size()) + " -" +
                           std::to_string(removed.size()) + "): " + Describe(*snap));
  const bool compact = snap->matcher->NeedsCompaction();
  auto before = Current();
  Install(snap);
  NotifyChange(std::move(before), snap, std::move(added), false);
  QueueFiles(snap);
  if (compact) {
    // After the change is enforced, not before: a compaction costs about what reading the
    // whole map costs (a second at a million entries), and changes nothing a lookup sees.
    const auto t0 = std::chrono::steady_clock::now();
    std::shared_ptr<const Matcher> compacted;
    Status s = snap->matcher->Compact(&compacted);
    if (s.ok()) {
      auto next = std::make_shared<Snapshot>(*snap);
      next->matcher = std::move(compacted);
      snap.reset();
      Install(std::move(next));
      malloc_trim(0);
      Log(LogLevel::kInfo, "map: compacted the changes into a new table in " +
                               std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::steady_clock::now() - t0)
                                                  .count()) +
                               " ms");
    } else {
      Log(LogLevel::kWarning, "map: cannot compact the map's changes: " + s.ToString());
    }
  }
  return true;
}

void MapWatcher::SetChangeListener(std::function<void(const MapChangeNote&)> listener) {
  listener_ = std::move(listener);
}

void MapWatcher::NotifyChange(std::shared_ptr<const Snapshot> before,
                              std::shared_ptr<const Snapshot> after, std::vector<Entry> added,
                              bool whole) {
  if (!listener_) return;
  MapChangeNote note;
  note.before = std::move(before);
  note.after = std::move(after);
  note.added = std::move(added);
  note.whole = whole;
  listener_(note);
}

void MapWatcher::QueueFiles(std::shared_ptr<const Snapshot> snap) {
  if (options_.map_dir.empty()) return;
  {
    std::lock_guard<std::mutex> lock(files_mu_);
    files_snapshot_ = std::move(snap);  // a newer version replaces one not written yet
  }
  files_cv_.notify_all();
}

void MapWatcher::WriteFiles(const Snapshot& snap) {
  if (snap.source != "redis") return;
  Status s =
      WriteMapFiles(options_.map_dir, snap.matcher->ExactTexts(), snap.matcher->PatternTexts());
  if (!s.ok()) {
    Log(LogLevel::kError,
        "map: cannot write the map files for rspamd and for starting without Redis: " +
            s.ToString());
  }
  malloc_trim(0);  // the file's text was as big as the map
}

void MapWatcher::FilesLoop() {
  // On a thread of its own: at a million entries the files take most of a second to
  // write, and the next change must not wait for them.
  auto next = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(files_mu_);
  for (;;) {
    files_cv_.wait(lock, [&] { return files_snapshot_ != nullptr || files_stop_; });
    if (files_snapshot_ == nullptr) break;  // stopping, nothing left to write
    // At most once per files_interval: a burst of changes is written once, at its end.
    files_cv_.wait_until(lock, next, [&] { return files_stop_; });
    std::shared_ptr<const Snapshot> snap = std::move(files_snapshot_);
    files_snapshot_.reset();
    lock.unlock();
    WriteFiles(*snap);
    snap.reset();
    next = std::chrono::steady_clock::now() + options_.files_interval;
    lock.lock();
  }
}

bool MapWatcher::LoadFromFiles(const std::string& why) {
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
  Log(LogLevel::kWarning, "map: " + why + "; serving " + Describe(*snap) + " in " +
                              options_.map_dir + " (written " + newest + ") until it answers");
  Install(snap);
  ++full_loads_;
  return true;
}

bool MapWatcher::CheckVersion() {
  auto cur = Current();
  const bool from_redis = cur->source == "redis";
  std::vector<MapChange> changes;
  uint64_t version = 0;
  std::string id;
  const bool was_connected = redis_->connected();
  // What changed since our version, or (when the snapshot is not from Redis) just the
  // version; one round trip either way.
  auto ask = [&] {
    return from_redis ? store_->ChangesSince(cur->version, cur->id, &changes, &version, &id)
                      : store_->Version(&version);
  };
  Status s = ask();
  // A connection from before an outage fails once after Redis is back: try a fresh one
  // at once rather than serve a stale map until the next poll.
  if (!s.ok() && !s.IsNotFound() && was_connected) s = ask();
  if (!s.ok() && !s.IsNotFound()) {
    redis_->Disconnect();
    watch_.Failed(s);
    return false;
  }
  watch_.Succeeded();
  if (from_redis && s.ok() && version == cur->version) return true;
  // (Without the log's answer the id is unknown: the number alone, rather than a whole
  // read on every poll.)
  if (has_failed_version_ && version == failed_version_ && (!from_redis || id == failed_id_)) {
    return true;
  }
  if (KeepOverEmptyRedis(version)) return true;
  if (from_redis && s.ok()) {
    ApplyChanges(changes, version, id);
    return true;
  }
  if (from_redis) Log(LogLevel::kInfo, "map: reading the whole map: " + s.message());
  return LoadFromRedis();
}

MapWatcherStats MapWatcher::stats() const {
  MapWatcherStats st;
  auto cur = Current();
  st.version = cur->version;
  st.source = cur->source;
  st.loads = loads_;
  st.full_loads = full_loads_;
  st.load_errors = load_errors_;
  st.redis_errors = watch_.errors();
  st.redis_up = watch_.up();
  return st;
}

}  // namespace compd
