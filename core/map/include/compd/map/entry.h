// Map entries: the two kinds compd keeps, and the rules that decide what is a valid one.
//
// Pure functions and values; safe from any thread.
//
// An *exact* entry is a whole address compared in canonical (ASCII lower-case) form, as
// rspamd's plain maps compare. A *pattern* is written `/regex/flags`; pattern.h has its
// rules.
#ifndef COMPD_MAP_ENTRY_H_
#define COMPD_MAP_ENTRY_H_

#include <string>
#include <string_view>
#include <vector>

#include "compd/base/status.h"

namespace compd {

enum class EntryKind { kExact, kPattern };

const char* EntryKindName(EntryKind kind);  // "exact" / "pattern"

struct Entry {
  EntryKind kind = EntryKind::kExact;
  // Exact: the canonical lower-case address. Pattern: the normalised `/regex/flags`
  // text (flags sorted, deduplicated), which is also its identity in Redis and files.
  std::string text;
  // Patterns only: the regex body between the slashes and the flags.
  std::string regex;
  std::string flags;

  bool operator==(const Entry& o) const { return kind == o.kind && text == o.text; }
  bool operator<(const Entry& o) const { return kind != o.kind ? kind < o.kind : text < o.text; }
};

// Entries from parts that are already canonical (read back from Redis, built by a parser
// that checked them, or a test's deliberately raw input): nothing is checked or normalised.
Entry RawExactEntry(std::string address);
Entry RawPatternEntry(std::string regex, std::string flags);

// Parses what an operator typed: `/re/flags` becomes a pattern, anything else must be an
// address (brackets and quotes allowed, as EnvelopeAddress takes them) and becomes an
// exact entry in canonical form. kInvalid with the reason (not the location: callers
// prefix `file:line: ` or the entry itself) when it is neither, e.g.
//   "invalid regex: missing ): (a"
//   "flag 'x' is not supported (use i, m, s, u)"
//   "not an address: contains whitespace"
Status ParseEntry(std::string_view input, Entry* out);

// The address half of ParseEntry: `address` as EnvelopeAddress takes it; the result is
// an exact entry in canonical form, or kInvalid when the address cannot be written as a
// line of an rspamd plain map (whitespace, `#`, a leading `/` or `"`).
Status ParseAddressEntry(std::string_view address, Entry* out);

// rspamd keeps one key per map when keys differ only in ASCII letter case: the first in
// file order. compd's files are sorted, so from texts sorted by byte value this removes
// every text equal, but for ASCII case, to an earlier one, leaving what rspamd keeps. The
// matcher and the map writer both apply it, so compd and rspamd hold the same patterns.
void DropRspamdDuplicates(std::vector<std::string>* sorted_texts);

}  // namespace compd

#endif  // COMPD_MAP_ENTRY_H_
