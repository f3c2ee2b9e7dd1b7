// Base64 decoding (RFC 4648 alphabet), in the two flavours compd needs. Pure functions;
// safe from any thread.
#ifndef COMPD_BASE_BASE64_H_
#define COMPD_BASE_BASE64_H_

#include <string>
#include <string_view>

namespace compd {

// Strict, for credentials (HTTP Basic): padding optional, false on any other character
// or a length no encoder produces.
bool DecodeBase64(std::string_view in, std::string* out);

// Lenient like mail readers, for RFC 2047 encoded words: characters outside the alphabet
// are skipped, '=' ends the text.
std::string DecodeBase64Lenient(std::string_view in);

}  // namespace compd

#endif  // COMPD_BASE_BASE64_H_
