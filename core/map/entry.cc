#include "compd/map/entry.h"

#include <cctype>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "compd/base/text.h"
#include "compd/map/address.h"
#include "compd/map/envelope_address.h"
#include "compd/map/pattern.h"

namespace compd {
namespace {

// A regex that matches exactly `s`, written so it fits on an rspamd map line.
std::string LiteralRegex(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '@' || c == '-' || c == '_' || c >= 0x80) {
      out += ch;
    } else if (c <= 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += '\\';
      out += ch;
    }
  }
  return out;
}

std::string WhyNotAnAddress(std::string_view s) {
  size_t ats = 0;
  for (char c : s) ats += c == '@';
  if (ats == 0) return "not an address: no '@'";
  if (s.front() == '@') return "not an address: nothing before '@'";
  if (s.back() == '@') return "not an address: nothing after '@'";
  return "not an address";
}

bool HasUnquotedSpace(std::string_view s) {
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (quoted && s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      quoted = !quoted;
    } else if (!quoted && IsAsciiSpace(s[i])) {
      return true;
    }
  }
  return false;
}

}  // namespace

const char* EntryKindName(EntryKind kind) {
  return kind == EntryKind::kExact ? "exact" : "pattern";
}

void DropRspamdDuplicates(std::vector<std::string>* sorted_texts) {
  std::unordered_set<std::string> seen;
  std::vector<std::string> kept;
  kept.reserve(sorted_texts->size());
  for (std::string& t : *sorted_texts) {
    if (seen.insert(AsciiLower(t)).second) kept.push_back(std::move(t));
  }
  *sorted_texts = std::move(kept);
}

Status ParseAddressEntry(std::string_view address, Entry* out) {
  const std::string_view in = TrimAsciiSpace(address);
  if (in.empty()) return Status::Invalid("empty entry");
  if (HasUnquotedSpace(in)) return Status::Invalid("not an address: contains whitespace");
  std::string addr;
  Status parsed = EnvelopeAddress(in, &addr);
  if (!parsed.ok() && parsed.message().rfind("malformed quoting", 0) == 0) {
    return Status::Invalid("not an address: " + parsed.message());
  }
  if (!parsed.ok() || addr.empty()) return Status::Invalid(WhyNotAnAddress(in));
  const std::string suggestion = " instead: /^" + LiteralRegex(addr) + "$/i";
  for (char c : addr) {
    if (IsAsciiSpace(c)) {
      return Status::Invalid("address '" + addr +
                             "' contains whitespace, which a line of an rspamd plain map "
                             "cannot hold; list it as a pattern" +
                             suggestion);
    }
    if (c == '#') {
      return Status::Invalid("address '" + addr +
                             "' contains '#', which starts a comment in an rspamd map line; "
                             "list it as a pattern" +
                             suggestion);
    }
  }
  if (addr.front() == '/' || addr.front() == '"') {
    return Status::Invalid("address '" + addr + "' starts with '" + addr.front() +
                           "', which rspamd's map reader takes for the start of a " +
                           (addr.front() == '/' ? "regex" : "quoted key") +
                           "; list it as a pattern" + suggestion);
  }
  if (!LooksLikeAddress(addr)) return Status::Invalid(WhyNotAnAddress(addr));
  // The entry's text is what the map file and Redis hold: it must read back as itself.
  // Quotes that pair up differently once the source route is gone (`@":u@["]` gives
  // `u@["]`) would not.
  std::string again;
  if (!EnvelopeAddress(addr, &again).ok() || again != addr) {
    return Status::Invalid("address '" + addr + "' does not read back as itself (quoting); " +
                           "list it as a pattern" + suggestion);
  }
  out->kind = EntryKind::kExact;
  out->text = CanonicalAddress(addr);
  out->regex.clear();
  out->flags.clear();
  return Status::Ok();
}

Entry RawExactEntry(std::string address) {
  Entry e;
  e.kind = EntryKind::kExact;
  e.text = std::move(address);
  return e;
}

Entry RawPatternEntry(std::string regex, std::string flags) {
  Entry e;
  e.kind = EntryKind::kPattern;
  e.text = "/" + regex + "/" + flags;
  e.regex = std::move(regex);
  e.flags = std::move(flags);
  return e;
}

Status ParseEntry(std::string_view input, Entry* out) {
  const std::string_view in = TrimAsciiSpace(input);
  if (in.empty()) return Status::Invalid("empty entry");
  if (in.front() != '/') return ParseAddressEntry(in, out);
  // Like rspamd's regex parser (rspamd_regexp_new_len in src/libutil/regexp.c), the regex
  // ends at the last `/`, so `/a/b/i` is the regex `a/b` with the flag i.
  const size_t last = in.rfind('/');
  if (last == 0) return Status::Invalid("regex has no closing '/' (write /regex/flags)");
  return ParsePattern(in.substr(1, last - 1), in.substr(last + 1), out);
}

}  // namespace compd
