#include "compd/map/pattern.h"

#include <catch2/catch.hpp>
#include <string>
#include <utility>

namespace compd {
namespace {

// Patterns as operators type them, accepted and refused with their reasons, are in
// entry_test.cc: ParseEntry is where they come in.
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
