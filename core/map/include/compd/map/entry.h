// Map entries: the two kinds compd keeps, and the rules that decide what is a valid one.
//
// Pure functions and values; safe from any thread.
//
// An *exact* entry is a whole address compared in canonical (ASCII lower-case) form, as
// rspamd's plain maps compare. A *pattern* is written `/regex/flags` with flags from
// `i m s u` only; it must compile with RE2 and must be something Hyperscan would accept,
// because one pattern Hyperscan refuses switches rspamd's whole map to PCRE2.
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

// Parses what an operator typed: `/re/flags` becomes a pattern, anything else must be an
// address (brackets and quotes allowed, as EnvelopeAddress takes them) and becomes an
// exact entry in canonical form. kInvalid with the reason (not the location: callers
// prefix `file:line: ` or the entry itself) when it is neither, e.g.
//   "invalid regex: missing ): (a"
//   "flag 'x' is not supported (use i, m, s, u)"
//   "not an address: contains whitespace"
Status ParseEntry(std::string_view input, Entry* out);

// What kind of problem made ParsePattern refuse a pattern. The map reader needs it to
// tell a regex rspamd cannot load at all from one that only costs rspamd its Hyperscan
// engine.
enum class PatternError {
  kNone,
  kFlag,       // a flag other than i, m, s, u
  kSyntax,     // empty, or RE2 cannot compile it
  kHyperscan,  // a construct Hyperscan refuses, or it can match an empty string
  kMapLine,    // holds what an rspamd map line cannot carry: whitespace, unescaped `#`
};

// The pattern half of ParseEntry. `regex` is the text between the slashes (a `/` in it may
// be escaped or not), `flags` what follows the closing slash. On success `out` is the
// normalised pattern: every `/` in the regex escaped (so both rspamd's map reader, which
// ends `/.../` at the first unescaped `/`, and its regex parser, which takes the last
// `/`, see the same regex) and the flags sorted and deduplicated. `why` may be null.
Status ParsePattern(std::string_view regex, std::string_view flags, Entry* out,
                    PatternError* why = nullptr);

// The address half of ParseEntry: `address` as EnvelopeAddress takes it; the result is
// an exact entry in canonical form, or kInvalid when the address cannot be written as a
// line of an rspamd plain map (whitespace, `#`, a leading `/` or `"`).
Status ParseAddressEntry(std::string_view address, Entry* out);

// Largest repeat count a pattern may use in `{n,m}`. This is RE2's own limit, which is
// below Hyperscan's (32767, "Bounded repeat is too large"), so no accepted pattern can
// push rspamd off Hyperscan that way.
inline constexpr int kMaxPatternRepeat = 1000;

// rspamd keeps one key per map when keys differ only in ASCII letter case: the first in
// file order. compd's files are sorted, so from texts sorted by byte value this removes
// every text equal, but for ASCII case, to an earlier one, leaving what rspamd keeps. The
// matcher and the map writer both apply it, so compd and rspamd hold the same patterns.
void DropRspamdDuplicates(std::vector<std::string>* sorted_texts);

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

#endif  // COMPD_MAP_ENTRY_H_
