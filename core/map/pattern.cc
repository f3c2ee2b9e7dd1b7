// Pattern entries: the checks that keep a `/regex/flags` something RE2, rspamd's map reader
// and Hyperscan all accept and read alike, and how it is handed to RE2.
#include "compd/map/pattern.h"

#include <re2/re2.h>

#include <cctype>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "compd/base/text.h"

namespace compd {
namespace {

Status Refuse(PatternError* why, PatternError kind, std::string message) {
  if (why != nullptr) *why = kind;
  return Status::Invalid(std::move(message));
}

// Escapes every `/` that is not escaped yet. rspamd's map reader ends a `/.../` key at the
// first unescaped `/` while its regex parser splits at the last one; with every `/`
// escaped both agree, and `\/` means `/` to RE2, PCRE and Hyperscan alike.
std::string EscapeSlashes(std::string_view re) {
  std::string out;
  out.reserve(re.size() + 4);
  bool quoted = false;  // inside \Q...\E, where a backslash would be taken literally
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (quoted) {
      if (c == '\\' && i + 1 < re.size() && re[i + 1] == 'E') {
        out += "\\E";
        ++i;
        quoted = false;
      } else if (c == '/') {
        out += "\\E\\/\\Q";
      } else {
        out += c;
      }
      continue;
    }
    if (c == '\\' && i + 1 < re.size()) {
      out += c;
      out += re[i + 1];
      if (re[i + 1] == 'Q') quoted = true;
      ++i;
    } else if (c == '/') {
      out += "\\/";
    } else {
      out += c;
    }
  }
  return out;
}

// The regex cut into the pieces the Hyperscan checks look at. Not a full parser: RE2 has
// already accepted the regex when this runs, so only anchors, groups and `\C` matter.
enum class Tok { kAtom, kOpen, kClose, kAlt, kStart, kEnd, kQuant, kNeutral, kAnyByte };
struct Token {
  Tok kind;
  std::string_view text;
};

bool IsRepeat(std::string_view s, size_t i, size_t* end) {
  // `{n}`, `{n,}`, `{n,m}`; anything else is a literal `{` to RE2.
  size_t j = i + 1;
  size_t digits = 0;
  while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j, ++digits;
  if (digits == 0) return false;
  if (j < s.size() && s[j] == ',') {
    ++j;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
  }
  if (j >= s.size() || s[j] != '}') return false;
  *end = j + 1;
  return true;
}

std::vector<Token> Tokenize(std::string_view re, bool* inline_multiline) {
  std::vector<Token> toks;
  size_t i = 0;
  const size_t n = re.size();
  auto push = [&](Tok kind, size_t from, size_t to) {
    toks.push_back({kind, re.substr(from, to - from)});
    i = to;
  };
  while (i < n) {
    const char c = re[i];
    if (c == '\\') {
      if (i + 1 >= n) {
        push(Tok::kAtom, i, n);
        break;
      }
      const char e = re[i + 1];
      size_t end = i + 2;
      Tok kind = Tok::kAtom;
      if (e == 'Q') {
        size_t close = re.find("\\E", i + 2);
        end = close == std::string_view::npos ? n : close + 2;
      } else if (e == 'C') {
        kind = Tok::kAnyByte;
      } else if (e == 'A') {
        kind = Tok::kStart;
      } else if (e == 'z') {
        kind = Tok::kEnd;
      } else if (e == 'b' || e == 'B') {
        kind = Tok::kNeutral;
      } else if ((e == 'x' || e == 'p' || e == 'P') && end < n && re[end] == '{') {
        size_t close = re.find('}', end);
        end = close == std::string_view::npos ? n : close + 1;
      } else if ((e == 'p' || e == 'P') && end < n) {
        ++end;
      } else if (e == 'x') {
        for (int k = 0; k < 2 && end < n && std::isxdigit(static_cast<unsigned char>(re[end])); ++k)
          ++end;
      }
      push(kind, i, end);
      continue;
    }
    if (c == '[') {
      size_t j = i + 1;
      if (j < n && re[j] == '^') ++j;
      if (j < n && re[j] == ']') ++j;  // a leading `]` is a member, not the end
      while (j < n && re[j] != ']') {
        if (re[j] == '\\') {
          j += 2;
        } else if (re[j] == '[' && j + 1 < n && re[j + 1] == ':') {
          size_t close = re.find(":]", j + 2);
          j = close == std::string_view::npos ? j + 1 : close + 2;
        } else {
          ++j;
        }
      }
      push(Tok::kAtom, i, j < n ? j + 1 : n);
      continue;
    }
    if (c == '(') {
      if (i + 1 < n && re[i + 1] == '?') {
        size_t j = i + 2;
        if (j < n && re[j] == 'P' && j + 1 < n && re[j + 1] == '<') {
          size_t close = re.find('>', j);
          push(Tok::kOpen, i, close == std::string_view::npos ? n : close + 1);
          continue;
        }
        bool on = true;
        bool sets_m = false;
        while (j < n && (std::isalpha(static_cast<unsigned char>(re[j])) || re[j] == '-')) {
          if (re[j] == '-') on = false;
          if (re[j] == 'm' && on) sets_m = true;
          ++j;
        }
        if (j < n && (re[j] == ')' || re[j] == ':')) {
          if (sets_m) *inline_multiline = true;
          push(re[j] == ')' ? Tok::kNeutral : Tok::kOpen, i, j + 1);
          continue;
        }
      }
      push(Tok::kOpen, i, i + 1);
      continue;
    }
    size_t end = i + 1;
    Tok kind = Tok::kAtom;
    switch (c) {
      case ')':
        kind = Tok::kClose;
        break;
      case '|':
        kind = Tok::kAlt;
        break;
      case '^':
        kind = Tok::kStart;
        break;
      case '$':
        kind = Tok::kEnd;
        break;
      case '*':
      case '+':
      case '?':
        kind = Tok::kQuant;
        break;
      case '{':
        if (IsRepeat(re, i, &end)) kind = Tok::kQuant;
        break;
      default:
        break;
    }
    push(kind, i, end);
  }
  return toks;
}

// Hyperscan refuses `^`/`$` (and `\A`/`\z`) where they could only match inside the
// input ("Embedded anchors not supported"), e.g. `a^b`. Returns the offending anchor.
std::string_view EmbeddedAnchor(const std::vector<Token>& toks, bool multiline) {
  auto prev = [&](size_t k) -> const Token* {
    while (k-- > 0) {
      if (toks[k].kind != Tok::kNeutral) return &toks[k];
    }
    return nullptr;
  };
  auto next = [&](size_t k) -> const Token* {
    for (++k; k < toks.size(); ++k) {
      if (toks[k].kind != Tok::kNeutral) return &toks[k];
    }
    return nullptr;
  };
  for (size_t k = 0; k < toks.size(); ++k) {
    const Token& t = toks[k];
    // With multi-line mode `^` and `$` also match at line breaks; only \A and \z stay.
    const bool line_anchor = t.text == "^" || t.text == "$";
    if (multiline && line_anchor) continue;
    if (t.kind == Tok::kStart) {
      const Token* p = prev(k);
      if (p != nullptr && p->kind != Tok::kOpen && p->kind != Tok::kAlt && p->kind != Tok::kStart) {
        return t.text;
      }
    } else if (t.kind == Tok::kEnd) {
      const Token* x = next(k);
      if (x != nullptr && x->kind != Tok::kClose && x->kind != Tok::kAlt && x->kind != Tok::kEnd) {
        return t.text;
      }
    }
  }
  return {};
}

// True when `re` can match somewhere without consuming a character. Only zero-width
// assertions can tell positions apart, and they look at most at the character on either
// side (start/end of text, line break, word or non-word character), so probing every
// position of these strings covers every context an address can present.
enum class EmptyMatch { kNo, kWholeEmptyString, kInside };
EmptyMatch CanMatchEmpty(const RE2& re) {
  if (re.Match("", 0, 0, RE2::ANCHOR_BOTH, nullptr, 0)) return EmptyMatch::kWholeEmptyString;
  static const char* const kProbes[] = {"a",  ".",  "\n",  "aa",  "a.",  "a\n",
                                        ".a", "..", ".\n", "\na", "\n.", "\n\n"};
  for (const char* probe : kProbes) {
    re2::StringPiece text(probe);
    for (size_t p = 0; p <= text.size(); ++p) {
      if (re.Match(text, p, p, RE2::ANCHOR_BOTH, nullptr, 0)) return EmptyMatch::kInside;
    }
  }
  return EmptyMatch::kNo;
}

// Turns RE2's refusal into a reason an operator can act on; constructs RE2 refuses that
// Hyperscan refuses as well get a friendlier text than RE2's.
Status RefuseRe2(const RE2& re, std::string_view body, PatternError* why) {
  const std::string& arg = re.error_arg();
  const char* const both = ": Hyperscan and RE2 refuse them";
  switch (re.error_code()) {
    case RE2::ErrorBadEscape:
      if (arg.size() == 2 && arg[1] >= '1' && arg[1] <= '9') {
        return Refuse(why, PatternError::kHyperscan,
                      std::string("backreferences are not supported") + both);
      }
      break;
    case RE2::ErrorBadPerlOp: {
      // RE2 names only the start of the operator (`(?<`, `(?P`); look at what follows it,
      // at every place it occurs, to say which construct it was.
      auto starts = [&](std::string_view p) {
        for (size_t at = body.find(arg); at != std::string_view::npos;
             at = body.find(arg, at + 1)) {
          if (body.substr(at, p.size()) == p) return true;
        }
        return false;
      };
      if (starts("(?=") || starts("(?!") || starts("(?<=") || starts("(?<!")) {
        return Refuse(why, PatternError::kHyperscan,
                      std::string("lookaround assertions are not supported") + both);
      }
      if (starts("(?>")) {
        return Refuse(why, PatternError::kHyperscan,
                      std::string("atomic groups are not supported") + both);
      }
      if (starts("(?(")) {
        return Refuse(why, PatternError::kHyperscan,
                      std::string("conditionals are not supported") + both);
      }
      if (starts("(?P=") || starts("(?P>")) {
        return Refuse(why, PatternError::kHyperscan,
                      std::string("backreferences are not supported") + both);
      }
      if (starts("(?<") || starts("(?'")) {
        return Refuse(why, PatternError::kSyntax,
                      "invalid regex: " + re.error() + " (write named groups as (?P<name>...))");
      }
      break;
    }
    case RE2::ErrorRepeatOp:
      if (arg.size() >= 2 && arg.back() == '+') {
        return Refuse(why, PatternError::kHyperscan,
                      std::string("possessive quantifiers are not supported") + both);
      }
      break;
    case RE2::ErrorRepeatSize:
      return Refuse(why, PatternError::kSyntax,
                    "invalid regex: " + re.error() + " (repeat counts are limited to " +
                        std::to_string(kMaxPatternRepeat) + ")");
    default:
      break;
  }
  return Refuse(why, PatternError::kSyntax, "invalid regex: " + re.error());
}

}  // namespace

Status ParsePattern(std::string_view regex, std::string_view flags, Entry* out, PatternError* why) {
  if (why != nullptr) *why = PatternError::kNone;
  // Flags are kept in one canonical order so that `/x/si` and `/x/is` are one entry.
  static const char kFlagOrder[] = "imsu";
  bool seen[4] = {false, false, false, false};
  for (char f : flags) {
    const char* pos = f == '\0' ? nullptr : std::char_traits<char>::find(kFlagOrder, 4, f);
    if (pos == nullptr) {
      return Refuse(why, PatternError::kFlag,
                    std::string("flag '") + f + "' is not supported (use i, m, s, u)");
    }
    seen[pos - kFlagOrder] = true;
  }
  std::string norm_flags;
  for (int k = 0; k < 4; ++k) {
    if (seen[k]) norm_flags += kFlagOrder[k];
  }
  const bool fold = seen[0], multiline = seen[1], dotall = seen[2], utf8 = seen[3];

  if (regex.empty()) return Refuse(why, PatternError::kSyntax, "empty regex");
  for (char c : regex) {
    if (IsAsciiSpace(c)) {
      return Refuse(why, PatternError::kMapLine,
                    "regex contains whitespace, which cannot be written to an rspamd map "
                    "line: write \\s or \\x20 instead");
    }
    // Hyperscan takes patterns as C strings: a raw NUL would cut the pattern short there
    // and make it match far more than written.
    if (IsAsciiControl(c)) {
      return Refuse(why, PatternError::kMapLine,
                    "regex contains a control character: write it as \\xHH");
    }
  }
  // Inside \Q...\E a backslash is literal, so a regex that ends inside \Q with a
  // backslash (`a\Q\`) cannot be written: the map line `/a\Q\/` reads as never closed
  // and rspamd drops it.
  {
    bool quoted = false;
    for (size_t i = 0; i < regex.size(); ++i) {
      if (regex[i] != '\\' || i + 1 >= regex.size()) continue;
      if (!quoted && regex[i + 1] == 'Q') quoted = true;
      if (quoted && regex[i + 1] == 'E') quoted = false;
      if (!quoted || regex[i + 1] == 'Q') ++i;
    }
    if (quoted && regex.back() == '\\') {
      return Refuse(why, PatternError::kMapLine,
                    "regex ends with a backslash inside \\Q...\\E, which an rspamd map line "
                    "cannot carry: close the quote with \\E first");
    }
  }
  for (size_t i = 0; i < regex.size(); ++i) {
    if (regex[i] == '\\') {
      ++i;
    } else if (regex[i] == '#') {
      return Refuse(why, PatternError::kMapLine,
                    "regex contains an unescaped '#', which starts a comment in an rspamd "
                    "map line: write \\# instead");
    }
  }
  const std::string body = EscapeSlashes(regex);

  RE2::Options options;
  options.set_log_errors(false);
  options.set_case_sensitive(!fold);
  options.set_dot_nl(dotall);
  // Without `u` Hyperscan (and rspamd's raw PCRE) match bytes; Latin-1 is RE2's way to
  // say "one byte, one character".
  options.set_encoding(utf8 ? RE2::Options::EncodingUTF8 : RE2::Options::EncodingLatin1);
  RE2 plain(body, options);
  if (!plain.ok()) return RefuseRe2(plain, body, why);

  bool inline_multiline = false;
  const std::vector<Token> toks = Tokenize(body, &inline_multiline);
  for (const Token& t : toks) {
    if (t.kind == Tok::kAnyByte) {
      return Refuse(why, PatternError::kHyperscan,
                    "\\C (any single byte) is not supported: Hyperscan refuses it");
    }
  }
  std::string_view anchor = EmbeddedAnchor(toks, multiline || inline_multiline);
  if (!anchor.empty()) {
    return Refuse(why, PatternError::kHyperscan,
                  std::string(anchor) +
                      " inside the regex can never match there: Hyperscan refuses embedded "
                      "anchors (move it to the start or end, or use the m flag)");
  }

  // `m` cannot be an RE2 option outside POSIX mode; the inline form is what PatternSpec
  // gives the matcher too.
  RE2 full(multiline ? "(?m)" + body : body, options);
  if (!full.ok()) return RefuseRe2(full, body, why);
  switch (CanMatchEmpty(full)) {
    case EmptyMatch::kWholeEmptyString:
      return Refuse(why, PatternError::kHyperscan,
                    "regex matches the empty string, so it would list every address "
                    "(Hyperscan refuses it too)");
    case EmptyMatch::kInside:
      return Refuse(why, PatternError::kHyperscan,
                    "regex can match without consuming a character (e.g. at \\b), so it "
                    "would list almost every address (Hyperscan refuses it too)");
    case EmptyMatch::kNo:
      break;
  }

  *out = RawPatternEntry(std::string(body), norm_flags);
  return Status::Ok();
}

CompiledPatternSpec PatternSpec(const Entry& entry) {
  // Inline flags instead of RE2::Options so that patterns with different flags can share
  // one RE2::Set. RE2 reads them as Perl does: (?i) case-insensitive, (?m) ^ and $ also
  // match at line breaks, (?s) dot matches \n. A flag group at the very start applies to
  // the whole regex, top-level alternatives included, and needs no closing parenthesis,
  // so it cannot interact with the body's own groups. Emitted in one fixed order so equal
  // flag sets give equal pattern strings whatever order the entry spelled them in.
  bool i = false, m = false, s = false, u = false;
  for (char f : entry.flags) {
    switch (f) {
      case 'i':
        i = true;
        break;
      case 'm':
        m = true;
        break;
      case 's':
        s = true;
        break;
      case 'u':
        u = true;
        break;
      default:
        break;  // ParseEntry rejects anything else; nothing to add here
    }
  }
  CompiledPatternSpec spec;
  spec.utf8 = u;
  if (i || m || s) {
    spec.pattern = "(?";
    if (i) spec.pattern += 'i';
    if (m) spec.pattern += 'm';
    if (s) spec.pattern += 's';
    spec.pattern += ')';
  }
  spec.pattern += entry.regex;
  return spec;
}

}  // namespace compd
