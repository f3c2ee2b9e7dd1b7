// The settings table: every setting compd has, its default, bounds and one line of docs.
// Config parsing, --help, the example config and docs/configuration.md are all made from
// it (settings.cc). Only rows live here.
#include <cstdint>
#include <vector>

#include "compd/base/net.h"
#include "compd/base/settings.h"
#include "settings_internal.h"

namespace compd {
// Inside the private namespace so the rows read the duration units unqualified.
namespace settings_internal {

// Rows are in documentation order. Keep docs to one line: they become --help text, the
// example config and docs/configuration.md.
const std::vector<SettingDef>& Table() {
  static const std::vector<SettingDef> table = {
      // --- Redis, shared by compd-milter and mapctl.
      {"redis_url", SettingType::kString, "redis://127.0.0.1:6379/0", 0, 0, "", "redis",
       kScopeShared,
       "Redis holding the map and events: redis://[user@]host[:port][/db] or "
       "unix:///path/redis.sock[?db=N]; also COMPD_REDIS_URL. Never put a password here."},
      {"redis_password_file", SettingType::kString, "", 0, 0, "", "", kScopeShared,
       "File whose first line is the Redis password (else COMPD_REDIS_PASSWORD); keep it mode "
       "0600."},
      {"redis_timeout", SettingType::kDuration, "2s", 10 * kMs, 60 * kSec, "", "", kScopeShared,
       "Connect and command timeout for Redis."},
      {"redis_sentinels", SettingType::kString, "", 0, 0, "", "", kScopeShared,
       "Redis Sentinels that name the primary, HOST:PORT,HOST:PORT,... ([IPv6]:PORT); when "
       "set, compd follows failovers and redis_url gives only the user and database."},
      {"redis_sentinel_master", SettingType::kString, "", 0, 0, "", "", kScopeShared,
       "Name the sentinels monitor the primary under (`sentinel monitor NAME ...`); required "
       "with redis_sentinels."},
      {"redis_sentinel_password_file", SettingType::kString, "", 0, 0, "", "", kScopeShared,
       "File whose first line is the sentinels' own password (else "
       "COMPD_REDIS_SENTINEL_PASSWORD); keep it mode 0600."},
      {"redis_replica_wait", SettingType::kDuration, "100ms", 0, 10 * kSec, "", "", kScopeMilter,
       "With redis_sentinels: after each batch of events, wait up to this long for a replica "
       "to confirm it (WAIT 1); unconfirmed events are counted and written again after a "
       "failover. 0s: do not wait."},
      {"prefix", SettingType::kString, "compd:", 0, 0, "", "", kScopeShared,
       "Prefix of every Redis key and channel compd uses."},

      // --- Listener and process.
      {"socket", SettingType::kString, "inet:8890@127.0.0.1", 0, 0, "", "", kScopeMilter,
       "Milter socket as libmilter takes it: inet:PORT@ADDR, inet6:PORT@ADDR or unix:/PATH."},
      {"socket_mode", SettingType::kString, "0660", 0, 0, "", "", kScopeMilter,
       "Permissions of a unix milter socket (octal)."},
      {"socket_group", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Group of a unix milter socket, so the MTA (e.g. postfix) can connect."},
      {"user", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Drop privileges to this user after binding (when started as root)."},
      {"group", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Drop privileges to this group after binding (default: the user's group)."},
      {"foreground", SettingType::kBool, "no", 0, 0, "", "", kScopeMilter,
       "Stay in the foreground (systemd, containers) instead of daemonising."},
      {"pid_file", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Write the process id here (empty: none)."},
      {"log_target", SettingType::kEnum, "stderr", 0, 0, "stderr|syslog", "", kScopeMilter,
       "Where log lines go."},
      {"log_level", SettingType::kEnum, "info", 0, 0, "error|warning|info|debug", "", kScopeMilter,
       "Least important level that is logged."},
      {"hostname", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Node name recorded in events (empty: the system host name)."},

      // --- What is checked and what happens on a hit.
      {"action", SettingType::kEnum, "reject", 0, 0, "reject|tempfail|quarantine|discard|monitor",
       "", kScopeMilter,
       "What a hit does: reject (550 5.7.1), tempfail (451 4.7.1), quarantine (hold in the "
       "MTA's queue), discard, or monitor (accept and record only, for rollout)."},
      {"reject_text", SettingType::kString,
       "Recipient address rejected: message refused by policy (ref {ref})", 0, 0, "", "",
       kScopeMilter, "Reply text for reject and tempfail; {ref} becomes the event's reference id."},
      {"check_headers", SettingType::kBool, "yes", 0, 0, "", "", kScopeMilter,
       "Also check every address in the To and Cc headers (a hit acts at end of message)."},
      {"check_display_names", SettingType::kBool, "yes", 0, 0, "", "", kScopeMilter,
       "Also check addresses written inside To/Cc display names (\"x@y\" <a@b>)."},
      {"trusted_networks", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Also check unauthenticated clients from these networks (comma-separated CIDRs); "
       "the account is then recorded as ip:ADDRESS."},
      {"check_non_smtpd", SettingType::kBool, "no", 0, 0, "", "", kScopeMilter,
       "Also check local submissions (Postfix non_smtpd_milters: sendmail/pickup)."},
      {"non_smtpd_action", SettingType::kEnum, "quarantine", 0, 0, "quarantine|monitor", "",
       kScopeMilter,
       "Action for local submissions; non-SMTP mail cannot be refused per recipient."},
      {"on_error", SettingType::kEnum, "accept", 0, 0, "accept|tempfail", "", kScopeMilter,
       "What the milter answers when it fails internally: this filter guards reputation, not "
       "delivery, so the default lets mail through and logs."},

      // --- Map, events, files.
      {"map_dir", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Write compd_rcpt.map and compd_rcpt_re.map here on every change (for rspamd), and "
       "read them at start when Redis is unreachable."},
      {"map_poll_interval", SettingType::kDuration, "5s", 100 * kMs, kHour, "", "", kScopeMilter,
       "Also poll the map version this often, in case a change message was lost."},
      {"map_load_timeout", SettingType::kDuration, "60s", kSec, kHour, "", "", kScopeMilter,
       "Timeout for reading the whole map from Redis (at start, and after a change too large "
       "for the change log, such as an import): a million entries take seconds, more than "
       "redis_timeout allows. Lookups never wait for it."},
      {"alert_log", SettingType::kString, "/var/log/compd/alerts.jsonl", 0, 0, "", "", kScopeMilter,
       "Every hit is appended here as one JSON line (empty: off)."},
      {"spool_dir", SettingType::kString, "/var/spool/compd", 0, 0, "", "", kScopeMilter,
       "Events wait here while Redis is unreachable, and are replayed when it returns."},
      {"event_stream_maxlen", SettingType::kInt, "100000", 100, 100000000, "", "", kScopeMilter,
       "Approximate cap of the Redis event stream."},
      {"event_queue_size", SettingType::kInt, "10000", 10, 10000000, "", "", kScopeMilter,
       "In-memory event queue; when full, events go to the spool, never lost."},
      {"canon_strip_subaddress", SettingType::kBool, "no", 0, 0, "", "", kScopeShared,
       "Compare exact entries without +tag subaddresses (user+x@dom = user@dom)."},
      {"canon_gmail_dots", SettingType::kBool, "no", 0, 0, "", "", kScopeShared,
       "Compare gmail.com/googlemail.com local parts without dots."},

      // --- Policy listener for Exim and check_policy_service.
      {"policy_socket", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Also answer Postfix policy-protocol requests (Exim ${readsocket}, Postfix "
       "check_policy_service) here: unix:/PATH, inet:PORT[@ADDR] or inet6:PORT[@ADDR] "
       "(empty: off; ADDR defaults to loopback)."},
      {"policy_socket_mode", SettingType::kString, "0660", 0, 0, "", "", kScopeMilter,
       "Permissions of a unix policy socket (octal)."},
      {"policy_socket_group", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Group of a unix policy socket, so the MTA (e.g. Debian-exim) can connect."},
      {"policy_max_connections", SettingType::kInt, "100", 1, 10000, "", "", kScopeMilter,
       "Policy connections served at once (one thread each); more wait to be accepted."},
      {"policy_timeout", SettingType::kDuration, "5m", 100 * kMs, kHour, "", "", kScopeMilter,
       "Close a policy connection idle this long, or whose request takes longer."},

      // --- Accounts: flag, lock, ticket hook.
      {"lock_on_hit", SettingType::kBool, "no", 0, 0, "", "", kScopeMilter,
       "Lock a SASL account at its hit (not only flag it): its MAIL FROM is then refused on "
       "every node until `mapctl accounts release` or lock_duration."},
      {"lock_allowlist", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Accounts never locked automatically, only flagged (monitor only): comma-separated "
       "accounts or @domain."},
      {"lock_duration", SettingType::kDuration, "0s", 0, 365 * kDay, "", "", kScopeMilter,
       "Automatic locks expire after this long; 0s: only a release ends them."},
      {"lock_reply", SettingType::kEnum, "451", 0, 0, "451|550", "", kScopeMilter,
       "Reply to a locked account's MAIL FROM: 451 (4.7.1, the client keeps the message and "
       "retries) or 550 (5.7.1, refused for good)."},
      {"lock_text", SettingType::kString, "Account suspended: contact support", 0, 0, "", "",
       kScopeMilter, "Reply text for a locked account's MAIL FROM."},
      {"hook_command", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Program run when an account is newly flagged, the event JSON on stdin: absolute path "
       "and arguments, '...'/\"...\" quote, no shell; {account} {state} {job} are replaced."},
      {"hook_url", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Webhook the same JSON is POSTed to when an account is newly flagged: http:// or "
       "https:// (certificate checked against the system CAs); no credentials in the URL."},
      {"hook_headers_file", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "File of extra 'Name: value' header lines for hook_url (e.g. Authorization); keep it "
       "mode 0600."},
      {"hook_timeout", SettingType::kDuration, "10s", 100 * kMs, 10 * kMin, "", "", kScopeMilter,
       "Time a hook program or webhook request may take; the program is then killed."},
      {"hook_quiet_period", SettingType::kDuration, "24h", 0, 365 * kDay, "", "", kScopeMilter,
       "At most one ticket per account in this period (a release and a new hit within it open "
       "none); 0s: one per newly flagged."},
      {"hook_retry_min", SettingType::kDuration, "30s", 10 * kMs, kDay, "", "", kScopeMilter,
       "Wait after a failed hook; doubles per failure up to hook_retry_max. Jobs wait in "
       "Redis and are retried until delivered."},
      {"hook_retry_max", SettingType::kDuration, "1h", 10 * kMs, 7 * kDay, "", "", kScopeMilter,
       "Longest wait between attempts of a failing hook."},

      // --- Volume, anomalies, dashboard and metrics.
      {"volume_counters", SettingType::kBool, "yes", 0, 0, "", "", kScopeMilter,
       "Count accepted messages, recipients and client networks per account per hour and day "
       "in Redis (for mapctl top, the dashboard and anomalies); written in batches, never on "
       "the mail path."},
      {"volume_flush_interval", SettingType::kDuration, "1s", 100 * kMs, kMin, "", "", kScopeMilter,
       "How often the counters are written to Redis."},
      {"volume_max_pending", SettingType::kInt, "100000", 100, 100000000, "", "", kScopeMilter,
       "Most (account, hour) pairs kept in memory while Redis is away; beyond that new pairs "
       "are not counted."},
      {"volume_hour_retention", SettingType::kDuration, "48h", 2 * kHour, 90 * kDay, "", "",
       kScopeMilter, "How long hourly counters are kept."},
      {"volume_day_retention", SettingType::kDuration, "400d", 2 * kDay, 3650 * kDay, "", "",
       kScopeMilter,
       "How long daily counters are kept (anomaly baselines look back up to a year)."},
      {"volume_ipv4_prefix", SettingType::kInt, "24", 8, 32, "", "", kScopeMilter,
       "Client addresses in the same IPv4 network of this prefix length count as one network."},
      {"volume_ipv6_prefix", SettingType::kInt, "48", 16, 128, "", "", kScopeMilter,
       "Client addresses in the same IPv6 network of this prefix length count as one network."},
      {"anomaly_detection", SettingType::kBool, "yes", 0, 0, "", "", kScopeMilter,
       "Compare each account's hour and day with its own history and record anomalies as "
       "events (needs volume_counters)."},
      {"anomaly_history_days", SettingType::kInt, "365", 7, 3650, "", "", kScopeMilter,
       "How many past days an account's baseline covers."},
      {"anomaly_min_history_days", SettingType::kInt, "7", 1, 3650, "", "", kScopeMilter,
       "Accounts with less history are new: only anomaly_new_account_messages applies."},
      {"anomaly_percentile", SettingType::kInt, "99", 50, 100, "", "", kScopeMilter,
       "Percentile of daily counts taken as an account's usual high (with median + MAD)."},
      {"anomaly_mad_factor", SettingType::kInt, "5", 0, 1000, "", "", kScopeMilter,
       "The usual high is at least median + this many robust standard deviations (1.4826 MAD)."},
      {"anomaly_day_factor_percent", SettingType::kInt, "200", 100, 100000, "", "", kScopeMilter,
       "A day is anomalous above this percentage of the account's usual high day."},
      {"anomaly_hour_factor_percent", SettingType::kInt, "100", 1, 100000, "", "", kScopeMilter,
       "An hour is anomalous above this percentage of the account's usual high day."},
      {"anomaly_day_floor", SettingType::kInt, "100", 1, 1000000000, "", "", kScopeMilter,
       "A day is never anomalous with this many messages or fewer (tiny accounts page nobody)."},
      {"anomaly_hour_floor", SettingType::kInt, "50", 1, 1000000000, "", "", kScopeMilter,
       "An hour is never anomalous with this many messages or fewer."},
      {"anomaly_new_account_messages", SettingType::kInt, "200", 1, 1000000000, "", "",
       kScopeMilter, "A new account's day is anomalous above this many messages."},
      {"anomaly_network_floor", SettingType::kInt, "10", 1, 1000000, "", "", kScopeMilter,
       "An hour is never anomalous for its client networks with this many or fewer."},
      {"anomaly_network_factor_percent", SettingType::kInt, "200", 100, 100000, "", "",
       kScopeMilter,
       "An hour's distinct client networks are anomalous above this percentage of the "
       "account's usual high."},
      // --- Detection engine: signals and the reaction each one takes. Shared, so mapctl
      // replay and history import read the same values the milters use.
      {"reaction_test_message", SettingType::kEnum, "flag", 0, 0, "monitor|flag|tempfail|lock", "",
       kScopeShared,
       "Reaction to a credential test message (one external recipient, small, odd HELO, new "
       "network, random subject): monitor (event only), flag (plus ticket hook), tempfail "
       "(flag and 451 the message), lock."},
      {"reaction_new_networks", SettingType::kEnum, "flag", 0, 0, "monitor|flag|tempfail|lock", "",
       kScopeShared,
       "Reaction when an account sends from several client networks it never used, within "
       "new_networks_window."},
      {"reaction_display_spoof", SettingType::kEnum, "flag", 0, 0, "monitor|flag|tempfail|lock", "",
       kScopeShared,
       "Reaction to a From display name holding an address of another domain, or a To "
       "display name holding another address."},
      {"reaction_day_volume", SettingType::kEnum, "monitor", 0, 0, "monitor|flag|tempfail|lock", "",
       kScopeShared, "Reaction to the day_volume anomaly."},
      {"reaction_hour_volume", SettingType::kEnum, "monitor", 0, 0, "monitor|flag|tempfail|lock",
       "", kScopeShared, "Reaction to the hour_volume anomaly."},
      {"reaction_networks", SettingType::kEnum, "monitor", 0, 0, "monitor|flag|tempfail|lock", "",
       kScopeShared, "Reaction to the networks anomaly."},
      {"reaction_new_account", SettingType::kEnum, "monitor", 0, 0, "monitor|flag|tempfail|lock",
       "", kScopeShared, "Reaction to the new_account anomaly."},
      {"local_domains", SettingType::kString, "", 0, 0, "", "", kScopeShared,
       "Domains hosted here (comma-separated); with the domains of accounts seen "
       "authenticating they make a recipient internal for test_message."},
      {"test_message_max_size", SettingType::kInt, "2000", 0, 1000000000, "", "", kScopeShared,
       "A message this size or smaller (bytes) is small for test_message."},
      {"test_message_score", SettingType::kInt, "6", 1, 100, "", "", kScopeShared,
       "Points a single-external-recipient message needs for test_message: small 2, "
       "localhost or public literal HELO 2, bare-word or private-literal HELO 1 (a client "
       "behind NAT), new network 2 (loopback and private clients never count), random "
       "subject 3."},
      {"new_networks_window", SettingType::kDuration, "1h", kMin, 7 * kDay, "", "", kScopeShared,
       "Window in which new client networks of one account are counted."},
      {"new_networks_min", SettingType::kInt, "3", 2, 1000, "", "", kScopeShared,
       "new_networks fires at this many distinct new network groups within the window."},
      {"own_networks", SettingType::kString, kPrivateNetworks, 0, 0, "", "", kScopeShared,
       "Client addresses of the provider's own webmail, relays and internal hosts "
       "(comma-separated CIDRs): never a client network of an account, old or new, for the "
       "detection signals (test_message's new network, new_networks)."},
      {"new_networks_group_ipv4_prefix", SettingType::kInt, "16", 8, 32, "", "", kScopeShared,
       "New IPv4 networks in one group of this prefix count once (carrier NAT pools), and a "
       "network in a group the account already used is not new."},
      {"new_networks_group_ipv6_prefix", SettingType::kInt, "32", 16, 128, "", "", kScopeShared,
       "As new_networks_group_ipv4_prefix, for IPv6."},
      {"known_network_days", SettingType::kInt, "120", 1, 3650, "", "", kScopeShared,
       "A client network an account has not used for this many days is new again."},
      {"signal_quiet_period", SettingType::kDuration, "1h", 0, 30 * kDay, "", "", kScopeShared,
       "The same signal for the same account is not raised again within this time."},
      // --- The combination of weaker signals (signal_window.h): per account, the signals
      // of the last signal_window, each worth its weight, flag (or lock) at a score.
      {"signal_window", SettingType::kDuration, "24h", kMin, 7 * kDay, "", "", kScopeShared,
       "Signals of one account within this time add up to the combined score."},
      {"combined_flag_score", SettingType::kInt, "0", 0, 1000, "", "", kScopeShared,
       "Flag an account whose signals within signal_window (at least two different ones) "
       "weigh this much together (0: never). Each signal counts at most its weight_*."},
      {"combined_lock_score", SettingType::kInt, "0", 0, 1000, "", "", kScopeShared,
       "Lock an account whose signals within signal_window (at least two different ones) "
       "weigh this much together (0: never, the default: only a hit locks)."},
      {"combined_test_points", SettingType::kInt, "4", 1, 100, "", "", kScopeShared,
       "A single-external-recipient message with this many test_message points, under "
       "test_message_score, counts for the combination as that share of weight_test_message."},
      {"weight_hit", SettingType::kInt, "10", 0, 1000, "", "", kScopeShared,
       "Weight of a hit in the combined score."},
      {"weight_test_message", SettingType::kInt, "6", 0, 1000, "", "", kScopeShared,
       "Weight of test_message in the combined score (a weaker test-like message: its share "
       "of the points test_message_score needs)."},
      {"weight_new_networks", SettingType::kInt, "6", 0, 1000, "", "", kScopeShared,
       "Weight of new_networks in the combined score (each new network group within "
       "signal_window: its share of new_networks_min)."},
      {"weight_display_spoof", SettingType::kInt, "6", 0, 1000, "", "", kScopeShared,
       "Weight of display_spoof in the combined score."},
      {"weight_day_volume", SettingType::kInt, "3", 0, 1000, "", "", kScopeShared,
       "Weight of the day_volume anomaly in the combined score."},
      {"weight_hour_volume", SettingType::kInt, "3", 0, 1000, "", "", kScopeShared,
       "Weight of the hour_volume anomaly in the combined score."},
      {"weight_networks", SettingType::kInt, "3", 0, 1000, "", "", kScopeShared,
       "Weight of the networks anomaly in the combined score."},
      {"weight_new_account", SettingType::kInt, "3", 0, 1000, "", "", kScopeShared,
       "Weight of the new_account anomaly in the combined score."},
      {"discovery", SettingType::kEnum, "propose", 0, 0, "off|propose|add", "", kScopeShared,
       "New test recipients learned from the traffic (a recipient that accounts of several "
       "unrelated customer domains each send a test-like first mail): off, propose (wait in "
       "mapctl candidates for review), add (added to the map at once, source=discovered)."},
      {"discovery_window", SettingType::kDuration, "7d", kMin, 30 * kDay, "", "", kScopeShared,
       "Test-like first mails to one recipient count towards a candidate for this long."},
      {"discovery_min_domains", SettingType::kInt, "2", 2, 100, "", "", kScopeShared,
       "Unrelated customer domains (not the same domain family) whose accounts must each "
       "send the recipient a test-like first mail."},
      {"discovery_test_points", SettingType::kInt, "5", 1, 100, "", "", kScopeShared,
       "Points that make a single-external-recipient message test-like for discovery when "
       "the engine's test_message did not fire: small 2, localhost or public literal HELO 2, "
       "bare-word or private-literal HELO 1, random subject 3, no Message-ID (Exim logs) 1."},
      {"retro_window", SettingType::kDuration, "7d", kHour, 90 * kDay, "", "", kScopeShared,
       "How long compd remembers who mailed whom: a mail is an account's first to a "
       "recipient when not seen within this time, and entries added to the map flag the "
       "accounts that mailed them within it."},
      {"retro_hunt", SettingType::kBool, "yes", 0, 0, "", "", kScopeMilter,
       "Remember who mailed whom on this node for retro_window (in memory, and in "
       "spool_dir/retro so a restart keeps it) and flag the accounts that mailed an entry when "
       "it enters the map; mapctl hunt asks the nodes."},
      {"retro_max_accounts", SettingType::kInt, "100", 1, 1000000, "", "", kScopeMilter,
       "An entry that matches the recent mail of more accounts than this flags none of them "
       "(a whole domain is not a test address); the log says so and mapctl hunt lists them."},
      {"detect_sync_interval", SettingType::kDuration, "1s", 100 * kMs, kMin, "", "", kScopeMilter,
       "How often a node writes what it learned (known networks, activity) to Redis and "
       "reads what the other nodes learned."},
      {"http_listen", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Dashboard, JSON API and /metrics listener, HOST:PORT such as 127.0.0.1:8891 or "
       "[::1]:8891 (empty: off). Put TLS in front with a reverse proxy."},
      {"http_users_file", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Dashboard users for HTTP basic auth, one `user:crypt-hash` per line (mapctl "
       "dashboard-user makes one)."},
      {"http_token_file", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Bearer tokens for the dashboard and API, one per line (at least 16 characters)."},
      {"metrics_token_file", SettingType::kString, "", 0, 0, "", "", kScopeMilter,
       "Bearer tokens /metrics requires, one per line (empty: /metrics is open to whoever "
       "reaches the listener)."},
      {"dashboard_top", SettingType::kInt, "15", 1, 100, "", "", kScopeMilter,
       "Accounts per column on the dashboard."},
      {"dashboard_refresh", SettingType::kDuration, "10s", 2 * kSec, kHour, "", "", kScopeMilter,
       "How often the dashboard page reloads itself."},
  };
  return table;
}

}  // namespace settings_internal

const std::vector<SettingDef>& Settings() { return settings_internal::Table(); }

}  // namespace compd
