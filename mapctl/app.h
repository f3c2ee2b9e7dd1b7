// mapctl's shared wiring: global options, configuration, the Redis connection, and the
// table of subcommands (each row declared in its own cmd_*.cc).
//
// Single-threaded program state; nothing here is thread-safe.
#ifndef COMPD_MAPCTL_APP_H_
#define COMPD_MAPCTL_APP_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "compd/base/redis.h"
#include "compd/base/settings.h"
#include "compd/base/status.h"
#include "compd/detect/engine.h"
#include "compd/map/map_edit.h"
#include "compd/map/map_store.h"

namespace mapctl {

// Exit codes, shared by every command (and documented in `mapctl --help`).
inline constexpr int kExitOk = 0;        // done; for `test`: some address matched
inline constexpr int kExitNegative = 1;  // a definite "no": no match, entry not there,
                                         // lint warnings
inline constexpr int kExitError = 2;     // bad input, Redis unavailable, I/O error: nothing
                                         // was written

struct Globals {
  std::string config_path;                          // --config; empty: the default if present
  std::vector<compd::CommandLineSetting> settings;  // shared settings given as flags
  bool json = false;
};

class Context {
 public:
  Globals globals;

  // Defaults < config file < COMPD_REDIS_URL < flags. OpenStore calls it; commands that
  // need no Redis (lint) never read the configuration.
  compd::Status LoadConfig();
  const compd::Config& config() const { return config_; }
  // LoadConfig, then the detection engine's options for a run over logs on this machine:
  // with no cluster-wide volume counters there, the engine counts volume itself.
  compd::Status OfflineEngineOptions(compd::EngineOptions* out);

  // Connects to Redis with the configured URL, password and timeout. Errors name the URL
  // (never the password).
  compd::Status OpenStore(compd::MapStore** store);
  // OpenStore, then every entry (without metadata) and the map version; entries Redis holds
  // but that no longer parse are reported on stderr as warnings and skipped.
  compd::Status LoadEntries(compd::MapStore** store, std::vector<compd::Entry>* entries,
                            uint64_t* version);
  // The same, for commands that only read the entries.
  compd::Status LoadEntries(std::vector<compd::Entry>* entries, uint64_t* version);
  // The connection OpenStore made (null before it succeeded).
  compd::RedisClient* redis() const { return client_.get(); }
  std::string RedisDescription() const;

  // Who is changing the map: $SUDO_USER, else the login name.
  static std::string Operator();

 private:
  compd::Config config_;
  std::unique_ptr<compd::RedisClient> client_;
  std::unique_ptr<compd::MapStore> store_;
};

// Prints "mapctl: MESSAGE" on stderr.
void PrintError(const std::string& message);
// PrintError(status.message()) and kExitError.
int Fail(const compd::Status& status);

// Reads all of stdin; kIoError if it cannot.
compd::Status ReadStdin(std::string* out);

// Command-line entries, where `-` stands for every line of stdin (see SplitEntryLines).
compd::Status GatherInputs(const std::vector<std::string>& args,
                           std::vector<compd::EntryInput>* out);

// Reads an rspamd map file as `kind_flag` ("plain", "regexp") or, when that is empty, as
// DefaultMapKind says; `why` explains the choice for the operator.
compd::Status ReadMapFileAs(const std::string& path, const std::string& kind_flag,
                            compd::ImportFile* out, std::string* why);
// Declares the --kind option whose value ReadMapFileAs takes; `files` names what is read
// in its help ("file", "files").
void AddMapKindOption(CLI::App* cmd, std::string* kind, const std::string& files);

// JSON output: one document on stdout, pretty enough to read, newline-terminated.
void PrintJson(const std::string& dumped);

using RunFn = std::function<int(Context& ctx)>;

struct CommandDef {
  const char* name;
  const char* summary;
  const char* examples;  // shown at the end of `mapctl NAME --help`
  // Declares the command's arguments on `cmd`; returns what runs it after parsing.
  RunFn (*setup)(CLI::App* cmd);
};

// The subcommands, in the order `mapctl --help` lists them.
const std::vector<CommandDef>& Commands();

RunFn SetupAdd(CLI::App* cmd);
RunFn SetupRemove(CLI::App* cmd);
RunFn SetupList(CLI::App* cmd);
RunFn SetupTest(CLI::App* cmd);
RunFn SetupImport(CLI::App* cmd);
RunFn SetupExport(CLI::App* cmd);
RunFn SetupLint(CLI::App* cmd);
RunFn SetupStats(CLI::App* cmd);
RunFn SetupAccounts(CLI::App* cmd);
// The volume views (cmd_top.cc).
RunFn SetupTop(CLI::App* cmd);
RunFn SetupAnomalies(CLI::App* cmd);
RunFn SetupDashboardUser(CLI::App* cmd);
// Detection over logs (cmd_replay.cc, cmd_history.cc).
RunFn SetupReplay(CLI::App* cmd);
RunFn SetupHistory(CLI::App* cmd);
// Discovery's candidates (cmd_candidates.cc).
RunFn SetupCandidates(CLI::App* cmd);
// Which accounts mailed an entry, from MTA logs (cmd_hunt.cc).
RunFn SetupHunt(CLI::App* cmd);

}  // namespace mapctl

#endif  // COMPD_MAPCTL_APP_H_
