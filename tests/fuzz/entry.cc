// Fuzz target: what an operator types into mapctl (ParseEntry: `/regex/flags` or an
// address), including the RE2 compile and the Hyperscan compatibility checks.
//
// Properties checked:
//  - a refusal is kInvalid with a reason and leaves no partial entry behind;
//  - an accepted entry is stable: ParseEntry of its text gives the same entry;
//  - an exact entry is a canonical (lower-case) plain address; a pattern's text is
//    `/regex/flags` with flags from "imsu", sorted, each at most once;
//  - the entry survives compd's own map file: written with FormatExactMap or
//    FormatPatternMap and read back as rspamd would, it is the same entry, with no hazard.
#include "compd/map/entry.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "compd/map/address.h"
#include "compd/map/rspamd_map.h"
#include "fuzz_check.h"

namespace {

using compd_fuzz::Escaped;

std::string Describe(const compd::Entry& e) {
  return std::string(compd::EntryKindName(e.kind)) + " " + Escaped(e.text) + " regex " +
         Escaped(e.regex) + " flags " + Escaped(e.flags);
}

bool SameEntry(const compd::Entry& a, const compd::Entry& b) {
  return a.kind == b.kind && a.text == b.text && a.regex == b.regex && a.flags == b.flags;
}

bool SortedUniqueFlags(std::string_view flags) {
  static const std::string_view kOrder = "imsu";
  size_t last = 0;
  bool first = true;
  for (char f : flags) {
    const size_t pos = kOrder.find(f);
    if (pos == std::string_view::npos) return false;
    if (!first && pos <= last) return false;
    first = false;
    last = pos;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in = compd_fuzz::AsText(data, size);
  compd::Entry e;
  const compd::Status s = compd::ParseEntry(in, &e);
  if (!s.ok()) {
    FUZZ_CHECK(s.IsInvalid());
    FUZZ_CHECK(!s.message().empty());
    FUZZ_CHECK_MSG(e.text.empty() && e.regex.empty() && e.flags.empty(), Describe(e));
    return 0;
  }

  compd::Entry again;
  const compd::Status s2 = compd::ParseEntry(e.text, &again);
  FUZZ_CHECK_MSG(s2.ok(), Escaped(in) + " -> " + Describe(e) + ": " + s2.ToString());
  FUZZ_CHECK_MSG(SameEntry(again, e),
                 Escaped(in) + " -> " + Describe(e) + " -> " + Describe(again));

  if (e.kind == compd::EntryKind::kExact) {
    FUZZ_CHECK_MSG(compd::LooksLikeAddress(e.text), Describe(e));
    FUZZ_CHECK_MSG(compd::CanonicalAddress(e.text) == e.text, Describe(e));
    FUZZ_CHECK(e.regex.empty() && e.flags.empty());
  } else {
    FUZZ_CHECK_MSG(e.text == "/" + e.regex + "/" + e.flags, Describe(e));
    FUZZ_CHECK_MSG(SortedUniqueFlags(e.flags), Describe(e));
    FUZZ_CHECK(!e.regex.empty());
  }
  FUZZ_CHECK_MSG(!compd_fuzz::HasControl(e.text) || e.kind == compd::EntryKind::kPattern,
                 Describe(e));

  const bool exact = e.kind == compd::EntryKind::kExact;
  const std::vector<compd::Entry> one = {e};
  const std::string file = exact ? compd::FormatExactMap(one) : compd::FormatPatternMap(one);
  const compd::MapReadResult r =
      compd::ReadRspamdMap(file, exact ? compd::MapKind::kPlain : compd::MapKind::kRegexp);
  for (const compd::MapHazard& h : r.hazards) {
    FUZZ_FAIL(Describe(e) + ": " + h.Format("map") + " [" + h.code + "]");
  }
  FUZZ_CHECK_MSG(r.lines.size() == 1 && r.lines[0].converted, Describe(e));
  FUZZ_CHECK_MSG(SameEntry(r.lines[0].entry, e), Describe(e) + " -> " + Describe(r.lines[0].entry));
  return 0;
}
