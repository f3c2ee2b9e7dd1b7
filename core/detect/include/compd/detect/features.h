// Features: what the detection signals look at in one message, as pure functions. They
// read only their arguments; safe from any thread.
//
// Each returns a small value that also serves as evidence, so a reaction can say why
// ("helo": "localhost", "subject": "random: 3 of 3 words mix case or digits").
#ifndef COMPD_DETECT_FEATURES_H_
#define COMPD_DETECT_FEATURES_H_

#include <string>
#include <string_view>

namespace compd {

// How a HELO/EHLO name looks. Credential testers say `localhost`, an address literal or a
// bare word; mail clients usually give a host name with dots (or a Windows machine name,
// which is a bare word too, and so weighs less). A literal of a private or loopback
// address is what a mail client behind a home router or in an office LAN says (Thunderbird
// announces its LAN address), so it is kept apart from a public literal (a bot naming itself).
enum class HeloKind { kUnknown, kHostName, kLocalhost, kLiteral, kBareWord, kPrivateLiteral };
HeloKind ClassifyHelo(std::string_view helo);
const char* HeloKindName(HeloKind kind);
// test_message's points for a HELO kind: localhost or a public literal 2, a bare word or a
// private literal 1, anything else 0.
int HeloPoints(HeloKind kind);

// Is `ip` (IPv4 or IPv6 text) loopback, private (RFC 1918, unique-local), link-local or
// carrier-grade shared space (100.64/10)? Such a client is the provider's own host (webmail
// submits from 127.0.0.1) or an internal relay, never a customer's network. Bad text: false.
bool PrivateAddress(std::string_view ip);

// Does a subject look like random characters (the thread's `ZYaeD, X `, `wFd2, MkRWa2 A`)?
// A subject is random when it is short (at most 48 bytes), has no word of 4 or more
// lower-case letters after an optional capital (real words), and at least one word mixes
// case inside it (`ZYaeD`, `MkRWa2`) or letters with digits (`wFd2`). Empty: not random
// (unknown). `why` (optional) receives a short reason when it returns true.
bool RandomLookingSubject(std::string_view subject, std::string* why = nullptr);

// The domain of an address, lower case ("" when there is no '@').
std::string DomainOf(std::string_view address);

// Two domains belong together when one equals or is a subdomain of the other
// (`mail.example.com` and `example.com`).
bool SameDomainFamily(std::string_view a, std::string_view b);

// Display-name spoofing in a From or To header value.
struct SpoofFinding {
  bool found = false;
  std::string header;   // "from" | "to"
  std::string display;  // the address inside the display name
  std::string address;  // the real address
};
// From: the display name holds an address whose domain is not the real address' domain
// family (`"serv...@paypal.com" <engineering@customer.example>`).
SpoofFinding FromDisplaySpoof(std::string_view from_header);
// To: a display name holds an address other than the real one (case-insensitive).
SpoofFinding ToDisplaySpoof(std::string_view to_header);

}  // namespace compd

#endif  // COMPD_DETECT_FEATURES_H_
