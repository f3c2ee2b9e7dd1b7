#include "compd/map/rspamd_map.h"

#include <fcntl.h>
#include <re2/re2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "compd/base/text.h"
#include "compd/map/address.h"
#include "compd/map/pattern.h"

// The reader re-implements, rule for rule, what rspamd 3.4 does with a map file; the
// places in rspamd's source this follows are:
//  - src/libserver/maps/map_helpers.c, rspamd_parse_kv_list(): the line reader. A key
//    starting with `"` runs to the next unescaped `"`; one starting with `/` runs to the
//    next unescaped `/` (newlines, spaces and `#` included), then to the next whitespace
//    or `#`; any other key ends at whitespace, at a line end, or at a `#` not preceded by
//    a backslash. After whitespace, the rest of the line up to `#` is the value. At the end
//    of the file only a key still being read (bare key, or a value) is stored: a `/re/`,
//    a quoted key or a key followed by blanks without a final newline is dropped.
//  - map_helpers.c, rspamd_map_helper_insert_re() / _insert_hash(): keys are hashed and
//    compared ASCII case-insensitively (rspamd_map_ftok_equal uses rspamd_lc_cmp); a later
//    duplicate never replaces the first regex.
//  - src/libutil/regexp.c, rspamd_regexp_new_len(): a key starting with `/` is split at the
//    LAST `/`; one starting with `m` and a non-alphanumeric character is a Perl-style
//    m<d>...<d> regex (`{` pairs with `}`), split at the last <d>; anything else is the
//    regex as it stands, unanchored, no flags. Flags i m s x u O L r are known; the first
//    unknown one ends flag parsing (the rest is ignored, with a warning in rspamd's log).
//    A missing closing delimiter makes the line fail to load.
//  - map_helpers.c, rspamd_re_map_finalize(): all regexes go into one Hyperscan database;
//    if hs_compile_multi fails for one pattern the map falls back to PCRE for all of them
//    (where the Perl-style m-form is anchored, unlike under Hyperscan).

namespace compd {
namespace {

// Whitespace here is g_ascii_isspace, which rspamd's reader uses: IsAsciiSpace.
bool IsEol(char c) { return c == '\r' || c == '\n'; }

std::string GStrip(std::string_view s) { return std::string(TrimAsciiSpace(s)); }

std::string Quote(std::string_view s) { return "`" + std::string(s) + "`"; }

// Line numbers for byte offsets.
class LineIndex {
 public:
  explicit LineIndex(std::string_view s) {
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n') newlines_.push_back(i);
    }
  }
  int At(size_t pos) const {
    return static_cast<int>(std::lower_bound(newlines_.begin(), newlines_.end(), pos) -
                            newlines_.begin()) +
           1;
  }

 private:
  std::vector<size_t> newlines_;
};

// One key as rspamd's line reader delivers it.
struct RawKey {
  int line = 0;
  int end_line = 0;  // differs from `line` when an unclosed `/` or `"` ran over lines
  char opener = 0;   // `/` or `"` for keys read up to a closing delimiter
  std::string key;
  std::optional<std::string> value;
  bool comment = false;         // a `#` comment follows on the same line
  bool glued_comment = false;   // ... right after the key, so it cut the key short
  bool dropped_at_eof = false;  // rspamd never stores it: no line end after it
};

struct Scan {
  std::vector<RawKey> keys;
  std::vector<MapHazard> hazards;
};

MapHazard Hazard(MapHazard::Severity severity, int line, std::string code, std::string msg) {
  MapHazard h;
  h.severity = severity;
  h.line = line;
  h.code = std::move(code);
  h.message = std::move(msg);
  return h;
}
constexpr MapHazard::Severity kError = MapHazard::Severity::kError;
constexpr MapHazard::Severity kWarning = MapHazard::Severity::kWarning;

size_t SkipToEol(std::string_view s, size_t i) {
  while (i < s.size() && !IsEol(s[i])) ++i;
  return i;
}

// Runs from `open` (a `/` or `"`) to the matching unescaped closer; npos if none.
size_t FindCloser(std::string_view s, size_t open) {
  const char closer = s[open];
  size_t j = open + 1;
  while (j < s.size() && s[j] != closer) j += s[j] == '\\' ? 2 : 1;
  return j < s.size() ? j : std::string_view::npos;
}

Scan ScanKv(std::string_view s) {
  Scan scan;
  const LineIndex lines(s);
  const size_t n = s.size();
  size_t i = 0;
  // Reads what follows a key from `p` (whitespace, or just past a closing quote): blanks,
  // then a value up to `#` or the line end. Returns where scanning resumes.
  auto after_key = [&](RawKey& k, size_t p) -> size_t {
    while (p < n && (s[p] == ' ' || s[p] == '\t')) ++p;
    if (p >= n) {
      k.dropped_at_eof = true;
      scan.keys.push_back(std::move(k));
      return n;
    }
    const size_t from = p;
    while (p < n && s[p] != '#' && !IsEol(s[p])) ++p;
    std::string value = GStrip(s.substr(from, p - from));
    if (!value.empty()) k.value = std::move(value);
    if (p < n && s[p] == '#') {
      k.comment = true;
      p = SkipToEol(s, p);
    }
    scan.keys.push_back(std::move(k));
    return p;
  };
  auto unterminated = [&](size_t open, const char* what) {
    scan.hazards.push_back(Hazard(
        kError, lines.At(open), "unterminated",
        std::string(what) + " is never closed: rspamd reads everything from here to the end " +
            "of the file (line " + std::to_string(lines.At(n - 1)) +
            ") as one key and then drops it"));
  };

  while (i < n) {
    const char ch = s[i];
    if (IsAsciiSpace(ch)) {
      ++i;
      continue;
    }
    RawKey k;
    k.line = lines.At(i);
    if (ch == '"' || ch == '/') {
      k.opener = ch;
      const size_t close = FindCloser(s, i);
      if (close == std::string_view::npos) {
        unterminated(i, ch == '"' ? "the quoted key started by '\"'" : "the regex started by '/'");
        break;
      }
      if (ch == '"') {
        k.key = GStrip(s.substr(i + 1, close - i - 1));
        k.end_line = lines.At(close);
        i = after_key(k, close + 1);
        continue;
      }
      // After the closing `/` come the flags, up to whitespace, `#` or the line end.
      size_t q = close + 1;
      while (q < n && s[q] != '#' && !IsAsciiSpace(s[q])) ++q;
      k.key = GStrip(s.substr(i, q - i));
      k.end_line = lines.At(close);
      if (q >= n) {
        k.dropped_at_eof = true;
        scan.keys.push_back(std::move(k));
        break;
      }
      if (s[q] == '#') {
        k.comment = k.glued_comment = true;
        scan.keys.push_back(std::move(k));
        i = SkipToEol(s, q);
      } else if (IsEol(s[q])) {
        scan.keys.push_back(std::move(k));
        i = q;
      } else {
        i = after_key(k, q);
      }
      continue;
    }
    size_t q = i;
    while (q < n && !IsAsciiSpace(s[q]) && !(s[q] == '#' && (q == i || s[q - 1] != '\\'))) ++q;
    if (q == i) {  // a `#` where a key would start: a comment line
      i = SkipToEol(s, q);
      continue;
    }
    k.key = std::string(s.substr(i, q - i));
    k.end_line = k.line;
    if (q >= n) {  // rspamd's final pass stores a bare key even without a line end
      scan.keys.push_back(std::move(k));
      break;
    }
    if (s[q] == '#') {
      k.comment = k.glued_comment = true;
      scan.keys.push_back(std::move(k));
      i = SkipToEol(s, q);
    } else if (IsEol(s[q])) {
      scan.keys.push_back(std::move(k));
      i = q;
    } else {
      i = after_key(k, q);
    }
  }
  return scan;
}

// A key as rspamd_regexp_new_len() splits it.
struct RspamdRegex {
  enum class Form { kBare, kSlashed, kPerl, kNotEnclosed } form = Form::kBare;
  char open = 0;   // the delimiter
  char close = 0;  // the closing delimiter (differs for `{`)
  std::string body;
  std::string tail;  // everything after the closing delimiter: flags, as far as known
};

RspamdRegex SplitLikeRspamd(std::string_view key) {
  RspamdRegex r;
  if (key.size() < 2) return r;
  size_t start;
  if (key[0] == '/') {
    r.open = r.close = '/';
    start = 0;
  } else if (key[0] == 'm' && !std::isalnum(static_cast<unsigned char>(key[1]))) {
    r.open = key[1];
    r.close = r.open == '{' ? '}' : r.open;
    start = 1;
  } else {
    return r;
  }
  const size_t last = key.rfind(r.close);
  if (last == std::string_view::npos || last <= start) {
    r.form = RspamdRegex::Form::kNotEnclosed;
    return r;
  }
  r.form = key[0] == '/' ? RspamdRegex::Form::kSlashed : RspamdRegex::Form::kPerl;
  r.body = std::string(key.substr(start + 1, last - start - 1));
  r.tail = std::string(key.substr(last + 1));
  return r;
}

// The flags rspamd reads from a tail, and what compd can make of them.
struct RspamdFlags {
  std::string compd;        // i m s u as rspamd applies them, in compd's order
  std::string used;         // the part of the tail read as flags
  std::string ignored;      // from the first unknown flag on
  bool extended = false;    // `x`: compd cannot express it
  std::string engine_only;  // O, L, r: no effect on what matches (r only undoes u)
};

RspamdFlags ReadFlags(std::string_view tail) {
  RspamdFlags f;
  bool i = false, m = false, s = false, u = false;
  size_t k = 0;
  for (; k < tail.size(); ++k) {
    const char c = tail[k];
    if (c == 'i') {
      i = true;
    } else if (c == 'm') {
      m = true;
    } else if (c == 's') {
      s = true;
    } else if (c == 'x') {
      f.extended = true;
    } else if (c == 'u') {
      u = true;
    } else if (c == 'r') {
      u = false;
      if (f.engine_only.find(c) == std::string::npos) f.engine_only += c;
    } else if (c == 'O' || c == 'L') {
      if (f.engine_only.find(c) == std::string::npos) f.engine_only += c;
    } else {
      break;
    }
  }
  f.used = std::string(tail.substr(0, k));
  f.ignored = std::string(tail.substr(k));
  if (i) f.compd += 'i';
  if (m) f.compd += 'm';
  if (s) f.compd += 's';
  if (u) f.compd += 'u';
  return f;
}

// Bare lines that an operator meant as an address: an address with no regex syntax in it
// but `.` and `+`, which occur in addresses all the time.
bool IsPlainAddressLine(std::string_view key) {
  if (!LooksLikeAddress(key)) return false;
  for (char ch : key) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c >= 0x80) continue;
    if (std::string_view(".+-_'=~!%&@").find(ch) == std::string_view::npos) return false;
  }
  return key.front() != '/' && key.front() != '"';
}

// What a bare line matches in rspamd (bytes, case-sensitive, unanchored), checked on the
// address it spells and on two variants; unknown when RE2 cannot compile it.
struct BareFacts {
  bool known = false;
  bool matches_itself = false;
  bool matches_longer = false;  // inside a longer address
  bool matches_upper = false;   // in upper case
  std::string longer;
  std::string upper;
};

BareFacts CheckBare(const std::string& key) {
  BareFacts f;
  RE2::Options options;
  options.set_log_errors(false);
  options.set_encoding(RE2::Options::EncodingLatin1);
  RE2 re(key, options);
  if (!re.ok()) return f;
  f.known = true;
  f.longer = "zzz" + key + ".evil";
  f.upper = AsciiUpper(key);
  f.matches_itself = RE2::PartialMatch(key, re);
  f.matches_longer = RE2::PartialMatch(f.longer, re);
  f.matches_upper = RE2::PartialMatch(f.upper, re);
  return f;
}

// Escapes what a map line cannot carry in a regex read from a `/.../` or quoted key
// (rspamd keeps blanks and `#` there): same meaning, writable by compd.
std::string EscapeMapChars(std::string_view re) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  auto hex = [&](char ch) {
    const unsigned char c = static_cast<unsigned char>(ch);
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  };
  for (size_t i = 0; i < re.size(); ++i) {
    const char c = re[i];
    if (c == '\\' && i + 1 < re.size()) {
      ++i;
      if (IsAsciiSpace(re[i])) {
        hex(re[i]);
      } else {
        out += c;
        out += re[i];
      }
    } else if (IsAsciiSpace(c)) {
      hex(c);
    } else if (c == '#') {
      out += "\\#";
    } else {
      out += c;
    }
  }
  return out;
}

class Reader {
 public:
  explicit Reader(MapKind kind) : kind_(kind) {}

  MapReadResult Read(std::string_view contents) {
    Scan scan = ScanKv(contents);
    result_.hazards = std::move(scan.hazards);
    const RawKey* dropped = nullptr;
    for (const RawKey& k : scan.keys) {
      if (k.dropped_at_eof) dropped = &k;
      Add(k);
    }
    if (!contents.empty() && !IsEol(contents.back())) {
      std::string msg = "file does not end with a newline";
      if (dropped != nullptr) {
        msg += "; rspamd 3.4 silently drops the last entry " + Quote(dropped->key) +
               " (it only stores such a line at a line end)";
      }
      result_.hazards.push_back(Hazard(kWarning, LineIndex(contents).At(contents.size() - 1),
                                       "no-final-newline", std::move(msg)));
    }
    std::stable_sort(result_.hazards.begin(), result_.hazards.end(),
                     [](const MapHazard& a, const MapHazard& b) { return a.line < b.line; });
    return std::move(result_);
  }

 private:
  void Warn(int line, const char* code, std::string msg) {
    result_.hazards.push_back(Hazard(kWarning, line, code, std::move(msg)));
  }
  void Error(int line, const char* code, std::string msg) {
    result_.hazards.push_back(Hazard(kError, line, code, std::move(msg)));
  }

  void Add(const RawKey& k) {
    if (k.value) {
      Warn(k.line, "value",
           "text after the key, " + Quote(*k.value) +
               ", is a value: multimap reads it as a symbol name (compd's files carry no "
               "values)");
    }
    if (k.glued_comment) {
      Warn(k.line, "inline-comment",
           "'#' starts a comment, so rspamd reads the key as " + Quote(k.key) +
               " (write \\# if the '#' belongs to the entry)");
    } else if (k.comment) {
      Warn(k.line, "inline-comment",
           "inline comment: rspamd ignores the text from '#' on (compd's files carry no "
           "comments)");
    }
    if (k.end_line != k.line) {
      Error(k.line, "unterminated",
            std::string(k.opener == '/' ? "the regex" : "the quoted key") +
                " has no closing delimiter on its line: rspamd reads lines " +
                std::to_string(k.line) + "-" + std::to_string(k.end_line) +
                " as one key, swallowing the lines in between");
      return;
    }
    auto [it, inserted] = first_line_.emplace(AsciiLower(k.key), k.line);
    if (!inserted) {
      Warn(k.line, "duplicate",
           "duplicate of line " + std::to_string(it->second) +
               " (rspamd compares keys case-insensitively and keeps the first)");
      return;
    }
    MapLine ml;
    ml.line = k.line;
    ml.key = k.key;
    if (kind_ == MapKind::kRegexp) {
      InterpretRegexp(&ml);
    } else {
      InterpretPlain(&ml);
    }
    if (k.dropped_at_eof && ml.converted) {
      if (!ml.meaning_change.empty()) ml.meaning_change += "; ";
      ml.meaning_change +=
          "rspamd dropped this last line because the file does not end with a newline; "
          "compd lists it";
    }
    result_.lines.push_back(std::move(ml));
  }

  void InterpretPlain(MapLine* ml) {
    Entry e;
    if (!ml->key.empty() && ml->key.front() == '/') {
      Error(ml->line, "not-address",
            "key " + Quote(ml->key) +
                " looks like a regex, but a plain map compares keys literally, so rspamd "
                "never matched it; compd cannot convert it (add it as a pattern if it was "
                "meant as one)");
      return;
    }
    if (LooksLikeAddress(ml->key)) {
      Status st = ParseAddressEntry(ml->key, &e);
      if (st.ok()) {
        ml->converted = true;
        ml->entry = std::move(e);
        return;
      }
      Error(ml->line, "not-address", "cannot convert " + Quote(ml->key) + ": " + st.message());
      return;
    }
    Error(ml->line, "not-address",
          "key " + Quote(ml->key) +
              " is not a plain address, so compd cannot list it as an exact entry");
  }

  // A bare (or m-trap) line the operator meant as an address becomes that exact address.
  bool ConvertToExact(MapLine* ml, const std::string& what_rspamd_did) {
    Entry e;
    if (!ParseAddressEntry(ml->key, &e).ok()) return false;
    ml->converted = true;
    ml->meaning_change = what_rspamd_did + " becomes the exact entry " + e.text +
                         " (whole address, case-insensitive)";
    ml->entry = std::move(e);
    return true;
  }

  void ConvertPattern(MapLine* ml, std::string_view body, std::string_view flags) {
    Entry e;
    PatternError why = PatternError::kNone;
    Status st = ParsePattern(EscapeMapChars(body), flags, &e, &why);
    if (st.ok()) {
      ml->converted = true;
      ml->entry = std::move(e);
      return;
    }
    if (why == PatternError::kHyperscan) {
      Error(ml->line, "hyperscan-incompatible",
            "regex " + Quote(body) + ": " + st.message() +
                "; one such pattern switches rspamd's whole map from Hyperscan to PCRE");
    } else {
      Error(ml->line, "invalid-regex", "regex " + Quote(body) + ": " + st.message());
    }
  }

  // Hazards for flags after a closing delimiter; false when compd cannot take them over.
  bool CheckFlags(int line, const RspamdFlags& f, bool report_unknown) {
    if (report_unknown && !f.ignored.empty()) {
      Warn(line, "unknown-flag",
           std::string("unknown flag '") + f.ignored.front() +
               "': rspamd stops reading flags there, so \"" + f.ignored + "\" is ignored");
    }
    for (char c : f.engine_only) {
      Warn(line, "ignored-flag",
           std::string("flag '") + c +
               (c == 'r' ? "' (raw bytes, the default without u)"
                         : "' only tunes rspamd's regex engine and") +
               " does not change what matches; compd drops it");
    }
    if (f.extended) {
      Error(line, "unsupported-flag",
            "flag 'x' (extended syntax) is not supported by compd; rewrite the regex without "
            "it");
      return false;
    }
    return true;
  }

  void InterpretRegexp(MapLine* ml) {
    const std::string& key = ml->key;
    if (key.empty()) {
      Error(ml->line, "hyperscan-incompatible",
            "empty key: rspamd compiles it as an empty regex, which matches every address "
            "(Hyperscan refuses it, so the whole map falls back to PCRE)");
      return;
    }
    const RspamdRegex re = SplitLikeRspamd(key);
    const bool address_like = IsPlainAddressLine(key);
    const std::string delims = re.open == re.close ? "'" + std::string(1, re.open) + "'"
                                                   : "'" + std::string(1, re.open) + "' and '" +
                                                         std::string(1, re.close) + "'";
    switch (re.form) {
      case RspamdRegex::Form::kNotEnclosed: {
        if (key.front() == 'm') {
          Warn(ml->line, "m-trap",
               "line starts with 'm' and '" + std::string(1, re.open) +
                   "', so rspamd reads it as a Perl-style regex delimited by " + delims +
                   " and, as it is never closed, cannot load it: the line matches nothing");
          if (address_like &&
              ConvertToExact(ml, "rspamd could not load this line, so it matched nothing; it"))
            return;
          Error(ml->line, "invalid-regex",
                "rspamd cannot load " + Quote(key) + " and compd cannot convert it");
          return;
        }
        Error(ml->line, "invalid-regex",
              "the regex after '/' is never closed, so rspamd cannot load " + Quote(key));
        return;
      }
      case RspamdRegex::Form::kPerl: {
        const RspamdFlags f = ReadFlags(re.tail);
        const bool fold = f.compd.find('i') != std::string::npos;
        std::string msg = "line starts with 'm' and '" + std::string(1, re.open) +
                          "', so rspamd reads it as a Perl-style regex delimited by " + delims +
                          ": the pattern " + Quote(re.body) + " (unanchored, " +
                          (fold ? "case-insensitive" : "case-sensitive") + ")";
        if (!f.used.empty()) msg += " with flags \"" + f.used + "\"";
        if (address_like) msg += ", not the address " + key;
        if (!f.ignored.empty()) {
          msg += "; \"" + f.ignored + "\" after the closing '" + std::string(1, re.close) +
                 "' is ignored";
        }
        Warn(ml->line, "m-trap", std::move(msg));
        if (address_like &&
            ConvertToExact(ml, "rspamd read this line as the regex " + Quote(re.body) +
                                   " (unanchored, " +
                                   (fold ? "case-insensitive" : "case-sensitive") + "); it"))
          return;
        if (CheckFlags(ml->line, f, /*report_unknown=*/false)) {
          ConvertPattern(ml, re.body, f.compd);
        }
        return;
      }
      case RspamdRegex::Form::kSlashed: {
        const RspamdFlags f = ReadFlags(re.tail);
        if (CheckFlags(ml->line, f, /*report_unknown=*/true)) {
          ConvertPattern(ml, re.body, f.compd);
        }
        return;
      }
      case RspamdRegex::Form::kBare:
        break;
    }
    const BareFacts facts = address_like ? CheckBare(key) : BareFacts();
    Warn(ml->line, "bare-regex", DescribeBare(key, facts));
    if (address_like &&
        ConvertToExact(ml, "bare regex " + Quote(key) + " (unanchored, case-sensitive)")) {
      if (facts.known && !facts.matches_itself) {
        ml->meaning_change += "; rspamd's regex did not even match " + key + " itself";
      }
      return;
    }
    ConvertPattern(ml, key, "");
  }

  // Says what a bare line matches in rspamd; examples only when checked against the regex.
  static std::string DescribeBare(const std::string& key, const BareFacts& f) {
    std::string msg =
        "bare line is an unanchored, case-sensitive regex: rspamd matches every address "
        "that contains a match for " +
        Quote(key);
    if (!f.known) return msg;
    if (key.find('.') != std::string::npos) msg += " (`.` matches any character)";
    if (f.matches_longer) msg += ", such as " + f.longer;
    if (f.upper != key && !f.matches_upper) msg += ", but not " + f.upper;
    if (!f.matches_itself) {
      msg += "; it does not even match " + key + " itself";
      if (key.find('+') != std::string::npos) msg += " (`+` repeats the character before it)";
    }
    return msg;
  }

  MapKind kind_;
  MapReadResult result_;
  std::unordered_map<std::string, int> first_line_;
};

std::string ErrnoText(int err) { return std::generic_category().message(err); }

constexpr const char* kExactHeader =
    "# compd exact recipients (rspamd plain map); written by compd, do not edit";
constexpr const char* kPatternHeader =
    "# compd recipient patterns (rspamd regexp map); written by compd, do not edit";

std::string FormatMap(const char* header, std::vector<std::string_view> lines) {
  // A snapshot's texts come sorted already; a million of them take 0.1 s to sort again.
  if (!std::is_sorted(lines.begin(), lines.end())) std::sort(lines.begin(), lines.end());
  lines.erase(std::unique(lines.begin(), lines.end()), lines.end());
  size_t size = std::strlen(header) + 1;
  for (std::string_view l : lines) size += l.size() + 1;
  std::string out;
  out.reserve(size);
  out += header;
  out += '\n';
  for (std::string_view l : lines) {
    out += l;
    out += '\n';
  }
  return out;
}

std::vector<std::string_view> TextsOf(const std::vector<Entry>& entries, EntryKind kind) {
  std::vector<std::string_view> texts;
  for (const Entry& e : entries) {
    if (e.kind == kind) texts.push_back(e.text);
  }
  return texts;
}

std::string FormatPatternTexts(std::vector<std::string_view> texts) {
  if (!std::is_sorted(texts.begin(), texts.end())) std::sort(texts.begin(), texts.end());
  std::vector<std::string> kept(texts.begin(), texts.end());
  DropRspamdDuplicates(&kept);
  return FormatMap(kPatternHeader, std::vector<std::string_view>(kept.begin(), kept.end()));
}

}  // namespace

std::string MapHazard::Format(std::string_view file) const {
  std::string out(file);
  if (line > 0) out += ":" + std::to_string(line);
  out += ": ";
  out += message;
  return out;
}

bool MapReadResult::has_errors() const {
  return std::any_of(hazards.begin(), hazards.end(),
                     [](const MapHazard& h) { return h.severity == MapHazard::Severity::kError; });
}

MapReadResult ReadRspamdMap(std::string_view contents, MapKind kind) {
  return Reader(kind).Read(contents);
}

Status ReadRspamdMapFile(const std::string& path, MapKind kind, MapReadResult* out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("cannot read " + path + ": " + ErrnoText(errno));
  std::string contents;
  std::string chunk(1 << 16, '\0');
  for (;;) {
    const ssize_t r = read(fd, chunk.data(), chunk.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int err = errno;
      close(fd);
      return Status::IoError("cannot read " + path + ": " + ErrnoText(err));
    }
    if (r == 0) break;
    contents.append(chunk.data(), static_cast<size_t>(r));
  }
  close(fd);
  *out = ReadRspamdMap(contents, kind);
  return Status::Ok();
}

std::string FormatExactMap(const std::vector<Entry>& entries) {
  return FormatMap(kExactHeader, TextsOf(entries, EntryKind::kExact));
}

std::string FormatPatternMap(const std::vector<Entry>& entries) {
  return FormatPatternTexts(TextsOf(entries, EntryKind::kPattern));
}

Status WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode) {
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  // Same folder, so that rename() is atomic; mkostemp makes the name unique.
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) {
    return Status::IoError("cannot create a temporary file beside " + path + ": " +
                           ErrnoText(errno));
  }
  auto fail = [&](const std::string& what, int err, bool close_fd) {
    if (close_fd) close(fd);
    unlink(tmp.c_str());
    return Status::IoError(what + ": " + ErrnoText(err));
  };
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t w = write(fd, contents.data() + done, contents.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write " + path, errno, true);
    }
    done += static_cast<size_t>(w);
  }
  if (fsync(fd) != 0) return fail("cannot write " + path, errno, true);
  // mkostemp creates 0600; set the mode explicitly, independent of the umask.
  if (fchmod(fd, mode) != 0) return fail("cannot set the mode of " + path, errno, true);
  if (close(fd) != 0) return fail("cannot write " + path, errno, false);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return fail("cannot replace " + path, errno, false);
  }
  // The rename itself must reach the disk, or a crash could bring back the old file.
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return Status::IoError("cannot sync the folder of " + path + ": " + ErrnoText(errno));
  const int rc = fsync(dfd);
  const int err = errno;
  close(dfd);
  if (rc != 0) return Status::IoError("cannot sync the folder of " + path + ": " + ErrnoText(err));
  return Status::Ok();
}

Status WriteMapFiles(const std::string& dir, const std::vector<Entry>& entries) {
  return WriteMapFiles(dir, TextsOf(entries, EntryKind::kExact),
                       TextsOf(entries, EntryKind::kPattern));
}

Status WriteMapFiles(const std::string& dir, std::vector<std::string_view> exact,
                     std::vector<std::string_view> patterns) {
  const std::string base = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  Status st = WriteFileAtomically(base + kExactMapFile, FormatMap(kExactHeader, std::move(exact)));
  if (!st.ok()) return st;
  return WriteFileAtomically(base + kPatternMapFile, FormatPatternTexts(std::move(patterns)));
}

}  // namespace compd
