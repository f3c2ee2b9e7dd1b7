// RFC 2047 encoded words. Scanning moves forward only and a failed attempt looks no further
// than the fourth '?' after it, so a hostile header costs linear time.
#include "compd/base/encoded_words.h"

#include <cstddef>
#include <string>
#include <string_view>

#include "compd/base/base64.h"
#include "compd/base/text.h"

namespace compd {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string DecodeQ(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '_') {
      out.push_back(' ');
    } else if (c == '=' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 &&
               HexValue(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

enum class Charset { kUnknown, kUtf8, kLatin1 };

Charset LookupCharset(std::string_view name) {
  // RFC 2231 allows a language suffix: `utf-8*en`.
  size_t star = name.find('*');
  if (star != std::string_view::npos) name = name.substr(0, star);
  const std::string lower = AsciiLower(name);
  if (lower == "utf-8" || lower == "utf8" || lower == "us-ascii" || lower == "ascii") {
    return Charset::kUtf8;
  }
  if (lower == "iso-8859-1" || lower == "iso8859-1" || lower == "iso_8859-1" || lower == "latin1" ||
      lower == "latin-1" || lower == "l1") {
    return Charset::kLatin1;
  }
  return Charset::kUnknown;
}

void AppendLatin1AsUtf8(std::string_view in, std::string* out) {
  for (char c : in) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      out->push_back(c);
    } else {
      out->push_back(static_cast<char>(0xc0 | (u >> 6)));
      out->push_back(static_cast<char>(0x80 | (u & 0x3f)));
    }
  }
}

bool IsEncodedWordStop(char c) { return c == '?' || IsBlankOrEol(c) || IsAsciiControl(c); }

// Tries `=?charset?B|Q?text?=` at s[i]. Scanning stops at the next '?' of each part, so a
// failed attempt only looks at text up to the fourth '?' after `i`: repeated attempts over
// a hostile string stay linear overall.
bool DecodeEncodedWordAt(std::string_view s, size_t i, size_t* end, std::string* out) {
  const size_t n = s.size();
  size_t j = i + 2;
  size_t cs_start = j;
  while (j < n && !IsEncodedWordStop(s[j])) ++j;
  if (j >= n || s[j] != '?' || j == cs_start) return false;
  std::string_view charset = s.substr(cs_start, j - cs_start);
  ++j;
  if (j + 1 >= n || s[j + 1] != '?') return false;
  char enc = AsciiLower(s[j]);
  if (enc != 'b' && enc != 'q') return false;
  j += 2;
  size_t text_start = j;
  while (j < n && !IsEncodedWordStop(s[j])) ++j;
  if (j + 1 >= n || s[j] != '?' || s[j + 1] != '=') return false;
  Charset cs = LookupCharset(charset);
  if (cs == Charset::kUnknown) return false;  // leave the raw text: better than mojibake
  std::string_view text = s.substr(text_start, j - text_start);
  std::string bytes = enc == 'b' ? DecodeBase64Lenient(text) : DecodeQ(text);
  out->clear();
  if (cs == Charset::kLatin1) {
    AppendLatin1AsUtf8(bytes, out);
  } else {
    *out = std::move(bytes);
  }
  *end = j + 2;
  return true;
}

}  // namespace

std::string DecodeEncodedWords(std::string_view s) {
  std::string out;
  bool after_word = false;  // only whitespace since the last decoded encoded word
  size_t word_end = 0;      // out.size() right after that word
  std::string decoded;
  size_t i = 0;
  while (i < s.size()) {
    size_t end = 0;
    if (s[i] == '=' && i + 1 < s.size() && s[i + 1] == '?' &&
        DecodeEncodedWordAt(s, i, &end, &decoded)) {
      if (after_word) out.resize(word_end);
      out += decoded;
      i = end;
      after_word = true;
      word_end = out.size();
      continue;
    }
    if (!IsBlankOrEol(s[i])) after_word = false;
    out.push_back(s[i]);
    ++i;
  }
  return out;
}

std::string SubjectText(std::string_view raw, size_t max_bytes) {
  if (raw.size() > max_bytes) raw = raw.substr(0, max_bytes);
  std::string decoded;
  if (raw.find("=?") != std::string_view::npos) {
    decoded = DecodeEncodedWords(raw);
    raw = decoded;
  }
  std::string out(raw);
  CleanSubject(&out);
  return out;
}

void CleanSubject(std::string* s) {
  size_t w = 0;
  for (size_t r = 0; r < s->size(); ++r) {
    const char c = (*s)[r];
    if (c == '\r' || c == '\n') continue;  // unfolding: the blank after the break stays
    (*s)[w++] = static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c;
  }
  while (w > 0 && (*s)[w - 1] == ' ') --w;
  s->resize(w);
  const size_t b = s->find_first_not_of(' ');
  s->erase(0, b == std::string::npos ? s->size() : b);
}

}  // namespace compd
