// Log: leveled log lines to stderr or syslog.
//
// A Logger is configured once before threads start and then only read: Log() is safe from
// any thread (stderr lines are written with one write(2) each, so they never interleave).
// Components take a LogFn rather than a global, so tests can capture what they say.
#ifndef COMPD_BASE_LOG_H_
#define COMPD_BASE_LOG_H_

#include <functional>
#include <string>
#include <string_view>

namespace compd {

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };

// What components call; level first, then the message (no trailing newline).
using LogFn = std::function<void(LogLevel, const std::string&)>;

// Parses "error|warning|info|debug"; false for anything else.
bool ParseLogLevel(std::string_view name, LogLevel* out);
const char* LogLevelName(LogLevel level);

// Makes control characters in untrusted text (addresses, subjects) visible and harmless in
// a log line: CR, LF, NUL and other C0 bytes become \r, \n, \x00 ...
std::string EscapeForLog(std::string_view text);

class Logger {
 public:
  enum class Target { kStderr, kSyslog };
  Logger(std::string ident, Target target, LogLevel level);
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void Log(LogLevel level, const std::string& message) const;
  bool Enabled(LogLevel level) const { return level <= level_; }
  // A LogFn bound to this logger (which must outlive it).
  LogFn Fn() const;

 private:
  std::string ident_;
  Target target_;
  LogLevel level_;
};

}  // namespace compd

#endif  // COMPD_BASE_LOG_H_
