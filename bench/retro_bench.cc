// retro_bench: what the retro-hunt's recipient memory costs a node. Fills a RecipientMemory
// with a simulated provider's week (default: 14,000 accounts x 30 messages a day x 7 days,
// the documented target) and reports its bytes (per message and per (message, recipient),
// from the tables' capacities, and the process' RSS growth), then times what a node does
// with it: a hunt for one exact entry and for one pattern (what an added entry costs),
// forgetting the oldest day, and with --journal DIR the files: writing, their size on disk,
// reloading them at start.
//
//   retro_bench [--accounts 14000] [--per-day 30] [--days 7] [--contacts 60]
//               [--unique] [--journal DIR] [--seed 1]
//
// The traffic model (documented in docs/detection.md, "Retro-hunt"): 1 recipient per
// message 75 %, 2 15 %, 3 7 %, 5 3 % (1.46 on average); each recipient from the account's
// own contacts (`--contacts`, 70 % private to it, 30 % from 50,000 addresses every customer
// shares, picked with a 1/rank preference) or, 5 % of the time, a new address; the
// account's 3 usual client IPs or, 10 % of the time, a random one; Exim-style 16-character
// queue ids (Postfix's are 10-15). --unique: every recipient is new (the worst case: no
// sharing at all).
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "compd/detect/recipient_journal.h"
#include "compd/detect/recipient_memory.h"
#include "compd/map/entry.h"
#include "compd/map/matcher.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

double RssMb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024;
  }
  return 0;
}

struct Args {
  int accounts = 14000, per_day = 30, days = 7, contacts = 60;
  bool unique = false;
  std::string journal;
  unsigned seed = 1;
};

bool Parse(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (k == "--unique") {
      a->unique = true;
      continue;
    }
    if ((v = next()) == nullptr) return false;
    if (k == "--accounts") {
      a->accounts = std::atoi(v);
    } else if (k == "--per-day") {
      a->per_day = std::atoi(v);
    } else if (k == "--days") {
      a->days = std::atoi(v);
    } else if (k == "--contacts") {
      a->contacts = std::atoi(v);
    } else if (k == "--journal") {
      a->journal = v;
    } else if (k == "--seed") {
      a->seed = static_cast<unsigned>(std::atoi(v));
    } else {
      return false;
    }
  }
  return a->accounts > 0 && a->per_day > 0 && a->days > 0 && a->contacts > 0;
}

const char* kFirst[] = {"anna", "bert",  "carla",   "dieter", "emma",  "frank", "greta", "hans",
                        "ines", "jonas", "kerstin", "lukas",  "maria", "nils",  "olga",  "paul"};
const char* kDomains[] = {"gmx.net",
                          "web.de",
                          "gmail.com",
                          "t-online.de",
                          "outlook.com",
                          "yahoo.com",
                          "supplier-gmbh.de",
                          "steuerberater-koeln.de",
                          "stadtwerke.example",
                          "bank.example"};

std::string Address(std::mt19937_64& rng, uint64_t n) {
  return std::string(kFirst[rng() % 16]) + "." + kFirst[rng() % 16] + std::to_string(n % 997) +
         "@" + kDomains[rng() % 10];
}

std::string QueueId(std::mt19937_64& rng) {
  static const char* kChars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string q(16, '-');
  for (int i = 0; i < 16; ++i) {
    if (i != 6 && i != 13) q[i] = kChars[rng() % 62];
  }
  return q;
}

std::string Ip(std::mt19937_64& rng) {
  return std::to_string(1 + rng() % 223) + "." + std::to_string(rng() % 256) + "." +
         std::to_string(rng() % 256) + "." + std::to_string(1 + rng() % 254);
}

std::shared_ptr<const compd::Matcher> One(const std::string& text) {
  compd::Entry e;
  compd::ParseEntry(text, &e);
  std::shared_ptr<const compd::Matcher> m;
  compd::Matcher::Build({e}, &m);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  // As compd-milter sets it (milter/main.cc): big tables from mmap, back to the system
  // when a growing one moves.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  Args a;
  if (!Parse(argc, argv, &a)) {
    std::fprintf(stderr,
                 "usage: retro_bench [--accounts N] [--per-day N] [--days N] [--contacts N] "
                 "[--unique] [--journal DIR] [--seed N]\n");
    return 2;
  }
  std::mt19937_64 rng(a.seed);
  // The world: shared addresses, each account's contacts and usual IPs.
  std::vector<std::string> shared(50000);
  for (size_t i = 0; i < shared.size(); ++i) shared[i] = Address(rng, i);
  std::vector<std::vector<std::string>> contacts(a.accounts);
  std::vector<std::vector<std::string>> ips(a.accounts);
  std::vector<std::string> names(a.accounts);
  uint64_t fresh = 0;
  for (int i = 0; i < a.accounts; ++i) {
    names[i] = std::string(kFirst[i % 16]) + std::to_string(i) + "@customer" +
               std::to_string(i / 3) + ".example";
    for (int c = 0; c < a.contacts; ++c) {
      contacts[i].push_back(rng() % 10 < 3 ? shared[rng() % shared.size()]
                                           : Address(rng, ++fresh) + "x" + std::to_string(i));
    }
    for (int k = 0; k < 3; ++k) ips[i].push_back(Ip(rng));
  }
  // 1/rank preference over the contacts.
  std::vector<double> weights(a.contacts);
  for (int c = 0; c < a.contacts; ++c) weights[c] = 1.0 / (c + 1);
  std::discrete_distribution<int> pick(weights.begin(), weights.end());

  const int64_t day_ms = int64_t{86400} * 1000;
  const int64_t t0 = int64_t{20000} * day_ms;
  const double rss0 = RssMb();
  compd::RecipientMemory mem;
  std::unique_ptr<compd::RecipientJournal> journal;
  if (!a.journal.empty()) {
    std::filesystem::remove_all(a.journal);
    journal = std::make_unique<compd::RecipientJournal>(a.journal);
    if (!journal->Open().ok()) return 1;
  }
  std::vector<compd::Message> batch;
  double add_ms = 0, write_ms = 0;
  size_t messages = 0;
  const std::string probe = "toewebvastsatw@gmx.com";
  for (int d = 0; d < a.days; ++d) {
    for (int i = 0; i < a.accounts; ++i) {
      for (int k = 0; k < a.per_day; ++k) {
        compd::Message m;
        m.time_ms = t0 + d * day_ms + static_cast<int64_t>(rng() % day_ms);
        m.account = names[i];
        m.client_ip = rng() % 10 == 0 ? Ip(rng) : ips[i][rng() % 3];
        m.queue_id = QueueId(rng);
        int r = static_cast<int>(rng() % 100);
        int n = r < 75 ? 1 : r < 90 ? 2 : r < 97 ? 3 : 5;
        for (int j = 0; j < n; ++j) {
          if (a.unique || rng() % 100 < 5) {
            ++fresh;
            m.recipients.push_back(Address(rng, fresh) + "n" + std::to_string(fresh));
          } else {
            m.recipients.push_back(contacts[i][pick(rng)]);
          }
        }
        if (d == 2 && k == 0 && i % 5000 == 0) m.recipients.push_back(probe);  // 3 accounts
        batch.push_back(std::move(m));
        if (batch.size() < 10000 && !(i + 1 == a.accounts && k + 1 == a.per_day)) continue;
        auto t = Clock::now();
        for (const compd::Message& m : batch) mem.Add(m);
        add_ms += Ms(t);
        if (journal) {
          t = Clock::now();
          if (!journal->Append(batch).ok()) return 1;
          write_ms += Ms(t);
        }
        messages += batch.size();
        batch.clear();
      }
    }
  }
  mem.Forget(t0);  // what the node does every 10 minutes: here only shrinks the old days
  compd::RecipientMemoryStats st = mem.stats();
  const double rss = RssMb() - rss0;
  std::printf("model: %d accounts x %d messages/day x %d days, %d contacts each%s, seed %u\n",
              a.accounts, a.per_day, a.days, a.contacts, a.unique ? ", every recipient new" : "",
              a.seed);
  std::printf("messages: %zu\n(message, recipient) pairs: %zu (%.2f per message)\n", st.messages,
              st.pairs, double(st.pairs) / st.messages);
  std::printf("distinct: %zu recipients, %zu accounts, %zu client IPs\n", st.recipients,
              st.accounts, st.client_ips);
  std::printf("memory (tables' capacity): %.1f MB = %.1f bytes/message = %.1f bytes/pair\n",
              st.bytes / 1e6, double(st.bytes) / st.messages, double(st.bytes) / st.pairs);
  std::printf("RSS growth while filling it: %.1f MB\n", rss);
  std::printf("adding: %.0f ms (%.2f us/message)\n", add_ms, add_ms * 1000 / messages);

  auto exact = One(probe);
  auto pattern = One("/^toewebvast[a-z]+@gmx\\.com$/");
  std::vector<double> te, tp;
  size_t found = 0;
  for (int r = 0; r < 5; ++r) {
    auto t = Clock::now();
    found = mem.Hunt(*exact, nullptr, 0, 10000).size();
    te.push_back(Ms(t));
    t = Clock::now();
    mem.Hunt(*pattern, nullptr, 0, 10000);
    tp.push_back(Ms(t));
  }
  std::sort(te.begin(), te.end());
  std::sort(tp.begin(), tp.end());
  std::printf("hunt one exact entry: %.0f ms (median of 5; %zu found)\n", te[2], found);
  std::printf("hunt one pattern: %.0f ms (median of 5)\n", tp[2]);
  // Forgetting the oldest day as a node does it: the copy without it is built while the
  // memory stays readable (RecipientMemory::Without), then swapped in under the lock;
  // the old one is freed after. Then in place (Forget), which would hold the lock
  // throughout: what a node did before, and what replay still does.
  auto t = Clock::now();
  size_t dropped = 0;
  auto next = mem.Without(t0 + day_ms, &dropped);
  const double build_ms = Ms(t);
  std::mutex mu;
  t = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu);
    volatile bool swapped = next != nullptr;  // the node's swap is of two pointers
    (void)swapped;
  }
  const double swap_ms = Ms(t);
  const double rss_both = RssMb() - rss0;
  t = Clock::now();
  next.reset();
  const double free_ms = Ms(t);
  std::printf(
      "forget the oldest day, on a copy: built in %.0f ms off the lock (%zu messages dropped; "
      "RSS %.1f MB with both), lock held %.3f ms, old one freed in %.0f ms\n",
      build_ms, dropped, rss_both, swap_ms, free_ms);
  t = Clock::now();
  dropped = mem.Forget(t0 + day_ms);
  std::printf("forget the oldest day in place: %.0f ms (%zu messages dropped, tables rebuilt)\n",
              Ms(t), dropped);
  if (journal) {
    uint64_t bytes = 0;
    for (const auto& f : std::filesystem::directory_iterator(a.journal)) bytes += f.file_size();
    std::printf("files: %.1f MB on disk (%.1f bytes/message), written in %.0f ms\n", bytes / 1e6,
                double(bytes) / messages, write_ms);
    compd::RecipientMemory again;
    size_t bad = 0, n = 0;
    t = Clock::now();
    compd::RecipientJournal reader(a.journal);
    reader.Load(
        0,
        [&](const compd::Message& m) {
          again.Add(m);
          ++n;
        },
        &bad);
    std::printf("reload at start: %.0f ms for %zu messages (%zu bad lines)\n", Ms(t), n, bad);
  }
  return 0;
}
