#include "compd/map/map_edit.h"

#include <catch2/catch.hpp>

namespace compd {
namespace {

Entry Exact(const std::string& text) {
  Entry e;
  e.kind = EntryKind::kExact;
  e.text = text;
  return e;
}

Entry Pattern(const std::string& text) {
  Entry e;
  REQUIRE(ParseEntry(text, &e).ok());
  return e;
}

TEST_CASE("SplitEntryLines trims, skips blanks and comments, numbers lines", "[map_edit]") {
  auto in = SplitEntryLines("# head\none@x.example\n\n  two@x.example \r\n/^t/", "<stdin>");
  REQUIRE(in.size() == 3);
  CHECK(in[0].origin == "<stdin>:2");
  CHECK(in[0].text == "one@x.example");
  CHECK(in[1].origin == "<stdin>:4");
  CHECK(in[1].text == "two@x.example");
  CHECK(in[2].origin == "<stdin>:5");
  CHECK(in[2].text == "/^t/");
  CHECK(SplitEntryLines("", "x").empty());
}

TEST_CASE("ParseEntryInputs reports every invalid input and collapses duplicates", "[map_edit]") {
  std::vector<Entry> out;
  auto errors = ParseEntryInputs({{"", "A@X.example"},
                                  {"", "john smith"},
                                  {"<stdin>:4", "/(/"},
                                  {"", "a@x.example"},
                                  {"", "/^q/"}},
                                 &out);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].rfind("'john smith': ", 0) == 0);
  CHECK(errors[1].rfind("<stdin>:4: '/(/': ", 0) == 0);
  REQUIRE(out.size() == 2);
  CHECK(out[0] == Exact("a@x.example"));
  CHECK(out[1].kind == EntryKind::kPattern);
}

TEST_CASE("DefaultMapKind goes by the file name", "[map_edit]") {
  const std::pair<const char*, MapKind> kCases[] = {
      {"compd_rcpt.map", MapKind::kPlain},
      {"/var/lib/compd/compd_rcpt.map", MapKind::kPlain},
      {"/var/lib/compd/compd_rcpt_re.map", MapKind::kRegexp},
      {"bad_rcpt.map", MapKind::kRegexp},
      {"compd_rcpt.map.bak", MapKind::kRegexp},
  };
  for (const auto& [path, kind] : kCases) {
    INFO(path);
    CHECK(DefaultMapKind(path) == kind);
  }
  CHECK(std::string(MapKindName(MapKind::kPlain)) == "plain");
}

ImportFile File(const std::string& path, std::vector<MapLine> lines,
                std::vector<MapHazard> hazards = {}) {
  ImportFile f;
  f.path = path;
  f.read.lines = std::move(lines);
  f.read.hazards = std::move(hazards);
  return f;
}

MapLine Line(int n, const Entry& e, std::string change = "") {
  MapLine l;
  l.line = n;
  l.key = e.text;
  l.converted = true;
  l.entry = e;
  l.meaning_change = std::move(change);
  return l;
}

TEST_CASE("PlanImport computes the diff", "[map_edit]") {
  MapLine broken;
  broken.line = 3;
  broken.key = "/(/";
  std::vector<ImportFile> files = {
      File("a.map",
           {Line(1, Exact("new@x.example"), "bare regex becomes exact"),
            Line(2, Exact("kept@x.example")), broken},
           {{MapHazard::Severity::kWarning, 1, "bare-regex", "unanchored"},
            {MapHazard::Severity::kError, 3, "invalid-regex", "missing )"}}),
      File("b.map", {Line(1, Pattern("/^p/i")), Line(7, Exact("new@x.example"))}),
  };
  std::vector<Entry> current = {Exact("kept@x.example"), Exact("old@x.example"),
                                Pattern("/^gone/")};

  ImportPlan plan = PlanImport(files, current, /*replace=*/false);
  REQUIRE(plan.entries.size() == 3);  // the second new@ is a duplicate
  REQUIRE(plan.to_add.size() == 2);
  CHECK(plan.to_add[0].entry == Exact("new@x.example"));
  CHECK(plan.to_add[0].file == "a.map");
  CHECK(plan.to_add[0].line == 1);
  CHECK(plan.to_add[1].entry.text == "/^p/i");
  CHECK(plan.unchanged == 1);
  CHECK(plan.to_remove.empty());
  REQUIRE(plan.errors.size() == 1);
  CHECK(plan.errors[0].rfind("a.map:3: ", 0) == 0);
  REQUIRE(plan.warnings.size() == 1);
  CHECK(plan.warnings[0].rfind("a.map:1: ", 0) == 0);
  REQUIRE(plan.meaning_changes.size() == 1);
  CHECK(plan.meaning_changes[0].line == 1);
  REQUIRE(plan.not_imported.size() == 1);
  CHECK(plan.not_imported[0] == "a.map:3: /(/");

  plan = PlanImport(files, current, /*replace=*/true);
  REQUIRE(plan.to_remove.size() == 2);
  CHECK(plan.to_remove[0] == Exact("old@x.example"));
  CHECK(plan.to_remove[1].text == "/^gone/");
}

TEST_CASE("PlanImport keeps exact and pattern entries apart", "[map_edit]") {
  // An exact entry and a pattern never share an identity, even with similar text.
  std::vector<ImportFile> files = {File("a.map", {Line(1, Exact("a@x"))})};
  Entry odd;
  odd.kind = EntryKind::kPattern;
  odd.text = "a@x";
  ImportPlan plan = PlanImport(files, {odd}, true);
  CHECK(plan.to_add.size() == 1);
  CHECK(plan.to_remove.size() == 1);
}

}  // namespace
}  // namespace compd
