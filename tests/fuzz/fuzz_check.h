// Shared helpers for the libFuzzer targets in this folder: property checks that abort (so
// libFuzzer saves the input as a crash) and small byte-level predicates.
//
// Header-only, no state.
#ifndef COMPD_TESTS_FUZZ_FUZZ_CHECK_H_
#define COMPD_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// A violated property is a finding just like a crash: print what broke, then abort so that
// libFuzzer writes the input to crash-<sha1>.
#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

// Same, with the values involved (escaped) so the report says more than "false".
#define FUZZ_CHECK_MSG(cond, detail)                                                          \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "%s:%d: property violated: %s\n  %s\n", __FILE__, __LINE__, #cond, \
                   std::string(detail).c_str());                                              \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

// An unconditional finding, for loops over things that must not exist.
#define FUZZ_FAIL(detail) FUZZ_CHECK_MSG(false, detail)

namespace compd_fuzz {

inline std::string_view AsText(const unsigned char* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// Printable form of arbitrary bytes for failure messages.
inline std::string Escaped(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '\\' || c == '"') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// What must never reach a log line, a Redis key or a map file line.
inline bool HasControl(std::string_view s) {
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

inline bool HasAsciiUpper(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') return true;
  }
  return false;
}

inline size_t Count(std::string_view s, char c) {
  size_t n = 0;
  for (char x : s) n += x == c;
  return n;
}

}  // namespace compd_fuzz

#endif  // COMPD_TESTS_FUZZ_FUZZ_CHECK_H_
