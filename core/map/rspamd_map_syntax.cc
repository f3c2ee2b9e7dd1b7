#include "compd/map/rspamd_map_syntax.h"

#include <cctype>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "compd/base/text.h"

namespace compd {
namespace rspamd_syntax {
namespace {

std::string GStrip(std::string_view s) { return std::string(TrimAsciiSpace(s)); }

size_t SkipToEol(std::string_view s, size_t i) {
  while (i < s.size() && !IsEol(s[i])) ++i;
  return i;
}

// Runs from `open` (a `/` or `"`) to the matching unescaped closer; npos if none.
size_t FindCloser(std::string_view s, size_t open) {
  const char closer = s[open];
  size_t j = open + 1;
  while (j < s.size() && s[j] != closer) j += s[j] == '\\' ? 2 : 1;
  return j < s.size() ? j : std::string_view::npos;
}

}  // namespace

MapHazard Hazard(MapHazard::Severity severity, int line, std::string code, std::string msg) {
  MapHazard h;
  h.severity = severity;
  h.line = line;
  h.code = std::move(code);
  h.message = std::move(msg);
  return h;
}

Scan ScanKv(std::string_view s) {
  Scan scan;
  const LineIndex lines(s);
  const size_t n = s.size();
  size_t i = 0;
  // Reads what follows a key from `p` (whitespace, or just past a closing quote): blanks,
  // then a value up to `#` or the line end. Returns where scanning resumes.
  auto after_key = [&](RawKey& k, size_t p) -> size_t {
    while (p < n && (s[p] == ' ' || s[p] == '\t')) ++p;
    if (p >= n) {
      k.dropped_at_eof = true;
      scan.keys.push_back(std::move(k));
      return n;
    }
    const size_t from = p;
    while (p < n && s[p] != '#' && !IsEol(s[p])) ++p;
    std::string value = GStrip(s.substr(from, p - from));
    if (!value.empty()) k.value = std::move(value);
    if (p < n && s[p] == '#') {
      k.comment = true;
      p = SkipToEol(s, p);
    }
    scan.keys.push_back(std::move(k));
    return p;
  };
  // Stores a key whose text ends at `q` (end of input, a glued `#`, the line end or
  // whitespace before a value). Returns where scanning resumes.
  auto end_key = [&](RawKey& k, size_t q) -> size_t {
    if (q >= n) {
      scan.keys.push_back(std::move(k));
      return n;
    }
    if (s[q] == '#') {
      k.comment = k.glued_comment = true;
      scan.keys.push_back(std::move(k));
      return SkipToEol(s, q);
    }
    if (IsEol(s[q])) {
      scan.keys.push_back(std::move(k));
      return q;
    }
    return after_key(k, q);
  };
  auto unterminated = [&](size_t open, const char* what) {
    scan.hazards.push_back(Hazard(
        kError, lines.At(open), "unterminated",
        std::string(what) + " is never closed: rspamd reads everything from here to the end " +
            "of the file (line " + std::to_string(lines.At(n - 1)) +
            ") as one key and then drops it"));
  };

  while (i < n) {
    const char ch = s[i];
    if (IsAsciiSpace(ch)) {
      ++i;
      continue;
    }
    RawKey k;
    k.line = lines.At(i);
    if (ch == '"' || ch == '/') {
      k.opener = ch;
      const size_t close = FindCloser(s, i);
      if (close == std::string_view::npos) {
        unterminated(i, ch == '"' ? "the quoted key started by '\"'" : "the regex started by '/'");
        break;
      }
      if (ch == '"') {
        k.key = GStrip(s.substr(i + 1, close - i - 1));
        k.end_line = lines.At(close);
        i = after_key(k, close + 1);
        continue;
      }
      // After the closing `/` come the flags, up to whitespace, `#` or the line end.
      size_t q = close + 1;
      while (q < n && s[q] != '#' && !IsAsciiSpace(s[q])) ++q;
      k.key = GStrip(s.substr(i, q - i));
      k.end_line = lines.At(close);
      k.dropped_at_eof = q >= n;
      i = end_key(k, q);
      continue;
    }
    size_t q = i;
    while (q < n && !IsAsciiSpace(s[q]) && !(s[q] == '#' && (q == i || s[q - 1] != '\\'))) ++q;
    if (q == i) {  // a `#` where a key would start: a comment line
      i = SkipToEol(s, q);
      continue;
    }
    k.key = std::string(s.substr(i, q - i));
    k.end_line = k.line;
    // rspamd's final pass stores a bare key even without a line end.
    i = end_key(k, q);
  }
  return scan;
}

RspamdRegex SplitLikeRspamd(std::string_view key) {
  RspamdRegex r;
  if (key.size() < 2) return r;
  size_t start;
  if (key[0] == '/') {
    r.open = r.close = '/';
    start = 0;
  } else if (key[0] == 'm' && !std::isalnum(static_cast<unsigned char>(key[1]))) {
    r.open = key[1];
    r.close = r.open == '{' ? '}' : r.open;
    start = 1;
  } else {
    return r;
  }
  const size_t last = key.rfind(r.close);
  if (last == std::string_view::npos || last <= start) {
    r.form = RspamdRegex::Form::kNotEnclosed;
    return r;
  }
  r.form = key[0] == '/' ? RspamdRegex::Form::kSlashed : RspamdRegex::Form::kPerl;
  r.body = std::string(key.substr(start + 1, last - start - 1));
  r.tail = std::string(key.substr(last + 1));
  return r;
}

RspamdFlags ReadFlags(std::string_view tail) {
  RspamdFlags f;
  bool i = false, m = false, s = false, u = false;
  size_t k = 0;
  for (; k < tail.size(); ++k) {
    const char c = tail[k];
    if (c == 'i') {
      i = true;
    } else if (c == 'm') {
      m = true;
    } else if (c == 's') {
      s = true;
    } else if (c == 'x') {
      f.extended = true;
    } else if (c == 'u') {
      u = true;
    } else if (c == 'r') {
      u = false;
      if (f.engine_only.find(c) == std::string::npos) f.engine_only += c;
    } else if (c == 'O' || c == 'L') {
      if (f.engine_only.find(c) == std::string::npos) f.engine_only += c;
    } else {
      break;
    }
  }
  f.used = std::string(tail.substr(0, k));
  f.ignored = std::string(tail.substr(k));
  if (i) f.compd += 'i';
  if (m) f.compd += 'm';
  if (s) f.compd += 's';
  if (u) f.compd += 'u';
  return f;
}

}  // namespace rspamd_syntax
}  // namespace compd
