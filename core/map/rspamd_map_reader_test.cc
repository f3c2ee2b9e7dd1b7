#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "compd/map/rspamd_map.h"

namespace compd {
namespace {

std::vector<std::string> Formatted(const MapReadResult& r) {
  std::vector<std::string> out;
  for (const MapHazard& h : r.hazards) out.push_back(h.Format("map.txt"));
  return out;
}

std::vector<std::string> Codes(const MapReadResult& r) {
  std::vector<std::string> out;
  for (const MapHazard& h : r.hazards) out.push_back(std::to_string(h.line) + " " + h.code);
  return out;
}

const MapLine* LineAt(const MapReadResult& r, int line) {
  for (const MapLine& l : r.lines) {
    if (l.line == line) return &l;
  }
  return nullptr;
}

// One case per fact measured on rspamd 3.4 (see rspamd_map.h), and the conversion compd
// makes of it.
struct FactCase {
  const char* name;
  MapKind kind;
  const char* contents;
  std::vector<std::string> hazards;  // exactly, as mapctl lint prints them
  // Per kept line: "line key -> converted entry text" or "line key -> -" when not converted.
  std::vector<std::string> lines;
  std::vector<std::string> meaning_changes;  // non-empty ones, in order
};

std::string Describe(const MapLine& l) {
  return std::to_string(l.line) + " " + l.key + " -> " + (l.converted ? l.entry.text : "-");
}

TEST_CASE("the reader applies rspamd 3.4's rules and reports every hazard", "[rspamdmap]") {
  const std::vector<FactCase> cases = {
      {"a bare line is an unanchored, case-sensitive regex",
       MapKind::kRegexp,
       "a.b@x.com\n",
       {"map.txt:1: bare line is an unanchored, case-sensitive regex: rspamd matches every "
        "address that contains a match for `a.b@x.com` (`.` matches any character), such as "
        "zzza.b@x.com.evil, but not A.B@X.COM"},
       {"1 a.b@x.com -> a.b@x.com"},
       {"bare regex `a.b@x.com` (unanchored, case-sensitive) becomes the exact entry "
        "a.b@x.com (whole address, case-insensitive)"}},
      {"a bare address with + does not even match itself",
       MapKind::kRegexp,
       "a+b@x.com\n",
       {"map.txt:1: bare line is an unanchored, case-sensitive regex: rspamd matches every "
        "address that contains a match for `a+b@x.com` (`.` matches any character), but not "
        "A+B@X.COM; it does not even match a+b@x.com itself (`+` repeats the character "
        "before it)"},
       {"1 a+b@x.com -> a+b@x.com"},
       {"bare regex `a+b@x.com` (unanchored, case-sensitive) becomes the exact entry "
        "a+b@x.com (whole address, case-insensitive); rspamd's regex did not even match "
        "a+b@x.com itself"}},
      {"a bare line that is a real regex keeps its meaning",
       MapKind::kRegexp,
       "^spam[0-9]+@\nevil/path@x\n",
       {"map.txt:1: bare line is an unanchored, case-sensitive regex: rspamd matches every "
        "address that contains a match for `^spam[0-9]+@`",
        "map.txt:2: bare line is an unanchored, case-sensitive regex: rspamd matches every "
        "address that contains a match for `evil/path@x`"},
       {"1 ^spam[0-9]+@ -> /^spam[0-9]+@/", "2 evil/path@x -> /evil\\/path@x/"},
       {}},
      {"m plus punctuation is a Perl m-regex",
       MapKind::kRegexp,
       "m.smith@example.com\n",
       {"map.txt:1: line starts with 'm' and '.', so rspamd reads it as a Perl-style regex "
        "delimited by '.': the pattern `smith@example` (unanchored, case-sensitive), not the "
        "address m.smith@example.com; \"com\" after the closing '.' is ignored"},
       {"1 m.smith@example.com -> m.smith@example.com"},
       {"rspamd read this line as the regex `smith@example` (unanchored, case-sensitive); it "
        "becomes the exact entry m.smith@example.com (whole address, case-insensitive)"}},
      {"an m-regex that is never closed loads nothing",
       MapKind::kRegexp,
       "m_jones@x.com\n",
       {"map.txt:1: line starts with 'm' and '_', so rspamd reads it as a Perl-style regex "
        "delimited by '_' and, as it is never closed, cannot load it: the line matches "
        "nothing"},
       {"1 m_jones@x.com -> m_jones@x.com"},
       {"rspamd could not load this line, so it matched nothing; it becomes the exact entry "
        "m_jones@x.com (whole address, case-insensitive)"}},
      {"an intended Perl m-regex keeps its meaning",
       MapKind::kRegexp,
       "m{^a@x\\.com$}i\n",
       {"map.txt:1: line starts with 'm' and '{', so rspamd reads it as a Perl-style regex "
        "delimited by '{' and '}': the pattern `^a@x\\.com$` (unanchored, case-insensitive) "
        "with flags \"i\""},
       {"1 m{^a@x\\.com$}i -> /^a@x\\.com$/i"},
       {}},
      {"text after whitespace is a value (a symbol name)",
       MapKind::kRegexp,
       "/^kv@x\\.com$/ compromised\n",
       {"map.txt:1: text after the key, `compromised`, is a value: multimap reads it as a "
        "symbol name (compd's files carry no values)"},
       {"1 /^kv@x\\.com$/ -> /^kv@x\\.com$/"},
       {}},
      {"values in a plain map",
       MapKind::kPlain,
       "kv@x.com compromised\n",
       {"map.txt:1: text after the key, `compromised`, is a value: multimap reads it as a "
        "symbol name (compd's files carry no values)"},
       {"1 kv@x.com -> kv@x.com"},
       {}},
      {"an inline # starts a comment unless escaped",
       MapKind::kPlain,
       "a@x.com#note\nb@x.com # why\n",
       {"map.txt:1: '#' starts a comment, so rspamd reads the key as `a@x.com` (write \\# if "
        "the '#' belongs to the entry)",
        "map.txt:2: inline comment: rspamd ignores the text from '#' on (compd's files carry "
        "no comments)"},
       {"1 a@x.com -> a@x.com", "2 b@x.com -> b@x.com"},
       {}},
      {"an escaped # stays in the key",
       MapKind::kRegexp,
       "/^a\\#b@x$/\nc\\#d@x\n",
       {"map.txt:2: bare line is an unanchored, case-sensitive regex: rspamd matches every "
        "address that contains a match for `c\\#d@x`"},
       {"1 /^a\\#b@x$/ -> /^a\\#b@x$/", "2 c\\#d@x -> /c\\#d@x/"},
       {}},
      {"duplicates are dropped case-insensitively",
       MapKind::kPlain,
       "A@x.com\nb@x.com\na@X.com\n",
       {"map.txt:3: duplicate of line 1 (rspamd compares keys case-insensitively and keeps "
        "the first)"},
       {"1 A@x.com -> a@x.com", "2 b@x.com -> b@x.com"},
       {}},
      {"regex duplicates differing in case are dropped too",
       MapKind::kRegexp,
       "/^Boss@x$/\n/^boss@x$/\n",
       {"map.txt:2: duplicate of line 1 (rspamd compares keys case-insensitively and keeps "
        "the first)"},
       {"1 /^Boss@x$/ -> /^Boss@x$/"},
       {}},
      {"a final /re/ without newline is silently dropped",
       MapKind::kRegexp,
       "/^a@x$/\n/^b@x$/",
       {"map.txt:2: file does not end with a newline; rspamd 3.4 silently drops the last "
        "entry `/^b@x$/` (it only stores such a line at a line end)"},
       {"1 /^a@x$/ -> /^a@x$/", "2 /^b@x$/ -> /^b@x$/"},
       {"rspamd dropped this last line because the file does not end with a newline; compd "
        "lists it"}},
      {"a final bare line without newline is kept",
       MapKind::kPlain,
       "a@x.com\nb@x.com",
       {"map.txt:2: file does not end with a newline"},
       {"1 a@x.com -> a@x.com", "2 b@x.com -> b@x.com"},
       {}},
      {"unknown flags stop flag parsing",
       MapKind::kRegexp,
       "/^a@x$/zi\n/^b@x$/iz\n",
       {"map.txt:1: unknown flag 'z': rspamd stops reading flags there, so \"zi\" is ignored",
        "map.txt:2: unknown flag 'z': rspamd stops reading flags there, so \"z\" is ignored"},
       {"1 /^a@x$/zi -> /^a@x$/", "2 /^b@x$/iz -> /^b@x$/i"},
       {}},
      {"flags rspamd knows but compd does not",
       MapKind::kRegexp,
       "/^a@x$/x\n/^b@x$/O\n/^c@x$/ur\n/^d@x$/ru\n",
       {"map.txt:1: flag 'x' (extended syntax) is not supported by compd; rewrite the regex "
        "without it",
        "map.txt:2: flag 'O' only tunes rspamd's regex engine and does not change what "
        "matches; compd drops it",
        "map.txt:3: flag 'r' (raw bytes, the default without u) does not change what matches; "
        "compd drops it",
        "map.txt:4: flag 'r' (raw bytes, the default without u) does not change what matches; "
        "compd drops it"},
       {"1 /^a@x$/x -> -", "2 /^b@x$/O -> /^b@x$/", "3 /^c@x$/ur -> /^c@x$/",
        "4 /^d@x$/ru -> /^d@x$/u"},
       {}},
      {"a pattern Hyperscan refuses switches the map to PCRE",
       MapKind::kRegexp,
       "/^(a)\\1@x$/\n/a*/\n",
       {"map.txt:1: regex `^(a)\\1@x$`: backreferences are not supported: Hyperscan and RE2 "
        "refuse them; one such pattern switches rspamd's whole map from Hyperscan to PCRE",
        "map.txt:2: regex `a*`: regex matches the empty string, so it would list every "
        "address (Hyperscan refuses it too); one such pattern switches rspamd's whole map "
        "from Hyperscan to PCRE"},
       {"1 /^(a)\\1@x$/ -> -", "2 /a*/ -> -"},
       {}},
      {"an invalid regex",
       MapKind::kRegexp,
       "/(a/\n",
       {"map.txt:1: regex `(a`: invalid regex: missing ): (a"},
       {"1 /(a/ -> -"},
       {}},
      {"an empty quoted key matches everything",
       MapKind::kRegexp,
       "\"\"\n",
       {"map.txt:1: empty key: rspamd compiles it as an empty regex, which matches every "
        "address (Hyperscan refuses it, so the whole map falls back to PCRE)"},
       {"1  -> -"},
       {}},
      {"a regex between slashes keeps blanks and # (compd escapes them)",
       MapKind::kRegexp,
       "/^a b#c@x$/\n",
       {},
       {"1 /^a b#c@x$/ -> /^a\\x20b\\#c@x$/"},
       {}},
      {"a regex whose closing slash is on a later line swallows lines",
       MapKind::kRegexp,
       "/^a@x\nb@x.com\n/ bad\nc@x.com\n",
       {"map.txt:1: text after the key, `bad`, is a value: multimap reads it as a symbol name "
        "(compd's files carry no values)",
        "map.txt:1: the regex has no closing delimiter on its line: rspamd reads lines 1-3 as "
        "one key, swallowing the lines in between",
        "map.txt:4: bare line is an unanchored, case-sensitive regex: rspamd matches every "
        "address that contains a match for `c@x.com` (`.` matches any character), such as "
        "zzzc@x.com.evil, but not C@X.COM"},
       {"4 c@x.com -> c@x.com"},
       {"bare regex `c@x.com` (unanchored, case-sensitive) becomes the exact entry c@x.com "
        "(whole address, case-insensitive)"}},
      {"a regex that is never closed drops the rest of the file",
       MapKind::kRegexp,
       "a@x\\.com\n/^b@x\nc@x.com\n",
       {"map.txt:1: bare line is an unanchored, case-sensitive regex: rspamd matches every "
        "address that contains a match for `a@x\\.com`",
        "map.txt:2: the regex started by '/' is never closed: rspamd reads everything from "
        "here to the end of the file (line 3) as one key and then drops it"},
       {"1 a@x\\.com -> /a@x\\.com/"},
       {}},
      {"a plain map is an exact, case-insensitive lookup",
       MapKind::kPlain,
       "# header\n\nUser@Example.COM\n  u+tag@x.com  \nm.smith@example.com\n",
       {},
       {"3 User@Example.COM -> user@example.com", "4 u+tag@x.com -> u+tag@x.com",
        "5 m.smith@example.com -> m.smith@example.com"},
       {}},
      {"a plain map key that is not an address",
       MapKind::kPlain,
       "<a@x.com>\n/^b@x$/\n",
       {"map.txt:1: key `<a@x.com>` is not a plain address, so compd cannot list it as an "
        "exact entry",
        "map.txt:2: key `/^b@x$/` looks like a regex, but a plain map compares keys "
        "literally, so rspamd never matched it; compd cannot convert it (add it as a pattern "
        "if it was meant as one)"},
       {"1 <a@x.com> -> -", "2 /^b@x$/ -> -"},
       {}},
      {"CRLF line ends and blank lines keep line numbers right",
       MapKind::kPlain,
       "a@x.com\r\n\r\n# c\r\nb@x.com\r\nb@x.com\r\n",
       {"map.txt:5: duplicate of line 4 (rspamd compares keys case-insensitively and keeps "
        "the first)"},
       {"1 a@x.com -> a@x.com", "4 b@x.com -> b@x.com"},
       {}},
  };
  for (const FactCase& c : cases) {
    INFO(c.name);
    const MapReadResult r = ReadRspamdMap(c.contents, c.kind);
    CHECK(Formatted(r) == c.hazards);
    std::vector<std::string> lines, changes;
    for (const MapLine& l : r.lines) {
      lines.push_back(Describe(l));
      if (!l.meaning_change.empty()) changes.push_back(l.meaning_change);
    }
    CHECK(lines == c.lines);
    CHECK(changes == c.meaning_changes);
  }
}

TEST_CASE("hazards carry stable codes, severities and line numbers", "[rspamdmap]") {
  const char* contents =
      "# operator's list\n"     // 1
      "a.b@x.com\n"             // 2 bare-regex
      "m.smith@example.com\n"   // 3 m-trap
      "/^kv@x$/ compromised\n"  // 4 value
      "/^c@x$/ # note\n"        // 5 inline-comment
      "A.B@x.com\n"             // 6 duplicate of 2
      "/^d@x$/q\n"              // 7 unknown-flag
      "/(e/\n"                  // 8 invalid-regex
      "/(?=f)g/\n"              // 9 hyperscan-incompatible
      "/^h@x$/";                // 10 no-final-newline
  const MapReadResult r = ReadRspamdMap(contents, MapKind::kRegexp);
  CHECK(Codes(r) == std::vector<std::string>{"2 bare-regex", "3 m-trap", "4 value",
                                             "5 inline-comment", "6 duplicate", "7 unknown-flag",
                                             "8 invalid-regex", "9 hyperscan-incompatible",
                                             "10 no-final-newline"});
  CHECK(r.has_errors());
  for (const MapHazard& h : r.hazards) {
    INFO(h.code);
    const bool error = h.code == "invalid-regex" || h.code == "hyperscan-incompatible";
    CHECK((h.severity == MapHazard::Severity::kError) == error);
  }
  REQUIRE(LineAt(r, 8) != nullptr);
  CHECK_FALSE(LineAt(r, 8)->converted);
  CHECK(LineAt(r, 6) == nullptr);  // rspamd keeps only the first of a duplicate
}

TEST_CASE("a hazard for the whole file prints without a line", "[rspamdmap]") {
  MapHazard h;
  h.message = "cannot be read";
  CHECK(h.Format("/etc/rspamd/x.map") == "/etc/rspamd/x.map: cannot be read");
  h.line = 17;
  h.message = "invalid regex: missing ): (a";
  CHECK(h.Format("map.txt") == "map.txt:17: invalid regex: missing ): (a");
}

TEST_CASE("a clean map has no hazards and no errors", "[rspamdmap]") {
  const MapReadResult r = ReadRspamdMap("", MapKind::kRegexp);
  CHECK(r.hazards.empty());
  CHECK(r.lines.empty());
  CHECK_FALSE(r.has_errors());
}

TEST_CASE("garbage never crashes the reader or the entry parser", "[rspamdmap]") {
  // Deterministic, so a failure reproduces; the alphabet is what the reader cares about.
  const std::string alphabet = "am/\\\"#@. \t\r\n{}()[]|^$*+?xiuzO\x80\xff";
  uint32_t state = 12345;
  auto next = [&]() {
    state = state * 1103515245u + 12345u;
    return state >> 8;
  };
  for (int round = 0; round < 500; ++round) {
    std::string text;
    const size_t len = next() % 60;
    for (size_t i = 0; i < len; ++i) text += alphabet[next() % alphabet.size()];
    INFO("input: " << text);
    for (MapKind kind : {MapKind::kRegexp, MapKind::kPlain}) {
      const MapReadResult r = ReadRspamdMap(text, kind);
      for (const MapHazard& h : r.hazards) CHECK(h.line >= 1);
      for (const MapLine& l : r.lines) {
        if (!l.converted) continue;
        // Whatever the reader converts is a valid entry that reads back as itself.
        Entry again;
        CHECK(ParseEntry(l.entry.text, &again).ok());
        CHECK(again.text == l.entry.text);
      }
    }
    Entry e;
    (void)ParseEntry(text, &e);
  }
}

}  // namespace
}  // namespace compd
