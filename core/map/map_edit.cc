#include "compd/map/map_edit.h"

#include <string_view>
#include <unordered_set>

#include "compd/base/text.h"

namespace compd {

namespace {

// Lines come from getline: CR of a CRLF end, blanks; VT and FF are kept as text.
std::string_view Trim(std::string_view s) { return TrimChars(s, " \t\r\n"); }

std::string BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// Exact and pattern entries live in different hashes: one set per kind keeps them apart.
// Holds views, so the entries must outlive it.
class IdentitySet {
 public:
  explicit IdentitySet(size_t expected = 0) { exact_.reserve(expected); }
  bool Insert(const Entry& e) { return Set(e.kind).insert(e.text).second; }
  bool Contains(const Entry& e) const {
    const auto& set = e.kind == EntryKind::kExact ? exact_ : patterns_;
    return set.count(e.text) != 0;
  }

 private:
  std::unordered_set<std::string_view>& Set(EntryKind kind) {
    return kind == EntryKind::kExact ? exact_ : patterns_;
  }
  std::unordered_set<std::string_view> exact_;
  std::unordered_set<std::string_view> patterns_;
};

}  // namespace

std::vector<EntryInput> SplitEntryLines(std::string_view text, std::string_view name) {
  std::vector<EntryInput> out;
  int n = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++n;
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;
    out.push_back({std::string(name) + ":" + std::to_string(n), std::string(line)});
  }
  return out;
}

std::vector<std::string> ParseEntryInputs(const std::vector<EntryInput>& inputs,
                                          std::vector<Entry>* out) {
  std::vector<std::string> errors;
  std::vector<Entry> parsed;
  parsed.reserve(inputs.size());
  for (const auto& in : inputs) {
    Entry e;
    Status s = ParseEntry(in.text, &e);
    if (!s.ok()) {
      errors.push_back((in.origin.empty() ? "" : in.origin + ": ") + "'" + in.text +
                       "': " + s.message());
      continue;
    }
    parsed.push_back(std::move(e));
  }
  out->clear();
  IdentitySet seen(parsed.size());
  for (const auto& e : parsed) {
    if (seen.Insert(e)) out->push_back(e);
  }
  return errors;
}

MapKind DefaultMapKind(std::string_view path) {
  return BaseName(path) == kExactMapFile ? MapKind::kPlain : MapKind::kRegexp;
}

const char* MapKindName(MapKind kind) { return kind == MapKind::kPlain ? "plain" : "regexp"; }

ImportPlan PlanImport(const std::vector<ImportFile>& files, const std::vector<Entry>& current,
                      bool replace) {
  ImportPlan plan;
  // Views into `files` and `current`, which outlive the sets: no copies of 100,000 keys.
  IdentitySet wanted;
  for (const auto& f : files) {
    for (const auto& h : f.read.hazards) {
      (h.severity == MapHazard::Severity::kError ? plan.errors : plan.warnings)
          .push_back(h.Format(f.path));
    }
    for (const auto& line : f.read.lines) {
      if (!line.converted) {
        plan.not_imported.push_back(f.path + ":" + std::to_string(line.line) + ": " + line.key);
        continue;
      }
      if (!line.meaning_change.empty()) {
        plan.meaning_changes.push_back({line.entry, f.path, line.line, line.meaning_change});
      }
      if (wanted.Insert(line.entry)) {
        plan.entries.push_back({line.entry, f.path, line.line, line.meaning_change});
      }
    }
  }
  IdentitySet have(current.size());
  for (const auto& e : current) have.Insert(e);
  for (const auto& item : plan.entries) {
    if (have.Contains(item.entry)) {
      ++plan.unchanged;
    } else {
      plan.to_add.push_back(item);
    }
  }
  if (replace) {
    for (const auto& e : current) {
      if (!wanted.Contains(e)) plan.to_remove.push_back(e);
    }
  }
  return plan;
}

}  // namespace compd
