// PatternSpec: how a `/regex/flags` entry is handed to RE2 so that it means what it means
// in rspamd (Hyperscan). Declared in entry.h; lives apart from ParseEntry because only the
// matcher (and ParseEntry's compile check) need it.

#include <string>

#include "compd/map/entry.h"

namespace compd {

CompiledPatternSpec PatternSpec(const Entry& entry) {
  // Inline flags instead of RE2::Options so that patterns with different flags can share
  // one RE2::Set. RE2 reads them as Perl does: (?i) case-insensitive, (?m) ^ and $ also
  // match at line breaks, (?s) dot matches \n. A flag group at the very start applies to
  // the whole regex, top-level alternatives included, and needs no closing parenthesis,
  // so it cannot interact with the body's own groups. Emitted in one fixed order so equal
  // flag sets give equal pattern strings whatever order the entry spelled them in.
  bool i = false, m = false, s = false, u = false;
  for (char f : entry.flags) {
    switch (f) {
      case 'i':
        i = true;
        break;
      case 'm':
        m = true;
        break;
      case 's':
        s = true;
        break;
      case 'u':
        u = true;
        break;
      default:
        break;  // ParseEntry rejects anything else; nothing to add here
    }
  }
  CompiledPatternSpec spec;
  spec.utf8 = u;
  if (i || m || s) {
    spec.pattern = "(?";
    if (i) spec.pattern += 'i';
    if (m) spec.pattern += 'm';
    if (s) spec.pattern += 's';
    spec.pattern += ')';
  }
  spec.pattern += entry.regex;
  return spec;
}

}  // namespace compd
