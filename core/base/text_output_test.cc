#include "compd/base/text_output.h"

#include <catch2/catch.hpp>

namespace compd {
namespace {

TEST_CASE("TextTable aligns columns without trailing blanks", "[text_output]") {
  TextTable t;
  t.AddRow({"ENTRY", "KIND", "NOTE"});
  t.AddRow({"a@x.example", "exact", ""});
  t.AddRow({"/^b/", "pattern", "hi"});
  CHECK(t.Render() ==
        "ENTRY        KIND     NOTE\n"
        "a@x.example  exact\n"
        "/^b/         pattern  hi\n");
}

TEST_CASE("TextTable counts UTF-8 code points and allows ragged rows", "[text_output]") {
  TextTable t;
  t.AddRow({"j\xc3\xbcrgen@x.example", "1"});
  t.AddRow({"jurgen@x.example", "2"});
  t.AddRow({"only"});
  CHECK(t.Render() ==
        "j\xc3\xbcrgen@x.example  1\n"
        "jurgen@x.example  2\n"
        "only\n");
  CHECK(TextTable().Render().empty());
  CHECK(DisplayWidth("\xc3\xbc") == 1);
}

TEST_CASE("CountOf picks the plural", "[text_output]") {
  CHECK(CountOf(0, "error", "errors") == "0 errors");
  CHECK(CountOf(1, "entry", "entries") == "1 entry");
  CHECK(CountOf(2, "entry", "entries") == "2 entries");
}

TEST_CASE("FormatUnixTime is UTC and zero is unknown", "[text_output]") {
  CHECK(FormatUnixTime(0) == "-");
  CHECK(FormatUnixTime(1714564800) == "2024-05-01 12:00:00Z");
  CHECK(FormatUnixTime(946684799) == "1999-12-31 23:59:59Z");
}

}  // namespace
}  // namespace compd
