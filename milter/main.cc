// compd-milter: the tripwire in the MTA's outbound path. Wiring only: configuration,
// logging, the map watcher, the event recorder and libmilter; decisions live in core/.
#include <libmilter/mfapi.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
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
#include "compd/base/settings.h"
#include "compd/base/text_output.h"
#include "compd/detect/engine.h"
#include "compd/detect/redis_detect_state.h"
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
  PolicyServerOptions policy;
  // Accounts (issue 7).
  AccountReaction accounts;
  LockReply lock_reply;
  HookOptions hooks;
  DashboardPlan dashboard;  // issue 8
  EngineOptions engine;     // detection signals and their reactions
};

Status MakePlan(const Config& config, Plan* plan) {
  plan->config = config;
  Status s = TripwireOptions::FromConfig(config, &plan->tripwire);
  if (!s.ok()) return s;
  s = ParseRedisUrl(config.GetString("redis_url"), &plan->redis);
  if (!s.ok()) return Status::Invalid("redis_url: " + s.message());
  s = LoadRedisPassword(config.GetString("redis_password_file"), &plan->redis.password);
  if (!s.ok()) return s;
  s = CheckSocketSpec(config.GetString("socket"));
  if (!s.ok()) return s;
  s = PolicyServerOptions::FromConfig(config, &plan->policy);
  if (!s.ok()) return s;
  ParseLogLevel(config.GetString("log_level"), &plan->log_level);
  s = AccountReaction::FromConfig(config, &plan->accounts);
  if (s.ok()) s = LockReply::FromConfig(config, &plan->lock_reply);
  if (s.ok()) s = HookOptions::FromConfig(config, &plan->hooks);
  if (s.ok()) s = MakeDashboardPlan(config, plan->redis, &plan->dashboard);
  if (s.ok()) s = EngineOptions::FromConfig(config, &plan->engine);
  if (!s.ok()) return s;
  return Status::Ok();
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
  const std::string user = config.GetString("user");
  const std::string group = config.GetString("group");
  std::string unix_path = UnixSocketPath(socket);

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
    Status s = SetSocketPermissions(unix_path, config.GetString("socket_mode"),
                                    config.GetString("socket_group"));
    if (!s.ok()) return Fail(s.message(), kExitConfig);
  }
  // Policy listener (issue 6): bound now, before privileges are dropped; serves below.
  std::unique_ptr<PolicyServer> policy;
  if (!plan.policy.socket.empty()) {
    policy = std::make_unique<PolicyServer>(plan.policy, logger.Fn());
    Status ps = policy->Listen();
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
  StartReloadSignalThread([live, log, config_path, config_explicit, command_line] {
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
      log->Log(LogLevel::kError, "reload refused, keeping the running settings: " + r.message());
      return;
    }
    // Only what is safe to change under running connections: the decisions. Sockets,
    // Redis and paths need a restart.
    live->tripwire->SetOptions(std::move(options));
    log->Log(LogLevel::kInfo, "reloaded: action=" + fresh.GetString("action"));
  });

  RecorderOptions ro;
  ro.redis = plan.redis;
  ro.prefix = config.GetString("prefix");
  ro.alert_log = alert_log;
  ro.spool_dir = config.GetString("spool_dir");
  ro.hostname = plan.tripwire.hostname;
  ro.stream_maxlen = static_cast<size_t>(config.GetInt("event_stream_maxlen"));
  ro.queue_capacity = static_cast<size_t>(config.GetInt("event_queue_size"));
  ro.redis_timeout = std::chrono::milliseconds(config.GetDurationMs("redis_timeout"));
  ro.accounts = plan.accounts;
  Recorder recorder(ro, logger.Fn());
  s = recorder.Start();
  if (!s.ok()) return Fail("recorder: " + s.message(), kExitRuntime);

  MapWatcherOptions wo;
  wo.redis = plan.redis;
  wo.prefix = config.GetString("prefix");
  wo.map_dir = config.GetString("map_dir");
  wo.hostname = plan.tripwire.hostname;
  wo.poll_interval = std::chrono::milliseconds(config.GetDurationMs("map_poll_interval"));
  wo.redis_timeout = std::chrono::milliseconds(config.GetDurationMs("redis_timeout"));
  wo.load_timeout = std::chrono::milliseconds(config.GetDurationMs("map_load_timeout"));
  wo.matcher.canon.strip_subaddress = config.GetBool("canon_strip_subaddress");
  wo.matcher.canon.gmail_dots = config.GetBool("canon_gmail_dots");
  MapWatcher watcher(wo, logger.Fn());
  s = watcher.Start();
  if (!s.ok()) return Fail("map: " + s.message(), kExitRuntime);

  TripwireOutlets outlets;
  outlets.snapshot = [&watcher] { return watcher.Current()->matcher; };
  outlets.events = [&recorder](Event e) { recorder.Submit(std::move(e)); };
  // Accounts (issue 7): the locked accounts every node refuses, and the ticket hooks.
  AccountWatcherOptions awo;
  awo.redis = plan.redis;
  awo.prefix = config.GetString("prefix");
  if (!config.GetString("spool_dir").empty()) {
    awo.cache_file = config.GetString("spool_dir") + "/locked-accounts.json";
  }
  awo.poll_interval = std::chrono::milliseconds(config.GetDurationMs("map_poll_interval"));
  awo.redis_timeout = std::chrono::milliseconds(config.GetDurationMs("redis_timeout"));
  AccountWatcher account_watcher(awo, logger.Fn());
  s = account_watcher.Start();
  if (!s.ok()) return Fail("accounts: " + s.message(), kExitRuntime);
  outlets.account_gate = account_watcher.Gate(plan.lock_reply);
  std::unique_ptr<HookRunner> hook_runner;
  if (plan.hooks.enabled()) {
    HookRunnerOptions ho;
    ho.redis = plan.redis;
    ho.prefix = config.GetString("prefix");
    ho.hostname = plan.tripwire.hostname;
    ho.hooks = plan.hooks;
    ho.redis_timeout = std::chrono::milliseconds(config.GetDurationMs("redis_timeout"));
    hook_runner = std::make_unique<HookRunner>(ho, logger.Fn());
    s = hook_runner->Start();
    if (!s.ok()) return Fail("hooks: " + s.message(), kExitRuntime);
  }
  {
    std::string targets;
    for (const std::string& t : plan.accounts.hook_targets) targets += " " + t;
    logger.Log(
        LogLevel::kInfo,
        std::string("accounts: a hit ") +
            (plan.accounts.lock_on_hit ? "locks the account (" +
                                             CountOf(plan.accounts.allowlist.size(),
                                                     "allowlist entry", "allowlist entries") +
                                             " only flagged)"
                                       : "flags the account (lock_on_hit off)") +
            "; locked accounts get " + plan.lock_reply.rcode + " " + plan.lock_reply.xcode +
            "; ticket hooks:" + (targets.empty() ? std::string(" none") : targets));
  }
  // Volume counters, anomalies, hit counts (issue 8): outlets.messages, events wrapped.
  DashboardRuntime dashboard(plan.dashboard, logger.Fn(), &recorder, &watcher);
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
  detect_state->SetOnRemote([&engine, &recorder, now_ms](const std::string& key) {
    for (Reaction& r : engine.Reevaluate(key, now_ms())) recorder.Submit(r.ToEvent());
  });
  s = detect_state->Start();
  if (!s.ok()) return Fail("detect: " + s.message(), kExitRuntime);
  outlets.observe = [&engine, &recorder](const Message& m) {
    Verdict v;
    for (Reaction& r : engine.Observe(m, m.time_ms)) {
      Event e = r.ToEvent();
      if (r.kind >= ReactionKind::kTempfail) {
        v.kind = Verdict::Kind::kTempfail;
        v.rcode = "451";
        v.xcode = "4.7.1";
        v.text = SafeReplyText("Message deferred by policy (ref " +
                               e.id.substr(e.id.size() > 10 ? e.id.size() - 10 : 0) + ")");
      }
      recorder.Submit(std::move(e));
    }
    return v;
  };
  if (dashboard.anomaly_detector()) {
    dashboard.anomaly_detector()->SetListener([&engine, &recorder, now_ms](const Anomaly& a) {
      for (Reaction& r : engine.ObserveAnomaly(a, now_ms())) {
        // The anomaly's own event is in the stream already; a reaction adds one.
        if (r.kind != ReactionKind::kMonitor) recorder.Submit(r.ToEvent());
      }
    });
  }
  Tripwire tripwire(plan.tripwire, std::move(outlets));
  // Policy listener (issue 6) starts here.
  if (policy) {
    s = policy->Start(&tripwire);
    if (!s.ok()) return Fail(s.message(), kExitRuntime);
    logger.Log(LogLevel::kInfo, "policy listener on " + policy->description());
  }
  // Dashboard and /metrics listener (issue 8) start here.
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
  // Listeners of issues 6 and 8 stop here, before the recorder drains.
  if (policy) policy->Stop();
  dashboard.Stop();
  detect_state->Stop();
  if (hook_runner) hook_runner->Stop();
  account_watcher.Stop();
  watcher.Stop();
  recorder.Stop();
  if (!config.GetString("pid_file").empty()) unlink(config.GetString("pid_file").c_str());
  if (!unix_path.empty()) unlink(unix_path.c_str());
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
