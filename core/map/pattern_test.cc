#include "compd/map/pattern.h"

#include <catch2/catch.hpp>
#include <string>

namespace compd {
namespace {

// Patterns are written as operators type them, through ParseEntry, which hands everything
// between the first and the last `/` to ParsePattern.
TEST_CASE("ParseEntry accepts patterns in normal form", "[pattern]") {
  struct ValidCase {
    const char* input;
    EntryKind kind;
    const char* text;
  };
  const ValidCase cases[] = {
      {"/^spam@/", EntryKind::kPattern, "/^spam@/"},
      {"/abc/si", EntryKind::kPattern, "/abc/is"},
      {"/abc/uiiu", EntryKind::kPattern, "/abc/iu"},
      {"/abc/usmi", EntryKind::kPattern, "/abc/imsu"},
      // rspamd's regex parser splits at the last `/`; compd escapes the inner one.
      {"/a/b@x/", EntryKind::kPattern, "/a\\/b@x/"},
      {"/a\\/b/", EntryKind::kPattern, "/a\\/b/"},
      {"/[/]x/", EntryKind::kPattern, "/[\\/]x/"},
      {"/\\Qa/b\\E@x/", EntryKind::kPattern, "/\\Qa\\E\\/\\Qb\\E@x/"},
      {"/a\\#b/", EntryKind::kPattern, "/a\\#b/"},
      {"/^a@x$|^b@x$/", EntryKind::kPattern, "/^a@x$|^b@x$/"},
      {"/(?i)^x@y/", EntryKind::kPattern, "/(?i)^x@y/"},
      {"/(^a|b$)/", EntryKind::kPattern, "/(^a|b$)/"},
      {"/a\\b/", EntryKind::kPattern, "/a\\b/"},
      {"/\\bfoo/", EntryKind::kPattern, "/\\bfoo/"},
      {"/x{1000}/", EntryKind::kPattern, "/x{1000}/"},
      {"/a\\x20b/", EntryKind::kPattern, "/a\\x20b/"},
      {"/^.+@évil\\.example$/u", EntryKind::kPattern, "/^.+@évil\\.example$/u"},
      // With the m flag `^` may follow a line break, so it is not an embedded anchor.
      {"/a\\n^b/m", EntryKind::kPattern, "/a\\n^b/m"},
  };
  for (const ValidCase& c : cases) {
    INFO("input: " << c.input);
    Entry e;
    Status st = ParseEntry(c.input, &e);
    REQUIRE(st.ok());
    CHECK(e.kind == c.kind);
    CHECK(e.text == c.text);
    CHECK("/" + e.regex + "/" + e.flags == e.text);
    // The normal form reads back as itself.
    Entry again;
    REQUIRE(ParseEntry(e.text, &again).ok());
    CHECK(again.text == e.text);
    CHECK(again.kind == e.kind);
  }
}

TEST_CASE("patterns are rejected with the reason and no location", "[pattern]") {
  struct InvalidCase {
    const char* input;
    const char* reason;
  };
  const InvalidCase cases[] = {
      {"//", "empty regex"},
      {"/abc/x", "flag 'x' is not supported (use i, m, s, u)"},
      {"/abc/ig", "flag 'g' is not supported (use i, m, s, u)"},
      {"/(a/", "invalid regex: missing ): (a"},
      {"/[a/", "invalid regex: missing ]: [a"},
      {"/a{1001}/",
       "invalid regex: invalid repetition size: {1001} (repeat counts are limited to 1000)"},
      {"/(a)\\1/", "backreferences are not supported: Hyperscan and RE2 refuse them"},
      {"/(?P<n>a)(?P=n)/", "backreferences are not supported: Hyperscan and RE2 refuse them"},
      {"/a(?=b)/", "lookaround assertions are not supported: Hyperscan and RE2 refuse them"},
      {"/a(?!b)/", "lookaround assertions are not supported: Hyperscan and RE2 refuse them"},
      {"/(?<=a)b/", "lookaround assertions are not supported: Hyperscan and RE2 refuse them"},
      {"/(?<!a)b/", "lookaround assertions are not supported: Hyperscan and RE2 refuse them"},
      {"/(?>a)b/", "atomic groups are not supported: Hyperscan and RE2 refuse them"},
      {"/a*+b/", "possessive quantifiers are not supported: Hyperscan and RE2 refuse them"},
      {"/(a)?(?(1)b|c)/", "conditionals are not supported: Hyperscan and RE2 refuse them"},
      {"/(?<n>a)/",
       "invalid regex: invalid perl operator: (?< (write named groups as (?P<name>...))"},
      {"/a\\C/", "\\C (any single byte) is not supported: Hyperscan refuses it"},
      {"/a*/",
       "regex matches the empty string, so it would list every address (Hyperscan refuses "
       "it too)"},
      {"/a|/",
       "regex matches the empty string, so it would list every address (Hyperscan refuses "
       "it too)"},
      {"/^/",
       "regex matches the empty string, so it would list every address (Hyperscan refuses "
       "it too)"},
      {"/\\b/",
       "regex can match without consuming a character (e.g. at \\b), so it would list almost "
       "every address (Hyperscan refuses it too)"},
      {"/x?\\b/",
       "regex can match without consuming a character (e.g. at \\b), so it would list almost "
       "every address (Hyperscan refuses it too)"},
      {"/a^b/",
       "^ inside the regex can never match there: Hyperscan refuses embedded anchors (move "
       "it to the start or end, or use the m flag)"},
      {"/a$b/",
       "$ inside the regex can never match there: Hyperscan refuses embedded anchors (move "
       "it to the start or end, or use the m flag)"},
      {"/a\\Ab/",
       "\\A inside the regex can never match there: Hyperscan refuses embedded anchors (move "
       "it to the start or end, or use the m flag)"},
      {"/a b/",
       "regex contains whitespace, which cannot be written to an rspamd map line: write \\s "
       "or \\x20 instead"},
      {"/a\\ b/",
       "regex contains whitespace, which cannot be written to an rspamd map line: write \\s "
       "or \\x20 instead"},
      {"/a#b/",
       "regex contains an unescaped '#', which starts a comment in an rspamd map line: write "
       "\\# instead"},
      {"/[#]/",
       "regex contains an unescaped '#', which starts a comment in an rspamd map line: write "
       "\\# instead"},
      {"/a\xff/u", "invalid regex: invalid UTF-8"},
  };
  for (const InvalidCase& c : cases) {
    INFO("input: " << c.input);
    Entry e;
    e.text = "untouched";
    Status st = ParseEntry(c.input, &e);
    REQUIRE(st.IsInvalid());
    CHECK(st.message() == c.reason);
    CHECK(e.text == "untouched");
  }
}

TEST_CASE("ParsePattern says which kind of problem it found", "[pattern]") {
  struct Case {
    const char* regex;
    const char* flags;
    PatternError why;
  };
  const Case cases[] = {
      {"abc", "", PatternError::kNone},         {"abc", "g", PatternError::kFlag},
      {"", "", PatternError::kSyntax},          {"(a", "", PatternError::kSyntax},
      {"(a)\\1", "", PatternError::kHyperscan}, {"a*", "", PatternError::kHyperscan},
      {"a^b", "", PatternError::kHyperscan},    {"a\\C", "", PatternError::kHyperscan},
      {"a b", "", PatternError::kMapLine},      {"a#b", "", PatternError::kMapLine},
  };
  for (const Case& c : cases) {
    INFO("regex: " << c.regex << " flags: " << c.flags);
    Entry e;
    PatternError why = PatternError::kFlag;
    Status st = ParsePattern(c.regex, c.flags, &e, &why);
    CHECK(st.ok() == (c.why == PatternError::kNone));
    CHECK(why == c.why);
  }
}

// Found by fuzzing (tests/fuzz): patterns compd accepted but could not write back faithfully.
TEST_CASE("patterns that could not be written back are refused", "[pattern]") {
  Entry e;
  Status s = ParseEntry("/a\\Q\\/", &e);
  CHECK(s.IsInvalid());
  CHECK(s.message() ==
        "regex ends with a backslash inside \\Q...\\E, which an rspamd map line cannot carry: "
        "close the quote with \\E first");
  s = ParseEntry(std::string("/^a\0b@x$/", 9), &e);
  CHECK(s.message() == "regex contains a control character: write it as \\xHH");
  CHECK(ParseEntry("/\\Qa/b\\E@x/", &e).ok());  // \Q...\E itself is fine
}

TEST_CASE("PatternSpec turns flags into one inline prefix", "[pattern]") {
  const std::pair<const char*, const char*> cases[] = {
      {"/^a@x$/", "^a@x$"},   {"/a/i", "(?i)a"}, {"/a/si", "(?is)a"},
      {"/a/imsu", "(?ims)a"}, {"/a/u", "a"},
  };
  for (const auto& c : cases) {
    INFO(c.first);
    Entry e;
    REQUIRE(ParseEntry(c.first, &e).ok());
    const CompiledPatternSpec spec = PatternSpec(e);
    CHECK(spec.pattern == c.second);
    CHECK(spec.utf8 == (e.flags.find('u') != std::string::npos));
  }
}

}  // namespace
}  // namespace compd
