// Plain addresses: their characters, the check, the scan of free text and the canonical
// form. Every loop moves forward only.
#include "compd/map/address.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "compd/base/text.h"

namespace compd {
namespace {

// RFC 5322 specials (without '.', which dot-atoms allow between atoms).
bool IsSpecial(char c) {
  switch (c) {
    case '(':
    case ')':
    case '<':
    case '>':
    case '[':
    case ']':
    case ':':
    case ';':
    case '@':
    case '\\':
    case ',':
    case '"':
      return true;
    default:
      return false;
  }
}

bool IsTextDelimiter(char c) {
  switch (c) {
    case '<':
    case '>':
    case '(':
    case ')':
    case ',':
    case ';':
    case ':':
    case '"':
      return true;
    default:
      return IsBlankOrEol(c) || IsAsciiControl(c);
  }
}

}  // namespace

// atext plus '.', plus any byte >= 0x80 (SMTPUTF8, RFC 6532).
bool IsAtomOrDot(char c) {
  if (static_cast<unsigned char>(c) >= 0x80) return true;
  return !IsAsciiControl(c) && c != ' ' && !IsSpecial(c);
}

bool IsAtext(char c) { return c != '.' && IsAtomOrDot(c); }

std::string CanonicalAddress(std::string_view address, const CanonOptions& options) {
  std::string out(address.size(), '\0');
  for (size_t i = 0; i < address.size(); ++i) out[i] = AsciiLower(address[i]);
  size_t at = out.rfind('@');  // a quoted local part may hold '@'; a domain never does
  if (at == std::string::npos) return out;
  // Every recipient of every message comes through here: the usual address, with nothing
  // to strip, costs the one lower-cased copy.
  const std::string_view domain = std::string_view(out).substr(at + 1);
  const bool gmail = options.gmail_dots && (domain == "gmail.com" || domain == "googlemail.com");
  size_t local_end = at;
  if (options.strip_subaddress) {
    const size_t plus = out.find('+');
    if (plus != std::string::npos && plus > 0 && plus < at) local_end = plus;
  }
  if (!gmail && local_end == at) return out;
  std::string local = out.substr(0, local_end);
  if (gmail) {
    std::string undotted;
    for (char c : local) {
      if (c != '.') undotted.push_back(c);
    }
    if (!undotted.empty()) local = std::move(undotted);
  }
  return local + out.substr(at);
}

bool LooksLikeAddress(std::string_view s) {
  const size_t n = s.size();
  size_t i = 0;
  if (n == 0) return false;
  if (s[0] == '"') {
    i = 1;
    size_t content = 0;
    for (;;) {
      if (i >= n) return false;
      char c = s[i];
      if (IsAsciiControl(c) || IsBlankOrEol(c)) return false;
      if (c == '\\') {
        if (i + 1 >= n || IsAsciiControl(s[i + 1]) || IsBlankOrEol(s[i + 1])) {
          return false;
        }
        i += 2;
        ++content;
        continue;
      }
      ++i;
      if (c == '"') break;
      ++content;
    }
    if (content == 0 || i >= n || s[i] != '@') return false;
  } else {
    for (; i < n && s[i] != '@'; ++i) {
      if (!IsAtomOrDot(s[i])) return false;
    }
    if (i == 0 || i >= n) return false;
  }
  std::string_view domain = s.substr(i + 1);
  if (domain.empty()) return false;
  if (domain.front() == '[') {
    if (domain.size() < 3 || domain.back() != ']') return false;
    for (char c : domain.substr(1, domain.size() - 2)) {
      if (IsAsciiControl(c) || IsBlankOrEol(c) || c == '[' || c == ']' || c == '\\') {
        return false;
      }
    }
    return true;
  }
  // Text is full of `@handles`; insisting on non-empty labels keeps `a@.`, `a@b..c` out.
  bool label_empty = true;
  for (char c : domain) {
    if (c == '.') {
      if (label_empty) return false;
      label_empty = true;
    } else if (IsAtext(c)) {
      label_empty = false;
    } else {
      return false;
    }
  }
  return !label_empty;
}

std::vector<std::string> AddressesInText(std::string_view text) {
  std::vector<std::string> found;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && IsTextDelimiter(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && !IsTextDelimiter(text[i])) ++i;
    std::string_view tok = text.substr(start, i - start);
    // Quotes, brackets and sentence punctuation that hug the address are not part of it.
    while (!tok.empty() && (tok.front() == '\'' || tok.front() == '[')) tok.remove_prefix(1);
    while (!tok.empty() &&
           (tok.back() == '\'' || tok.back() == '.' || tok.back() == '!' || tok.back() == '?')) {
      tok.remove_suffix(1);
    }
    if (LooksLikeAddress(tok)) {
      found.emplace_back(tok);
    } else if (!tok.empty() && tok.back() == ']' &&
               LooksLikeAddress(tok.substr(0, tok.size() - 1))) {
      found.emplace_back(tok.substr(0, tok.size() - 1));
    }
  }
  return found;
}

}  // namespace compd
