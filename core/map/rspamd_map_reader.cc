// Reading rspamd map files: what rspamd made of each line (rspamd_map_syntax.h), what
// compd makes of it, and every hazard on the way.
#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "compd/base/file.h"
#include "compd/base/text.h"
#include "compd/map/address.h"
#include "compd/map/pattern.h"
#include "compd/map/rspamd_map.h"
#include "compd/map/rspamd_map_syntax.h"

namespace compd {
namespace {

using rspamd_syntax::Hazard;
using rspamd_syntax::IsEol;
using rspamd_syntax::kError;
using rspamd_syntax::kWarning;
using rspamd_syntax::LineIndex;
using rspamd_syntax::Quote;
using rspamd_syntax::RawKey;
using rspamd_syntax::ReadFlags;
using rspamd_syntax::RspamdFlags;
using rspamd_syntax::RspamdRegex;
using rspamd_syntax::Scan;
using rspamd_syntax::ScanKv;
using rspamd_syntax::SplitLikeRspamd;

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
  std::string contents;
  Status s = ReadFile(path, &contents);
  // A missing map file is a read failure here like any other.
  if (!s.ok()) return Status::IoError(s.message());
  *out = ReadRspamdMap(contents, kind);
  return Status::Ok();
}

}  // namespace compd
