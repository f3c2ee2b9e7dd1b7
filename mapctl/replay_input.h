// The log input options replay and history import share (--format, --since, --until,
// FILE...), opening the LogReader, and the reader's summary for humans.
#ifndef COMPD_MAPCTL_REPLAY_INPUT_H_
#define COMPD_MAPCTL_REPLAY_INPUT_H_

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "compd/base/status.h"
#include "compd/logs/log_reader.h"

namespace mapctl {

struct LogInputOptions {
  std::string format = "auto";
  std::string since, until;
  std::vector<std::string> files;
};

void AddLogInputOptions(CLI::App* cmd, LogInputOptions* o);
// kInvalid names the flag; kIoError the file.
compd::Status OpenLogs(const LogInputOptions& o, std::unique_ptr<compd::LogReader>* reader);
// "2026-11-01", "2026-11-01T12:00:00Z", "2026-11-01 12:00": unix ms (UTC). False otherwise.
bool ParseTimeFlag(const std::string& text, int64_t* ms);
// Messages read, accounts, lines skipped (with samples), messages per second.
std::string PrintSummary(const compd::LogReadStats& st, size_t accounts, double seconds);

}  // namespace mapctl

#endif  // COMPD_MAPCTL_REPLAY_INPUT_H_
