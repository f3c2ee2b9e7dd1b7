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
      {"/abc", "regex has no closing '/' (write /regex/flags)"},
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
      {"@\":u@[\"]", "not an address: malformed quoting around the source route"},
  };
  for (const auto& c : cases) {
    INFO(c.input);
    Entry e;
    Status s = ParseEntry(c.input, &e);
    CHECK(s.IsInvalid());
    CHECK(s.message() == c.reason);
  }
}

}  // namespace
}  // namespace compd
