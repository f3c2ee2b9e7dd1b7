// Bulk writes into a real Redis: MapStore::Add/Replace/Load of N entries, with the batch
// sent as one script call ("inline") or staged in a list first ("staged").
//
//   build/import_bench [--redis URL] [N]     (default: $COMPD_REDIS_URL or
//                                              redis://127.0.0.1:6379/0, N = 100000)
// Uses the prefix "compd-bench:" and deletes its keys afterwards. bench/import_bench.sh
// starts a throwaway redis-server and also times `mapctl import --apply` end to end.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "compd/map/map_store.h"
#include "compd/base/redis.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

std::vector<compd::StoredEntry> MakeEntries(size_t n, size_t offset) {
  std::vector<compd::StoredEntry> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    compd::StoredEntry e;
    e.entry.kind = compd::EntryKind::kExact;
    e.entry.text = "test" + std::to_string(i + offset) + "@bulk" +
                   std::to_string((i + offset) % 997) + ".example";
    e.meta = {1700000000, "bench", "", "import:bench.map:" + std::to_string(i + 1)};
    out.push_back(std::move(e));
  }
  return out;
}

void Clear(compd::RedisClient* client, const compd::Keys& k) {
  client->Command({"DEL", k.exact(), k.patterns(), k.version(), k.changed()});
}

bool Check(const compd::Status& s, const char* what) {
  if (s.ok()) return true;
  std::cerr << what << ": " << s.ToString() << "\n";
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url_text = "redis://127.0.0.1:6379/0";
  if (const char* env = std::getenv("COMPD_REDIS_URL")) url_text = env;
  size_t n = 100000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--redis" && i + 1 < argc) {
      url_text = argv[++i];
    } else {
      n = std::strtoull(a.c_str(), nullptr, 10);
    }
  }
  compd::RedisUrl url;
  if (!Check(compd::ParseRedisUrl(url_text, &url), "url")) return 2;
  if (!Check(compd::LoadRedisPassword("", &url.password), "password")) return 2;
  compd::RedisClient client(url, std::chrono::milliseconds(30000));
  compd::MapStore store(&client, "compd-bench:");
  const compd::Keys& k = store.keys();

  auto entries = MakeEntries(n, 0);
  auto shifted = MakeEntries(n, n / 2);  // half old, half new
  std::printf("entries: %zu exact, redis %s\n", n, url.ToString().c_str());

  for (const char* mode : {"inline", "staged"}) {
    store.set_max_script_entries(std::string(mode) == "inline" ? n : 10000);
    Clear(&client, k);
    std::vector<bool> added;
    compd::ChangeResult r;
    auto t = Clock::now();
    if (!Check(store.Add(entries, "bench", &added, &r), "add")) return 2;
    double add_ms = Ms(t);
    t = Clock::now();
    compd::ChangeResult r2;
    if (!Check(store.Add(entries, "bench", &added, &r2), "add again")) return 2;
    double again_ms = Ms(t);
    t = Clock::now();
    compd::ChangeResult r3;
    if (!Check(store.Replace(shifted, "bench", &r3), "replace")) return 2;
    double replace_ms = Ms(t);
    std::printf(
        "%-6s  add into empty map: %7.1f ms (%zu added)   add again: %7.1f ms (0 added: %s)   "
        "replace half: %7.1f ms (+%zu -%zu)\n",
        mode, add_ms, r.added, again_ms, r2.added == 0 ? "yes" : "NO", replace_ms, r3.added,
        r3.removed);
  }
  compd::MapState state;
  auto t = Clock::now();
  if (!Check(store.Load(&state), "load")) return 2;
  std::printf("load with metadata: %.1f ms (%zu entries)\n", Ms(t), state.entries.size());
  std::vector<compd::Entry> plain;
  uint64_t version = 0;
  t = Clock::now();
  if (!Check(store.LoadEntries(&plain, &version), "load entries")) return 2;
  std::printf("load entries only: %.1f ms (%zu entries)\n", Ms(t), plain.size());
  Clear(&client, k);
  return 0;
}
