#include "compd/base/settings.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "compd/base/file.h"
#include "compd/base/text.h"
#include "settings_internal.h"

namespace compd {

namespace {

using settings_internal::kDay;
using settings_internal::kHour;
using settings_internal::kMin;
using settings_internal::kMs;
using settings_internal::kSec;

bool ParseBool(std::string_view v, bool* out) {
  std::string l = AsciiLower(v);
  if (l == "yes" || l == "true" || l == "on" || l == "1") {
    *out = true;
    return true;
  }
  if (l == "no" || l == "false" || l == "off" || l == "0") {
    *out = false;
    return true;
  }
  return false;
}

bool ParseInt64(std::string_view v, int64_t* out) {
  if (v.empty() || v.size() > 18) return false;
  bool neg = v[0] == '-';
  if (neg) v.remove_prefix(1);
  if (v.empty()) return false;
  int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  *out = neg ? -n : n;
  return true;
}

bool ParseDuration(std::string_view v, int64_t* ms) {
  size_t i = 0;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
  int64_t n = 0;
  if (!ParseInt64(v.substr(0, i), &n)) return false;
  std::string_view unit = v.substr(i);
  int64_t mul = 0;
  if (unit == "ms")
    mul = kMs;
  else if (unit == "s" || unit.empty())
    mul = kSec;
  else if (unit == "m")
    mul = kMin;
  else if (unit == "h")
    mul = kHour;
  else if (unit == "d")
    mul = kDay;
  else
    return false;
  if (n > INT64_MAX / mul) return false;  // would overflow: out of any bound anyway
  *ms = n * mul;
  return true;
}

std::string FormatDuration(int64_t ms) {
  if (ms % kDay == 0 && ms != 0) return std::to_string(ms / kDay) + "d";
  if (ms % kHour == 0 && ms != 0) return std::to_string(ms / kHour) + "h";
  if (ms % kMin == 0 && ms != 0) return std::to_string(ms / kMin) + "m";
  if (ms % kSec == 0) return std::to_string(ms / kSec) + "s";
  return std::to_string(ms) + "ms";
}

bool InChoices(const char* choices, std::string_view v) {
  std::string_view all(choices);
  while (!all.empty()) {
    size_t bar = all.find('|');
    if (all.substr(0, bar) == v) return true;
    if (bar == std::string_view::npos) break;
    all.remove_prefix(bar + 1);
  }
  return false;
}

std::string TypeName(const SettingDef& d) {
  switch (d.type) {
    case SettingType::kString:
      return "string";
    case SettingType::kInt:
      return "integer " + std::to_string(d.min) + ".." + std::to_string(d.max);
    case SettingType::kBool:
      return "yes|no";
    case SettingType::kEnum:
      return d.choices;
    case SettingType::kDuration:
      return "duration " + FormatDuration(d.min) + ".." + FormatDuration(d.max);
  }
  return "";
}

}  // namespace

const SettingDef* FindSetting(std::string_view name) {
  for (const auto& d : Settings()) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

Config::Config() {
  for (const auto& d : Settings()) {
    // Through Set, so a default reads back in the same normal form as any value that is set
    // ("24h" is kept as "1d"); the table test makes sure every default is valid.
    values_[d.name] = d.default_value;
    Set(d.name, d.default_value, "");
    origins_[d.name] = "default";
  }
}

Status Config::Set(std::string_view name, std::string_view raw, std::string_view where) {
  std::string prefix = where.empty() ? "" : std::string(where) + ": ";
  const SettingDef* d = FindSetting(name);
  if (d == nullptr) return Status::Invalid(prefix + "unknown setting '" + std::string(name) + "'");
  std::string_view value = TrimAsciiSpace(raw);
  std::string stored(value);
  auto bad = [&](const std::string& why) {
    return Status::Invalid(prefix + d->name + ": '" + std::string(value) + "' " + why);
  };
  switch (d->type) {
    case SettingType::kString:
      break;
    case SettingType::kBool: {
      bool b;
      if (!ParseBool(value, &b)) return bad("is not yes or no");
      stored = b ? "yes" : "no";
      break;
    }
    case SettingType::kEnum:
      if (!InChoices(d->choices, value)) return bad(std::string("is not one of ") + d->choices);
      break;
    case SettingType::kInt: {
      int64_t n;
      if (!ParseInt64(value, &n)) return bad("is not a whole number");
      if (n < d->min || n > d->max) {
        return bad("is out of range " + std::to_string(d->min) + ".." + std::to_string(d->max));
      }
      stored = std::to_string(n);
      break;
    }
    case SettingType::kDuration: {
      int64_t ms;
      if (!ParseDuration(value, &ms))
        return bad("is not a duration such as 250ms, 5s, 10m, 2h, 7d");
      if (ms < d->min || ms > d->max) {
        return bad("is out of range " + FormatDuration(d->min) + ".." + FormatDuration(d->max));
      }
      stored = FormatDuration(ms);
      break;
    }
  }
  values_[d->name] = stored;
  origins_[d->name] = where.empty() ? "set" : std::string(where);
  return Status::Ok();
}

Status Config::LoadFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 && errno == ENOENT) {
    return Status::NotFound(path + ": no such file");
  }
  return ForEachLine(path, " \t\n\v\f\r", [&](const std::string& where, std::string_view l) {
    size_t eq = l.find('=');
    if (eq == std::string_view::npos) {
      return Status::Invalid(where + ": expected 'name = value'");
    }
    return Set(TrimAsciiSpace(l.substr(0, eq)), l.substr(eq + 1), where);
  });
}

Status Config::LoadEnvironment() {
  if (const char* url = std::getenv("COMPD_REDIS_URL")) {
    return Set("redis_url", url, "COMPD_REDIS_URL");
  }
  return Status::Ok();
}

std::string Config::GetString(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::string() : it->second;
}

int64_t Config::GetInt(std::string_view name) const {
  int64_t n = 0;
  ParseInt64(GetString(name), &n);
  return n;
}

bool Config::GetBool(std::string_view name) const {
  bool b = false;
  ParseBool(GetString(name), &b);
  return b;
}

int64_t Config::GetDurationMs(std::string_view name) const {
  int64_t ms = 0;
  ParseDuration(GetString(name), &ms);
  return ms;
}

std::string Config::Origin(std::string_view name) const {
  auto it = origins_.find(name);
  return it == origins_.end() ? std::string() : it->second;
}

std::string Config::Dump(unsigned scope) const {
  size_t width = 0;
  for (const auto& d : Settings()) {
    if (d.scope & scope) width = std::max(width, std::string(d.name).size());
  }
  std::ostringstream out;
  for (const auto& d : Settings()) {
    if (!(d.scope & scope)) continue;
    std::string name = d.name;
    out << name << std::string(width - name.size(), ' ') << " = " << GetString(name);
    out << "    # " << Origin(name) << "\n";
  }
  return out.str();
}

Status LoadConfig(const std::string& config_path, bool config_explicit,
                  const std::vector<CommandLineSetting>& command_line, Config* out) {
  Config c;
  Status s = c.LoadFile(config_path);
  if (s.IsNotFound() && !config_explicit) s = Status::Ok();
  if (!s.ok()) return s;
  s = c.LoadEnvironment();
  if (!s.ok()) return s;
  for (const auto& setting : command_line) {
    s = c.Set(setting.name, setting.value, setting.flag);
    if (!s.ok()) return s;
  }
  *out = std::move(c);
  return Status::Ok();
}

std::string ExampleConfig(unsigned scope) {
  std::ostringstream out;
  out << "# /etc/compd/compd.conf: generated from compd's settings table.\n"
      << "# Every setting is shown at its default, commented out. Syntax: name = value.\n"
      << "# Unknown names and bad values are errors with the line number.\n";
  for (const auto& d : Settings()) {
    if (!(d.scope & scope)) continue;
    out << "\n# " << d.doc << "\n# (" << TypeName(d) << ")\n#" << d.name << " = " << d.default_value
        << "\n";
  }
  return out.str();
}

std::string SettingsReference() {
  std::ostringstream out;
  out << "# Configuration reference\n\n"
      << "Generated from compd's settings table (`compd-milter --print-reference`); do not "
         "edit by hand.\n"
      << "Settings are read from `/etc/compd/compd.conf` (`name = value`, `#` comments), then\n"
      << "the environment (`COMPD_REDIS_URL`), then the command line (`--name-with-dashes`).\n\n"
      << "| setting | flag | type | default | used by | meaning |\n"
      << "|---|---|---|---|---|---|\n";
  for (const auto& d : Settings()) {
    std::string flag = std::string("--") + d.name;
    for (char& c : flag) c = c == '_' ? '-' : c;
    if (*d.alias) flag += ", --" + std::string(d.alias);
    std::string def = *d.default_value ? "`" + std::string(d.default_value) + "`" : "(empty)";
    std::string type = TypeName(d);
    for (size_t i = 0; (i = type.find('|', i)) != std::string::npos; i += 2) type.insert(i, "\\");
    out << "| `" << d.name << "` | `" << flag << "` | " << type << " | " << def << " | "
        << ((d.scope & kScopeShared) ? "both" : "compd-milter") << " | " << d.doc << " |\n";
  }
  return out.str();
}

}  // namespace compd
