// Map entries: the two kinds compd keeps, and the rules that decide what is a valid one.
//
// Pure functions and values; safe from any thread.
//
// An *exact* entry is a whole address compared in canonical (ASCII lower-case) form, as
// rspamd's plain maps compare. A *pattern* is written `/regex/flags` with flags from
// `i m s u` only; it must compile with RE2 and must be something Hyperscan would accept,
// because one pattern Hyperscan refuses switches rspamd's whole map to PCRE2.
#ifndef COMPD_ENTRY_H_
#define COMPD_ENTRY_H_

#include <string>
#include <string_view>

#include "compd/status.h"

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

// Parses what an operator typed: `/re/flags` becomes a pattern, anything else must be an
// address (brackets and quotes allowed, as EnvelopeAddress takes them) and becomes an
// exact entry in canonical form. kInvalid with the reason (not the location: callers
// prefix `file:line: ` or the entry itself) when it is neither, e.g.
//   "invalid regex: missing ): (a"
//   "flag 'x' is not supported (use i, m, s, u)"
//   "not an address: contains whitespace"
Status ParseEntry(std::string_view input, Entry* out);

// How a pattern is compiled so that it means in RE2 what it means in rspamd: flags become
// an inline prefix (`i` -> (?i), `s` -> (?s), `m` -> (?m)), so patterns with different
// flags can share one RE2::Set. `u` cannot be inline: patterns without it run on bytes
// (Latin-1, like Hyperscan without HS_FLAG_UTF8), patterns with it as UTF-8, so a
// matcher keeps at most two sets, one per encoding.
struct CompiledPatternSpec {
  std::string pattern;  // the regex with its inline-flag prefix
  bool utf8 = false;    // the `u` flag
};
CompiledPatternSpec PatternSpec(const Entry& entry);

}  // namespace compd

#endif  // COMPD_ENTRY_H_
