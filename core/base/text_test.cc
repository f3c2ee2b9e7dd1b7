#include "compd/base/text.h"

#include <catch2/catch.hpp>
#include <cctype>
#include <string>

namespace compd {
namespace {

TEST_CASE("character classes are ASCII and agree with the C locale", "[text]") {
  for (int i = 0; i < 256; ++i) {
    const char c = static_cast<char>(i);
    INFO("byte " << i);
    CHECK(IsAsciiSpace(c) == (std::isspace(i) != 0));
    CHECK(IsBlank(c) == (c == ' ' || c == '\t'));
    CHECK(AsciiLower(c) == static_cast<char>(std::tolower(i)));
    CHECK(AsciiUpper(c) == static_cast<char>(std::toupper(i)));
  }
}

TEST_CASE("case folding leaves UTF-8 and non-letters alone", "[text]") {
  CHECK(AsciiLower("Alice@Example.COM") == "alice@example.com");
  CHECK(AsciiLower("\xc3\x89T\xc3\x89") == "\xc3\x89t\xc3\x89");
  CHECK(AsciiUpper("foo_bar-1") == "FOO_BAR-1");
  CHECK(AsciiLower("") == "");
  CHECK(HasAsciiUpper("a@B.x"));
  CHECK_FALSE(HasAsciiUpper("a@b.x\xc3\x89"));
}

TEST_CASE("caseless comparison", "[text]") {
  const struct {
    const char* a;
    const char* b;
    bool equal;        // EqualsIgnoreAsciiCase(a, b)
    bool starts_with;  // StartsWithIgnoreAsciiCase(a, b)
  } kCases[] = {
      {"Subject", "SUBJECT", true, true},
      {"Subject", "Subjects", false, false},
      // Only ASCII folds: É and é differ.
      {"\xc3\x89", "\xc3\xa9", false, false},
      {"Bearer abc", "bearer ", false, true},
      {"Bear", "bearer ", false, false},
      {"x", "", false, true},
  };
  for (const auto& c : kCases) {
    INFO("'" << c.a << "' vs '" << c.b << "'");
    CHECK(EqualsIgnoreAsciiCase(c.a, c.b) == c.equal);
    CHECK(StartsWithIgnoreAsciiCase(c.a, c.b) == c.starts_with);
  }
}

TEST_CASE("decimal numbers: digits only, never overflowing", "[text]") {
  int64_t v = -1;
  CHECK(ParseDecimal("0", &v));
  CHECK(v == 0);
  CHECK(ParseDecimal("000312", &v));
  CHECK(v == 312);
  CHECK(ParseDecimal("999999999999999999", &v));
  CHECK(v == 999999999999999999);
  v = 7;
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1x", "0x10", "1e3", "1000000000000000000"}) {
    INFO(bad);
    CHECK_FALSE(ParseDecimal(bad, &v));
  }
  CHECK(v == 7);
}

TEST_CASE("each trim removes only its own set", "[text]") {
  const std::string all = " \t\n\v\f\r";
  CHECK(TrimAsciiSpace(all + "a b" + all) == "a b");
  CHECK(TrimAsciiSpace(all).empty());
  CHECK(TrimBlanks(" \t a\tb \t") == "a\tb");
  CHECK(TrimBlanks("\r a \n") == "\r a \n");
  CHECK(TrimChars("\r\n a \t\r", " \t\r") == "\n a");
  CHECK(TrimChars("", " ").empty());
  CHECK(TrimChars("abc", "") == "abc");
  // Bytes of UTF-8 sequences are never whitespace (0x85 and 0xa0 are in some locales).
  CHECK(TrimAsciiSpace("\xc2\xa0x\xc2\x85") == "\xc2\xa0x\xc2\x85");
}

TEST_CASE("list items are trimmed and empty ones dropped", "[text]") {
  using Items = std::vector<std::string_view>;
  const struct {
    const char* text;
    const char* separators;
    Items items;
  } kCases[] = {
      {" a, b ,,\tc ,", ",", {"a", "b", "c"}},
      {"a b,c", ", ", {"a", "b", "c"}},
      {"a b", ",", {"a b"}},
      {" , ", ",", {}},
      {"", ",", {}},
  };
  for (const auto& c : kCases) {
    INFO("'" << c.text << "' split on '" << c.separators << "'");
    CHECK(SplitList(c.text, c.separators) == c.items);
  }
}

}  // namespace
}  // namespace compd
