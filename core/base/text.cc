#include "compd/base/text.h"

#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace compd {

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

std::string AsciiUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiUpper(c);
  return out;
}

bool HasAsciiUpper(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') return true;
  }
  return false;
}

bool EqualsIgnoreAsciiCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && StartsWithIgnoreAsciiCase(a, b);
}

bool StartsWithIgnoreAsciiCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (AsciiLower(s[i]) != AsciiLower(prefix[i])) return false;
  }
  return true;
}

std::string_view TrimBlanks(std::string_view s) { return TrimChars(s, " \t"); }

std::string_view TrimAsciiSpace(std::string_view s) { return TrimChars(s, " \t\n\v\f\r"); }

std::string_view TrimChars(std::string_view s, std::string_view chars) {
  const size_t b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(chars) - b + 1);
}

bool ParseDecimal(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

std::string RandomHex() {
  std::random_device rd;
  std::uniform_int_distribution<uint64_t> dist;
  uint64_t v = dist(rd);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) out += kHex[(v >> (i * 4)) & 0xf];
  return out;
}

std::vector<std::string_view> SplitList(std::string_view list, std::string_view separators) {
  std::vector<std::string_view> items;
  while (!list.empty()) {
    const size_t sep = list.find_first_of(separators);
    std::string_view item = TrimBlanks(list.substr(0, sep));
    list = sep == std::string_view::npos ? std::string_view() : list.substr(sep + 1);
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

}  // namespace compd
