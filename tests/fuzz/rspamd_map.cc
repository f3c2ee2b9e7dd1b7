// Fuzz target: the rspamd map-file reader (ReadRspamdMap), for both kinds of map, and the
// writers it must agree with (FormatExactMap, FormatPatternMap).
//
// Properties checked, for a regexp map and a plain map read from the same bytes:
//  - hazards carry a known code, a message, a line inside the file, and come in line
//    order; has_errors() agrees with them; kept lines are in file order;
//  - every converted line is a valid entry: ParseEntry of its text gives the same entry
//    (kind, text, regex, flags), so what the reader imports is what mapctl would store;
//  - writing the converted entries with compd's writers and reading those files back gives
//    the same entries, with no hazard at all: compd's own files mean to rspamd exactly what
//    they mean to compd.
#include "compd/map/rspamd_map.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "compd/map/entry.h"
#include "fuzz_check.h"

namespace {

using compd_fuzz::Escaped;

const std::set<std::string, std::less<>>& KnownCodes() {
  static const std::set<std::string, std::less<>> codes = {"bare-regex",
                                                           "m-trap",
                                                           "value",
                                                           "duplicate",
                                                           "no-final-newline",
                                                           "unknown-flag",
                                                           "invalid-regex",
                                                           "hyperscan-incompatible",
                                                           "inline-comment",
                                                           "ignored-flag",
                                                           "unsupported-flag",
                                                           "unterminated",
                                                           "not-address"};
  return codes;
}

std::string Describe(const compd::Entry& e) {
  return std::string(compd::EntryKindName(e.kind)) + " " + Escaped(e.text) + " regex " +
         Escaped(e.regex) + " flags " + Escaped(e.flags);
}

bool SameEntry(const compd::Entry& a, const compd::Entry& b) {
  return a.kind == b.kind && a.text == b.text && a.regex == b.regex && a.flags == b.flags;
}

void CheckResult(const compd::MapReadResult& r, int last_line) {
  bool errors = false;
  int prev = 0;
  for (const compd::MapHazard& h : r.hazards) {
    FUZZ_CHECK_MSG(KnownCodes().count(h.code) == 1, h.code);
    FUZZ_CHECK(!h.message.empty());
    FUZZ_CHECK_MSG(h.line >= 0 && h.line <= last_line,
                   std::to_string(h.line) + " of " + std::to_string(last_line));
    FUZZ_CHECK(h.line >= prev);
    prev = h.line;
    FUZZ_CHECK(h.Format("m").rfind("m:", 0) == 0);
    errors = errors || h.severity == compd::MapHazard::Severity::kError;
  }
  FUZZ_CHECK(r.has_errors() == errors);
  prev = 0;
  for (const compd::MapLine& l : r.lines) {
    FUZZ_CHECK(l.line >= 1 && l.line <= last_line);
    FUZZ_CHECK(l.line >= prev);
    prev = l.line;
    if (!l.converted) continue;
    compd::Entry again;
    const compd::Status s = compd::ParseEntry(l.entry.text, &again);
    FUZZ_CHECK_MSG(s.ok(), Describe(l.entry) + ": " + s.ToString());
    FUZZ_CHECK_MSG(SameEntry(again, l.entry), Describe(l.entry) + " -> " + Describe(again));
  }
}

// compd's writers, then the reader: same entries back, not one hazard.
void CheckRoundTrip(const std::vector<compd::Entry>& entries) {
  std::vector<compd::Entry> want(entries);
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());
  // Patterns equal but for case: rspamd keeps the first, and so does compd's file.
  std::vector<std::string> texts;
  for (const compd::Entry& e : want) {
    if (e.kind == compd::EntryKind::kPattern) texts.push_back(e.text);
  }
  compd::DropRspamdDuplicates(&texts);
  want.erase(std::remove_if(want.begin(), want.end(),
                            [&](const compd::Entry& e) {
                              return e.kind == compd::EntryKind::kPattern &&
                                     !std::binary_search(texts.begin(), texts.end(), e.text);
                            }),
             want.end());

  std::vector<compd::Entry> got;
  const std::pair<std::string, compd::MapKind> files[] = {
      {compd::FormatExactMap(entries), compd::MapKind::kPlain},
      {compd::FormatPatternMap(entries), compd::MapKind::kRegexp}};
  for (const auto& [text, kind] : files) {
    const compd::MapReadResult r = compd::ReadRspamdMap(text, kind);
    for (const compd::MapHazard& h : r.hazards) {
      FUZZ_FAIL("compd's own file " + Escaped(text) + ": " + h.Format("map") + " [" + h.code + "]");
    }
    for (const compd::MapLine& l : r.lines) {
      FUZZ_CHECK_MSG(l.converted && l.meaning_change.empty(), Escaped(l.key));
      got.push_back(l.entry);
    }
  }
  std::sort(got.begin(), got.end());
  FUZZ_CHECK(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    FUZZ_CHECK_MSG(SameEntry(got[i], want[i]), Describe(want[i]) + " -> " + Describe(got[i]));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in = compd_fuzz::AsText(data, size);
  const int last_line = static_cast<int>(compd_fuzz::Count(in, '\n')) + 1;
  std::vector<compd::Entry> converted;
  for (compd::MapKind kind : {compd::MapKind::kRegexp, compd::MapKind::kPlain}) {
    const compd::MapReadResult r = compd::ReadRspamdMap(in, kind);
    CheckResult(r, last_line);
    for (const compd::MapLine& l : r.lines) {
      if (l.converted) converted.push_back(l.entry);
    }
  }
  CheckRoundTrip(converted);
  return 0;
}
