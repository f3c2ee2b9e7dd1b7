#include "compd/map/rspamd_map.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "compd/base/file.h"

namespace compd {
namespace {

constexpr const char* kExactHeader =
    "# compd exact recipients (rspamd plain map); written by compd, do not edit";
constexpr const char* kPatternHeader =
    "# compd recipient patterns (rspamd regexp map); written by compd, do not edit";

std::string FormatMap(const char* header, std::vector<std::string_view> lines) {
  // A snapshot's texts come sorted already; a million of them take 0.1 s to sort again.
  if (!std::is_sorted(lines.begin(), lines.end())) std::sort(lines.begin(), lines.end());
  lines.erase(std::unique(lines.begin(), lines.end()), lines.end());
  size_t size = std::strlen(header) + 1;
  for (std::string_view l : lines) size += l.size() + 1;
  std::string out;
  out.reserve(size);
  out += header;
  out += '\n';
  for (std::string_view l : lines) {
    out += l;
    out += '\n';
  }
  return out;
}

std::vector<std::string_view> TextsOf(const std::vector<Entry>& entries, EntryKind kind) {
  std::vector<std::string_view> texts;
  for (const Entry& e : entries) {
    if (e.kind == kind) texts.push_back(e.text);
  }
  return texts;
}

std::string FormatPatternTexts(std::vector<std::string_view> texts) {
  if (!std::is_sorted(texts.begin(), texts.end())) std::sort(texts.begin(), texts.end());
  std::vector<std::string> kept(texts.begin(), texts.end());
  DropRspamdDuplicates(&kept);
  return FormatMap(kPatternHeader, std::vector<std::string_view>(kept.begin(), kept.end()));
}

}  // namespace

std::string FormatExactMap(const std::vector<Entry>& entries) {
  return FormatMap(kExactHeader, TextsOf(entries, EntryKind::kExact));
}

std::string FormatPatternMap(const std::vector<Entry>& entries) {
  return FormatPatternTexts(TextsOf(entries, EntryKind::kPattern));
}

Status WriteMapFiles(const std::string& dir, const std::vector<Entry>& entries) {
  return WriteMapFiles(dir, TextsOf(entries, EntryKind::kExact),
                       TextsOf(entries, EntryKind::kPattern));
}

Status WriteMapFiles(const std::string& dir, std::vector<std::string_view> exact,
                     std::vector<std::string_view> patterns) {
  const std::string base = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  Status st = WriteFileAtomically(base + kExactMapFile, FormatMap(kExactHeader, std::move(exact)));
  if (!st.ok()) return st;
  return WriteFileAtomically(base + kPatternMapFile, FormatPatternTexts(std::move(patterns)));
}

}  // namespace compd
