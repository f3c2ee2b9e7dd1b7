// rspamd 3.4's own reading of a map file, rule for rule: how its line reader cuts a file
// into keys, how its regex parser splits a key into body and flags, and which flags it
// takes. The map reader (rspamd_map.h) builds its conversion and hazard report on these.
//
// Pure functions and values; safe from any thread.
//
// The reader re-implements, rule for rule, what rspamd 3.4 does with a map file; the
// places in rspamd's source this follows are:
//  - src/libserver/maps/map_helpers.c, rspamd_parse_kv_list(): the line reader. A key
//    starting with `"` runs to the next unescaped `"`; one starting with `/` runs to the
//    next unescaped `/` (newlines, spaces and `#` included), then to the next whitespace
//    or `#`; any other key ends at whitespace, at a line end, or at a `#` not preceded by
//    a backslash. After whitespace, the rest of the line up to `#` is the value. At the end
//    of the file only a key still being read (bare key, or a value) is stored: a `/re/`,
//    a quoted key or a key followed by blanks without a final newline is dropped.
//  - map_helpers.c, rspamd_map_helper_insert_re() / _insert_hash(): keys are hashed and
//    compared ASCII case-insensitively (rspamd_map_ftok_equal uses rspamd_lc_cmp); a later
//    duplicate never replaces the first regex.
//  - src/libutil/regexp.c, rspamd_regexp_new_len(): a key starting with `/` is split at the
//    LAST `/`; one starting with `m` and a non-alphanumeric character is a Perl-style
//    m<d>...<d> regex (`{` pairs with `}`), split at the last <d>; anything else is the
//    regex as it stands, unanchored, no flags. Flags i m s x u O L r are known; the first
//    unknown one ends flag parsing (the rest is ignored, with a warning in rspamd's log).
//    A missing closing delimiter makes the line fail to load.
//  - map_helpers.c, rspamd_re_map_finalize(): all regexes go into one Hyperscan database;
//    if hs_compile_multi fails for one pattern the map falls back to PCRE for all of them
//    (where the Perl-style m-form is anchored, unlike under Hyperscan).
#ifndef COMPD_MAP_RSPAMD_MAP_SYNTAX_H_
#define COMPD_MAP_RSPAMD_MAP_SYNTAX_H_

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compd/map/rspamd_map.h"

namespace compd {
namespace rspamd_syntax {

// Whitespace here is g_ascii_isspace, which rspamd's reader uses: IsAsciiSpace.
inline bool IsEol(char c) { return c == '\r' || c == '\n'; }

// A key or value as hazard messages quote it.
inline std::string Quote(std::string_view s) { return "`" + std::string(s) + "`"; }

// Line numbers for byte offsets.
class LineIndex {
 public:
  explicit LineIndex(std::string_view s) {
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n') newlines_.push_back(i);
    }
  }
  int At(size_t pos) const {
    return static_cast<int>(std::lower_bound(newlines_.begin(), newlines_.end(), pos) -
                            newlines_.begin()) +
           1;
  }

 private:
  std::vector<size_t> newlines_;
};

// One key as rspamd's line reader delivers it.
struct RawKey {
  int line = 0;
  int end_line = 0;  // differs from `line` when an unclosed `/` or `"` ran over lines
  char opener = 0;   // `/` or `"` for keys read up to a closing delimiter
  std::string key;
  std::optional<std::string> value;
  bool comment = false;         // a `#` comment follows on the same line
  bool glued_comment = false;   // ... right after the key, so it cut the key short
  bool dropped_at_eof = false;  // rspamd never stores it: no line end after it
};

struct Scan {
  std::vector<RawKey> keys;
  std::vector<MapHazard> hazards;
};

MapHazard Hazard(MapHazard::Severity severity, int line, std::string code, std::string msg);
inline constexpr MapHazard::Severity kError = MapHazard::Severity::kError;
inline constexpr MapHazard::Severity kWarning = MapHazard::Severity::kWarning;

// The keys of `s` as rspamd_parse_kv_list() delivers them, and what the line reader itself
// gets wrong (unterminated keys, ...).
Scan ScanKv(std::string_view s);

// A key as rspamd_regexp_new_len() splits it.
struct RspamdRegex {
  enum class Form { kBare, kSlashed, kPerl, kNotEnclosed } form = Form::kBare;
  char open = 0;   // the delimiter
  char close = 0;  // the closing delimiter (differs for `{`)
  std::string body;
  std::string tail;  // everything after the closing delimiter: flags, as far as known
};

RspamdRegex SplitLikeRspamd(std::string_view key);

// The flags rspamd reads from a tail, and what compd can make of them.
struct RspamdFlags {
  std::string compd;        // i m s u as rspamd applies them, in compd's order
  std::string used;         // the part of the tail read as flags
  std::string ignored;      // from the first unknown flag on
  bool extended = false;    // `x`: compd cannot express it
  std::string engine_only;  // O, L, r: no effect on what matches (r only undoes u)
};

RspamdFlags ReadFlags(std::string_view tail);

}  // namespace rspamd_syntax
}  // namespace compd

#endif  // COMPD_MAP_RSPAMD_MAP_SYNTAX_H_
