// Matcher: an immutable, compiled snapshot of the map.
//
// Build once, then query from any number of threads without locks: every method is
// const and the object is never changed after Build. Share it as
// std::shared_ptr<const Matcher>; swapping in a new snapshot is the owner's business.
//
// Exact entries live in a hash set keyed by canonical address; all patterns are compiled
// into RE2::Set objects (one per encoding, see entry.h, and anchoring) sized with an
// explicit max_mem.
//
// A small change to a big map does not rebuild it: Apply derives a new snapshot that
// shares the old one's exact table (and its pattern sets, when no pattern changed) and
// keeps the changed keys in a small overlay table consulted first. Each Apply costs time
// in proportion to the overlay, so its owner calls Compact (off the path that enforces
// the change) once NeedsCompaction says so.
#ifndef COMPD_MAP_MATCHER_H_
#define COMPD_MAP_MATCHER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compd/base/status.h"
#include "compd/map/address.h"
#include "compd/map/entry.h"

namespace compd {

struct Match {
  EntryKind kind = EntryKind::kExact;
  std::string entry;  // the entry's text: canonical address or `/regex/flags`
};

class Matcher {
 public:
  struct Options {
    CanonOptions canon;  // applied to entries and lookups alike
    // Memory ceiling for each pattern set (up to four: byte/UTF-8 x start-anchored or
    // not): its compiled program plus its lazily grown DFA cache. A ceiling, not an
    // allocation: 10,000 patterns compile within 32 MiB. RE2's default (8 MiB) is too
    // small for thousands of patterns.
    int64_t re2_max_mem = int64_t{1} << 30;
    // Run every pattern as its own RE2 object instead of through the sets. This is the
    // path Lookup falls back to when a set's DFA runs out of memory; it costs time linear
    // in the number of patterns, and exists so tests and benchmarks can reach and measure it.
    bool individual_patterns = false;
  };

  // Builds a snapshot. Entries must come from ParseEntry. Duplicates are fine.
  // kInvalid if a pattern fails to compile here (it passed ParseEntry, so this means the
  // sets ran out of memory: the message says so).
  static Status Build(const std::vector<Entry>& entries, const Options& options,
                      std::shared_ptr<const Matcher>* out);
  static Status Build(const std::vector<Entry>& entries, std::shared_ptr<const Matcher>* out) {
    return Build(entries, Options(), out);
  }
  // The same from the exact entries' texts (each the `text` of an exact entry from
  // ParseEntry) and the patterns: what a loader that holds the texts elsewhere (a Redis
  // reply) passes, so that a million entries are not copied into Entry objects first.
  static Status Build(const std::vector<std::string_view>& exact, std::vector<Entry> patterns,
                      const Options& options, std::shared_ptr<const Matcher>* out);

  // A snapshot equal to this one with `removed` taken out, then `added` put in (entries
  // from ParseEntry, matched by text; adding what is there or removing what is not changes
  // nothing). Costs time in proportion to the change and the overlay, plus compiling the
  // patterns when they changed. Errors as Build's; this snapshot is never changed.
  Status Apply(const std::vector<Entry>& added, const std::vector<Entry>& removed,
               std::shared_ptr<const Matcher>* out) const;
  // True when the overlay has grown large enough (4,096 entries, or 1/64 of the table) that
  // the next Apply would be cheaper after a Compact.
  bool NeedsCompaction() const;
  // The same snapshot with the overlay folded into a new exact table: costs about what
  // Build costs for the exact entries; the pattern sets are shared.
  Status Compact(std::shared_ptr<const Matcher>* out) const;

  // Every entry of the snapshot by its text, for writing the map out: exact entries as
  // given (not their canonical keys), sorted; patterns sorted, including those a lookup
  // skips as rspamd does (DropRspamdDuplicates). Views into this snapshot.
  std::vector<std::string_view> ExactTexts() const;
  std::vector<std::string_view> PatternTexts() const;

  // `address` is the address as rspamd sees it (the output of EnvelopeAddress, or a
  // header addr-spec). Exact entries are tried first on the canonical form; patterns run
  // on `address` itself, case kept. When several patterns match, the one that sorts first
  // is reported, so answers are stable; likewise when canon options make several exact
  // entries share a canonical form (`a+x@d`, `a+y@d`), the entry text that sorts first is
  // reported, as written. No allocation on a miss with default canon options.
  std::optional<Match> Lookup(std::string_view address) const;

  size_t exact_count() const;    // distinct canonical keys
  size_t pattern_count() const;  // patterns a lookup runs
  size_t overlay_size() const;   // exact entries added or removed since the last full build

  struct Rep;  // public only so that the implementation's helpers can name it

  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;
  ~Matcher();

 private:
  Matcher();
  std::unique_ptr<Rep> rep_;
};

}  // namespace compd

#endif  // COMPD_MAP_MATCHER_H_
