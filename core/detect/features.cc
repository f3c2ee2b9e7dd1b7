#include "compd/detect/features.h"

#include <cctype>

#include "compd/base/net.h"
#include "compd/base/text.h"
#include "compd/map/address.h"
#include "compd/map/address_list.h"

namespace compd {

namespace {

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Only a display name holds the address the spoof checks look for, and only a name-addr
// (`Name <addr>`) or a comment has one; that address needs an '@' besides the real one's
// (raw, or inside an encoded word). Headers without all that (most) are not parsed.
bool MayHoldDisplayAddress(std::string_view header) {
  if (header.find_first_of("<(") == std::string_view::npos) return false;
  if (header.find("=?") != std::string_view::npos) return true;
  size_t at = header.find('@');
  return at != std::string_view::npos && header.find('@', at + 1) != std::string_view::npos;
}

}  // namespace

HeloKind ClassifyHelo(std::string_view helo) {
  while (!helo.empty() && (helo.back() == ' ' || helo.back() == '.')) helo.remove_suffix(1);
  while (!helo.empty() && helo.front() == ' ') helo.remove_prefix(1);
  if (helo.empty()) return HeloKind::kUnknown;
  if (helo.front() == '[') {
    std::string_view inside = helo.substr(1);
    if (!inside.empty() && inside.back() == ']') inside.remove_suffix(1);
    if (StartsWithIgnoreAsciiCase(inside, "ipv6:")) inside.remove_prefix(5);
    return PrivateAddress(inside) ? HeloKind::kPrivateLiteral : HeloKind::kLiteral;
  }
  // Compared without a lower-case copy: this runs for most messages.
  const std::string_view l = helo;
  if (EqualsIgnoreAsciiCase(l, "localhost") || StartsWithIgnoreAsciiCase(l, "localhost.")) {
    return HeloKind::kLocalhost;
  }
  bool digits_and_dots = true, colon = false;
  for (char c : l) {
    if (c == ':') colon = true;
    if (!IsDigit(c) && c != '.') digits_and_dots = false;
  }
  if (colon || (digits_and_dots && l.find('.') != std::string_view::npos)) {
    return PrivateAddress(l) ? HeloKind::kPrivateLiteral : HeloKind::kLiteral;
  }
  if (l.find('.') == std::string_view::npos) return HeloKind::kBareWord;
  return HeloKind::kHostName;
}

const char* HeloKindName(HeloKind kind) {
  switch (kind) {
    case HeloKind::kHostName:
      return "host name";
    case HeloKind::kLocalhost:
      return "localhost";
    case HeloKind::kLiteral:
      return "address literal";
    case HeloKind::kBareWord:
      return "bare word";
    case HeloKind::kPrivateLiteral:
      return "private address literal";
    case HeloKind::kUnknown:
      break;
  }
  return "unknown";
}

int HeloPoints(HeloKind kind) {
  switch (kind) {
    case HeloKind::kLocalhost:
    case HeloKind::kLiteral:
      return 2;
    case HeloKind::kBareWord:
    case HeloKind::kPrivateLiteral:
      return 1;
    case HeloKind::kHostName:
    case HeloKind::kUnknown:
      break;
  }
  return 0;
}

bool PrivateAddress(std::string_view ip) {
  // Built once, never changed: the same list own_networks defaults to.
  static const std::vector<Cidr> kPrivate = PrivateNetworks();
  return InNetworks(kPrivate, ip);
}

bool RandomLookingSubject(std::string_view subject, std::string* why) {
  if (subject.empty() || subject.size() > 48) return false;
  int words = 0, odd = 0;
  size_t i = 0;
  while (i < subject.size()) {
    while (i < subject.size() && !std::isalnum(static_cast<unsigned char>(subject[i]))) {
      // Non-ASCII text (most languages' subjects) is not judged: not random.
      if (static_cast<unsigned char>(subject[i]) >= 0x80) return false;
      ++i;
    }
    size_t start = i;
    while (i < subject.size() && std::isalnum(static_cast<unsigned char>(subject[i]))) ++i;
    std::string_view w = subject.substr(start, i - start);
    if (w.empty()) continue;
    ++words;
    // A real word: optional capital, then 3+ lower-case letters only ("Invoice", "hello").
    size_t k = IsUpper(w[0]) ? 1 : 0;
    bool all_lower = w.size() - k >= 3;
    for (size_t j = k; j < w.size() && all_lower; ++j) all_lower = IsLower(w[j]);
    if (all_lower) return false;
    bool lower = false, digit = false, letter = false, case_flip = false;
    for (size_t j = 0; j < w.size(); ++j) {
      if (IsDigit(w[j])) digit = true;
      if (IsLower(w[j]) || IsUpper(w[j])) letter = true;
      if (IsLower(w[j])) lower = true;
      if (IsUpper(w[j]) && lower) case_flip = true;
    }
    if (case_flip || (digit && letter)) ++odd;
  }
  if (odd == 0) return false;
  if (why != nullptr) {
    *why = std::to_string(odd) + " of " + std::to_string(words) +
           " words mix case or digits, none is a word";
  }
  return true;
}

std::string DomainOf(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos) return "";
  return Lower(address.substr(at + 1));
}

bool SameDomainFamily(std::string_view a, std::string_view b) {
  std::string x = Lower(a), y = Lower(b);
  if (x == y) return true;
  auto sub = [](const std::string& s, const std::string& parent) {
    return s.size() > parent.size() &&
           s.compare(s.size() - parent.size(), parent.size(), parent) == 0 &&
           s[s.size() - parent.size() - 1] == '.';
  };
  return sub(x, y) || sub(y, x);
}

namespace {

// The first address shown in a display name of `header` that `differs` from the real one
// (the display-name spoof of the From and of the To field).
template <typename Differs>
SpoofFinding FirstShownAddress(std::string_view header, const char* name, Differs differs) {
  SpoofFinding f;
  if (!MayHoldDisplayAddress(header)) return f;
  for (const HeaderAddress& h : ParseAddressList(header)) {
    for (const std::string& shown : AddressesInText(h.display_name)) {
      if (!differs(shown, h.address)) continue;
      f.found = true;
      f.header = name;
      f.display = shown;
      f.address = h.address;
      return f;
    }
  }
  return f;
}

}  // namespace

SpoofFinding FromDisplaySpoof(std::string_view from_header) {
  // Another domain than the real address's (a subdomain or parent counts as the same).
  return FirstShownAddress(from_header, "from",
                           [](const std::string& shown, const std::string& address) {
                             const std::string real = DomainOf(address);
                             return !real.empty() && !SameDomainFamily(DomainOf(shown), real);
                           });
}

SpoofFinding ToDisplaySpoof(std::string_view to_header) {
  // Any other address than the real one.
  return FirstShownAddress(to_header, "to",
                           [](const std::string& shown, const std::string& address) {
                             return Lower(shown) != Lower(address);
                           });
}

}  // namespace compd
