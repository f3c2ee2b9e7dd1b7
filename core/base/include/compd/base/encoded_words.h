// RFC 2047 encoded words (`=?utf-8?B?...?=`) in header text, decoded to UTF-8.
//
// Pure function; safe from any thread. Linear in its input, never throws on garbage.
#ifndef COMPD_BASE_ENCODED_WORDS_H_
#define COMPD_BASE_ENCODED_WORDS_H_

#include <string>
#include <string_view>

namespace compd {

// Decodes every encoded word in `s`, B and Q, also inside what was a quoted string (as
// common mail readers do). Charsets utf-8/us-ascii and iso-8859-1/latin1 (an RFC 2231
// language suffix `utf-8*en` allowed) come out as UTF-8; words in other charsets, and
// malformed ones, are left as raw text (better than mojibake). Whitespace between two
// adjacent encoded words is dropped (RFC 2047 6.2); everything else is copied as it is.
std::string DecodeEncodedWords(std::string_view s);

// A Subject value as the detection signals compare it, whoever read it: unfolded (CR and
// LF dropped), encoded words decoded, tabs and other control characters as blanks, blanks
// trimmed at both ends, at most `max_bytes` of the raw value read. The MTAs' logs hold
// the subject decoded (Exim's T=, Postfix's header warnings), so live messages must be
// decoded too for live and replay to score the same. Allocates only the result.
std::string SubjectText(std::string_view raw, size_t max_bytes = 998);

// SubjectText's clean-up alone, in place, for a subject a log already holds decoded:
// unfolded, control characters as blanks, blanks trimmed at both ends.
void CleanSubject(std::string* subject);

}  // namespace compd

#endif  // COMPD_BASE_ENCODED_WORDS_H_
