#include "compd/map/entry.h"

#include <catch2/catch.hpp>
#include <string>

namespace compd {
namespace {

struct ValidCase {
  const char* input;
  EntryKind kind;
  const char* text;
};

TEST_CASE("ParseEntry accepts addresses and patterns in normal form", "[entry]") {
  const ValidCase cases[] = {
      {"user@example.com", EntryKind::kExact, "user@example.com"},
      {"  User@Example.COM \t", EntryKind::kExact, "user@example.com"},
      {"<User@Example.com>", EntryKind::kExact, "user@example.com"},
      {"<@a.example,@b.example:U@x.com>", EntryKind::kExact, "u@x.com"},
      {"u+Tag@x.com", EntryKind::kExact, "u+tag@x.com"},
      {"u@[192.0.2.1]", EntryKind::kExact, "u@[192.0.2.1]"},
      // Only rspamd's regexp maps have the `m` trap; an exact entry is just the address.
      {"m.smith@example.com", EntryKind::kExact, "m.smith@example.com"},
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
    if (e.kind == EntryKind::kPattern) {
      CHECK("/" + e.regex + "/" + e.flags == e.text);
    } else {
      CHECK(e.regex.empty());
      CHECK(e.flags.empty());
    }
    // The normal form reads back as itself.
    Entry again;
    REQUIRE(ParseEntry(e.text, &again).ok());
    CHECK(again.text == e.text);
    CHECK(again.kind == e.kind);
  }
}

struct InvalidCase {
  const char* input;
  const char* reason;
};

TEST_CASE("ParseEntry rejects with the reason and no location", "[entry]") {
  const InvalidCase cases[] = {
      {"", "empty entry"},
      {"  \t ", "empty entry"},
      {"//", "empty regex"},
      {"/abc", "regex has no closing '/' (write /regex/flags)"},
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
      {"foo", "not an address: no '@'"},
      {"<>", "not an address: no '@'"},
      {"@x.com", "not an address: nothing before '@'"},
      {"x@", "not an address: nothing after '@'"},
      {"john doe@x.com", "not an address: contains whitespace"},
      {"\"john doe\"@x.com",
       "address 'john doe@x.com' contains whitespace, which a line of an rspamd plain map "
       "cannot hold; list it as a pattern instead: /^john\\x20doe@x\\.com$/i"},
      {"a#b@x.com",
       "address 'a#b@x.com' contains '#', which starts a comment in an rspamd map line; list "
       "it as a pattern instead: /^a\\#b@x\\.com$/i"},
      {"</x@y.com>",
       "address '/x@y.com' starts with '/', which rspamd's map reader takes for the start of "
       "a regex; list it as a pattern instead: /^\\/x@y\\.com$/i"},
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

TEST_CASE("suggested patterns for unwritable addresses are valid entries", "[entry]") {
  for (const char* input : {"\"john doe\"@x.com", "a#b@x.com", "</x@y.com>"}) {
    INFO("input: " << input);
    Entry e;
    Status st = ParseEntry(input, &e);
    REQUIRE(st.IsInvalid());
    const std::string& msg = st.message();
    const std::string suggestion = msg.substr(msg.rfind("instead: ") + 9);
    Entry pattern;
    REQUIRE(ParseEntry(suggestion, &pattern).ok());
    CHECK(pattern.kind == EntryKind::kPattern);
    CHECK(pattern.text == suggestion);
  }
}

TEST_CASE("entry kinds have stable names", "[entry]") {
  CHECK(std::string(EntryKindName(EntryKind::kExact)) == "exact");
  CHECK(std::string(EntryKindName(EntryKind::kPattern)) == "pattern");
}

// Found by fuzzing (tests/fuzz): inputs compd accepted but could not write back faithfully.
TEST_CASE("entries that could not be written back are refused", "[entry]") {
  struct Case {
    const char* input;
    const char* reason;
  };
  const Case cases[] = {
      {"/a\\Q\\/",
       "regex ends with a backslash inside \\Q...\\E, which an rspamd map line cannot carry: "
       "close the quote with \\E first"},
      {"@\":u@[\"]", "not an address: malformed quoting around the source route"},
  };
  for (const auto& c : cases) {
    INFO(c.input);
    Entry e;
    Status s = ParseEntry(c.input, &e);
    CHECK(s.IsInvalid());
    CHECK(s.message() == c.reason);
  }
  Entry e;
  Status s = ParseEntry(std::string("/^a\0b@x$/", 9), &e);
  CHECK(s.message() == "regex contains a control character: write it as \\xHH");
  CHECK(ParseEntry("/\\Qa/b\\E@x/", &e).ok());  // \Q...\E itself is fine
}

}  // namespace
}  // namespace compd
