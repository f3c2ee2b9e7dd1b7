#include "replay_input.h"

#include <cstdio>

#include "compd/base/utc_time.h"

namespace mapctl {

void AddLogInputOptions(CLI::App* cmd, LogInputOptions* o) {
  cmd->add_option("--format", o->format, "Log format: auto (per file), exim or postfix")
      ->check(CLI::IsMember({"auto", "exim", "postfix"}));
  cmd->add_option("--since", o->since,
                  "Only mail from this time on (UTC: 2026-11-01 or "
                  "2026-11-01T12:00:00Z)");
  cmd->add_option("--until", o->until, "Only mail before this time (UTC)");
  cmd->add_option("files", o->files, "Log files (plain or .gz, in any order)")->required();
}

bool ParseTimeFlag(const std::string& text, int64_t* ms) {
  std::string t = text;
  if (t.size() == 10) t += "T00:00:00Z";
  if (t.size() > 10 && t[10] == ' ') t[10] = 'T';
  if (t.size() == 16) t += ":00";
  if (!t.empty() && t.back() != 'Z') t += "Z";
  return compd::ParseUtcMillis(t, ms);
}

compd::Status OpenLogs(const LogInputOptions& o, std::unique_ptr<compd::LogReader>* reader) {
  compd::LogReaderOptions ro;
  if (!compd::ParseLogFormat(o.format, &ro.format)) {
    return compd::Status::Invalid("--format: '" + o.format + "' is not auto, exim or postfix");
  }
  if (!o.since.empty() && !ParseTimeFlag(o.since, &ro.since_ms)) {
    return compd::Status::Invalid("--since: '" + o.since +
                                  "' is not a UTC time such as "
                                  "2026-11-01 or 2026-11-01T12:00:00Z");
  }
  if (!o.until.empty() && !ParseTimeFlag(o.until, &ro.until_ms)) {
    return compd::Status::Invalid("--until: '" + o.until +
                                  "' is not a UTC time such as "
                                  "2026-11-01 or 2026-11-01T12:00:00Z");
  }
  return compd::LogReader::Open(o.files, ro, reader);
}

std::string PrintSummary(const compd::LogReadStats& st, size_t accounts, double seconds) {
  std::string out;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "Messages: %llu authenticated from %zu accounts (%llu without an account "
                "skipped, %llu outside --since/--until)\n",
                static_cast<unsigned long long>(st.total.messages), accounts,
                static_cast<unsigned long long>(st.total.unauthenticated),
                static_cast<unsigned long long>(st.total.outside_window));
  out += buf;
  std::snprintf(buf, sizeof buf, "Lines: %llu read, %llu skipped (not understood)\n",
                static_cast<unsigned long long>(st.total.lines),
                static_cast<unsigned long long>(st.total.not_understood));
  out += buf;
  for (const std::string& sample : st.samples) out += "  skipped " + sample + "\n";
  if (seconds > 0) {
    std::snprintf(buf, sizeof buf, "Time: %.2f s (%.0f messages/s)\n", seconds,
                  static_cast<double>(st.total.messages) / seconds);
    out += buf;
  }
  return out;
}

}  // namespace mapctl
