// rspamd map files: reading existing ones with rspamd's own rules (and reporting every
// hazard with file:line), and writing the two files compd owns.
//
// Pure functions plus file I/O; no shared state: safe from any thread, though two
// writers of the same folder race (last rename wins, never a torn file).
//
// Facts measured on rspamd 3.4 that the reader applies:
//  - In a `regexp = true` map a bare line is an unanchored, case-sensitive regex
//    (`a.b@x.com` matches `zzza.b@x.com.evil`, not `A.B@X.COM`).
//  - A bare line starting with `m` plus punctuation is a Perl `m...` regex:
//    `m.smith@example.com` is the regex `smith@example`.
//  - Text after the first whitespace is a value; multimap reads it as a symbol name.
//    (From rspamd's source, not measured: between the slashes of a `/re/` key blanks and
//    `#` belong to the regex, and a `/` without its closing `/` on the same line runs
//    over line ends up to the next `/`.)
//  - An inline `#` starts a comment unless escaped as `\#`.
//  - Duplicates are dropped case-insensitively (the first one stays).
//  - A final `/re/` line without a trailing newline is silently dropped.
//  - Unknown flags stop flag parsing (that flag and the ones after it are ignored).
//  - One pattern Hyperscan cannot compile switches the whole map to PCRE2.
//  - A plain map (`regexp = false`) is an exact, ASCII case-insensitive lookup.
#ifndef COMPD_MAP_RSPAMD_MAP_H_
#define COMPD_MAP_RSPAMD_MAP_H_


#include <string>
#include <string_view>
#include <vector>

#include "compd/base/status.h"
#include "compd/map/entry.h"

namespace compd {

// File names compd writes, in the folder given by the operator.
inline constexpr const char* kExactMapFile = "compd_rcpt.map";
inline constexpr const char* kPatternMapFile = "compd_rcpt_re.map";

enum class MapKind { kRegexp, kPlain };

struct MapHazard {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kWarning;
  int line = 0;         // 1-based; 0 for the whole file
  std::string code;     // stable id: "bare-regex", "m-trap", "value", "duplicate",
                        // "no-final-newline", "unknown-flag", "invalid-regex",
                        // "hyperscan-incompatible", "inline-comment", "ignored-flag",
                        // "unsupported-flag", "unterminated", "not-address"
  std::string message;  // human text without the location
  // "file:line: message", as printed by mapctl lint.
  std::string Format(std::string_view file) const;
};

// One line rspamd keeps as a key, and what compd makes of it.
struct MapLine {
  int line = 0;
  std::string key;         // the key as rspamd reads it (a regex body, an address, ...)
  bool converted = false;  // true when `entry` holds compd's equivalent entry
  Entry entry;
  // Non-empty when `entry` does not mean exactly what rspamd made of the line, e.g.
  // "bare regex `a.b@x.com` (unanchored, case-sensitive) becomes the exact entry
  // a.b@x.com (whole address, case-insensitive)".
  std::string meaning_change;
};

struct MapReadResult {
  std::vector<MapLine> lines;      // in file order, after rspamd's duplicate removal
  std::vector<MapHazard> hazards;  // in line order
  bool has_errors() const;
};

// Reads map `contents` with rspamd's rules for a map of `kind`. Never fails on content:
// problems become hazards. Lines that cannot be converted have converted == false.
MapReadResult ReadRspamdMap(std::string_view contents, MapKind kind);
// Same for a file; kIoError if it cannot be read.
Status ReadRspamdMapFile(const std::string& path, MapKind kind, MapReadResult* out);

// The exact map: canonical addresses, sorted, unique, one per line, newline-terminated,
// no values, no comments but a header line starting with `#`.
std::string FormatExactMap(const std::vector<Entry>& entries);
// The pattern map: `/regex/flags` lines, sorted, unique, newline-terminated, no values.
std::string FormatPatternMap(const std::vector<Entry>& entries);

// Writes kExactMapFile and kPatternMapFile into `dir` atomically (each file on its own,
// through WriteFileAtomically).
Status WriteMapFiles(const std::string& dir, const std::vector<Entry>& entries);
// The same from the entries' texts (a snapshot's Matcher::ExactTexts and PatternTexts):
// a million lines without a copy of each.
Status WriteMapFiles(const std::string& dir, std::vector<std::string_view> exact,
                     std::vector<std::string_view> patterns);

}  // namespace compd

#endif  // COMPD_MAP_RSPAMD_MAP_H_
