// Pattern entries (`/regex/flags`): the rules that decide what is a valid one, and how one
// is compiled. Flags come from `i m s u` only; a pattern must compile with RE2 and must be
// something Hyperscan would accept, because one pattern Hyperscan refuses switches
// rspamd's whole map to PCRE2; and it must fit on a line of an rspamd map file.
//
// Pure functions and values; safe from any thread.
#ifndef COMPD_MAP_PATTERN_H_
#define COMPD_MAP_PATTERN_H_

#include <string>
#include <string_view>

#include "compd/base/status.h"
#include "compd/map/entry.h"

namespace compd {

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

// The pattern half of ParseEntry (entry.h). `regex` is the text between the slashes (a `/` in it
// may be escaped or not), `flags` what follows the closing slash. On success `out` is the
// normalised pattern: every `/` in the regex escaped (so both rspamd's map reader, which
// ends `/.../` at the first unescaped `/`, and its regex parser, which takes the last
// `/`, see the same regex) and the flags sorted and deduplicated. `why` may be null.
Status ParsePattern(std::string_view regex, std::string_view flags, Entry* out,
                    PatternError* why = nullptr);

// Largest repeat count a pattern may use in `{n,m}`. This is RE2's own limit, which is
// below Hyperscan's (32767, "Bounded repeat is too large"), so no accepted pattern can
// push rspamd off Hyperscan that way.
inline constexpr int kMaxPatternRepeat = 1000;

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

#endif  // COMPD_MAP_PATTERN_H_
