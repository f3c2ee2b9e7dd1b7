// RFC 5321 envelope addresses (no CFWS). Every loop moves forward only.
#include "compd/map/envelope_address.h"

#include <cstddef>
#include <string>
#include <string_view>

#include "compd/base/text.h"
#include "compd/map/address.h"

namespace compd {
namespace {

// `local@domain` after brackets and route are gone. `*result` is `addr` itself unless the
// local part is quoted; then it is built in `*scratch`: the usual address is not copied.
Status ParseEnvelopeMailbox(std::string_view addr, std::string* scratch, std::string_view* result) {
  std::string local;
  bool quoted = false;
  size_t i = 0;
  const size_t n = addr.size();
  if (addr[0] == '"') {
    quoted = true;
    // rspamd 3.4 matches the quoted local part without its quotes and with quoted pairs
    // unescaped: `"john doe"@x.com` is matched as `john doe@x.com`.
    i = 1;
    for (;;) {
      if (i >= n) return Status::Invalid("unterminated quoted string");
      char c = addr[i];
      if (c == '\\') {
        if (i + 1 >= n) return Status::Invalid("unterminated quoted string");
        c = addr[i + 1];
        if (IsAsciiControl(c)) return Status::Invalid("control character");
        local += c;
        i += 2;
        continue;
      }
      if (c == '"') {
        ++i;
        break;
      }
      if (IsAsciiControl(c)) return Status::Invalid("control character");
      local += c;
      ++i;
    }
    if (i >= n || addr[i] != '@') {
      return Status::Invalid("quoted local part not followed by '@'");
    }
  } else {
    for (; i < n && addr[i] != '@'; ++i) {
      char c = addr[i];
      if (IsAsciiControl(c)) return Status::Invalid("control character");
      if (!IsAtomOrDot(c)) return Status::Invalid("invalid character in local part");
    }
    if (i >= n) return Status::Invalid("missing '@'");
  }
  if (quoted ? local.empty() : i == 0) return Status::Invalid("empty local part");
  std::string_view domain = addr.substr(i + 1);
  if (domain.empty()) return Status::Invalid("empty domain");
  if (domain.front() == '[') {
    if (domain.size() < 3 || domain.back() != ']') {
      return Status::Invalid("unterminated address literal");
    }
    for (char c : domain.substr(1, domain.size() - 2)) {
      if (IsAsciiControl(c)) return Status::Invalid("control character");
      if (c == '[' || c == ']' || c == '\\' || c == ' ') {
        return Status::Invalid("invalid character in address literal");
      }
    }
  } else {
    for (char c : domain) {
      if (IsAsciiControl(c)) return Status::Invalid("control character");
      if (c == '@') return Status::Invalid("more than one '@'");
      if (!IsAtomOrDot(c)) return Status::Invalid("invalid character in domain");
    }
  }
  if (!quoted) {
    *result = addr;
    return Status::Ok();
  }
  scratch->assign(local);
  scratch->push_back('@');
  scratch->append(domain);
  *result = *scratch;
  return Status::Ok();
}

// The first index from `i` on, outside quoted strings, whose character `stop` accepts, or
// the size of `s` if none; `*in_quotes` says whether `s` ended inside a quoted string.
template <typename Stop>
size_t FindUnquoted(std::string_view s, size_t i, bool* in_quotes, Stop stop) {
  *in_quotes = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (*in_quotes) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        *in_quotes = false;
      }
    } else if (c == '"') {
      *in_quotes = true;
    } else if (stop(c)) {
      return i;
    }
  }
  return s.size();
}

Status ParseEnvelope(std::string_view raw, std::string* scratch, std::string_view* result) {
  for (char c : raw) {
    if (c == '\0' || c == '\r' || c == '\n') return Status::Invalid("control character");
  }
  std::string_view s = TrimBlanks(raw);
  if (s.empty()) return Status::Invalid("empty address");
  std::string_view addr;
  const size_t n = s.size();
  bool in_quotes = false;
  if (s[0] == '<') {
    const size_t i = FindUnquoted(s, 1, &in_quotes, [](char c) { return c == '>' || c == '<'; });
    if (i < n && s[i] == '<') return Status::Invalid("unbalanced angle brackets");
    if (i >= n) {
      return Status::Invalid(in_quotes ? "unterminated quoted string" : "missing '>'");
    }
    // ESMTP parameters after '>' (NOTIFY=..., ORCPT=...) are not part of the address.
    addr = TrimBlanks(s.substr(1, i - 1));
    if (addr.empty()) return Status::Invalid("null address <>");
  } else {
    const size_t i =
        FindUnquoted(s, 0, &in_quotes, [](char c) { return IsBlank(c) || c == '<' || c == '>'; });
    if (i < n && !IsBlank(s[i])) return Status::Invalid("unbalanced angle brackets");
    if (in_quotes) return Status::Invalid("unterminated quoted string");
    addr = s.substr(0, i);
  }
  if (addr.front() == '@') {
    // Source route `@a,@b:user@dom` (RFC 5321 4.1.2): rspamd matches only the mailbox.
    size_t colon = addr.find(':');
    if (colon == std::string_view::npos) return Status::Invalid("source route without ':'");
    addr.remove_prefix(colon + 1);
    if (addr.empty()) return Status::Invalid("empty address after source route");
  }
  return ParseEnvelopeMailbox(addr, scratch, result);
}

}  // namespace

Status EnvelopeAddress(std::string_view raw, std::string* out) {
  std::string scratch;
  std::string_view result;
  Status s = ParseEnvelope(raw, &scratch, &result);
  if (!s.ok()) return s;
  // A plain-looking result must read back as itself, so that entries and events built from
  // it are stable. Quotes can pair up differently once a source route is removed:
  // `@":u@["]` gives `u@["]`, which is not an address on its own. Without quotes or a
  // route (no '"', no ':') the result is a checked substring of `raw` and reads back as
  // itself: the second parse, half the cost of every RCPT, is skipped.
  if (raw.find_first_of("\":") != std::string_view::npos && LooksLikeAddress(result)) {
    std::string again_scratch;
    std::string_view again;
    if (!ParseEnvelope(result, &again_scratch, &again).ok() || again != result) {
      return Status::Invalid("malformed quoting around the source route");
    }
  }
  // Into the caller's string, whose capacity a loop over recipients reuses.
  out->assign(result.data(), result.size());
  return Status::Ok();
}

}  // namespace compd
