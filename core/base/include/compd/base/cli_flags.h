// Command-line flags generated from the settings table, for both programs.
//
// Header-only because it needs CLI11, which only the programs link. Each setting becomes
// `--name-with-dashes VALUE` (plus its alias, e.g. `--redis`), grouped under "Settings";
// a boolean also works as a bare flag (`--foreground` means yes).
#ifndef COMPD_BASE_CLI_FLAGS_H_
#define COMPD_BASE_CLI_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "compd/base/settings.h"

namespace compd {

inline std::string FlagName(const char* setting) {
  std::string flag = setting;
  for (char& c : flag) c = c == '_' ? '-' : c;
  return flag;
}

// Registers the flags of `scope` on `app`; after app->parse(), Given() lists the settings
// that were on the command line, in table order.
class SettingFlags {
 public:
  SettingFlags(CLI::App* app, unsigned scope) {
    for (const auto& d : Settings()) {
      if (!(d.scope & scope)) continue;
      std::string names = "--" + FlagName(d.name);
      if (*d.alias) names += ",--" + std::string(d.alias);
      std::string help = d.doc;
      if (*d.default_value) help += " [default: " + std::string(d.default_value) + "]";
      CLI::Option* opt = app->add_option(names)->description(help)->group("Settings");
      if (d.type == SettingType::kBool) opt->expected(0, 1);
      options_.emplace_back(&d, opt);
    }
  }

  std::vector<CommandLineSetting> Given() const {
    std::vector<CommandLineSetting> given;
    for (const auto& [def, opt] : options_) {
      if (opt->count() == 0) continue;
      const auto& results = opt->results();
      given.push_back({def->name,
                       results.empty() || results.back().empty() ? "yes" : results.back(),
                       "--" + FlagName(def->name)});
    }
    return given;
  }

 private:
  std::vector<std::pair<const SettingDef*, CLI::Option*>> options_;
};

}  // namespace compd

#endif  // COMPD_BASE_CLI_FLAGS_H_
