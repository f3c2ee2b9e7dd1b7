// mapctl: the operator's CLI for the compd map. Wiring only: the global options come from
// the settings table, the subcommands from mapctl::Commands(); logic lives in core/.
#include <CLI/CLI.hpp>
#include <map>

#include "app.h"
#include "compd/base/cli_flags.h"

namespace {

constexpr const char* kFooter =
    "Configuration: --config FILE (default /etc/compd/compd.conf if present), then\n"
    "COMPD_REDIS_URL, then the flags above. The Redis password comes from\n"
    "COMPD_REDIS_PASSWORD or the file named by redis_password_file, never from the\n"
    "command line. URLs: redis://[user@]host[:port][/db], unix:///path/redis.sock[?db=N].\n"
    "\n"
    "Exit status:\n"
    "  0  done (test: an address matched; lint: clean)\n"
    "  1  a definite no: test matched nothing, remove found an entry missing,\n"
    "     lint found warnings only\n"
    "  2  error: invalid input, Redis unavailable, unreadable file; nothing was written\n"
    "\n"
    "Examples:\n"
    "  mapctl add test1@spammer.example --note 'ticket 4711'\n"
    "  mapctl test test1@spammer.example\n"
    "  mapctl import /etc/rspamd/maps/bad_rcpt.map\n"
    "  mapctl --redis unix:///run/redis/redis.sock stats\n"
    "Run `mapctl COMMAND --help` for each command's options and examples.";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mapctl: manage the compd map of compromised-account test recipients"};
  app.footer(kFooter);
  app.require_subcommand(1);
  // Global options may also follow the subcommand: `mapctl list --json`.
  app.fallthrough();
  app.set_version_flag("--version", COMPD_VERSION);

  mapctl::Context ctx;
  app.add_option("--config", ctx.globals.config_path,
                 "Config file (default /etc/compd/compd.conf if it exists)");
  compd::SettingFlags setting_flags(&app, compd::kScopeShared);
  app.add_flag("--json", ctx.globals.json, "Print data as JSON");

  std::map<const CLI::App*, mapctl::RunFn> runs;
  for (const auto& command : mapctl::Commands()) {
    CLI::App* sub = app.add_subcommand(command.name, command.summary);
    sub->footer(std::string(command.examples) +
                "Global options (--redis, --prefix, --config, --json, ...) may come before "
                "or after the command; see mapctl --help.");
    runs[sub] = command.setup(sub);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? mapctl::kExitOk : mapctl::kExitError;
  }
  ctx.globals.settings = setting_flags.Given();
  for (const CLI::App* sub : app.get_subcommands()) return runs[sub](ctx);
  return mapctl::kExitError;
}
