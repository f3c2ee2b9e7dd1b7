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

}  // namespace compd

#endif  // COMPD_BASE_ENCODED_WORDS_H_
