// Settings: every knob of compd declared once, in one table (name, type, default, bounds,
// one-line doc). The table drives the config file (/etc/compd/compd.conf), the command-line
// flags (`redis_url` <-> `--redis-url`, plus short aliases such as `--redis`), `--help`,
// `--check-config`, `--print-config` and the generated configuration reference.
//
// The table is immutable static data. A Config is a plain value: not thread-safe to modify,
// safe to read from many threads once built (the milter builds one and shares it const).
//
// Config file syntax, in the Postfix main.cf spirit:
//   # comment
//   name = value          (whitespace around '=' ignored; value runs to end of line)
// Unknown names, bad values and values out of bounds are errors naming `file:line`.
// Precedence: defaults < config file < environment (COMPD_REDIS_URL) < command line.
#ifndef COMPD_BASE_SETTINGS_H_
#define COMPD_BASE_SETTINGS_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "compd/base/status.h"

namespace compd {

inline constexpr const char* kDefaultConfigPath = "/etc/compd/compd.conf";

enum class SettingType {
  kString,
  kInt,       // bounded by min/max
  kBool,      // yes/no, true/false, on/off, 1/0
  kEnum,      // one of `choices` ("a|b|c")
  kDuration,  // "250ms", "5s", "10m", "2h", "7d"; stored as milliseconds; bounded in ms
};

// Who reads a setting: both programs, or only the daemon.
enum SettingScope : unsigned { kScopeShared = 1, kScopeMilter = 2 };

struct SettingDef {
  const char* name;
  SettingType type;
  const char* default_value;
  int64_t min;  // kInt and kDuration (ms) only
  int64_t max;
  const char* choices;  // kEnum only
  const char* alias;    // extra long flag without dashes, e.g. "redis" for --redis; or ""
  unsigned scope;
  const char* doc;
};

// The table, in documentation order.
const std::vector<SettingDef>& Settings();
const SettingDef* FindSetting(std::string_view name);

class Config {
 public:
  Config();  // every setting at its default

  // Sets one value after validating it. `where` names the origin for messages and
  // --print-config ("compd.conf:12", "--action", "COMPD_REDIS_URL"). Errors are kInvalid:
  //   "compd.conf:12: action: 'rejct' is not one of reject|tempfail|..."
  Status Set(std::string_view name, std::string_view value, std::string_view where);

  // Reads a config file. A missing file is kNotFound (callers decide whether that is fine:
  // it is for the default path, not for an explicit --config). Stops at the first error.
  Status LoadFile(const std::string& path);
  // Applies COMPD_REDIS_URL.
  Status LoadEnvironment();

  std::string GetString(std::string_view name) const;
  int64_t GetInt(std::string_view name) const;
  bool GetBool(std::string_view name) const;
  int64_t GetDurationMs(std::string_view name) const;
  std::string Origin(std::string_view name) const;

  // `name = value   # origin` for every setting of `scope`, for --print-config.
  std::string Dump(unsigned scope) const;

 private:
  std::map<std::string, std::string, std::less<>> values_;
  std::map<std::string, std::string, std::less<>> origins_;
};

// One setting given on the command line: the flag that carried it, for messages.
struct CommandLineSetting {
  std::string name;
  std::string value;
  std::string flag;  // "--action"
};

// The effective configuration: defaults, then the config file, then the environment, then
// the command line. With `config_explicit` a missing file is an error; the default path
// may be absent.
Status LoadConfig(const std::string& config_path, bool config_explicit,
                  const std::vector<CommandLineSetting>& command_line, Config* out);

// An example compd.conf with every setting commented out at its default, with its doc.
std::string ExampleConfig(unsigned scope);
// The configuration reference in Markdown (docs/configuration.md is generated from it).
std::string SettingsReference();

}  // namespace compd

#endif  // COMPD_BASE_SETTINGS_H_
