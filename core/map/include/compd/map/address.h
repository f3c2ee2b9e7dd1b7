// Addresses: turn what an MTA or a header gives us into the string rspamd would match,
// and into the canonical form used for exact lookups.
//
// Pure functions, no state: safe from any thread. Every parser is linear in its input,
// never reads past it and never throws on garbage.
#ifndef COMPD_MAP_ADDRESS_H_
#define COMPD_MAP_ADDRESS_H_

#include <string>
#include <string_view>
#include <vector>

#include "compd/base/status.h"

namespace compd {

// An envelope address as an MTA passes it (RCPT TO argument or a milter macro):
// `<user@dom>`, `user@dom`, `<@a,@b:u@x>`, `"john doe"@x.com`, `u@[192.0.2.1]`, UTF-8.
// Produces the address string rspamd's `filter = "email"` would match (verified on
// rspamd 3.4): angle brackets and source route removed, quotes around the local part
// removed (`"john doe"@x.com` -> `john doe@x.com`), case kept, `+tag` kept, address
// literals kept, UTF-8 bytes kept (rspamd 3.4 itself refuses envelope recipients with
// non-ASCII bytes and scans without them, so for SMTPUTF8 recipients compd-milter is the
// only guard; see docs/rspamd.md). Quoted pairs in the local part are unescaped
// (`"a\"b"@x` -> `a"b@x`). Surrounding blanks are trimmed; ESMTP parameters after the
// closing `>` (or after the first blank when there are no brackets) are ignored.
// kInvalid, with a short reason, for `<>`, an empty string, no `@`, an empty local part or
// domain, unbalanced `<>`/quotes/`[]`, a control character (CR, LF, NUL, ...) or an
// unquoted special character (space, `,`, `<` ...) in the address. `*out` is only written
// on success.
Status EnvelopeAddress(std::string_view raw, std::string* out);

// Options for canonicalisation, all off by default (rspamd's plain maps only lower-case).
// They defeat trivial evasion, but turning one on makes compd match more than rspamd's
// plain map would for the same entry, so it is a per-setting choice.
struct CanonOptions {
  // `user+tag@dom` -> `user@dom`. Only the first `+` of the local part counts
  // (`a+b+c@x` -> `a@x`); a local part that starts with `+` is kept as it is.
  bool strip_subaddress = false;
  // For the domains gmail.com and googlemail.com only (exact, after lower-casing;
  // subdomains do not count): remove every `.` in the local part (`j.doe@gmail.com` ->
  // `jdoe@gmail.com`), because Gmail ignores them.
  bool gmail_dots = false;
};

// Canonical form for exact lookups: ASCII lower-case of the whole address (bytes >= 0x80
// untouched, as rspamd's plain maps compare), then strip_subaddress, then gmail_dots.
// The local part is everything before the last `@` (a quoted local part may hold `@`).
std::string CanonicalAddress(std::string_view address, const CanonOptions& options = {});

// True when `s` is a plain `local@domain` address: exactly one unquoted `@`, non-empty
// local part and domain, no whitespace, no control characters, no angle brackets.
bool LooksLikeAddress(std::string_view s);

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

// Addresses that appear inside a display name (spammers write
// `"serv...@paypal.com" <engineering@customer.example>`). Each is a LooksLikeAddress token.
// Tokens are split at blanks, control characters and `<>(),;:"`; quotes, `[`/`]` and
// trailing `.!?` hugging a token are stripped. In order, duplicates kept.
std::vector<std::string> AddressesInText(std::string_view text);

// An unstructured header value (Subject) with its encoded words decoded as in display
// names (B and Q; utf-8/us-ascii and iso-8859-1/latin1 to UTF-8, other charsets left raw;
// blanks between two encoded words dropped). For MTA logs that keep the raw header
// (Postfix) next to those that decode it (Exim's T=).
std::string DecodeHeaderText(std::string_view value);

}  // namespace compd

#endif  // COMPD_MAP_ADDRESS_H_
