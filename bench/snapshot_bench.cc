// snapshot_bench: what one map change costs compd-milter, step by step, on a map already
// in Redis: the same steps MapWatcher takes on every change (MapStore::Load with metadata,
// Matcher::Build, then the rspamd map files), timed each (wall and CPU), plus the
// process' RSS; and, for comparison, MapStore::LoadEntries (the entries without metadata).
//
//   snapshot_bench --redis redis://127.0.0.1:6379/0 [--prefix compd:] [--map-dir DIR]
//                  [--repeat 3]
// bench/freshness.py runs it against the map it loads for each size.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "compd/map_store.h"
#include "compd/matcher.h"
#include "compd/redis.h"
#include "compd/rspamd_map.h"

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
                 "  times MapStore::Load + Matcher::Build + WriteMapFiles on the map in Redis\n");
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
    // What MapWatcher does on a change: Load (entries with their metadata), Build, swap,
    // then the map files.
    auto t = Clock::now();
    double c0 = CpuMs();
    compd::MapState state;
    if (!Check(store.Load(&state), "load")) return 2;
    double load_ms = Ms(t), load_cpu = CpuMs() - c0;
    auto t1 = Clock::now();
    double c1 = CpuMs();
    std::vector<compd::Entry> entries;
    entries.reserve(state.entries.size());
    for (compd::StoredEntry& e : state.entries) entries.push_back(std::move(e.entry));
    state = compd::MapState();
    std::shared_ptr<const compd::Matcher> next;
    if (!Check(compd::Matcher::Build(entries, &next), "build")) return 2;
    double build_ms = Ms(t1), build_cpu = CpuMs() - c1;
    double swap_ms = Ms(t);
    double files_ms = 0;
    if (!map_dir.empty()) {
      auto t2 = Clock::now();
      if (!Check(compd::WriteMapFiles(map_dir, entries), "write map files")) return 2;
      files_ms = Ms(t2);
    }
    double total_ms = Ms(t);
    current = std::move(next);
    // For comparison: the same entries without their metadata (HKEYS instead of HGETALL).
    auto t3 = Clock::now();
    double c3 = CpuMs();
    std::vector<compd::Entry> plain;
    uint64_t version = 0;
    if (!Check(store.LoadEntries(&plain, &version), "load entries")) return 2;
    double keys_ms = Ms(t3), keys_cpu = CpuMs() - c3;
    plain = {};
    std::printf(
        "{\"exact\": %zu, \"patterns\": %zu, \"load_ms\": %.1f, \"load_cpu_ms\": %.1f, "
        "\"build_ms\": %.1f, \"build_cpu_ms\": %.1f, \"swap_ms\": %.1f, \"files_ms\": %.1f, "
        "\"total_ms\": %.1f, \"load_entries_ms\": %.1f, \"load_entries_cpu_ms\": %.1f, "
        "\"rss_mb\": %.1f, \"rss_start_mb\": %.1f, \"hwm_mb\": %.1f}\n",
        current->exact_count(), current->pattern_count(), load_ms, load_cpu, build_ms, build_cpu,
        swap_ms, files_ms, total_ms, keys_ms, keys_cpu, Vm("VmRSS:"), rss0, Vm("VmHWM:"));
    std::fflush(stdout);
  }
  return 0;
}
