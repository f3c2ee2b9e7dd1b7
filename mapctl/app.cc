#include "app.h"

#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <iterator>

#include "compd/base/redis_config.h"

namespace mapctl {

compd::Status Context::LoadConfig() {
  // The default file is optional: mapctl works on a machine without compd installed.
  const bool explicit_path = !globals.config_path.empty();
  return compd::LoadConfig(explicit_path ? globals.config_path : compd::kDefaultConfigPath,
                           explicit_path, globals.settings, &config_);
}

compd::Status Context::OpenStore(compd::MapStore** store) {
  if (store_ == nullptr) {
    compd::Status s = LoadConfig();
    if (!s.ok()) return s;
    compd::RedisUrl url;
    s = compd::RedisUrlFromConfig(config_, &url);
    if (!s.ok()) return s;
    auto timeout = std::chrono::milliseconds(config_.GetDurationMs("redis_timeout"));
    auto client = std::make_unique<compd::RedisClient>(std::move(url), timeout);
    // Connect and PING now, so an outage or a missing password is reported before any
    // work, and clearly (an unauthenticated EVAL of a big batch only gets "Protocol error").
    s = client->Command({"PING"});
    if (!s.ok()) {
      if (s.message().find("NOAUTH") != std::string::npos) {
        return compd::Status::Unavailable(
            "redis " + client->url().ToString() +
            ": authentication required; set COMPD_REDIS_PASSWORD or redis_password_file");
      }
      return s;
    }
    client_ = std::move(client);
    store_ = std::make_unique<compd::MapStore>(client_.get(), config_.GetString("prefix"));
  }
  *store = store_.get();
  return compd::Status::Ok();
}

std::string Context::RedisDescription() const {
  if (client_) return client_->url().ToString();
  compd::RedisUrl url;
  std::string raw = config_.GetString("redis_url");
  return compd::ParseRedisUrl(raw, &url).ok() ? url.ToString() : raw;
}

std::string Context::Operator() {
  const char* sudo = std::getenv("SUDO_USER");
  if (sudo != nullptr && *sudo != '\0') return sudo;
  // getlogin() needs a controlling terminal; cron jobs and tests have none.
  const char* login = getlogin();
  if (login != nullptr && *login != '\0') return login;
  const passwd* pw = getpwuid(getuid());
  if (pw != nullptr && pw->pw_name != nullptr) return pw->pw_name;
  return "uid:" + std::to_string(getuid());
}

void PrintError(const std::string& message) { std::cerr << "mapctl: " << message << "\n"; }

int Fail(const compd::Status& status) {
  PrintError(status.message().empty() ? status.ToString() : status.message());
  return kExitError;
}

compd::Status ReadStdin(std::string* out) {
  out->assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  if (std::cin.bad()) return compd::Status::IoError("cannot read standard input");
  return compd::Status::Ok();
}

compd::Status GatherInputs(const std::vector<std::string>& args,
                           std::vector<compd::EntryInput>* out) {
  out->clear();
  bool stdin_read = false;
  for (const auto& arg : args) {
    if (arg != "-") {
      out->push_back({"", arg});
      continue;
    }
    if (stdin_read) continue;  // a second `-` would read an empty stream
    stdin_read = true;
    std::string text;
    compd::Status s = ReadStdin(&text);
    if (!s.ok()) return s;
    for (auto& in : compd::SplitEntryLines(text, "<stdin>")) out->push_back(std::move(in));
  }
  return compd::Status::Ok();
}

void AddMapKindOption(CLI::App* cmd, std::string* kind, const std::string& files) {
  cmd->add_option("--kind", *kind,
                  "How rspamd reads the " + files +
                      ": regexp (regexp = true) or plain; default: "
                      "plain for compd_rcpt.map, regexp otherwise")
      ->check(CLI::IsMember({"regexp", "plain"}));
}

compd::Status ReadMapFileAs(const std::string& path, const std::string& kind_flag,
                            compd::ImportFile* out, std::string* why) {
  out->path = path;
  if (!kind_flag.empty()) {
    out->kind = kind_flag == "plain" ? compd::MapKind::kPlain : compd::MapKind::kRegexp;
    *why = "--kind " + kind_flag;
  } else {
    out->kind = compd::DefaultMapKind(path);
    *why = out->kind == compd::MapKind::kPlain
               ? std::string("file named ") + compd::kExactMapFile + "; --kind to change"
               : std::string("default for files not named ") + compd::kExactMapFile +
                     "; --kind to change";
  }
  return compd::ReadRspamdMapFile(path, out->kind, &out->read);
}

compd::Status Context::LoadEntries(compd::MapStore** store, std::vector<compd::Entry>* entries,
                                   uint64_t* version) {
  compd::Status s = OpenStore(store);
  if (!s.ok()) return s;
  std::vector<std::string> invalid;
  s = (*store)->LoadEntries(entries, version, &invalid);
  for (const auto& bad : invalid) PrintError("warning: skipped " + bad);
  return s;
}

compd::Status Context::OfflineEngineOptions(compd::EngineOptions* out) {
  compd::Status s = LoadConfig();
  if (!s.ok()) return s;
  s = compd::EngineOptions::FromConfig(config_, out);
  if (!s.ok()) return s;
  out->count_volume = true;
  return compd::Status::Ok();
}

compd::Status Context::LoadEntries(std::vector<compd::Entry>* entries, uint64_t* version) {
  compd::MapStore* store = nullptr;
  return LoadEntries(&store, entries, version);
}

void PrintJson(const std::string& dumped) { std::cout << dumped << "\n"; }

const std::vector<CommandDef>& Commands() {
  static const std::vector<CommandDef> kCommands = {
      {"add", "Add exact addresses or /regex/flags patterns",
       "Examples:\n"
       "  mapctl add test1@spammer.example\n"
       "  mapctl add '/^probe[0-9]+@mail\\.example$/i' --note 'seen 2024-05-01'\n"
       "  mapctl add - < addresses.txt          (one entry per line)\n",
       &SetupAdd},
      {"remove", "Remove entries",
       "Examples:\n"
       "  mapctl remove test1@spammer.example\n"
       "  mapctl remove '/^probe[0-9]+@mail\\.example$/i'\n"
       "  mapctl remove - < addresses.txt\n",
       &SetupRemove},
      {"list", "List entries with their metadata",
       "Examples:\n"
       "  mapctl list\n"
       "  mapctl list --kind pattern\n"
       "  mapctl list --contains spammer.example --json\n",
       &SetupList},
      {"test", "Check addresses against the map, with the milter's matcher",
       "Examples:\n"
       "  mapctl test test1@spammer.example\n"
       "  mapctl test '<Probe7@Mail.Example>' other@example.org --json\n"
       "Exit status: 0 if any address matched, 1 if none did, 2 on error.\n",
       &SetupTest},
      {"import", "Import rspamd map files (dry run unless --apply)",
       "Examples:\n"
       "  mapctl import /etc/rspamd/maps/bad_rcpt.map            (show what would change)\n"
       "  mapctl import bad_rcpt.map --apply\n"
       "  mapctl import compd_rcpt.map compd_rcpt_re.map --replace --apply\n"
       "  mapctl import old.map --kind plain --skip-invalid --apply\n"
       "Files named compd_rcpt.map are read as plain maps, all others as regexp maps,\n"
       "unless --kind says otherwise. Errors in a file: exit 2 and nothing written.\n",
       &SetupImport},
      {"export", "Write the rspamd map files (or print them)",
       "Examples:\n"
       "  mapctl export --dir /var/lib/rspamd/compd\n"
       "  mapctl export > both-files.txt\n",
       &SetupExport},
      {"lint", "Report the hazards of an rspamd map file (no Redis needed)",
       "Examples:\n"
       "  mapctl lint /etc/rspamd/maps/bad_rcpt.map\n"
       "  mapctl lint list.txt --kind plain\n"
       "Exit status: 0 clean, 1 warnings only, 2 errors.\n",
       &SetupLint},
      {"stats", "Counts, version and last change",
       "Examples:\n"
       "  mapctl stats\n"
       "  mapctl stats --json\n",
       &SetupStats},
      // --- accounts: the registry of compromised accounts
      {"accounts", "Compromised accounts: list, show, lock, release, note, report",
       "Examples:\n"
       "  mapctl accounts report --since 24h        (the morning list of accounts to contact)\n"
       "  mapctl accounts list --state locked\n"
       "  mapctl accounts list --since 7d --json\n"
       "  mapctl accounts show alice@customer.example\n"
       "  mapctl accounts lock alice@customer.example --reason 'ticket 4711' --for 7d\n"
       "  mapctl accounts release alice@customer.example --reason 'password reset'\n"
       "  mapctl accounts note alice@customer.example 'customer called back'\n"
       "Exit status: 0 done; 1 no record for the account (show, release, note); 2 error.\n",
       &SetupAccounts},
      // --- top, anomalies: the volume views
      {"top", "Top senders of this hour and the last, with the change",
       "Examples:\n"
       "  mapctl top\n"
       "  mapctl top --n 30 --json\n"
       "Counts are accepted authenticated messages of all nodes, by UTC hour. '*' marks an\n"
       "account new to the top, '!' one with an anomaly in the last 24 hours.\n",
       &SetupTop},
      {"anomalies", "Accounts sending far more than their own history",
       "Examples:\n"
       "  mapctl anomalies\n"
       "  mapctl anomalies --since 7d --json\n",
       &SetupAnomalies},
      {"dashboard-user", "Print a users-file line (name:hash) for the dashboard",
       "Examples:\n"
       "  mapctl dashboard-user alice >> /etc/compd/dashboard.users   (asks twice)\n"
       "  printf '%s\\n' \"$PW\" | mapctl dashboard-user monitor   (password on stdin)\n"
       "No Redis needed. The hash is yescrypt, made by crypt(3).\n",
       &SetupDashboardUser},
      // --- detection over MTA logs
      {"replay", "What the detection engine would have done on MTA logs (changes nothing)",
       "Examples:\n"
       "  mapctl replay /var/log/exim4/mainlog /var/log/exim4/mainlog.*.gz\n"
       "  mapctl replay --since 2026-11-01 --until 2026-12-01 --json /var/log/mail.log*\n"
       "  mapctl replay --map compd_rcpt.map --reaction-new-networks lock mainlog\n"
       "With --json: one reaction per line on stdout (time, account, reaction, signals,\n"
       "evidence, queue_id, node), the summary as one JSON line on stderr.\n",
       &SetupReplay},
      {"history", "Seed per-account history (counters, known networks) from MTA logs",
       "Examples:\n"
       "  mapctl history import /var/log/exim4/mainlog.*.gz           (dry run)\n"
       "  mapctl history import --apply /var/log/mail.log.*.gz\n"
       "Idempotent; days the live milters already counted are skipped.\n",
       &SetupHistory},
      {"candidates", "Review the test recipients discovery proposed",
       "Examples:\n"
       "  mapctl candidates list\n"
       "  mapctl candidates accept toewebvastsatw@gmx.com   (adds it, flags the accounts)\n"
       "  mapctl candidates reject newsletter@example.com   (never proposed again)\n"
       "Candidates come from compd-milter (discovery = propose) and mapctl replay --propose.\n",
       &SetupCandidates},
      {"hunt", "Which accounts mailed an address or /regex/, from MTA logs (read-only)",
       "Examples:\n"
       "  mapctl hunt toewebvastsatw@gmx.com /var/log/exim4/mainlog /var/log/exim4/mainlog.*.gz\n"
       "  mapctl hunt '/^toeweb.*@gmx\\.com$/' --since 7d --json /var/log/mail.log*\n"
       "Exit 0 when some account mailed it, 1 when none did.\n",
       &SetupHunt},
  };
  return kCommands;
}

}  // namespace mapctl
