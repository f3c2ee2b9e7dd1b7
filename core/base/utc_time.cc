#include "compd/base/utc_time.h"

#include <ctime>

namespace compd {

namespace {

void AppendPadded(std::string* out, long value, int width) {
  std::string digits = std::to_string(value);
  if (static_cast<int>(digits.size()) < width) out->append(width - digits.size(), '0');
  out->append(digits);
}

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::string FormatUnixMillis(int64_t unix_ms) {
  return FormatUtcMillis(std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_ms)));
}

std::string FormatUtcMillis(std::chrono::system_clock::time_point t) {
  int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  int64_t secs = ms / 1000;
  int64_t frac = ms % 1000;
  if (frac < 0) {  // before 1970: floor, not truncate toward zero
    frac += 1000;
    secs -= 1;
  }
  time_t tt = static_cast<time_t>(secs);
  struct tm tm;
  gmtime_r(&tt, &tm);
  std::string s;
  s.reserve(24);
  AppendPadded(&s, tm.tm_year + 1900L, 4);
  s += '-';
  AppendPadded(&s, tm.tm_mon + 1, 2);
  s += '-';
  AppendPadded(&s, tm.tm_mday, 2);
  s += 'T';
  AppendPadded(&s, tm.tm_hour, 2);
  s += ':';
  AppendPadded(&s, tm.tm_min, 2);
  s += ':';
  AppendPadded(&s, tm.tm_sec, 2);
  s += '.';
  AppendPadded(&s, static_cast<long>(frac), 3);
  s += 'Z';
  return s;
}

bool ParseUtcMillis(std::string_view s, int64_t* unix_ms) {
  // YYYY-MM-DDTHH:MM:SS[.mmm]Z
  int year, mon, day, hour, min, sec, frac = 0;
  if (!Digits(s, 0, 4, &year) || s.size() < 20 || s[4] != '-' || !Digits(s, 5, 2, &mon) ||
      s[7] != '-' || !Digits(s, 8, 2, &day) || s[10] != 'T' || !Digits(s, 11, 2, &hour) ||
      s[13] != ':' || !Digits(s, 14, 2, &min) || s[16] != ':' || !Digits(s, 17, 2, &sec)) {
    return false;
  }
  size_t pos = 19;
  if (s[pos] == '.') {
    if (!Digits(s, pos + 1, 3, &frac)) return false;
    pos += 4;
  }
  if (pos + 1 != s.size() || s[pos] != 'Z') return false;
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
    return false;
  }
  struct tm tm = {};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  *unix_ms = static_cast<int64_t>(t) * 1000 + frac;
  return true;
}

}  // namespace compd
