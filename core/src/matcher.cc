#include "compd/matcher.h"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace compd {
namespace {

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint32_t kNoPattern = std::numeric_limits<uint32_t>::max();

// ASCII lower-case of eight bytes at once; bytes >= 0x80 are left alone, as
// CanonicalAddress leaves them. Lets lookups hash and compare the canonical form of an
// address without writing it anywhere.
inline uint64_t AsciiLower8(uint64_t x) {
  const uint64_t heptets = x & (0x7f * kOnes);
  const uint64_t ge_a = heptets + ((0x80 - 'A') * kOnes);  // bit 7 set where >= 'A'
  const uint64_t gt_z = heptets + ((0x7f - 'Z') * kOnes);  // bit 7 set where > 'Z'
  const uint64_t upper = ge_a & ~gt_z & ~x & (0x80 * kOnes);
  return x | (upper >> 2);
}

inline char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

inline uint64_t Mum(uint64_t a, uint64_t b) {
  const __uint128_t r = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// A fast hash of the ASCII-lower-cased bytes of `s` (wyhash-style multiply-fold). Keys are
// chosen by operators, not by senders, so a fixed seed is fine: a sender controls only
// the probe start of a lookup, never how the table is filled.
uint64_t HashLower(std::string_view s) {
  constexpr uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL,
                     k2 = 0x8ebc6af09c88c6e3ULL, k3 = 0x589965cc75374cc3ULL;
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = Mum(n ^ k0, k1);
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    h = Mum(h ^ AsciiLower8(x) ^ k2, k1);
  }
  if (n > 0) {
    uint64_t x = 0;
    std::memcpy(&x, p, n);
    h = Mum(h ^ AsciiLower8(x) ^ k3, k1);
  }
  return Mum(h ^ k0, k3);
}

// The exact entries: an open-addressing (linear probing) set of canonical addresses. Keys
// sit back to back in one arena; each slot holds 32 bits of the hash (to reject almost
// every non-matching slot without touching the arena) and the key's index + 1 (0 = empty).
// At a load factor of at most 1/2 this costs about 45 bytes per entry at 1M entries,
// against well over 100 for std::unordered_set<std::string>, and a miss usually touches
// one cache line.
class ExactTable {
 public:
  void Reserve(size_t keys, size_t bytes) {
    size_t capacity = 16;
    while (capacity < 2 * keys) capacity *= 2;
    slots_.assign(capacity, 0);
    mask_ = capacity - 1;
    offsets_.reserve(keys + 1);
    arena_.reserve(bytes);
  }

  // Adds `key` (canonical, so already lower-case). Returns its index and whether it is
  // new. The caller checks HasRoomFor first.
  std::pair<uint32_t, bool> Insert(std::string_view key) {
    const uint64_t h = HashLower(key);
    const uint64_t tag = h >> 32;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t slot = slots_[i];
      if (slot == 0) {
        const uint32_t index = static_cast<uint32_t>(offsets_.size() - 1);
        arena_.append(key);
        offsets_.push_back(static_cast<uint32_t>(arena_.size()));
        slots_[i] = (tag << 32) | (uint64_t{index} + 1);
        return {index, true};
      }
      if ((slot >> 32) == tag && Equal(key, static_cast<uint32_t>(slot) - 1)) {
        return {static_cast<uint32_t>(slot) - 1, false};
      }
    }
  }

  // True when one more key of `len` bytes still fits the 32-bit offsets.
  bool HasRoomFor(size_t len) const {
    return arena_.size() + len <= std::numeric_limits<uint32_t>::max() &&
           offsets_.size() < std::numeric_limits<uint32_t>::max() - 1;
  }

  // Starts loading the slot a lookup with hash `h` will read first, so that the cache miss
  // overlaps other work (the pattern sets) instead of adding to it.
  void Prefetch(uint64_t h) const { __builtin_prefetch(&slots_[h & mask_]); }

  // Index of the key equal to `address` compared ASCII case-insensitively, or -1.
  // `h` is HashLower(address).
  int64_t Find(std::string_view address, uint64_t h) const {
    const uint64_t tag = h >> 32;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t slot = slots_[i];
      if (slot == 0) return -1;
      if ((slot >> 32) == tag && Equal(address, static_cast<uint32_t>(slot) - 1)) {
        return static_cast<uint32_t>(slot) - 1;
      }
    }
  }

  std::string_view Key(uint32_t index) const {
    return std::string_view(arena_).substr(offsets_[index], offsets_[index + 1] - offsets_[index]);
  }
  size_t size() const { return offsets_.size() - 1; }

 private:
  bool Equal(std::string_view address, uint32_t index) const {
    const std::string_view key = Key(index);
    if (key.size() != address.size()) return false;
    for (size_t i = 0; i < key.size(); ++i) {
      if (AsciiLower(address[i]) != key[i]) return false;
    }
    return true;
  }

  std::string arena_;
  std::vector<uint32_t> offsets_{0};  // key i is arena_[offsets_[i], offsets_[i + 1])
  std::vector<uint64_t> slots_;
  size_t mask_ = 0;
};

// True when every match of `entry` must start at the beginning of the text: the regex
// opens with a `^` that no quantifier makes optional, the `m` flag is off, and no top-level
// `|` offers an alternative without it. Errs towards false (a pattern it cannot read, e.g.
// one using \Q...\E or a nested class, simply stays in the unanchored set).
bool StartAnchored(const Entry& entry) {
  const std::string& r = entry.regex;
  if (entry.flags.find('m') != std::string::npos) return false;
  if (r.empty() || r[0] != '^') return false;
  if (r.size() > 1 && (r[1] == '*' || r[1] == '?' || r[1] == '{' || r[1] == '+')) return false;
  int depth = 0;
  for (size_t i = 1; i < r.size(); ++i) {
    switch (r[i]) {
      case '\\':
        if (i + 1 < r.size() && r[i + 1] == 'Q') return false;
        ++i;
        break;
      case '[':  // a class: `]` right after `[` or `[^` is a member, `\` escapes
        ++i;
        if (i < r.size() && r[i] == '^') ++i;
        if (i < r.size() && r[i] == ']') ++i;
        for (; i < r.size() && r[i] != ']'; ++i) {
          if (r[i] == '\\') {
            ++i;
          } else if (r[i] == '[') {
            return false;  // [:alpha:] and the like: not worth reading here
          }
        }
        break;
      case '(':
        ++depth;
        break;
      case ')':
        --depth;
        break;
      case '|':
        if (depth == 0) return false;
        break;
      default:
        break;
    }
  }
  return depth == 0;
}

// One RE2::Set per encoding and anchoring, and which pattern each of its indices stands for.
// Start-anchored patterns get a set of their own, run with ANCHOR_START: in an unanchored
// set their `^` is retried at every position, and those never-satisfiable threads ride
// along in every DFA state, which then gets large and expensive to build (measured: one
// 10k-pattern set of 60% anchored patterns cost 3.7 us per lookup on new addresses and
// 100 us at p99, against 0.15 us for the two halves run apart).
struct PatternSet {
  bool utf8 = false;
  bool anchored = false;
  std::unique_ptr<RE2::Set> set;
  std::vector<uint32_t> ids;  // set index -> pattern id, ascending
};

RE2::Options PatternOptions(bool utf8, int64_t max_mem) {
  RE2::Options o;
  // Without `u` Hyperscan matches bytes; Latin-1 makes RE2 do the same (one byte, one
  // character), so `.` and classes consume single bytes of a UTF-8 address too.
  o.set_encoding(utf8 ? RE2::Options::EncodingUTF8 : RE2::Options::EncodingLatin1);
  o.set_max_mem(max_mem);
  o.set_log_errors(false);  // failures come back as Status, not as lines on stderr
  return o;
}

}  // namespace

struct Matcher::Rep {
  Options options;
  bool default_canon = true;  // CanonicalAddress is a plain ASCII lower-case

  ExactTable exact;
  // Entry text for keys whose canonical form differs from the entry that produced it
  // (canon options on): the operator should see the entry they wrote.
  std::unordered_map<uint32_t, std::string> exact_texts;

  std::vector<std::string> patterns;  // entry texts, sorted and unique; index = pattern id
  std::vector<CompiledPatternSpec> specs;
  std::vector<PatternSet> sets;

  // Individual RE2 objects for the fallback path, compiled on first need: a set's DFA
  // running out of memory is rare, and compiling 10,000 objects up front would cost
  // build time and tens of MB for nothing.
  mutable std::once_flag individual_once;
  mutable std::vector<std::unique_ptr<RE2>> individual;

  void CompileIndividual() const {
    individual.resize(specs.size());
    for (size_t id = 0; id < specs.size(); ++id) {
      // 3/2 of the set budget: an RE2 gives its forward program 2/3 of max_mem, so each
      // pattern gets at least what the whole set had and compiles wherever the set did.
      individual[id] = std::make_unique<RE2>(
          specs[id].pattern, PatternOptions(specs[id].utf8, options.re2_max_mem / 2 * 3));
    }
  }

  // The first pattern id of `ps` that matches, run one regex at a time.
  uint32_t MatchIndividually(const PatternSet& ps, std::string_view address) const {
    std::call_once(individual_once, [this] { CompileIndividual(); });
    const re2::StringPiece text(address.data(), address.size());
    for (uint32_t id : ps.ids) {
      const RE2& re = *individual[id];
      // An RE2 object never gives up on a search (it falls back from the DFA to the NFA),
      // so this path cannot miss. ok() is false only if the pattern failed to compile
      // alone with more memory than the whole set had, which the budget above rules out.
      if (re.ok() && RE2::PartialMatch(text, re)) return id;
    }
    return kNoPattern;
  }

  uint32_t MatchPatterns(std::string_view address) const {
    const re2::StringPiece text(address.data(), address.size());
    uint32_t best = kNoPattern;
    for (const PatternSet& ps : sets) {
      if (options.individual_patterns) {
        best = std::min(best, MatchIndividually(ps, address));
        continue;
      }
      RE2::Set::ErrorInfo error{RE2::Set::kNoError};
      // No index vector first: the set then stops at the earliest match and allocates
      // nothing, which is all a miss (the common case) needs.
      if (!ps.set->Match(text, nullptr, &error)) {
        if (error.kind != RE2::Set::kNoError) {
          best = std::min(best, MatchIndividually(ps, address));
        }
        continue;
      }
      std::vector<int> hits;
      if (!ps.set->Match(text, &hits, &error) || hits.empty()) {
        best = std::min(best, MatchIndividually(ps, address));
        continue;
      }
      for (int hit : hits) best = std::min(best, ps.ids[static_cast<size_t>(hit)]);
    }
    return best;
  }
};

Matcher::Matcher() : rep_(std::make_unique<Rep>()) {}
Matcher::~Matcher() = default;

Status Matcher::Build(const std::vector<Entry>& entries, const Options& options,
                      std::shared_ptr<const Matcher>* out) {
  std::unique_ptr<Matcher> m(new Matcher());
  Rep& r = *m->rep_;
  r.options = options;
  r.default_canon = !options.canon.strip_subaddress && !options.canon.gmail_dots;

  size_t exact_keys = 0, exact_bytes = 0;
  std::vector<const Entry*> patterns;
  for (const Entry& e : entries) {
    if (e.kind == EntryKind::kExact) {
      ++exact_keys;
      exact_bytes += e.text.size();
    } else {
      patterns.push_back(&e);
    }
  }

  r.exact.Reserve(exact_keys, exact_bytes);
  for (const Entry& e : entries) {
    if (e.kind != EntryKind::kExact) continue;
    std::string key = CanonicalAddress(e.text, options.canon);
    if (!r.exact.HasRoomFor(key.size())) {
      return Status::Invalid("too many exact entries: their canonical forms exceed 4 GiB");
    }
    const auto [index, added] = r.exact.Insert(key);
    // Several entries can share a key (duplicates, or `a+x@d` and `a@d` when subaddresses
    // are stripped); report the one that sorts first so the answer does not depend on
    // the order entries arrived in.
    auto it = r.exact_texts.find(index);
    if (added) {
      if (e.text != key) r.exact_texts.emplace(index, e.text);
    } else if (e.text < (it == r.exact_texts.end() ? std::string_view(key) : it->second)) {
      if (e.text == key) {
        r.exact_texts.erase(it);
      } else {
        r.exact_texts[index] = e.text;
      }
    }
  }

  // Sorted by text, so that set indices and pattern ids both follow the sort order and
  // "the first matching pattern" is the smallest id.
  std::sort(patterns.begin(), patterns.end(),
            [](const Entry* a, const Entry* b) { return a->text < b->text; });
  patterns.erase(std::unique(patterns.begin(), patterns.end(),
                             [](const Entry* a, const Entry* b) { return a->text == b->text; }),
                 patterns.end());
  {
    // Keep exactly the patterns rspamd keeps from the same file.
    std::vector<std::string> texts;
    texts.reserve(patterns.size());
    for (const Entry* e : patterns) texts.push_back(e->text);
    DropRspamdDuplicates(&texts);
    if (texts.size() != patterns.size()) {
      std::unordered_set<std::string_view> kept(texts.begin(), texts.end());
      patterns.erase(std::remove_if(patterns.begin(), patterns.end(),
                                    [&](const Entry* e) { return kept.count(e->text) == 0; }),
                     patterns.end());
    }
  }
  if (patterns.size() >= kNoPattern) return Status::Invalid("too many patterns");

  PatternSet* by_kind[4] = {nullptr, nullptr, nullptr, nullptr};
  r.sets.reserve(4);  // no reallocation: by_kind points into it
  for (const Entry* e : patterns) {
    const uint32_t id = static_cast<uint32_t>(r.patterns.size());
    r.patterns.push_back(e->text);
    r.specs.push_back(PatternSpec(*e));
    const CompiledPatternSpec& spec = r.specs.back();
    const bool anchored = StartAnchored(*e);
    PatternSet*& ps = by_kind[(spec.utf8 ? 2 : 0) + (anchored ? 1 : 0)];
    if (ps == nullptr) {
      ps = &r.sets.emplace_back();
      ps->utf8 = spec.utf8;
      ps->anchored = anchored;
      ps->set = std::make_unique<RE2::Set>(PatternOptions(spec.utf8, options.re2_max_mem),
                                           anchored ? RE2::ANCHOR_START : RE2::UNANCHORED);
    }
    std::string error;
    if (ps->set->Add(spec.pattern, &error) < 0) {
      return Status::Invalid("pattern " + e->text + ": invalid regex: " + error);
    }
    ps->ids.push_back(id);
  }
  for (PatternSet& ps : r.sets) {
    if (!ps.set->Compile()) {
      return Status::Invalid(
          "cannot compile " + std::to_string(ps.ids.size()) +
          (ps.utf8 ? " UTF-8" : " byte (Latin-1)") + (ps.anchored ? " start-anchored" : "") +
          " patterns into one set within re2_max_mem (" + std::to_string(options.re2_max_mem) +
          " bytes): out of memory; raise the budget or use fewer patterns");
    }
  }
  if (options.individual_patterns) {
    std::call_once(r.individual_once, [&r] { r.CompileIndividual(); });
    for (size_t id = 0; id < r.individual.size(); ++id) {
      if (!r.individual[id]->ok()) {
        return Status::Invalid("pattern " + r.patterns[id] +
                               ": cannot compile: " + r.individual[id]->error());
      }
    }
  }

  *out = std::shared_ptr<const Matcher>(m.release());
  return Status::Ok();
}

std::optional<Match> Matcher::Lookup(std::string_view address) const {
  const Rep& r = *rep_;
  const bool have_exact = r.exact.size() > 0;
  // With default options the canonical form is the ASCII lower-case, which the table
  // hashes and compares on the fly: no copy, no allocation on the hot path.
  std::string canonical;
  std::string_view key = address;
  if (have_exact && !r.default_canon) {
    canonical = CanonicalAddress(address, r.options.canon);
    key = canonical;
  }
  const uint64_t h = have_exact ? HashLower(key) : 0;
  if (have_exact) r.exact.Prefetch(h);
  // Exact entries win over patterns, but the patterns run first: meanwhile the table's
  // slot arrives from memory. Exact hits are rare, so the wasted pattern run is too.
  const uint32_t id = r.sets.empty() ? kNoPattern : r.MatchPatterns(address);
  if (have_exact) {
    const int64_t index = r.exact.Find(key, h);
    if (index >= 0) {
      const uint32_t i = static_cast<uint32_t>(index);
      auto it = r.exact_texts.find(i);
      return Match{EntryKind::kExact,
                   it == r.exact_texts.end() ? std::string(r.exact.Key(i)) : it->second};
    }
  }
  if (id == kNoPattern) return std::nullopt;
  return Match{EntryKind::kPattern, r.patterns[id]};
}

size_t Matcher::exact_count() const { return rep_->exact.size(); }
size_t Matcher::pattern_count() const { return rep_->patterns.size(); }

}  // namespace compd
