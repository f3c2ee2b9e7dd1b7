// Fuzz target: the To/Cc header parser (ParseAddressList) and the search for addresses
// hidden in display names (AddressesInText), as the milter chains them on every message.
//
// Besides "no crash, no read past the input" (ASan, libstdc++ assertions) it checks what
// the milter relies on:
//  - every address has exactly the shape of an addr-spec: non-empty local part and
//    domain around an '@', no control character (CR/LF/NUL never reach logs or lookups);
//  - a plain address found in a header is what EnvelopeAddress makes of the same text, so
//    a header hit and an envelope hit mean the same entry;
//  - display names are clean: no control character, no leading, trailing or double blank;
//  - output is bounded by the input (no blow-up an attacker could use for memory);
//  - AddressesInText returns LooksLikeAddress substrings of its input.
#include "compd/map/address_list.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "compd/map/address.h"
#include "compd/map/envelope_address.h"
#include "fuzz_check.h"

namespace {

using compd_fuzz::Escaped;
using compd_fuzz::HasControl;

void CheckTextAddresses(std::string_view text) {
  for (const std::string& a : compd::AddressesInText(text)) {
    FUZZ_CHECK_MSG(compd::LooksLikeAddress(a), Escaped(a));
    FUZZ_CHECK_MSG(text.find(a) != std::string_view::npos, Escaped(a));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in = compd_fuzz::AsText(data, size);
  const std::vector<compd::HeaderAddress> list = compd::ParseAddressList(in);

  FUZZ_CHECK(list.size() <= compd_fuzz::Count(in, '@'));
  size_t total = 0;
  for (const compd::HeaderAddress& h : list) {
    const std::string& a = h.address;
    total += a.size() + h.display_name.size();
    const size_t at = a.rfind('@');
    FUZZ_CHECK_MSG(at != std::string::npos && at > 0 && at + 1 < a.size(), Escaped(a));
    FUZZ_CHECK_MSG(!HasControl(a), Escaped(a));

    if (a.front() != '"' && compd::LooksLikeAddress(a)) {
      std::string env;
      compd::Status s = compd::EnvelopeAddress(a, &env);
      FUZZ_CHECK_MSG(s.ok(), Escaped(a) + ": " + s.ToString());
      FUZZ_CHECK_MSG(env == a, Escaped(a) + " -> " + Escaped(env));
    }

    const std::string& name = h.display_name;
    FUZZ_CHECK_MSG(!HasControl(name), Escaped(name));
    FUZZ_CHECK_MSG(name.empty() || (name.front() != ' ' && name.back() != ' '), Escaped(name));
    FUZZ_CHECK_MSG(name.find("  ") == std::string::npos, Escaped(name));
    CheckTextAddresses(name);
  }
  // Addresses use disjoint parts of the input; decoding a Latin-1 encoded word at most
  // doubles its bytes, and joining words adds a blank where the input had one.
  FUZZ_CHECK(total <= 3 * size);

  CheckTextAddresses(in);
  return 0;
}
