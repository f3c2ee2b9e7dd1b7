// Fuzz target: envelope addresses as an MTA passes them (EnvelopeAddress), the canonical
// form used for exact lookups (CanonicalAddress, every option combination) and
// LooksLikeAddress.
//
// Properties checked:
//  - on failure the output is untouched and the status is kInvalid with a reason;
//  - on success the address has a non-empty local part and domain and no control
//    character, and is never longer than the input;
//  - normalising is stable: an address EnvelopeAddress produced that is itself a plain
//    address (LooksLikeAddress, local part not quoted) comes back unchanged;
//  - CanonicalAddress is idempotent, never grows its input and leaves no ASCII upper case.
#include "compd/map/envelope_address.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "compd/map/address.h"
#include "fuzz_check.h"

namespace {

using compd_fuzz::Escaped;

void CheckCanonical(std::string_view in) {
  for (int bits = 0; bits < 4; ++bits) {
    compd::CanonOptions o;
    o.strip_subaddress = (bits & 1) != 0;
    o.gmail_dots = (bits & 2) != 0;
    const std::string c = compd::CanonicalAddress(in, o);
    FUZZ_CHECK_MSG(c.size() <= in.size(), Escaped(in) + " -> " + Escaped(c));
    FUZZ_CHECK_MSG(!compd_fuzz::HasAsciiUpper(c), Escaped(c));
    const std::string again = compd::CanonicalAddress(c, o);
    FUZZ_CHECK_MSG(again == c, "options " + std::to_string(bits) + ": " + Escaped(in) + " -> " +
                                   Escaped(c) + " -> " + Escaped(again));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in = compd_fuzz::AsText(data, size);
  const std::string kUntouched = "\x01untouched";
  std::string out = kUntouched;
  const compd::Status s = compd::EnvelopeAddress(in, &out);
  if (!s.ok()) {
    FUZZ_CHECK(s.IsInvalid());
    FUZZ_CHECK(!s.message().empty());
    FUZZ_CHECK_MSG(out == kUntouched, Escaped(out));
  } else {
    const size_t at = out.rfind('@');
    FUZZ_CHECK_MSG(at != std::string::npos && at > 0 && at + 1 < out.size(), Escaped(out));
    FUZZ_CHECK_MSG(!compd_fuzz::HasControl(out), Escaped(in) + " -> " + Escaped(out));
    FUZZ_CHECK(out.size() <= in.size());
    if (out.front() != '"' && compd::LooksLikeAddress(out)) {
      std::string again;
      const compd::Status s2 = compd::EnvelopeAddress(out, &again);
      FUZZ_CHECK_MSG(s2.ok(), Escaped(in) + " -> " + Escaped(out) + ": " + s2.ToString());
      FUZZ_CHECK_MSG(again == out, Escaped(in) + " -> " + Escaped(out) + " -> " + Escaped(again));
    }
    CheckCanonical(out);
  }
  CheckCanonical(in);

  if (compd::LooksLikeAddress(in)) {
    FUZZ_CHECK(in.find('@') != std::string_view::npos);
    FUZZ_CHECK_MSG(!compd_fuzz::HasControl(in), Escaped(in));
  }
  return 0;
}
