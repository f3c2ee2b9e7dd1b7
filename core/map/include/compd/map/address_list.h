// Address lists (RFC 5322): every address in a To/Cc header value, with its display name.
//
// Pure function, no state: safe from any thread. One forward pass, linear in its input,
// no recursion, never throws on garbage.
#ifndef COMPD_MAP_ADDRESS_LIST_H_
#define COMPD_MAP_ADDRESS_LIST_H_

#include <string>
#include <string_view>
#include <vector>

namespace compd {

// One address found in a To/Cc header.
struct HeaderAddress {
  std::string address;       // the addr-spec, as EnvelopeAddress would produce it
  std::string display_name;  // decoded (RFC 2047 UTF-8/ASCII/Latin-1), unquoted; may be empty
};

// Every addr-spec in an RFC 5322 address-list header value (To, Cc, ...), in order,
// including obsolete syntax: quoted display names with commas, comments, groups
// (`undisclosed-recipients:;`, `team: a@x, b@y;`), folded lines, encoded words,
// bare addr-specs, `<addr>` alone, whitespace and comments around `@` and dots
// (`john . doe @ example . com` -> `john.doe@example.com`), obs-route inside `<>`.
// Addresses come out as EnvelopeAddress would produce them (quoted local part unquoted,
// case and `+tag` kept). Display names: quoted strings unquoted, comments dropped, folding
// and runs of blanks collapsed to one space, control characters turned into spaces,
// encoded words (B and Q; utf-8/us-ascii and iso-8859-1/latin1, also inside quotes)
// decoded to UTF-8, other charsets left as raw text. A bare `addr (Name)` takes the
// comment as its display name (so does `(Name) <addr>`). Malformed parts (no `@`,
// unclosed `<`, two addresses without a comma, an unterminated quote or comment, which
// runs to the end) are skipped and parsing resumes at the next `,` or `;`. One forward
// pass, no recursion.
std::vector<HeaderAddress> ParseAddressList(std::string_view header_value);

}  // namespace compd

#endif  // COMPD_MAP_ADDRESS_LIST_H_
