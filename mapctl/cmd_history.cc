// mapctl history import: seeds what the live signals compare with (the per-account daily
// volume counters and known client networks) from MTA logs, by running the detection
// engine over them in memory and writing what it counted. Dry run unless --apply.
//
// Never double-counts: a day is written only when its counter does not exist yet
// (HSETNX), and never the current UTC day or later, which the live milters are counting.
// So importing the same files twice changes nothing, and a day the milters counted (even
// in part) keeps their count. Known networks merge (earliest first use, latest last use);
// the account domains join the hosted-domain set; what was news is announced in the
// detection feed, so running milters use it without a restart.
#include <chrono>
#include <iostream>
#include <map>
#include <set>
#include <unordered_map>

#include "app.h"
#include "compd/accounts/accounts.h"
#include "compd/base/keys.h"
#include "compd/base/text_output.h"
#include "compd/detect/engine.h"
#include "compd/detect/features.h"
#include "compd/detect/redis_detect_state.h"
#include "compd/logs/log_reader.h"
#include "compd/watch/volume.h"
#include "replay_input.h"

namespace mapctl {

namespace {

struct HistoryOptions {
  LogInputOptions input;
  bool apply = false;
};

// The feed keeps about 100,000 entries; nodes read 2,000 per sync interval, so an
// import larger than this may be trimmed before a node reads it.
constexpr size_t kFeedRoom = 50000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int RunHistoryImport(const HistoryOptions& o, Context& ctx) {
  compd::EngineOptions eo;
  compd::Status s = ctx.OfflineEngineOptions(&eo);
  if (!s.ok()) return Fail(s);
  std::unique_ptr<compd::LogReader> reader;
  s = OpenLogs(o.input, &reader);
  if (!s.ok()) return Fail(s);
  auto state = std::make_shared<compd::MemoryDetectState>();
  compd::Engine engine(eo, state);
  std::unordered_map<std::string, std::string> names;  // AccountKey -> name as logged
  compd::Message m;
  const auto start = std::chrono::steady_clock::now();
  while (reader->Next(&m)) {
    names.emplace(compd::AccountKey(m.account), m.account);
    engine.Observe(m, m.time_ms);
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!reader->status().ok()) {
    PrintError(reader->status().message());
    return kExitError;
  }
  std::cout << PrintSummary(reader->stats(), state->accounts(), secs);

  compd::RedisClient* redis = nullptr;
  if (o.apply) {
    compd::MapStore* store = nullptr;
    s = ctx.OpenStore(&store);
    if (!s.ok()) return Fail(s);
    redis = ctx.redis();
  }
  const std::string prefix = ctx.config().GetString("prefix");
  const int64_t today = compd::DayStart(NowMs() / 1000);
  const int64_t retention_s = ctx.config().GetDurationMs("volume_day_retention") / 1000;
  const compd::Keys keys(prefix);
  uint64_t days = 0, days_written = 0, days_kept = 0, days_today = 0, groups = 0;
  std::set<std::string> domains;
  std::vector<std::pair<std::string, compd::GroupUse>> news;  // groups new or changed in Redis
  compd::Status failed;
  state->ForEach([&](const std::string& key, const compd::AccountState& a) {
    if (!failed.ok()) return;
    std::vector<compd::DayCounts> all = a.days;
    if (a.day_start >= 0 && a.day_messages > 0) {
      compd::DayCounts d;
      d.day = compd::DayId(a.day_start);
      d.messages = a.day_messages;
      d.recipients = a.day_recipients;
      d.networks = std::max<int64_t>(a.day_networks, static_cast<int64_t>(a.hour_networks.size()));
      all.push_back(d);
    }
    const std::string& name = names.count(key) ? names[key] : key;
    std::vector<std::vector<std::string>> cmds;
    for (const compd::DayCounts& d : all) {
      ++days;
      int64_t ds = 0;
      if (!compd::ParseDayId(d.day, &ds) || ds >= today) {
        ++days_today;
        continue;
      }
      const std::string month = keys.month(d.day.substr(0, 6), name);
      cmds.push_back({"HSETNX", month, d.day.substr(6, 2),
                      std::to_string(d.messages) + " " + std::to_string(d.recipients) + " " +
                          std::to_string(d.networks)});
      cmds.push_back({"EXPIREAT", month, std::to_string(compd::NextMonthStart(ds) + retention_s)});
    }
    std::vector<std::pair<std::string, compd::KnownGroup>> g(a.groups.begin(), a.groups.end());
    groups += g.size();
    const std::string domain = compd::DomainOf(name);
    if (!domain.empty()) domains.insert(domain);
    if (redis == nullptr) {
      days_written += cmds.size() / 2;
      return;
    }
    std::vector<compd::RedisReply> replies;
    if (!cmds.empty()) {
      failed = redis->Pipeline(cmds, &replies);
      for (size_t i = 0; i < replies.size(); i += 2) {
        if (replies[i].integer == 1) {
          ++days_written;
        } else {
          ++days_kept;
        }
      }
    }
    std::vector<bool> changed;
    if (failed.ok()) {
      failed = compd::MergeKnownGroups(redis, prefix, key, g, {}, eo.known_network_ms, &changed);
    }
    for (size_t i = 0; i < changed.size(); ++i) {
      if (!changed[i]) continue;
      compd::GroupUse u;
      u.group = g[i].first;
      u.time_ms = g[i].second.last_ms;
      news.emplace_back(key, std::move(u));
    }
  });
  if (!failed.ok()) return Fail(failed);
  // Running milters load the hashes only at start: the feed tells them what is news.
  std::vector<std::string> new_domains;
  if (redis != nullptr && !domains.empty()) {
    std::vector<std::vector<std::string>> cmds;
    for (const std::string& d : domains) cmds.push_back({"SADD", keys.detect_domains(), d});
    std::vector<compd::RedisReply> replies;
    s = redis->Pipeline(cmds, &replies);
    if (!s.ok()) return Fail(s);
    for (size_t i = 0; i < replies.size(); ++i) {
      if (replies[i].integer == 1) new_domains.push_back(cmds[i][2]);
    }
  }
  if (redis != nullptr) {
    s = compd::AnnounceKnownGroups(redis, prefix, "mapctl-history-import", news, new_domains);
    if (!s.ok()) return Fail(s);
  }
  std::cout << (o.apply ? "Written: " : "Would write (dry run, --apply to write): ") << days_written
            << " account-days of volume counters";
  if (o.apply) std::cout << " (" << days_kept << " already counted, kept)";
  std::cout << "; " << days_today << " account-days of today or later skipped (the milters count "
            << "them); known networks of " << state->accounts() << " accounts (" << groups
            << " network groups) merged";
  if (o.apply) {
    std::cout << " (" << news.size() << " new or changed), " << new_domains.size()
              << " new account domains; running milters were told through the feed";
  }
  std::cout << "\n";
  if (news.size() + new_domains.size() > kFeedRoom) {
    std::cout << "More than the feed holds: restart compd-milter on every node to load all of "
                 "them.\n";
  }
  return kExitOk;
}

}  // namespace

RunFn SetupHistory(CLI::App* cmd) {
  auto o = std::make_shared<HistoryOptions>();
  cmd->require_subcommand(1);
  CLI::App* imp = cmd->add_subcommand(
      "import", "Read logs, write the volume counters, known networks and account domains");
  AddLogInputOptions(imp, &o->input);
  imp->add_flag("--apply", o->apply, "Write to Redis (default: dry run, print what would change)");
  return [o](Context& ctx) { return RunHistoryImport(*o, ctx); };
}

}  // namespace mapctl
