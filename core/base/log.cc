#include "compd/base/log.h"

#include <syslog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace compd {

bool ParseLogLevel(std::string_view name, LogLevel* out) {
  static constexpr std::pair<const char*, LogLevel> kNames[] = {
      {"error", LogLevel::kError},
      {"warning", LogLevel::kWarning},
      {"info", LogLevel::kInfo},
      {"debug", LogLevel::kDebug},
  };
  for (const auto& [n, l] : kNames) {
    if (name == n) {
      *out = l;
      return true;
    }
  }
  return false;
}

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "?";
}

std::string EscapeForLog(std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

Logger::Logger(std::string ident, Target target, LogLevel level)
    : ident_(std::move(ident)), target_(target), level_(level) {
  if (target_ == Target::kSyslog) openlog(ident_.c_str(), LOG_PID | LOG_NDELAY, LOG_MAIL);
}

Logger::~Logger() {
  if (target_ == Target::kSyslog) closelog();
}

void Logger::Log(LogLevel level, const std::string& message) const {
  if (!Enabled(level)) return;
  std::string safe = EscapeForLog(message);
  if (target_ == Target::kSyslog) {
    static constexpr int kPriority[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    syslog(kPriority[static_cast<int>(level)], "%s", safe.c_str());
    return;
  }
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm;
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string line = std::string(stamp) + " " + ident_ + "[" + std::to_string(getpid()) + "] " +
                     LogLevelName(level) + ": " + safe + "\n";
  // One write per line so lines from several threads never interleave.
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

LogFn Logger::Fn() const {
  return [this](LogLevel level, const std::string& msg) { Log(level, msg); };
}

}  // namespace compd
