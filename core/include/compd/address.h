// Addresses: turn what an MTA or a header gives us into the string rspamd would match,
// and into the canonical form used for exact lookups.
//
// Pure functions, no state: safe from any thread. Every parser is linear in its input,
// never reads past it and never throws on garbage.
#ifndef COMPD_ADDRESS_H_
#define COMPD_ADDRESS_H_

#include <string>
#include <string_view>
#include <vector>

#include "compd/status.h"

namespace compd {

// An envelope address as an MTA passes it (RCPT TO argument or a milter macro):
// `<user@dom>`, `user@dom`, `<@a,@b:u@x>`, `"john doe"@x.com`, `u@[192.0.2.1]`, UTF-8.
// Produces the address string rspamd's `filter = "email"` would match (verified on
// rspamd 3.4): angle brackets and source route removed, quotes around the local part
// removed (`"john doe"@x.com` -> `john doe@x.com`), case kept, `+tag` kept, address
// literals kept. ESMTP parameters after the closing `>` are ignored.
// kInvalid for an empty address (`<>`) or one that is not an address at all.
Status EnvelopeAddress(std::string_view raw, std::string* out);

// Options for canonicalisation, all off by default (rspamd's plain maps only lower-case).
struct CanonOptions {
  // `user+tag@dom` -> `user@dom`.
  bool strip_subaddress = false;
  // For gmail.com and googlemail.com: remove dots in the local part.
  bool gmail_dots = false;
};

// Canonical form for exact lookups: ASCII lower-case of the whole address (bytes >= 0x80
// untouched, as rspamd's plain maps compare), then the optional rewrites above.
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
// bare addr-specs, `<addr>` alone, whitespace around `@`. Malformed parts are skipped.
std::vector<HeaderAddress> ParseAddressList(std::string_view header_value);

// Addresses that appear inside a display name (spammers write
// `"serv...@paypal.com" <engineering@customer.example>`). Each is a LooksLikeAddress token.
std::vector<std::string> AddressesInText(std::string_view text);

}  // namespace compd

#endif  // COMPD_ADDRESS_H_
