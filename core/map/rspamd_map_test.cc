#include "compd/map/rspamd_map.h"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace compd {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Formatted(const MapReadResult& r) {
  std::vector<std::string> out;
  for (const MapHazard& h : r.hazards) out.push_back(h.Format("map.txt"));
  return out;
}

Entry MustParse(const char* s) {
  Entry e;
  Status st = ParseEntry(s, &e);
  INFO(s << ": " << st.message());
  REQUIRE(st.ok());
  return e;
}

std::vector<Entry> SampleEntries() {
  std::vector<Entry> entries;
  for (const char* s : {"b@x.com", "A@x.com", "a@x.com", "m.smith@example.com", "u+tag@x.com",
                        "u@[192.0.2.1]", "mary@x.com", "/^a\\/b@x$/", "/m.x@y/",
                        "/^c@x\\.com$/usmi", "/\\#z/", "/^spam[0-9]+@/i", "/^spam[0-9]+@/i"}) {
    entries.push_back(MustParse(s));
  }
  return entries;
}

TEST_CASE("the writers produce sorted, unique, newline-terminated files", "[rspamdmap]") {
  const std::vector<Entry> entries = SampleEntries();
  CHECK(FormatExactMap(entries) ==
        "# compd exact recipients (rspamd plain map); written by compd, do not edit\n"
        "a@x.com\nb@x.com\nm.smith@example.com\nmary@x.com\nu+tag@x.com\nu@[192.0.2.1]\n");
  CHECK(FormatPatternMap(entries) ==
        "# compd recipient patterns (rspamd regexp map); written by compd, do not edit\n"
        "/\\#z/\n/^a\\/b@x$/\n/^c@x\\.com$/imsu\n/^spam[0-9]+@/i\n/m.x@y/\n");
  CHECK(FormatExactMap({}) ==
        "# compd exact recipients (rspamd plain map); written by compd, do not edit\n");
}

TEST_CASE("format then read gives the same entries and no hazards", "[rspamdmap]") {
  const std::vector<Entry> entries = SampleEntries();
  std::vector<Entry> want(entries);
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());

  std::vector<Entry> got;
  for (auto [text, kind] : {std::pair{FormatExactMap(entries), MapKind::kPlain},
                            std::pair{FormatPatternMap(entries), MapKind::kRegexp}}) {
    const MapReadResult r = ReadRspamdMap(text, kind);
    CHECK(Formatted(r).empty());
    for (const MapLine& l : r.lines) {
      CHECK(l.converted);
      CHECK(l.meaning_change.empty());
      got.push_back(l.entry);
    }
  }
  std::sort(got.begin(), got.end());
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].text == want[i].text);
    CHECK(got[i].kind == want[i].kind);
    CHECK(got[i].regex == want[i].regex);
    CHECK(got[i].flags == want[i].flags);
  }
}

// A fresh folder under the system temp folder, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "compd-map-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_CASE("WriteMapFiles writes both files", "[rspamdmap]") {
  TempDir dir;
  const std::vector<Entry> entries = SampleEntries();
  REQUIRE(WriteMapFiles(dir.path().string(), entries).ok());
  CHECK(dir.Names() == std::vector<std::string>{kExactMapFile, kPatternMapFile});
  CHECK(Slurp(dir / kExactMapFile) == FormatExactMap(entries));
  CHECK(Slurp(dir / kPatternMapFile) == FormatPatternMap(entries));

  MapReadResult r;
  REQUIRE(ReadRspamdMapFile(dir / kPatternMapFile, MapKind::kRegexp, &r).ok());
  CHECK(r.hazards.empty());
  CHECK(r.lines.size() == 5);
}

TEST_CASE("ReadRspamdMapFile reports a file it cannot read", "[rspamdmap]") {
  TempDir dir;
  MapReadResult r;
  const std::string path = dir / "nope.map";
  Status st = ReadRspamdMapFile(path, MapKind::kPlain, &r);
  REQUIRE(st.IsIoError());
  CHECK(st.message() == "cannot read " + path + ": No such file or directory");
  st = ReadRspamdMapFile(dir.path().string(), MapKind::kPlain, &r);
  REQUIRE(st.IsIoError());
  CHECK(st.message() == "cannot read " + dir.path().string() + ": Is a directory");
}

}  // namespace
}  // namespace compd
