// matcher_bench: build time, lookup latency and memory of compd::Matcher at 1k/100k/1M
// exact entries and 100/1k/10k patterns, against a naive loop over individual RE2 objects.
//
// Plain main, no framework: every lookup is timed on its own with steady_clock so the
// median and p99 are of single lookups (the clock's own cost is printed so it can be
// subtracted). Prints Markdown tables for docs/performance.md.
//
//   cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release
//   ninja -C build/release matcher_bench && build/release/matcher_bench
//
// Optional argument: "quick" runs only the smallest sizes (a smoke test).

#include <re2/re2.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "compd/map/matcher.h"
#include "compd/map/pattern.h"

// Counts heap allocations (RE2's included: it allocates with new) to show that a lookup
// that misses allocates nothing.
std::atomic<long> g_allocations{0};

void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace {

using Clock = std::chrono::steady_clock;
using compd::Entry;
using compd::EntryKind;
using compd::Matcher;
using compd::RawExactEntry;
using compd::RawPatternEntry;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

const char* const kFirst[] = {"john",  "maria", "jose",    "ana",   "carlos", "lucia",  "pedro",
                              "sofia", "juan",  "valeria", "diego", "camila", "martin", "paula",
                              "james", "emma",  "oliver",  "mia",   "lucas",  "laura",  "mateo",
                              "sara",  "pablo", "elena",   "hugo",  "alba",   "daniel", "nora"};
const char* const kLast[] = {"garcia",  "rodriguez", "gonzalez", "fernandez", "lopez",   "martinez",
                             "sanchez", "perez",     "gomez",    "silva",     "pereira", "smith",
                             "johnson", "brown",     "suarez",   "alvarez",   "romero",  "torres",
                             "diaz",    "acosta",    "benitez",  "medina",    "castro",  "vazquez"};
const char* const kDomains[] = {
    "gmail.com",       "hotmail.com",    "yahoo.com",         "outlook.com", "icloud.com",
    "adinet.com.uy",   "netgate.com.uy", "montevideo.com.uy", "vera.com.uy", "protonmail.com",
    "gmx.de",          "mail.ru",        "yandex.ru",         "live.com",    "yahoo.com.ar",
    "fibertel.com.ar", "uol.com.br",     "terra.com.br"};
const char* const kWords[] = {"acme",    "globex",   "initech", "umbrella", "stark",    "wayne",
                              "tyrell",  "cyberd",   "hooli",   "vandelay", "wonka",    "soylent",
                              "oscorp",  "nakatomi", "dunder",  "pied",     "bluth",    "gekko",
                              "monarch", "massive",  "virtu",   "paper",    "sterling", "prestige"};
const char* const kTlds[] = {"com", "net", "org", "com.uy", "uy", "com.ar", "info", "biz"};

template <size_t N>
const char* Pick(std::mt19937_64& rng, const char* const (&list)[N]) {
  return list[rng() % N];
}

std::string Alnum(std::mt19937_64& rng, int min_len, int max_len) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  const int len = min_len + static_cast<int>(rng() % (max_len - min_len + 1));
  std::string s;
  for (int i = 0; i < len; ++i) s += kChars[rng() % 36];
  return s;
}

// Addresses of the kind that pass through a submission server: people at freemail
// providers and company domains, some throwaway-looking local parts.
std::string RealisticAddress(std::mt19937_64& rng) {
  std::string local;
  switch (rng() % 6) {
    case 0:
      local = std::string(Pick(rng, kFirst)) + "." + Pick(rng, kLast);
      break;
    case 1:
      local = std::string(Pick(rng, kFirst)) + Pick(rng, kLast) + std::to_string(rng() % 100);
      break;
    case 2:
      local =
          std::string(1, Pick(rng, kFirst)[0]) + Pick(rng, kLast) + std::to_string(rng() % 1000);
      break;
    case 3:
      local = Alnum(rng, 6, 12);
      break;
    case 4:
      local = std::string(Pick(rng, kFirst)) + "_" + Pick(rng, kLast) + std::to_string(rng() % 10);
      break;
    default:
      local =
          std::string(Pick(rng, kLast)) + "." + Pick(rng, kFirst) + std::to_string(rng() % 10000);
      break;
  }
  std::string domain;
  if (rng() % 3 == 0) {
    domain = std::string(Pick(rng, kWords)) + std::to_string(rng() % 1000) + "." + Pick(rng, kTlds);
  } else {
    domain = Pick(rng, kDomains);
  }
  return local + "@" + domain;
}

// Test-recipient patterns as operators write them: mostly anchored both ends and
// case-insensitive (`/^[a-z0-9]{8,12}@mail0[0-9]\.netgate\.com\.uy$/i` and variants),
// a good share unanchored or anchored at one end only.
Entry RealisticPattern(std::mt19937_64& rng, int k) {
  const std::string w = std::string(Pick(rng, kWords)) + std::to_string(k);
  const std::string w2 = Pick(rng, kWords);
  std::string tld = Pick(rng, kTlds);
  std::string etld;
  for (char c : tld) etld += c == '.' ? std::string("\\.") : std::string(1, c);
  const int lo = 4 + static_cast<int>(rng() % 6);
  const std::string rep = "{" + std::to_string(lo) + "," + std::to_string(lo + 2 + rng() % 6) + "}";
  std::string re;
  switch (rng() % 10) {
    case 0:
      re = "^[a-z0-9]" + rep + "@mail0[0-9]\\." + w + "\\.com\\.uy$";
      break;
    case 1:
      re = "^[a-z0-9]" + rep + "@" + w + "\\." + etld + "$";
      break;
    case 2:
      re = "^[a-z]{3,8}\\.[a-z]{3,10}[0-9]{2,4}@" + w + "\\." + etld + "$";
      break;
    case 3:
      re = "^(info|admin|support|contact)[0-9]*@" + w + "-" + w2 + "\\." + etld + "$";
      break;
    case 4:
      re = "^" + w + "[0-9]{2,6}@(gmail|hotmail|outlook)\\.com$";
      break;
    case 5:
      re = "^[a-z0-9._-]+@" + w + "\\.mail\\." + etld + "$";
      break;
    // Unanchored or half-anchored.
    case 6:
      re = "@" + w + "\\.(ru|cn|top|xyz)$";
      break;
    case 7:
      re = "serv[a-z.]*" + w + "@";
      break;
    case 8:
      re = w + "[0-9]{2,4}@";
      break;
    default:
      re = "\\." + w + "[0-9]*@" + w2 + "\\.";
      break;
  }
  const uint64_t f = rng() % 20;
  return RawPatternEntry(re, f < 2 ? "" : f == 2 ? "iu" : "i");
}

// n distinct addresses.
std::vector<Entry> MakeExact(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Entry> out;
  out.reserve(n);
  std::unordered_set<std::string> seen;
  while (out.size() < n) {
    std::string a = RealisticAddress(rng);
    if (seen.insert(a).second) out.push_back(RawExactEntry(std::move(a)));
  }
  return out;
}

std::vector<Entry> MakePatterns(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Entry> out;
  for (size_t i = 0; i < n; ++i) out.push_back(RealisticPattern(rng, static_cast<int>(i)));
  return out;
}

struct Stats {
  size_t count = 0;
  double median = 0, p99 = 0, mean = 0;
};

Stats Summarise(std::vector<double>& ns) {
  Stats s;
  s.count = ns.size();
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  s.median = ns[ns.size() / 2];
  s.p99 = ns[std::min(ns.size() - 1, ns.size() * 99 / 100)];
  double sum = 0;
  for (double v : ns) sum += v;
  s.mean = sum / ns.size();
  return s;
}

// Lookups to time: realistic addresses (mostly misses), upper-cased copies of some exact
// entries and addresses built to fit some patterns (hits). Hits and misses are told apart
// by the answer, not by how the address was made.
std::vector<std::string> MakeQueries(const std::vector<Entry>& exact, size_t n_patterns, size_t n,
                                     uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> q;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t kind = rng() % 10;
    if (kind == 0 && !exact.empty()) {
      std::string a = exact[rng() % exact.size()].text;
      a[0] = static_cast<char>(toupper(a[0]));
      q.push_back(a);
    } else if (kind == 1 && n_patterns > 0) {
      // Fits case 0 of RealisticPattern when that k drew it; many of these still miss.
      const int k = static_cast<int>(rng() % n_patterns);
      std::mt19937_64 r2(rng());
      q.push_back(Alnum(r2, 9, 11) + "@mail07." + Pick(r2, kWords) + std::to_string(k) + ".com.uy");
    } else {
      q.push_back(RealisticAddress(rng));
    }
  }
  return q;
}

double ClockOverheadNs() {
  std::vector<double> ns;
  for (int i = 0; i < 100000; ++i) {
    const auto t0 = Clock::now();
    const auto t1 = Clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  return Summarise(ns).median;
}

struct LookupResult {
  Stats hit, miss, cold;
  long allocations = 0;  // heap allocations during the misses of the last pass
};

LookupResult TimeLookups(const Matcher& m, const std::vector<std::string>& queries) {
  LookupResult r;
  std::vector<double> cold, hit, miss;
  size_t sink = 0;
  // First pass: includes building the sets' DFA states on demand.
  // Each address is copied to one reused buffer before it is timed: in the milter the
  // address was just parsed and sits in cache; a query spread over a big vector would add
  // a cache miss the real path does not have.
  std::string address;
  for (const auto& q : queries) {
    address = q;
    const auto t0 = Clock::now();
    auto res = m.Lookup(address);
    const auto t1 = Clock::now();
    sink += res.has_value();
    cold.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  for (int pass = 0; pass < 2; ++pass) {
    hit.clear();
    miss.clear();
    r.allocations = 0;
    for (const auto& q : queries) {
      address = q;
      const long allocations = g_allocations.load(std::memory_order_relaxed);
      const auto t0 = Clock::now();
      auto res = m.Lookup(address);
      const auto t1 = Clock::now();
      (res ? hit : miss).push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
      if (!res) r.allocations += g_allocations.load(std::memory_order_relaxed) - allocations;
    }
  }
  if (sink == 0xffffffff) std::printf("!");
  r.cold = Summarise(cold);
  r.hit = Summarise(hit);
  r.miss = Summarise(miss);
  return r;
}

void MatcherRow(const char* label, size_t n_exact, size_t n_patterns,
                const Matcher::Options& options, size_t n_queries) {
  std::vector<Entry> entries = MakeExact(n_exact, 1);
  std::vector<Entry> patterns = MakePatterns(n_patterns, 2);
  const std::vector<std::string> queries = MakeQueries(entries, n_patterns, n_queries, 3);
  entries.insert(entries.end(), patterns.begin(), patterns.end());
  patterns.clear();

  const long rss0 = RssKb();
  std::shared_ptr<const Matcher> m;
  const auto t0 = Clock::now();
  const compd::Status s = Matcher::Build(entries, options, &m);
  const double build_ms = Ms(Clock::now() - t0);
  if (!s.ok()) {
    std::printf("| %s | build failed: %s |\n", label, s.ToString().c_str());
    return;
  }
  const long rss1 = RssKb();
  const LookupResult r = TimeLookups(*m, queries);
  const long rss2 = RssKb();
  std::printf(
      "| %s | %zu | %zu | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %zu/%zu | %.2f | %.1f | %.1f "
      "| %.1f |\n",
      label, m->exact_count(), m->pattern_count(), build_ms, r.miss.median, r.miss.p99,
      r.hit.median, r.hit.p99, r.cold.mean, r.hit.count, r.hit.count + r.miss.count,
      r.miss.count ? static_cast<double>(r.allocations) / r.miss.count : 0.0,
      (rss1 - rss0) / 1024.0, rss1 / 1024.0, rss2 / 1024.0);
  std::fflush(stdout);
}

// The baseline: one RE2 per pattern, tried in sorted order until one matches. Work is
// capped by a time budget so the 10k case finishes in seconds.
void NaiveRow(size_t n_patterns, size_t max_queries, double budget_ms) {
  std::vector<Entry> patterns = MakePatterns(n_patterns, 2);
  std::sort(patterns.begin(), patterns.end());
  const std::vector<std::string> queries = MakeQueries({}, n_patterns, max_queries, 3);
  const long rss0 = RssKb();
  const auto t0 = Clock::now();
  std::vector<std::unique_ptr<RE2>> res;
  for (const Entry& e : patterns) {
    const compd::CompiledPatternSpec spec = compd::PatternSpec(e);
    RE2::Options o;
    o.set_encoding(spec.utf8 ? RE2::Options::EncodingUTF8 : RE2::Options::EncodingLatin1);
    o.set_log_errors(false);
    res.push_back(std::make_unique<RE2>(spec.pattern, o));
  }
  const double build_ms = Ms(Clock::now() - t0);
  const long rss1 = RssKb();
  std::vector<double> hit, miss;
  const auto start = Clock::now();
  for (int pass = 0; pass < 2; ++pass) {  // the first pass warms the DFAs, as above
    hit.clear();
    miss.clear();
    for (const auto& q : queries) {
      if (Ms(Clock::now() - start) > budget_ms * (pass + 1)) break;
      const auto a = Clock::now();
      bool found = false;
      for (const auto& re : res) {
        if (RE2::PartialMatch(q, *re)) {
          found = true;
          break;
        }
      }
      const auto b = Clock::now();
      (found ? hit : miss).push_back(std::chrono::duration<double, std::nano>(b - a).count());
    }
  }
  const Stats h = Summarise(hit), m = Summarise(miss);
  std::printf(
      "| naive loop, %zu RE2 | 0 | %zu | %.0f | %.0f | %.0f | %.0f | %.0f | - | %zu/%zu | %.1f | "
      "%.1f | - |\n",
      n_patterns, n_patterns, build_ms, m.median, m.p99, h.median, h.p99, h.count,
      h.count + m.count, (rss1 - rss0) / 1024.0, rss1 / 1024.0);
  std::fflush(stdout);
}

// Throughput with several threads sharing one snapshot (the milter's case).
void ThreadsRow(size_t n_exact, size_t n_patterns, int threads, size_t n_queries) {
  std::vector<Entry> entries = MakeExact(n_exact, 1);
  std::vector<Entry> patterns = MakePatterns(n_patterns, 2);
  const std::vector<std::string> queries = MakeQueries(entries, n_patterns, n_queries, 3);
  entries.insert(entries.end(), patterns.begin(), patterns.end());
  std::shared_ptr<const Matcher> m;
  if (!Matcher::Build(entries, &m).ok()) return;
  for (const auto& q : queries) m->Lookup(q);  // warm
  rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  const auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      for (int pass = 0; pass < 3; ++pass) {
        for (const auto& q : queries) m->Lookup(q);
      }
    });
  }
  for (auto& t : ts) t.join();
  const double ms = Ms(Clock::now() - t0);
  getrusage(RUSAGE_SELF, &ru1);
  auto cpu_us = [](const rusage& r) {
    return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
  };
  const double total = 3.0 * threads * queries.size();
  std::printf("| %d | %zu + %zu | %.2f M lookups/s | %.0f ns | %.0f ns | %.2f |\n", threads,
              n_exact, n_patterns, total / ms / 1000.0, ms * 1e6 / total,
              (cpu_us(ru1) - cpu_us(ru0)) * 1e3 / total, (cpu_us(ru1) - cpu_us(ru0)) / 1e3 / ms);
  std::fflush(stdout);
}

// Runs `fn` in a child process so every row starts from a fresh heap and its RSS figures
// are its own.
template <typename Fn>
void Isolated(Fn fn) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    fn();
    std::fflush(stdout);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "quick") == 0;
  if (argc > 2 && std::strcmp(argv[1], "only") == 0) {
    // One case, e.g. for `perf record`: only exact|patterns|both
    const std::string what = argv[2];
    MatcherRow(what.c_str(), what == "patterns" ? 0 : 1000000, what == "exact" ? 0 : 10000,
               Matcher::Options(), 1000000);
    return 0;
  }
  const size_t kQueries = quick ? 20000 : 200000;
  std::printf("steady_clock::now() pair, median: %.0f ns (included in every figure below)\n\n",
              ClockOverheadNs());

  std::printf(
      "| case | exact | patterns | build ms | miss median ns | miss p99 ns | hit median ns | "
      "hit p99 ns | first-pass mean ns | hits/lookups | allocations per miss | matcher RSS MB | "
      "RSS after build MB | RSS after lookups MB |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  Matcher::Options def;
  const size_t exact_sizes[] = {1000, 100000, 1000000};
  const size_t pattern_sizes[] = {100, 1000, 10000};
  const int tiers = quick ? 1 : 3;
  for (int i = 0; i < tiers; ++i) {
    Isolated([&] { MatcherRow("exact only", exact_sizes[i], 0, def, kQueries); });
  }
  for (int i = 0; i < tiers; ++i) {
    Isolated([&] { MatcherRow("patterns only", 0, pattern_sizes[i], def, kQueries); });
  }
  for (int i = 0; i < tiers; ++i) {
    Isolated(
        [&] { MatcherRow("exact + patterns", exact_sizes[i], pattern_sizes[i], def, kQueries); });
  }
  Matcher::Options canon;
  canon.canon.strip_subaddress = true;
  canon.canon.gmail_dots = true;
  Isolated([&] {
    MatcherRow("exact + patterns, canon options on", exact_sizes[tiers - 1],
               pattern_sizes[tiers - 1], canon, kQueries);
  });
  for (int i = 0; i < tiers; ++i) {
    Isolated([&] { NaiveRow(pattern_sizes[i], kQueries, quick ? 500 : 8000); });
  }

  std::printf(
      "\n| threads | entries | throughput | wall time per lookup | CPU time per lookup | cores "
      "busy |\n|---|---|---|---|---|---|\n");
  for (int threads : {1, 2}) {
    Isolated([&] {
      ThreadsRow(exact_sizes[tiers - 1], pattern_sizes[tiers - 1], threads, kQueries / 2);
    });
  }
  return 0;
}
