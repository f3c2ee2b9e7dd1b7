// Plain addresses (`local@domain`): which characters they hold, how to recognise one and
// find them in free text, and the canonical form used for exact lookups. The grammars
// that produce them live beside it: envelope_address.h (RFC 5321, what an MTA passes) and
// address_list.h (RFC 5322, To/Cc headers).
//
// Pure functions, no state: safe from any thread. Linear in their input, never read past
// it and never throw on garbage.
#ifndef COMPD_MAP_ADDRESS_H_
#define COMPD_MAP_ADDRESS_H_

#include <string>
#include <string_view>
#include <vector>

namespace compd {

// RFC 5322 atext (printable ASCII but space, '.' and the specials `()<>[]:;@\,"`) plus any
// byte >= 0x80 (SMTPUTF8, RFC 6532). IsAtomOrDot also takes '.', which dot-atoms allow
// between atoms.
bool IsAtext(char c);
bool IsAtomOrDot(char c);

// True when `s` is a plain `local@domain` address: exactly one unquoted `@`, non-empty
// local part and domain, no whitespace, no control characters, no angle brackets.
bool LooksLikeAddress(std::string_view s);

// Addresses that appear inside a display name (spammers write
// `"serv...@paypal.com" <engineering@customer.example>`). Each is a LooksLikeAddress token.
// Tokens are split at blanks, control characters and `<>(),;:"`; quotes, `[`/`]` and
// trailing `.!?` hugging a token are stripped. In order, duplicates kept.
std::vector<std::string> AddressesInText(std::string_view text);

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

}  // namespace compd

#endif  // COMPD_MAP_ADDRESS_H_
