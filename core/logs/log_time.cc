#include "compd/logs/log_time.h"

#include <ctime>

namespace compd {

namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    unsigned d = static_cast<unsigned char>(s[i]) - '0';
    if (d > 9) return false;
    v = v * 10 + static_cast<int>(d);
  }
  *out = v;
  return true;
}

// `HH:MM:SS` at pos; seconds of the day.
bool ParseHms(std::string_view s, size_t pos, int64_t* seconds) {
  int h, m, sec;
  if (pos + 8 > s.size() || s[pos + 2] != ':' || s[pos + 5] != ':') return false;
  if (!Digits(s, pos, 2, &h) || !Digits(s, pos + 3, 2, &m) || !Digits(s, pos + 6, 2, &sec)) {
    return false;
  }
  if (h > 23 || m > 59 || sec > 60) return false;
  *seconds = h * 3600 + m * 60 + sec;
  return true;
}

// An optional `.ddd...` at *pos: milliseconds (further digits ignored).
int64_t ParseFraction(std::string_view s, size_t* pos) {
  if (*pos >= s.size() || s[*pos] != '.') return 0;
  size_t i = *pos + 1;
  int64_t ms = 0;
  int n = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (n < 3) ms = ms * 10 + (s[i] - '0');
    ++n;
    ++i;
  }
  if (n == 0) return 0;
  for (; n < 3; ++n) ms *= 10;
  *pos = i;
  return ms;
}

// `+0200`, `-05:30` or `Z` at *pos: offset east of UTC in seconds.
bool ParseZone(std::string_view s, size_t* pos, int64_t* offset) {
  size_t i = *pos;
  if (i < s.size() && s[i] == 'Z') {
    *offset = 0;
    *pos = i + 1;
    return true;
  }
  if (i >= s.size() || (s[i] != '+' && s[i] != '-')) return false;
  int h, m;
  if (!Digits(s, i + 1, 2, &h)) return false;
  size_t mpos = i + 3;
  if (mpos < s.size() && s[mpos] == ':') ++mpos;
  if (!Digits(s, mpos, 2, &m)) return false;
  *offset = (s[i] == '-' ? -1 : 1) * (h * 3600 + m * 60);
  *pos = mpos + 2;
  return true;
}

int MonthOf(std::string_view s) {
  static const char kMonths[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  if (s.size() < 3) return 0;
  for (int i = 0; i < 12; ++i) {
    if (s[0] == kMonths[3 * i] && s[1] == kMonths[3 * i + 1] && s[2] == kMonths[3 * i + 2]) {
      return i + 1;
    }
  }
  return 0;
}

// `YYYY-MM-DD` at pos into civil days.
bool ParseDate(std::string_view s, size_t pos, int64_t* days) {
  int y, mo, d;
  if (pos + 10 > s.size() || s[pos + 4] != '-' || s[pos + 7] != '-') return false;
  if (!Digits(s, pos, 4, &y) || !Digits(s, pos + 5, 2, &mo) || !Digits(s, pos + 8, 2, &d)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return false;
  *days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return true;
}

// `host program[pid]: text` after a timestamp.
bool ParseSyslogRest(std::string_view s, size_t pos, SyslogLine* out) {
  if (pos >= s.size() || s[pos] != ' ') return false;
  ++pos;
  size_t sp = s.find(' ', pos);
  if (sp == std::string_view::npos || sp == pos) return false;
  out->host = s.substr(pos, sp - pos);
  std::string_view rest = s.substr(sp + 1);
  out->program = {};
  out->pid = {};
  // The tag ends at the first ": "; a tag holds no blanks.
  size_t colon = rest.find(": ");
  size_t blank = rest.find(' ');
  if (colon != std::string_view::npos && colon < blank) {
    std::string_view tag = rest.substr(0, colon);
    if (!tag.empty() && tag.back() == ']') {
      size_t open = tag.rfind('[');
      if (open != std::string_view::npos) {
        out->pid = tag.substr(open + 1, tag.size() - open - 2);
        tag = tag.substr(0, open);
      }
    }
    out->program = tag;
    out->text = rest.substr(colon + 2);
  } else {
    out->text = rest;
  }
  return true;
}

}  // namespace

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  // H. Hinnant's days_from_civil.
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

int64_t LocalClock::ToUnix(int64_t civil) {
  int64_t hour = civil >= 0 ? civil / 3600 : (civil - 3599) / 3600;
  if (hour != hour_) {
    time_t t = static_cast<time_t>(hour * 3600);
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_isdst = -1;
    time_t unix = mktime(&tm);
    offset_ = unix == static_cast<time_t>(-1) ? 0 : hour * 3600 - static_cast<int64_t>(unix);
    hour_ = hour;
  }
  return civil - offset_;
}

int64_t LocalClock::ToCivil(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  localtime_r(&t, &tm);
  return DaysFromCivil(tm.tm_year + 1900, static_cast<unsigned>(tm.tm_mon + 1),
                       static_cast<unsigned>(tm.tm_mday)) *
             86400 +
         tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
}

YearGuess::YearGuess(int64_t reference_unix_ms) {
  int64_t secs = reference_unix_ms / 1000;
  reference_civil_ = LocalClock::ToCivil(secs);
  time_t t = static_cast<time_t>(secs);
  struct tm tm;
  localtime_r(&t, &tm);
  year_ = tm.tm_year + 1900;
}

int64_t YearGuess::Civil(unsigned month, unsigned day, int64_t seconds_of_day) const {
  int64_t civil = DaysFromCivil(year_, month, day) * 86400 + seconds_of_day;
  if (civil > reference_civil_ + 86400) {
    civil = DaysFromCivil(year_ - 1, month, day) * 86400 + seconds_of_day;
  }
  return civil;
}

bool ParseEximStamp(std::string_view s, LocalClock* clock, int64_t* unix_ms,
                    std::string_view* rest) {
  int64_t days, secs;
  if (s.size() < 20 || s[10] != ' ' || !ParseDate(s, 0, &days) || !ParseHms(s, 11, &secs)) {
    return false;
  }
  size_t pos = 19;
  int64_t ms = ParseFraction(s, &pos);
  int64_t civil = days * 86400 + secs;
  int64_t unix;
  size_t zpos = pos + 1;
  int64_t offset;
  if (pos < s.size() && s[pos] == ' ' && ParseZone(s, &zpos, &offset)) {
    unix = civil - offset;
    pos = zpos;
  } else {
    unix = clock->ToUnix(civil);
  }
  if (pos + 1 < s.size() && s[pos] == ' ' && s[pos + 1] == '[') {
    size_t close = s.find(']', pos + 2);
    bool pid = close != std::string_view::npos && close > pos + 2;
    for (size_t i = pos + 2; pid && i < close; ++i) pid = s[i] >= '0' && s[i] <= '9';
    if (pid) pos = close + 1;
  }
  if (pos >= s.size() || s[pos] != ' ') return false;
  *unix_ms = unix * 1000 + ms;
  *rest = s.substr(pos + 1);
  return true;
}

bool ParseSyslogLine(std::string_view s, const YearGuess& year, LocalClock* clock,
                     SyslogLine* out) {
  int64_t secs;
  size_t pos;
  int64_t unix;
  int64_t ms = 0;
  int month = MonthOf(s);
  if (month != 0) {
    // `Apr 20 12:53:58` or `Apr  4 12:53:58`
    if (s.size() < 15 || s[3] != ' ') return false;
    int day;
    if (s[4] == ' ') {
      if (!Digits(s, 5, 1, &day)) return false;
    } else if (!Digits(s, 4, 2, &day)) {
      return false;
    }
    if (day < 1 || day > 31 || s[6] != ' ' || !ParseHms(s, 7, &secs)) return false;
    pos = 15;
    ms = ParseFraction(s, &pos);
    unix =
        clock->ToUnix(year.Civil(static_cast<unsigned>(month), static_cast<unsigned>(day), secs));
  } else {
    int64_t days, offset;
    if (s.size() < 20 || s[10] != 'T' || !ParseDate(s, 0, &days) || !ParseHms(s, 11, &secs)) {
      return false;
    }
    pos = 19;
    ms = ParseFraction(s, &pos);
    if (ParseZone(s, &pos, &offset)) {
      unix = days * 86400 + secs - offset;
    } else {
      unix = clock->ToUnix(days * 86400 + secs);
    }
  }
  if (!ParseSyslogRest(s, pos, out)) return false;
  out->unix_ms = unix * 1000 + ms;
  return true;
}

}  // namespace compd
