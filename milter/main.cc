// compd-milter: the tripwire in the MTA's outbound path. Wiring only: configuration,
// logging, the map watcher, the event recorder and libmilter; decisions live in core/.
#include <libmilter/mfapi.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "callbacks.h"
#include "compd/accounts/account_watcher.h"
#include "compd/accounts/accounts.h"
#include "compd/accounts/hook_runner.h"
#include "compd/accounts/recorder.h"
#include "compd/base/cli_flags.h"
#include "compd/base/log.h"
#include "compd/base/redis.h"
#include "compd/base/redis_config.h"
#include "compd/base/sentinel.h"
#include "compd/base/settings.h"
#include "compd/base/socket.h"
#include "compd/base/text_output.h"
#include "compd/detect/engine.h"
#include "compd/detect/live_discovery.h"
#include "compd/detect/redis_detect_state.h"
#include "compd/detect/retro_hunter.h"
#include "compd/map/map_watcher.h"
#include "compd/mta/policy_server.h"
#include "compd/mta/tripwire.h"
#include "dashboard.h"
#include "process.h"

namespace compd {
namespace {

constexpr int kExitConfig = 2;
constexpr int kExitRuntime = 1;

int Fail(const std::string& message, int code) {
  std::cerr << "compd-milter: " << message << "\n";
  return code;
}

// Everything that depends on the configuration and is checked before anything starts.
struct Plan {
  Config config;
  TripwireOptions tripwire;
  RedisUrl redis;
  LogLevel log_level = LogLevel::kInfo;
  SocketSpec socket;  // the milter's
  PolicyServerOptions policy;
  RecorderOptions recorder;
  MapWatcherOptions map;
  AccountWatcherOptions accounts;
  LockReply lock_reply;
  HookRunnerOptions hooks;
  DashboardPlan dashboard;
  EngineOptions engine;  // detection signals and their reactions
  RetroHunterOptions retro;
  DiscoveryOptions discovery;
};

Status MakePlan(const Config& config, Plan* plan) {
  plan->config = config;
  Status s = TripwireOptions::FromConfig(config, &plan->tripwire);
  if (!s.ok()) return s;
  s = RedisUrlFromConfig(config, &plan->redis);
  if (!s.ok()) return s;
  s = ParseSocketSpec("socket", config.GetString("socket"), SocketRules::Libmilter(),
                      &plan->socket);
  if (!s.ok()) return s;
  mode_t mode;
  if (!ParseOctalMode(config.GetString("socket_mode"), &mode)) {
    return Status::Invalid("socket_mode: '" + config.GetString("socket_mode") +
                           "' is not an octal mode");
  }
  s = PolicyServerOptions::FromConfig(config, &plan->policy);
  if (!s.ok()) return s;
  ParseLogLevel(config.GetString("log_level"), &plan->log_level);
  plan->recorder.redis = plan->map.redis = plan->accounts.redis = plan->hooks.redis = plan->redis;
  plan->recorder.hostname = plan->map.hostname = plan->hooks.hostname = plan->tripwire.hostname;
  s = RecorderOptions::FromConfig(config, &plan->recorder);
  if (s.ok()) s = MapWatcherOptions::FromConfig(config, &plan->map);
  if (s.ok()) s = AccountWatcherOptions::FromConfig(config, &plan->accounts);
  if (s.ok()) s = LockReply::FromConfig(config, &plan->lock_reply);
  if (s.ok()) s = HookRunnerOptions::FromConfig(config, &plan->hooks);
  if (s.ok()) s = MakeDashboardPlan(config, plan->redis, &plan->dashboard);
  if (s.ok()) s = EngineOptions::FromConfig(config, &plan->engine);
  plan->retro.redis = plan->redis;
  plan->retro.node = plan->tripwire.hostname;
  plan->retro.matcher = plan->map.matcher;
  if (s.ok()) s = RetroHunterOptions::FromConfig(config, &plan->retro);
  if (s.ok()) s = DiscoveryOptions::FromConfig(config, plan->engine, &plan->discovery);
  if (!s.ok()) return s;
  return Status::Ok();
}

// Binds the milter socket and the policy listener (as root if started so), prepares the
// folders, daemonises, writes the pid file and drops privileges. 0, or the exit status
// once it has said why.
int PrepareProcess(const Plan& plan, const Logger& logger, std::unique_ptr<PolicyServer>* policy) {
  const Config& config = plan.config;
  const std::string socket = config.GetString("socket");
  const std::string user = config.GetString("user");
  const std::string group = config.GetString("group");
  const std::string unix_path =
      plan.socket.kind == SocketSpec::Kind::kUnix ? plan.socket.path : std::string();

  // Bind first, as root if started so, then give up privileges.
  if (smfi_setconn(const_cast<char*>(socket.c_str())) != MI_SUCCESS) {
    return Fail("socket: libmilter refused '" + socket + "'", kExitConfig);
  }
  // libmilter refuses any command over 64 KiB by default and drops the connection; with
  // milter_default_action = accept that would let a message with a long To header through
  // unchecked. Postfix sends headers up to header_size_limit (100 KiB by default).
  smfi_setmaxdatasize(1024 * 1024 - 1);
  smfiDesc desc = MilterDescription();
  if (smfi_register(desc) != MI_SUCCESS) return Fail("smfi_register failed", kExitRuntime);
  if (smfi_opensocket(true) != MI_SUCCESS) {
    return Fail("cannot listen on " + socket + " (in use, or no permission?)", kExitRuntime);
  }
  if (!unix_path.empty()) {
    Status s = SetSocketPermissions("socket", unix_path, config.GetString("socket_mode"),
                                    config.GetString("socket_group"));
    if (!s.ok()) return Fail(s.message(), kExitConfig);
  }
  // Policy listener: bound now, before privileges are dropped; serves below.
  if (!plan.policy.socket.empty()) {
    *policy = std::make_unique<PolicyServer>(plan.policy, logger.Fn());
    Status ps = (*policy)->Listen();
    if (!ps.ok()) return Fail(ps.message(), ps.IsInvalid() ? kExitConfig : kExitRuntime);
  }
  // The spool and the alert log hold customer data: private. The map folder is read by
  // rspamd, which runs as another user.
  const std::pair<const char*, mode_t> dirs[] = {{"spool_dir", 0700}, {"map_dir", 0755}};
  for (const auto& [dir_setting, mode] : dirs) {
    Status s = PrepareDirectory(config.GetString(dir_setting), user, group, mode);
    if (!s.ok()) return Fail(std::string(dir_setting) + ": " + s.message(), kExitRuntime);
  }
  std::string alert_log = config.GetString("alert_log");
  if (!alert_log.empty()) {
    std::string dir = alert_log.substr(0, alert_log.rfind('/'));
    if (!dir.empty()) {
      Status s = PrepareDirectory(dir, user, group, 0700);
      if (!s.ok()) return Fail("alert_log: " + s.message(), kExitRuntime);
    }
  }
  if (!config.GetBool("foreground")) {
    Status s = Daemonize();
    if (!s.ok()) return Fail(s.message(), kExitRuntime);
  }
  Status s = WritePidFile(config.GetString("pid_file"));
  if (!s.ok()) return Fail(s.message(), kExitRuntime);
  s = DropPrivileges(user, group);
  if (!s.ok()) return Fail(s.message(), kExitRuntime);
  return 0;
}

int Run(const Plan& plan, const std::string& config_path, bool config_explicit,
        const std::vector<CommandLineSetting>& command_line) {
  const Config& config = plan.config;
  Logger logger("compd-milter",
                config.GetString("log_target") == "syslog" ? Logger::Target::kSyslog
                                                           : Logger::Target::kStderr,
                plan.log_level);
  // libmilter writes to closed sockets now and then; that must not kill the process.
  signal(SIGPIPE, SIG_IGN);

  const std::string socket = config.GetString("socket");
  const std::string unix_path =
      plan.socket.kind == SocketSpec::Kind::kUnix ? plan.socket.path : std::string();
  std::unique_ptr<PolicyServer> policy;
  if (int rc = PrepareProcess(plan, logger, &policy); rc != 0) return rc;
  BlockProcessSignals();

  // Block SIGUSR1 before any thread exists, so only the reload thread receives it. The
  // reload thread may outlive Run's objects: it reaches them only through `live` under its
  // mutex, and Run clears the pointers before they go away.
  struct Live {
    std::mutex mu;
    Tripwire* tripwire = nullptr;
    Recorder* recorder = nullptr;
  };
  auto live = std::make_shared<Live>();
  const Logger* log = &logger;
  StartReloadSignalThread(
      [live, log, config_path, config_explicit, command_line] {
        std::lock_guard<std::mutex> lock(live->mu);
        if (live->tripwire == nullptr) return;
        log->Log(LogLevel::kInfo, "SIGUSR1: reopening the alert log, reloading settings");
        Status r = live->recorder->Reopen();
        if (!r.ok()) log->Log(LogLevel::kError, "alert log: " + r.message());
        Config fresh;
        // Flags still win over the file, as they did at start.
        r = LoadConfig(config_path, config_explicit, command_line, &fresh);
        TripwireOptions options;
        if (r.ok()) r = TripwireOptions::FromConfig(fresh, &options);
        if (!r.ok()) {
          log->Log(LogLevel::kError,
                   "reload refused, keeping the running settings: " + r.message());
          return;
        }
        // Only what is safe to change under running connections: the decisions. Sockets,
        // Redis and paths need a restart.
        live->tripwire->SetOptions(std::move(options));
        log->Log(LogLevel::kInfo, "reloaded: action=" + fresh.GetString("action"));
      },
      logger.Fn());

  // One subscriber per process hears `+switch-master` for every connection below.
  if (plan.redis.sentinel) {
    plan.redis.sentinel->Start(logger.Fn());
    logger.Log(LogLevel::kInfo, "redis: following " + plan.redis.sentinel->Describe());
  }

  Recorder recorder(plan.recorder, logger.Fn());
  Status s = recorder.Start();
  if (!s.ok()) return Fail("recorder: " + s.message(), kExitRuntime);

  // Retro-hunt: hears every new map version (set before the watcher starts) and every
  // delivered message (outlets.observe below); its finds are hits for the recorder.
  RetroHunter retro(plan.retro, logger.Fn(),
                    [&recorder](Event e) { recorder.Submit(std::move(e)); });
  MapWatcher watcher(plan.map, logger.Fn());
  watcher.SetChangeListener([&retro](const MapChangeNote& note) { retro.MapChanged(note); });
  s = watcher.Start();
  if (!s.ok()) return Fail("map: " + s.message(), kExitRuntime);
  s = retro.Start();
  if (!s.ok()) return Fail("retro-hunt: " + s.message(), kExitRuntime);

  TripwireOutlets outlets;
  outlets.snapshot = [&watcher] { return watcher.Current()->matcher; };
  outlets.events = [&recorder](Event e) { recorder.Submit(std::move(e)); };
  // The locked accounts every node refuses, and the ticket hooks.
  AccountWatcher account_watcher(plan.accounts, logger.Fn());
  s = account_watcher.Start();
  if (!s.ok()) return Fail("accounts: " + s.message(), kExitRuntime);
  outlets.account_gate = account_watcher.Gate(plan.lock_reply);
  std::unique_ptr<HookRunner> hook_runner;
  if (plan.hooks.hooks.enabled()) {
    hook_runner = std::make_unique<HookRunner>(plan.hooks, logger.Fn());
    s = hook_runner->Start();
    if (!s.ok()) return Fail("hooks: " + s.message(), kExitRuntime);
  }
  {
    std::string targets;
    const AccountReaction& reaction = plan.recorder.accounts;
    for (const std::string& t : reaction.hook_targets) targets += " " + t;
    logger.Log(LogLevel::kInfo,
               std::string("accounts: a hit ") +
                   (reaction.lock_on_hit ? "locks the account (" +
                                               CountOf(reaction.allowlist.size(), "allowlist entry",
                                                       "allowlist entries") +
                                               " only flagged)"
                                         : "flags the account (lock_on_hit off)") +
                   "; locked accounts get " + plan.lock_reply.rcode + " " + plan.lock_reply.xcode +
                   "; ticket hooks:" + (targets.empty() ? std::string(" none") : targets));
  }
  // Volume counters, anomalies, hit counts: outlets.messages, events wrapped.
  // A background thread that cannot carry on stops the daemon, which then exits non-zero
  // after draining like any stop. Its thread is joined below, before `failed` goes away.
  std::atomic<bool> failed{false};
  DashboardPlan dashboard_plan = plan.dashboard;
  dashboard_plan.http_options.on_fatal = [&failed](const Status&) {
    failed = true;
    RequestStop();
  };
  DashboardRuntime dashboard(dashboard_plan, logger.Fn(), &recorder, &watcher);
  dashboard.AttachOutlets(&outlets);
  // Detection engine: every delivered in-scope message; reactions are events, and the
  // recorder flags or locks their accounts as it does for hits. The state lives in memory
  // and is shared with the other nodes through Redis by the state's own thread.
  RedisDetectOptions dso;
  dso.redis = plan.redis;
  dso.prefix = config.GetString("prefix");
  dso.node = plan.tripwire.hostname + ":" + std::to_string(getpid());
  dso.sync_interval = std::chrono::milliseconds(config.GetDurationMs("detect_sync_interval"));
  dso.redis_timeout = std::chrono::milliseconds(config.GetDurationMs("redis_timeout"));
  dso.window_ms = plan.engine.new_networks_window_ms;
  dso.known_network_ms = plan.engine.known_network_ms;
  auto detect_state = std::make_shared<RedisDetectState>(dso, logger.Fn());
  Engine engine(plan.engine, detect_state);
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  // Reactions without a message (re-evaluated, anomalies) name this node as their host.
  const std::string node_name = plan.tripwire.hostname;
  detect_state->SetOnRemote([&engine, &recorder, now_ms, node_name](const std::string& key) {
    for (Reaction& r : engine.Reevaluate(key, now_ms())) {
      r.node = node_name;
      recorder.Submit(r.ToEvent());
    }
  });
  s = detect_state->Start();
  if (!s.ok()) return Fail("detect: " + s.message(), kExitRuntime);
  // Its thread calls back into `engine`: on any return from here on, it stops before the
  // engine goes away (Stop is idempotent; the normal path stops it below).
  struct StopOnReturn {
    RedisDetectState* state;
    ~StopOnReturn() { state->Stop(); }
  } stop_detect{detect_state.get()};
  // Discovery: this node's test-like first mails meet the other nodes' in Redis, from a
  // thread of its own; the hits of an added candidate's accounts go to the recorder.
  LiveDiscoveryOptions ldo;
  ldo.discovery = plan.discovery;
  ldo.redis = plan.redis;
  ldo.prefix = dso.prefix;
  ldo.hostname = plan.tripwire.hostname;
  ldo.redis_timeout = dso.redis_timeout;
  // Who mailed whom before this start: retro-hunt's files, when it keeps them.
  if (plan.retro.enabled) ldo.memory_dir = plan.retro.dir;
  LiveDiscovery discovery(
      ldo, [&detect_state](const std::string& d) { return detect_state->IsLocalDomain(d); },
      [&recorder](std::vector<Event> hits) {
        for (Event& e : hits) recorder.Submit(std::move(e));
      },
      logger.Fn());
  s = discovery.Start();
  if (!s.ok()) return Fail("discovery: " + s.message(), kExitRuntime);
  dashboard.SetMetricsSource([&plan, &retro, &discovery](MetricsInput* in) {
    if (plan.discovery.mode != DiscoveryMode::kOff) {
      const LiveDiscoveryStats d = discovery.stats();
      DiscoveryMetrics dm;
      dm.mode = DiscoveryModeName(plan.discovery.mode);
      dm.sightings = d.sightings;
      dm.candidates = d.candidates;
      dm.dropped = d.dropped;
      dm.redis_errors = d.redis_errors;
      dm.pairs = d.discovery.pairs;
      in->discovery = dm;
    }
    if (plan.retro.enabled) {
      const RetroHunterStats r = retro.stats();
      RetroMetrics rm;
      rm.observed = r.observed;
      rm.dropped = r.dropped;
      rm.hunts = r.hunts;
      rm.flagged = r.flagged;
      rm.over_cap = r.over_cap;
      rm.answered = r.answered;
      rm.messages = r.memory.messages;
      rm.bytes = r.memory.bytes;
      rm.oldest_ms = r.memory.oldest_ms;
      in->retro = rm;
    }
  });
  outlets.observe = [&engine, &recorder, &retro, &discovery](const Message& m) {
    retro.Observe(m);
    Verdict v;
    std::vector<Reaction> reactions = engine.Observe(m, m.time_ms);
    discovery.Observe(m, HasTestSignal(reactions));
    for (Reaction& r : reactions) {
      Event e = r.ToEvent();
      if (r.kind >= ReactionKind::kTempfail) {
        // The queue id is what the customer quotes and what the operator finds in the
        // maillog and the alert log; the signal names are all there is before a queue id.
        v = Verdict::Tempfail("Message deferred by policy (ref " +
                              (e.queue_id.empty() ? e.rule : e.queue_id) + ")");
      }
      recorder.Submit(std::move(e));
    }
    return v;
  };
  if (dashboard.anomaly_detector()) {
    dashboard.anomaly_detector()->SetListener(
        [&engine, &recorder, now_ms, node_name](const Anomaly& a) {
          for (Reaction& r : engine.ObserveAnomaly(a, now_ms())) {
            r.node = node_name;
            // The anomaly's own event is in the stream already; a reaction adds one.
            if (r.kind != ReactionKind::kMonitor) recorder.Submit(r.ToEvent());
          }
        });
  }
  Tripwire tripwire(plan.tripwire, std::move(outlets));
  // The policy listener serves from here on.
  if (policy) {
    s = policy->Start(&tripwire);
    if (!s.ok()) return Fail(s.message(), kExitRuntime);
    logger.Log(LogLevel::kInfo, "policy listener on " + policy->description());
  }
  // The dashboard and /metrics listener start here.
  s = dashboard.Start(&tripwire);
  if (!s.ok()) {
    if (policy) policy->Stop();  // its threads use the tripwire, which goes away now
    return Fail(s.message(), kExitRuntime);
  }
  {
    std::lock_guard<std::mutex> lock(live->mu);
    live->tripwire = &tripwire;
    live->recorder = &recorder;
  }

  MilterContext context;
  context.tripwire = &tripwire;
  context.logger = &logger;
  context.on_error =
      config.GetString("on_error") == "tempfail" ? OnError::kTempfail : OnError::kAccept;
  SetMilterContext(&context);

  {
    // Scoped: a snapshot held here would stay in memory for the life of the process.
    auto snap = watcher.Current();
    logger.Log(LogLevel::kInfo, "listening on " + socket + "; map version " +
                                    std::to_string(snap->version) + " from " + snap->source + " (" +
                                    std::to_string(snap->exact) + " exact, " +
                                    std::to_string(snap->patterns) + " patterns); action " +
                                    config.GetString("action"));
  }
  int rc = smfi_main();
  // libmilter returns after SIGTERM/SIGHUP/SIGINT and abandons idle connections without
  // calling close. Give busy ones a moment, then take the pending events of every
  // connection still open, and drain the event queue: to Redis if it is there, to the
  // spool if not, so nothing is lost.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (OpenConnections(context) > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  size_t open = FlushOpenConnections(context);
  logger.Log(LogLevel::kInfo, "stopping: " + std::to_string(open) +
                                  " connections left open by the MTA; draining events");
  {
    std::lock_guard<std::mutex> lock(live->mu);
    live->tripwire = nullptr;
    live->recorder = nullptr;
  }
  // The listeners stop first, before the recorder drains.
  if (policy) policy->Stop();
  dashboard.Stop();
  detect_state->Stop();
  retro.Stop();
  discovery.Stop();
  if (hook_runner) hook_runner->Stop();
  account_watcher.Stop();
  watcher.Stop();
  recorder.Stop();
  if (plan.redis.sentinel) plan.redis.sentinel->Stop();
  if (!config.GetString("pid_file").empty()) unlink(config.GetString("pid_file").c_str());
  if (!unix_path.empty()) unlink(unix_path.c_str());
  if (failed) {
    logger.Log(LogLevel::kError, "stopped after a failure (see above)");
    return kExitRuntime;
  }
  logger.Log(LogLevel::kInfo, "stopped");
  return rc == MI_SUCCESS ? 0 : kExitRuntime;
}

int Main(int argc, char** argv) {
  CLI::App app{
      "compd-milter: refuses authenticated mail to known botnet test recipients and records "
      "the account that sent it.\n\n"
      "Settings come from the config file, then COMPD_REDIS_URL, then these flags; the Redis\n"
      "password only from COMPD_REDIS_PASSWORD or redis_password_file.\n\n"
      "Signals: SIGTERM (or SIGHUP/SIGINT, which libmilter treats alike) stops after\n"
      "draining events; SIGUSR1 reopens the alert log and reloads the action settings.\n\n"
      "Example:\n"
      "  compd-milter --foreground --socket unix:/run/compd/milter.sock --socket-group postfix\n"
      "  compd-milter --check-config --config /etc/compd/compd.conf"};
  std::string config_path = kDefaultConfigPath;
  CLI::Option* config_opt =
      app.add_option("--config", config_path, "Config file [default: /etc/compd/compd.conf]");
  bool check = false, print = false, example = false, reference = false, version = false;
  app.add_flag("--check-config", check, "Validate the configuration and exit (0 if fine)");
  app.add_flag("--print-config", print, "Print every setting with its value and origin");
  app.add_flag("--print-example-config", example, "Print an example compd.conf");
  app.add_flag("--print-reference", reference, "Print the configuration reference (Markdown)");
  app.add_flag("--version", version, "Print the version");
  SettingFlags flags(&app, kScopeShared | kScopeMilter);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitConfig;
  }
  if (version) {
    std::cout << "compd-milter " << COMPD_VERSION << "\n";
    return 0;
  }
  if (example) {
    std::cout << ExampleConfig(kScopeShared | kScopeMilter);
    return 0;
  }
  if (reference) {
    std::cout << SettingsReference();
    return 0;
  }
  bool config_explicit = config_opt->count() > 0;
  Config config;
  Status s = LoadConfig(config_path, config_explicit, flags.Given(), &config);
  if (!s.ok()) return Fail(s.message(), kExitConfig);
  Plan plan;
  s = MakePlan(config, &plan);
  if (!s.ok()) return Fail(s.message(), kExitConfig);
  if (print) {
    std::cout << config.Dump(kScopeShared | kScopeMilter);
    return 0;
  }
  if (check) {
    std::cout << "compd-milter: configuration OK\n";
    return 0;
  }
  return Run(plan, config_path, config_explicit, flags.Given());
}

}  // namespace
}  // namespace compd

int main(int argc, char** argv) {
  // Big buffers (a snapshot's tables, the whole-map reply, the map files' text) straight
  // from mmap and back to the system when freed. glibc's default threshold grows to 32 MB
  // after the first such free, after which they come from the heap and stay in the RSS:
  // measured at 1M entries, 142 MB after three whole reads instead of about 60.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  return compd::Main(argc, argv);
}
