// Text output for humans: aligned tables and timestamps, as mapctl prints them.
//
// Plain values and pure functions; a TextTable is not thread-safe to fill but may be
// rendered from any thread once filled.
#ifndef COMPD_BASE_TEXT_OUTPUT_H_
#define COMPD_BASE_TEXT_OUTPUT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace compd {

// Columns padded to the widest cell (counted in UTF-8 code points, so addresses with
// non-ASCII local parts still line up), two spaces apart; the last column is never
// padded, so lines carry no trailing blanks.
class TextTable {
 public:
  void AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  bool empty() const { return rows_.empty(); }
  size_t size() const { return rows_.size(); }
  // Every row followed by '\n'; "" for an empty table.
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// Display width of `s`: its UTF-8 code points (continuation bytes not counted).
size_t DisplayWidth(std::string_view s);

// "1 error", "2 errors": `n` and the noun, plural unless n == 1.
std::string CountOf(size_t n, std::string_view singular, std::string_view plural);

// `2024-05-01 12:00:00Z` (UTC), or "-" for 0 (unknown).
std::string FormatUnixTime(int64_t seconds);

}  // namespace compd

#endif  // COMPD_BASE_TEXT_OUTPUT_H_
