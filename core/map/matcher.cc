#include "compd/map/matcher.h"

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

#include "compd/base/text.h"
#include "compd/map/exact_table.h"
#include "compd/map/pattern.h"

namespace compd {
namespace {

constexpr uint32_t kNoPattern = std::numeric_limits<uint32_t>::max();

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

// The exact entries of a snapshot as built: the table of canonical keys and, for keys
// that stand for something other than the key itself, the entry texts. Immutable once
// built, and shared by every snapshot that Apply derives from this one.
struct ExactPart {
  ExactTable table;
  // Keys whose entries are not just the key itself (canon options on, or an entry given
  // in another case): every entry text of that key, sorted, unique. The first is the one
  // a lookup reports.
  std::unordered_map<uint32_t, std::vector<std::string>> texts;

  std::string_view Reported(uint32_t index) const {
    auto it = texts.find(index);
    return it == texts.end() ? table.Key(index) : std::string_view(it->second.front());
  }
  template <typename Fn>
  void ForEachText(uint32_t index, Fn&& fn) const {
    auto it = texts.find(index);
    if (it == texts.end()) {
      fn(table.Key(index));
    } else {
      for (const std::string& t : it->second) fn(std::string_view(t));
    }
  }
};

// The changes Apply made to the exact entries since the last full build. Small by
// construction: past a fraction of the base, Apply compacts (builds a new base).
struct Overlay {
  std::unordered_set<std::string> added;    // entry texts that are not in the base
  std::unordered_set<std::string> removed;  // entry texts of the base that are gone
  ExactTable table;                         // canonical keys whose answer differs from the base
  std::vector<std::string> reported;        // by table index: the text to report; "" = none
};

// The patterns of a snapshot, compiled. Immutable once built; shared by the snapshots Apply
// derives without touching patterns.
struct PatternPart {
  int64_t max_mem = 0;
  bool individual_only = false;
  std::vector<Entry> all;             // every pattern given, sorted by text, unique
  std::vector<std::string> patterns;  // the ones kept (see DropRspamdDuplicates); index = id
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
      individual[id] =
          std::make_unique<RE2>(specs[id].pattern, PatternOptions(specs[id].utf8, max_mem / 2 * 3));
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

  uint32_t Match(std::string_view address) const {
    const re2::StringPiece text(address.data(), address.size());
    uint32_t best = kNoPattern;
    for (const PatternSet& ps : sets) {
      if (individual_only) {
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

bool ByText(const Entry& a, const Entry& b) { return a.text < b.text; }

// Compiles `all` (patterns, sorted by text and unique) into a PatternPart.
Status BuildPatterns(std::vector<Entry> all, const Matcher::Options& options,
                     std::shared_ptr<const PatternPart>* out) {
  auto part = std::make_shared<PatternPart>();
  PatternPart& p = *part;
  p.max_mem = options.re2_max_mem;
  p.individual_only = options.individual_patterns;
  p.all = std::move(all);
  // Sorted by text, so that set indices and pattern ids both follow the sort order and
  // "the first matching pattern" is the smallest id.
  std::vector<const Entry*> kept;
  kept.reserve(p.all.size());
  for (const Entry& e : p.all) kept.push_back(&e);
  {
    // Keep exactly the patterns rspamd keeps from the same file.
    std::vector<std::string> texts;
    texts.reserve(p.all.size());
    for (const Entry& e : p.all) texts.push_back(e.text);
    DropRspamdDuplicates(&texts);
    if (texts.size() != kept.size()) {
      std::unordered_set<std::string_view> keep(texts.begin(), texts.end());
      kept.erase(std::remove_if(kept.begin(), kept.end(),
                                [&](const Entry* e) { return keep.count(e->text) == 0; }),
                 kept.end());
    }
  }
  if (kept.size() >= kNoPattern) return Status::Invalid("too many patterns");

  PatternSet* by_kind[4] = {nullptr, nullptr, nullptr, nullptr};
  p.sets.reserve(4);  // no reallocation: by_kind points into it
  for (const Entry* e : kept) {
    const uint32_t id = static_cast<uint32_t>(p.patterns.size());
    p.patterns.push_back(e->text);
    p.specs.push_back(PatternSpec(*e));
    const CompiledPatternSpec& spec = p.specs.back();
    const bool anchored = StartAnchored(*e);
    PatternSet*& ps = by_kind[(spec.utf8 ? 2 : 0) + (anchored ? 1 : 0)];
    if (ps == nullptr) {
      ps = &p.sets.emplace_back();
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
  for (PatternSet& ps : p.sets) {
    if (!ps.set->Compile()) {
      return Status::Invalid(
          "cannot compile " + std::to_string(ps.ids.size()) +
          (ps.utf8 ? " UTF-8" : " byte (Latin-1)") + (ps.anchored ? " start-anchored" : "") +
          " patterns into one set within re2_max_mem (" + std::to_string(options.re2_max_mem) +
          " bytes): out of memory; raise the budget or use fewer patterns");
    }
  }
  if (options.individual_patterns) {
    std::call_once(p.individual_once, [&p] { p.CompileIndividual(); });
    for (size_t id = 0; id < p.individual.size(); ++id) {
      if (!p.individual[id]->ok()) {
        return Status::Invalid("pattern " + p.patterns[id] +
                               ": cannot compile: " + p.individual[id]->error());
      }
    }
  }
  *out = std::move(part);
  return Status::Ok();
}

}  // namespace

struct Matcher::Rep {
  Options options;
  bool default_canon = true;  // CanonicalAddress is a plain ASCII lower-case

  std::shared_ptr<const ExactPart> base;  // never null
  Overlay overlay;
  std::shared_ptr<const PatternPart> patterns;  // never null
  size_t exact_count = 0;                       // distinct canonical keys present

  std::string Key(std::string_view text) const {
    if (default_canon && !HasAsciiUpper(text)) return std::string(text);
    return CanonicalAddress(text, options.canon);
  }

  // Every exact entry text now present (the base's less the removed, and the added),
  // unsorted; views into this snapshot.
  std::vector<std::string_view> PresentTexts() const {
    std::vector<std::string_view> texts;
    texts.reserve(base->table.size() + overlay.added.size());
    const std::unordered_set<std::string_view> gone(overlay.removed.begin(), overlay.removed.end());
    for (uint32_t i = 0; i < base->table.size(); ++i) {
      base->ForEachText(i, [&](std::string_view t) {
        if (gone.empty() || gone.count(t) == 0) texts.push_back(t);
      });
    }
    for (const std::string& t : overlay.added) texts.push_back(t);
    return texts;
  }

  // Whether the base holds the entry `text` (removed or not).
  bool BaseHas(const std::string& text) const {
    const std::string key = Key(text);
    const int64_t index = base->table.size() == 0 ? -1 : base->table.Find(key, HashLower(key));
    if (index < 0) return false;
    bool found = false;
    base->ForEachText(static_cast<uint32_t>(index),
                      [&](std::string_view t) { found = found || t == text; });
    return found;
  }
};

namespace {

// Builds the table of exact entries from their texts (entries from ParseEntry).
Status BuildExact(const Matcher::Options& options, bool default_canon,
                  const std::vector<std::string_view>& texts,
                  std::shared_ptr<const ExactPart>* out) {
  auto part = std::make_shared<ExactPart>();
  ExactPart& x = *part;
  size_t bytes = 0;
  for (std::string_view t : texts) bytes += t.size();
  x.table.Reserve(texts.size(), bytes);
  std::string scratch;
  for (std::string_view text : texts) {
    // With default options the key of a lower-case entry is the entry itself: no copy.
    std::string_view key = text;
    if (!default_canon || HasAsciiUpper(text)) {
      scratch = CanonicalAddress(text, options.canon);
      key = scratch;
    }
    if (!x.table.HasRoomFor(key.size())) {
      return Status::Invalid("too many exact entries: their canonical forms exceed 4 GiB");
    }
    const auto [index, added] = x.table.Insert(key);
    // Several entries can share a key (duplicates, or `a+x@d` and `a@d` when subaddresses
    // are stripped): all are kept, and a lookup reports the one that sorts first, so the
    // answer does not depend on the order entries arrived in.
    auto it = x.texts.find(index);
    if (added) {
      if (text != key) x.texts[index].emplace_back(text);
    } else if (it == x.texts.end()) {
      if (text != key) x.texts[index] = {std::string(key), std::string(text)};
    } else {
      it->second.emplace_back(text);
    }
  }
  for (auto& [index, list] : x.texts) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  *out = std::move(part);
  return Status::Ok();
}

// The overlay is rebuilt on every Apply, so its size is the cost of every change; the base
// is rebuilt by Compact, at the cost of the whole map. Compacting once the overlay holds
// this many entries, or 1/64 of the base, keeps a change at 1M entries to milliseconds.
constexpr size_t kMinCompaction = 4096;

}  // namespace

Matcher::Matcher() : rep_(std::make_unique<Rep>()) {}
Matcher::~Matcher() = default;

Status Matcher::Build(const std::vector<std::string_view>& exact, std::vector<Entry> patterns,
                      const Options& options, std::shared_ptr<const Matcher>* out) {
  std::unique_ptr<Matcher> m(new Matcher());
  Rep& r = *m->rep_;
  r.options = options;
  r.default_canon = !options.canon.strip_subaddress && !options.canon.gmail_dots;
  Status s = BuildExact(options, r.default_canon, exact, &r.base);
  if (!s.ok()) return s;
  r.exact_count = r.base->table.size();
  std::sort(patterns.begin(), patterns.end(), ByText);
  patterns.erase(std::unique(patterns.begin(), patterns.end(),
                             [](const Entry& a, const Entry& b) { return a.text == b.text; }),
                 patterns.end());
  s = BuildPatterns(std::move(patterns), options, &r.patterns);
  if (!s.ok()) return s;
  *out = std::shared_ptr<const Matcher>(m.release());
  return Status::Ok();
}

Status Matcher::Build(const std::vector<Entry>& entries, const Options& options,
                      std::shared_ptr<const Matcher>* out) {
  std::vector<std::string_view> exact;
  std::vector<Entry> patterns;
  for (const Entry& e : entries) {
    if (e.kind == EntryKind::kExact) {
      exact.push_back(e.text);
    } else {
      patterns.push_back(e);
    }
  }
  return Build(exact, std::move(patterns), options, out);
}

Status Matcher::Apply(const std::vector<Entry>& added, const std::vector<Entry>& removed,
                      std::shared_ptr<const Matcher>* out) const {
  const Rep& r = *rep_;
  std::unordered_set<std::string> ov_added = r.overlay.added;
  std::unordered_set<std::string> ov_removed = r.overlay.removed;
  std::unordered_set<std::string> patterns_removed;
  std::vector<const Entry*> patterns_added;
  bool exact_changed = false;
  for (const Entry& e : removed) {
    if (e.kind == EntryKind::kPattern) {
      patterns_removed.insert(e.text);
    } else if (ov_added.erase(e.text) > 0) {
      exact_changed = true;
    } else if (ov_removed.count(e.text) == 0 && r.BaseHas(e.text)) {
      ov_removed.insert(e.text);
      exact_changed = true;
    }
  }
  for (const Entry& e : added) {
    if (e.kind == EntryKind::kPattern) {
      patterns_added.push_back(&e);
    } else if (ov_removed.erase(e.text) > 0) {
      exact_changed = true;
    } else if (ov_added.count(e.text) == 0 && !r.BaseHas(e.text)) {
      ov_added.insert(e.text);
      exact_changed = true;
    }
  }

  std::unique_ptr<Matcher> m(new Matcher());
  Rep& n = *m->rep_;
  n.options = r.options;
  n.default_canon = r.default_canon;

  // Patterns: recompiled only when the list of patterns changes.
  n.patterns = r.patterns;
  if (!patterns_removed.empty() || !patterns_added.empty()) {
    std::vector<Entry> all;
    all.reserve(r.patterns->all.size() + patterns_added.size());
    for (const Entry& e : r.patterns->all) {
      if (patterns_removed.count(e.text) == 0) all.push_back(e);
    }
    for (const Entry* e : patterns_added) all.push_back(*e);
    std::sort(all.begin(), all.end(), ByText);
    all.erase(std::unique(all.begin(), all.end(),
                          [](const Entry& a, const Entry& b) { return a.text == b.text; }),
              all.end());
    const bool same = all.size() == r.patterns->all.size() &&
                      std::equal(all.begin(), all.end(), r.patterns->all.begin(),
                                 [](const Entry& a, const Entry& b) { return a.text == b.text; });
    if (!same) {
      Status s = BuildPatterns(std::move(all), r.options, &n.patterns);
      if (!s.ok()) return s;
    }
  }

  if (!exact_changed) {
    n.base = r.base;
    n.overlay = r.overlay;
    n.exact_count = r.exact_count;
    *out = std::shared_ptr<const Matcher>(m.release());
    return Status::Ok();
  }

  // Rebuild the overlay: for every key an added or removed text maps to, what the key
  // answers now (or that it answers nothing any more).
  n.base = r.base;
  const std::unordered_set<std::string_view> gone(ov_removed.begin(), ov_removed.end());
  std::unordered_map<std::string, std::string_view> best_added;  // key -> first added text
  size_t bytes = 0;
  for (const std::string& t : ov_added) {
    std::string_view& best = best_added[n.Key(t)];
    if (best.empty() || t < best) best = t;
  }
  for (const std::string& t : ov_removed) best_added.emplace(n.Key(t), std::string_view());
  for (const auto& kv : best_added) bytes += kv.first.size();
  Overlay& ov = n.overlay;
  ov.table.Reserve(best_added.size(), bytes);
  ov.reported.reserve(best_added.size());
  size_t count = r.base->table.size();
  for (const auto& [key, first_added] : best_added) {
    std::string_view best = first_added;
    const int64_t index = r.base->table.size() == 0 ? -1 : r.base->table.Find(key, HashLower(key));
    if (index >= 0) {
      r.base->ForEachText(static_cast<uint32_t>(index), [&](std::string_view t) {
        if (gone.count(t) == 0 && (best.empty() || t < best)) best = t;
      });
      if (best.empty()) --count;
    } else if (!best.empty()) {
      ++count;
    }
    if (!ov.table.HasRoomFor(key.size())) return Status::Invalid("too many exact entries");
    ov.table.Insert(key);
    ov.reported.emplace_back(best);
  }
  ov.added = std::move(ov_added);
  ov.removed = std::move(ov_removed);
  n.exact_count = count;
  *out = std::shared_ptr<const Matcher>(m.release());
  return Status::Ok();
}

std::optional<Match> Matcher::Lookup(std::string_view address) const {
  const Rep& r = *rep_;
  const ExactTable& base = r.base->table;
  const ExactTable& overlay = r.overlay.table;
  const bool have_exact = base.size() > 0 || overlay.size() > 0;
  // With default options the canonical form is the ASCII lower-case, which the tables
  // hash and compare on the fly: no copy, no allocation on the hot path.
  std::string canonical;
  std::string_view key = address;
  if (have_exact && !r.default_canon) {
    canonical = CanonicalAddress(address, r.options.canon);
    key = canonical;
  }
  const uint64_t h = have_exact ? HashLower(key) : 0;
  if (base.size() > 0) base.Prefetch(h);
  // Exact entries win over patterns, but the patterns run first: meanwhile the table's
  // slot arrives from memory. Exact hits are rare, so the wasted pattern run is too.
  const PatternPart& p = *r.patterns;
  const uint32_t id = p.sets.empty() ? kNoPattern : p.Match(address);
  if (overlay.size() > 0) {
    const int64_t index = overlay.Find(key, h);
    if (index >= 0) {
      const std::string& text = r.overlay.reported[static_cast<size_t>(index)];
      // An overlay key without a text was removed: the base must not answer for it.
      if (!text.empty()) return Match{EntryKind::kExact, text};
      if (id == kNoPattern) return std::nullopt;
      return Match{EntryKind::kPattern, p.patterns[id]};
    }
  }
  if (base.size() > 0) {
    const int64_t index = base.Find(key, h);
    if (index >= 0) {
      return Match{EntryKind::kExact, std::string(r.base->Reported(static_cast<uint32_t>(index)))};
    }
  }
  if (id == kNoPattern) return std::nullopt;
  return Match{EntryKind::kPattern, p.patterns[id]};
}

std::vector<std::string_view> Matcher::ExactTexts() const {
  std::vector<std::string_view> texts = rep_->PresentTexts();
  std::sort(texts.begin(), texts.end());
  return texts;
}

bool Matcher::NeedsCompaction() const {
  return overlay_size() > std::max(kMinCompaction, rep_->base->table.size() / 64);
}

Status Matcher::Compact(std::shared_ptr<const Matcher>* out) const {
  const Rep& r = *rep_;
  std::unique_ptr<Matcher> m(new Matcher());
  Rep& n = *m->rep_;
  n.options = r.options;
  n.default_canon = r.default_canon;
  n.patterns = r.patterns;
  Status s = BuildExact(n.options, n.default_canon, r.PresentTexts(), &n.base);
  if (!s.ok()) return s;
  n.exact_count = n.base->table.size();
  *out = std::shared_ptr<const Matcher>(m.release());
  return Status::Ok();
}

std::vector<std::string_view> Matcher::PatternTexts() const {
  std::vector<std::string_view> texts;
  for (const Entry& e : rep_->patterns->all) texts.push_back(e.text);
  return texts;
}

size_t Matcher::exact_count() const { return rep_->exact_count; }
size_t Matcher::pattern_count() const { return rep_->patterns->patterns.size(); }
size_t Matcher::overlay_size() const {
  return rep_->overlay.added.size() + rep_->overlay.removed.size();
}

}  // namespace compd
