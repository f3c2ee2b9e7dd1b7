// ASCII text helpers: character classes, case folding and trimming, each once, so that
// the parsers that must agree on them (map files, config, headers, addresses) do.
//
// Everything is ASCII only and locale-free: bytes >= 0x80 are never spaces and never change
// case (UTF-8 passes through untouched, as rspamd's maps compare it). Pure functions; safe
// from any thread.
//
// Which whitespace a caller trims is part of its grammar, so each set has its own name:
//   TrimBlanks       SP, HTAB (RFC 5234 WSP: SMTP arguments, list items)
//   TrimAsciiSpace   SP, HTAB, LF, VT, FF, CR (C isspace, glib g_ascii_isspace)
//   TrimChars        any other set, spelled out by the caller
#ifndef COMPD_BASE_TEXT_H_
#define COMPD_BASE_TEXT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace compd {

// SP or HTAB.
inline bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// SP, HTAB, CR or LF: what separates words of a folded header line (RFC 5322 FWS).
inline bool IsBlankOrEol(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// C0 controls and DEL.
inline bool IsAsciiControl(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

// SP, HTAB, LF, VT, FF or CR.
inline bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Inline: the matcher folds case in its hot loop.
inline char AsciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
inline char AsciiUpper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}
std::string AsciiLower(std::string_view s);
std::string AsciiUpper(std::string_view s);

// True when `s` holds an ASCII capital, i.e. AsciiLower would change it.
bool HasAsciiUpper(std::string_view s);

// Equal, or a prefix, ignoring ASCII letter case.
bool EqualsIgnoreAsciiCase(std::string_view a, std::string_view b);
bool StartsWithIgnoreAsciiCase(std::string_view s, std::string_view prefix);

// Views into `s` without the leading and trailing characters of the set.
std::string_view TrimBlanks(std::string_view s);
std::string_view TrimAsciiSpace(std::string_view s);
std::string_view TrimChars(std::string_view s, std::string_view chars);

// Decimal digits only (no sign, blank or other text), at most 18 of them, so nothing can
// overflow or throw; false (and *out untouched) otherwise.
bool ParseDecimal(std::string_view s, int64_t* out);

// 64 random bits as 16 lower-case hex digits: names for short-lived Redis keys (staging
// lists, hunt replies) that must not collide between processes.
std::string RandomHex();

// The items of a list separated by any byte of `separators`, each trimmed of blanks;
// empty items are dropped ("a, b,,c" -> a b c). Views into `list`.
std::vector<std::string_view> SplitList(std::string_view list, std::string_view separators);

}  // namespace compd

#endif  // COMPD_BASE_TEXT_H_
