// Timestamps of MTA log lines: Exim's `2022-04-20 12:53:58[.123][ +0200]`, classic syslog
// `Apr 20 12:53:58` (no year, no zone) and RFC 3339 `2026-12-04T08:30:43.123456+00:00`.
//
// Pure parsing plus two small caches (LocalClock, YearGuess) that a caller owns; not
// thread-safe, one per file being read.
#ifndef COMPD_LOGS_LOG_TIME_H_
#define COMPD_LOGS_LOG_TIME_H_

#include <cstdint>
#include <string_view>

namespace compd {

// Days since 1970-01-01 of a proleptic Gregorian date (month 1..12).
int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day);

// Local civil time (seconds since 1970-01-01 00:00 as if the zone were UTC) to Unix
// seconds and back, in the process's time zone (TZ). The zone offset is looked up once per
// civil hour: log lines arrive in time order, so almost every line hits the cache.
class LocalClock {
 public:
  int64_t ToUnix(int64_t civil_seconds);
  static int64_t ToCivil(int64_t unix_seconds);

 private:
  int64_t hour_ = INT64_MIN;
  int64_t offset_ = 0;  // civil - unix, seconds
};

// Places a month and day without a year in the latest year that does not put them more
// than a day after the reference (a day for a clock that is off, or a file touched after
// its last line was written).
class YearGuess {
 public:
  explicit YearGuess(int64_t reference_unix_ms = 0);
  // Local civil seconds of the stamp in the chosen year.
  int64_t Civil(unsigned month, unsigned day, int64_t seconds_of_day) const;

 private:
  int64_t year_ = 1970;
  int64_t reference_civil_ = 0;
};

// `2022-04-20 12:53:58` with an optional `.123` and ` +0200` (Exim's log_timezone), then
// an optional ` [pid]` (+pid); `rest` is what follows the single space after that.
bool ParseEximStamp(std::string_view line, LocalClock* clock, int64_t* unix_ms,
                    std::string_view* rest);

// A syslog line: `Apr 20 12:53:58[.123456] host program[pid]: text` or
// `2026-12-04T08:30:43[.123456](Z|+00:00) host program[pid]: text`. The program and pid
// are optional in syslog (`host kernel: text`, `host text`): absent ones are empty.
struct SyslogLine {
  int64_t unix_ms = 0;
  std::string_view host;
  std::string_view program;
  std::string_view pid;
  std::string_view text;
};
bool ParseSyslogLine(std::string_view line, const YearGuess& year, LocalClock* clock,
                     SyslogLine* out);

}  // namespace compd

#endif  // COMPD_LOGS_LOG_TIME_H_
