// snapshot_bench: what a map change costs compd-milter, step by step, on a map already in
// Redis, taking the steps MapWatcher takes (wall and CPU time each, plus the process' RSS):
//   - a whole read: MapStore::ReadEntries (HKEYS, read in place) and Matcher::Build, at
//     start and when the change log cannot tell (an import);
//   - a small change from the log: Matcher::Apply of one exact entry, and of one pattern
//     (which recompiles the pattern sets), on the snapshot just built;
//   - one change on the largest overlay (just before MapWatcher compacts), and the
//     compaction (Matcher::Compact), which runs after the change is enforced;
//   - the rspamd map files written from the snapshot;
//   - for comparison, MapStore::Load (HGETALL with metadata, copied), what the watcher
//     used to read on every change.
//
//   snapshot_bench --redis redis://127.0.0.1:6379/0 [--prefix compd:] [--map-dir DIR]
//                  [--repeat 3]
// bench/freshness.py runs it against the map it loads for each size.
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "compd/map/map_store.h"
#include "compd/map/matcher.h"
#include "compd/base/redis.h"
#include "compd/map/rspamd_map.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// CPU time of this process (user + system) in ms: on a shared machine the wall time
// also counts waiting for a core.
double CpuMs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ms = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

// VmRSS or VmHWM of this process in MB.
double Vm(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field, 0) == 0)
      return std::strtod(line.c_str() + strlen(field) + 1, nullptr) / 1024;
  }
  return 0;
}

bool Check(const compd::Status& s, const char* what) {
  if (s.ok()) return true;
  std::fprintf(stderr, "snapshot_bench: %s: %s\n", what, s.ToString().c_str());
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url_text, prefix = compd::kDefaultPrefix, map_dir;
  int repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--redis") url_text = argv[i + 1];
    if (a == "--prefix") prefix = argv[i + 1];
    if (a == "--map-dir") map_dir = argv[i + 1];
    if (a == "--repeat") repeat = std::atoi(argv[i + 1]);
  }
  if (url_text.empty()) {
    std::fprintf(stderr,
                 "usage: snapshot_bench --redis URL [--prefix P] [--map-dir DIR] [--repeat N]\n"
                 "  times what compd-milter does on a map change, on the map in Redis\n");
    return 2;
  }
  compd::RedisUrl url;
  if (!Check(compd::ParseRedisUrl(url_text, &url), "url")) return 2;
  if (!Check(compd::LoadRedisPassword("", &url.password), "password")) return 2;
  compd::RedisClient client(url, std::chrono::milliseconds(60000));
  compd::MapStore store(&client, prefix);
  double rss0 = Vm("VmRSS:");
  // Keep the previous snapshot alive while building the next, as the milter does.
  std::shared_ptr<const compd::Matcher> current;
  for (int r = 0; r < repeat; ++r) {
    auto t = Clock::now();
    double c0 = CpuMs();
    double read_ms = 0, read_cpu = 0;
    std::shared_ptr<const compd::Matcher> next;
    compd::Status built;
    compd::Status s = store.ReadEntries([&](const compd::MapEntriesView& map) {
      read_ms = Ms(t);
      read_cpu = CpuMs() - c0;
      built = compd::Matcher::Build(map.exact, map.patterns, compd::Matcher::Options(), &next);
      return compd::Status::Ok();
    });
    if (!Check(s, "read") || !Check(built, "build")) return 2;
    double full_ms = Ms(t), full_cpu = CpuMs() - c0;
    double build_ms = full_ms - read_ms, build_cpu = full_cpu - read_cpu;
    current = std::move(next);
    malloc_trim(0);  // as MapWatcher does after a whole read
    double rss_loaded = Vm("VmRSS:");

    double files_ms = 0;
    if (!map_dir.empty()) {
      auto t2 = Clock::now();
      if (!Check(compd::WriteMapFiles(map_dir, current->ExactTexts(), current->PatternTexts()),
                 "write map files")) {
        return 2;
      }
      files_ms = Ms(t2);
      malloc_trim(0);
    }

    // One `mapctl add` of an address, then of a pattern, applied to the snapshot.
    compd::Entry exact, pattern;
    if (!Check(compd::ParseEntry("bench" + std::to_string(r) + "@apply.example", &exact),
               "entry") ||
        !Check(compd::ParseEntry("/^bench" + std::to_string(r) + "[0-9]+@apply/", &pattern),
               "pattern")) {
      return 2;
    }
    auto t3 = Clock::now();
    double c3 = CpuMs();
    if (!Check(current->Apply({exact}, {}, &next), "apply")) return 2;
    double apply_ms = Ms(t3), apply_cpu = CpuMs() - c3;
    auto t4 = Clock::now();
    if (!Check(next->Apply({pattern}, {}, &next), "apply pattern")) return 2;
    double apply_pattern_ms = Ms(t4);
    // An overlay as large as it gets (NeedsCompaction: 1/64 of the table), then what one
    // more change costs on it, and the compaction MapWatcher then runs.
    std::vector<compd::Entry> many(std::max<size_t>(4096, current->exact_count() / 64) + 1);
    for (size_t i = 0; i < many.size(); ++i) {
      many[i].text = "c" + std::to_string(i) + "." + std::to_string(r) + "@compact.example";
    }
    if (!Check(next->Apply(many, {}, &next), "apply many")) return 2;
    compd::Entry one;
    one.text = "one" + std::to_string(r) + "@compact.example";
    auto t7 = Clock::now();
    if (!Check(next->Apply({one}, {}, &next), "apply on a full overlay")) return 2;
    double apply_full_overlay_ms = Ms(t7);
    if (!next->NeedsCompaction()) {
      std::fprintf(stderr, "snapshot_bench: the overlay should need compaction by now\n");
      return 2;
    }
    auto t5 = Clock::now();
    double c5 = CpuMs();
    if (!Check(next->Compact(&next), "compact")) return 2;
    double compact_ms = Ms(t5), compact_cpu = CpuMs() - c5;
    next.reset();
    many = {};
    malloc_trim(0);

    // For comparison: the whole map with its metadata, as copied replies.
    auto t6 = Clock::now();
    double c6 = CpuMs();
    compd::MapState state;
    if (!Check(store.Load(&state), "load")) return 2;
    double meta_ms = Ms(t6), meta_cpu = CpuMs() - c6;
    state = compd::MapState();
    malloc_trim(0);
    std::printf(
        "{\"exact\": %zu, \"patterns\": %zu, \"read_ms\": %.1f, \"read_cpu_ms\": %.1f, "
        "\"build_ms\": %.1f, \"build_cpu_ms\": %.1f, \"full_ms\": %.1f, \"full_cpu_ms\": %.1f, "
        "\"files_ms\": %.1f, \"apply_ms\": %.2f, \"apply_cpu_ms\": %.2f, "
        "\"apply_pattern_ms\": %.1f, \"apply_full_overlay_ms\": %.1f, \"compact_ms\": %.1f, "
        "\"compact_cpu_ms\": %.1f, "
        "\"load_meta_ms\": %.1f, \"load_meta_cpu_ms\": %.1f, \"rss_loaded_mb\": %.1f, "
        "\"rss_mb\": %.1f, \"rss_start_mb\": %.1f, \"hwm_mb\": %.1f}\n",
        current->exact_count(), current->pattern_count(), read_ms, read_cpu, build_ms, build_cpu,
        full_ms, full_cpu, files_ms, apply_ms, apply_cpu, apply_pattern_ms, apply_full_overlay_ms,
        compact_ms, compact_cpu, meta_ms, meta_cpu, rss_loaded, Vm("VmRSS:"), rss0, Vm("VmHWM:"));
    std::fflush(stdout);
  }
  return 0;
}
