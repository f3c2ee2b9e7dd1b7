// Envelope addresses (RFC 5321): turn what an MTA passes (an RCPT TO argument or a milter
// macro) into the string rspamd would match.
//
// Pure function, no state: safe from any thread. Linear in its input, never reads past it
// and never throws on garbage.
#ifndef COMPD_MAP_ENVELOPE_ADDRESS_H_
#define COMPD_MAP_ENVELOPE_ADDRESS_H_

#include <string>
#include <string_view>

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

}  // namespace compd

#endif  // COMPD_MAP_ENVELOPE_ADDRESS_H_
