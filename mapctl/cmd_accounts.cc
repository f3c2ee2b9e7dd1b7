// mapctl accounts: the registry of compromised accounts (list, show, lock, release, note,
// report). Logic and Redis layout live in core (accounts.h); this is presentation.
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app.h"
#include "compd/accounts/accounts.h"
#include "compd/base/text_output.h"
#include "compd/events/event.h"

namespace mapctl {

namespace {

using Json = nlohmann::json;

struct AccountsOptions {
  std::string account;
  std::string state;
  std::string since;
  std::string reason;
  std::string lock_for;
  std::string text;
};

std::string Dump(const Json& j) { return j.dump(2, ' ', false, Json::error_handler_t::replace); }

int64_t NowMs() { return compd::UnixMs(std::chrono::system_clock::now()); }

// Free text (subjects, notes) on one table line.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return s;
}

// `2024-05-01 12:00:00Z` for an ISO time, "-" for none.
std::string When(const std::string& iso) {
  int64_t ms = 0;
  if (iso.empty() || !compd::ParseUtcMillis(iso, &ms)) return iso.empty() ? "-" : iso;
  return compd::FormatUnixTime(ms / 1000);
}

std::string WhenMs(int64_t ms) { return ms <= 0 ? "-" : compd::FormatUnixTime(ms / 1000); }

// "locked", "locked until ...", "flagged (lock expired ...)".
std::string StateText(const compd::AccountRecord& r, int64_t now) {
  std::string state = r.EffectiveState(now);
  if (r.LockExpired(now)) return state + " (lock expired " + WhenMs(r.lock_expires_ms) + ")";
  if (state == "locked" && r.lock_expires_ms != 0) {
    return state + " until " + WhenMs(r.lock_expires_ms);
  }
  return state;
}

// "a@x (3), b@y (1), +4 more".
std::string Evidence(const std::vector<std::pair<std::string, int64_t>>& values, size_t limit) {
  std::string out;
  for (size_t i = 0; i < values.size() && i < limit; ++i) {
    if (!out.empty()) out += ", ";
    out += OneLine(values[i].first);
    if (values[i].second != 1) out += " (" + std::to_string(values[i].second) + ")";
  }
  if (values.size() > limit) out += ", +" + std::to_string(values.size() - limit) + " more";
  return out.empty() ? "-" : out;
}

Json CountsJson(const std::vector<std::pair<std::string, int64_t>>& values) {
  Json j = Json::object();
  for (const auto& [k, n] : values) j[k] = n;
  return j;
}

Json RecordJson(const compd::AccountRecord& r, int64_t now) {
  Json j = {{"account", r.account},
            {"state", r.EffectiveState(now)},
            {"stored_state", r.state},
            {"state_at", r.state_at},
            {"state_by", r.state_by},
            {"state_reason", r.state_reason},
            {"flagged_at", r.flagged_at},
            {"lock_expires", r.lock_expires_ms},
            {"lock_expired", r.LockExpired(now)},
            {"hits", r.hits},
            {"first_seen", r.first_seen},
            {"last_seen", r.last_seen},
            {"last_recipient", r.last_recipient},
            {"last_client_ip", r.last_client_ip},
            {"last_entry", r.last_entry}};
  Json tickets = Json::object();
  for (const auto& [target, status] : r.tickets) tickets[target] = status;
  j["tickets"] = std::move(tickets);
  return j;
}

compd::Status OpenRegistry(Context& ctx, std::unique_ptr<compd::AccountRegistry>* out) {
  compd::MapStore* store = nullptr;
  compd::Status s = ctx.OpenStore(&store);
  if (!s.ok()) return s;
  *out = std::make_unique<compd::AccountRegistry>(ctx.redis(), ctx.config().GetString("prefix"));
  return compd::Status::Ok();
}

// --since: kInvalid names the flag.
compd::Status SinceMs(const std::string& text, int64_t* out) {
  *out = 0;
  if (text.empty()) return compd::Status::Ok();
  std::chrono::milliseconds age;
  if (!compd::ParseAge(text, &age)) {
    return compd::Status::Invalid("--since: '" + text +
                                  "' is not an age such as 90s, 30m, 24h, 7d, 2w");
  }
  *out = NowMs() - age.count();
  return compd::Status::Ok();
}

// The account records with a hit since `since_text` (a duration back from now, or a
// time; `*since` gets it in unix ms), with their evidence when asked: what list and
// report start from.
compd::Status ListRecords(Context& ctx, const std::string& since_text, bool with_evidence,
                          std::vector<compd::AccountRecord>* records, int64_t* since) {
  compd::Status s = SinceMs(since_text, since);
  if (!s.ok()) return s;
  std::unique_ptr<compd::AccountRegistry> reg;
  s = OpenRegistry(ctx, &reg);
  if (!s.ok()) return s;
  compd::AccountListOptions lo;
  lo.since_ms = *since;
  lo.with_evidence = with_evidence;
  return reg->List(lo, records);
}

int RunList(const AccountsOptions& o, Context& ctx) {
  std::vector<compd::AccountRecord> records;
  int64_t since = 0;
  compd::Status s = ListRecords(ctx, o.since, /*with_evidence=*/false, &records, &since);
  if (!s.ok()) return Fail(s);
  const int64_t now = NowMs();
  std::vector<const compd::AccountRecord*> shown;
  for (const auto& r : records) {
    if (!o.state.empty() && r.EffectiveState(now) != o.state) continue;
    shown.push_back(&r);
  }
  if (ctx.globals.json) {
    Json j = {{"accounts", Json::array()}};
    for (const auto* r : shown) j["accounts"].push_back(RecordJson(*r, now));
    PrintJson(Dump(j));
    return kExitOk;
  }
  if (shown.empty()) {
    std::cerr << (records.empty() ? "no accounts in the registry" : "no account matches")
              << (o.since.empty() ? "" : " (active in the last " + o.since + ")") << "\n";
    return kExitOk;
  }
  compd::TextTable table;
  table.AddRow({"ACCOUNT", "STATE", "HITS", "FIRST HIT", "LAST HIT", "CHANGED", "BY", "REASON"});
  for (const auto* r : shown) {
    table.AddRow({OneLine(r->account), StateText(*r, now), std::to_string(r->hits),
                  When(r->first_seen), When(r->last_seen), When(r->state_at),
                  r->state_by.empty() ? "-" : OneLine(r->state_by), OneLine(r->state_reason)});
  }
  std::cout << table.Render();
  return kExitOk;
}

// One timeline line: (time, what, detail).
struct Line {
  std::string time, what, detail;
};

Line HitLine(const std::string& json) {
  compd::Event e;
  if (!compd::Event::FromJson(json, &e).ok()) return {"", "hit", OneLine(json)};
  // A detection signal names no recipient: its signals, reaction and summary (the evidence
  // is in the flagged/locked line and in --json).
  const bool signal = e.type == "signal";
  std::string d = signal ? e.rule + " -> " + e.action : e.recipient;
  if (!signal && !e.where.empty() && e.where != "envelope") d += " (" + e.where + ")";
  if (!signal || !e.client_ip.empty()) {  // a re-evaluated signal has no client
    d += " from " + (e.client_ip.empty() ? std::string("?") : e.client_ip);
  }
  if (!e.host.empty()) d += " via " + e.host;
  if (!signal && !e.source.empty() && e.source != "milter") d += " (" + e.source + ")";
  if (!signal) d += ", " + e.action;
  if (!e.queue_id.empty()) d += ", queue id " + e.queue_id;
  if (!e.subject.empty()) d += ", subject \"" + e.subject + "\"";
  if (signal && !e.detail.empty()) d += ": " + e.detail;  // Reaction::Summary
  return {e.time, signal ? "signal" : "hit", OneLine(d)};
}

Line LogLine(const compd::AccountLogEntry& e) {
  std::string d = "by " + e.by;
  if (!e.text.empty()) d += ": " + e.text;
  if (e.what == "locked" && e.expires_ms != 0) d += " (until " + WhenMs(e.expires_ms) + ")";
  return {e.time, e.what, OneLine(d)};
}

int RunShow(const AccountsOptions& o, Context& ctx) {
  std::unique_ptr<compd::AccountRegistry> reg;
  compd::Status s = OpenRegistry(ctx, &reg);
  if (!s.ok()) return Fail(s);
  compd::AccountRecord r;
  s = reg->Get(o.account, &r);
  if (s.IsNotFound()) {
    PrintError(s.message());
    return kExitNegative;
  }
  if (!s.ok()) return Fail(s);
  const int64_t now = NowMs();
  std::vector<Line> lines;
  for (const auto& ev : r.timeline) lines.push_back(HitLine(ev));
  for (const auto& le : r.log) lines.push_back(LogLine(le));
  std::stable_sort(lines.begin(), lines.end(),
                   [](const Line& a, const Line& b) { return a.time > b.time; });
  if (ctx.globals.json) {
    Json j = RecordJson(r, now);
    j["recipients"] = CountsJson(r.recipients);
    j["client_ips"] = CountsJson(r.client_ips);
    Json events = Json::array();
    for (const auto& ev : r.timeline) {
      Json e = Json::parse(ev, nullptr, false);
      events.push_back(e.is_discarded() ? Json(ev) : e);
    }
    j["events"] = std::move(events);
    Json log = Json::array();
    for (const auto& le : r.log) log.push_back(Json::parse(le.ToJson()));
    j["log"] = std::move(log);
    PrintJson(Dump(j));
    return kExitOk;
  }
  compd::TextTable t;
  t.AddRow({"account", OneLine(r.account)});
  t.AddRow({"state", StateText(r, now)});
  if (!r.state_by.empty()) {
    t.AddRow({"changed", When(r.state_at) + " by " + OneLine(r.state_by) +
                             (r.state_reason.empty() ? "" : ": " + OneLine(r.state_reason))});
  }
  if (!r.flagged_at.empty()) t.AddRow({"flagged", When(r.flagged_at)});
  t.AddRow({"hits", std::to_string(r.hits)});
  t.AddRow({"first hit", When(r.first_seen)});
  t.AddRow({"last hit", When(r.last_seen)});
  t.AddRow({"recipients", Evidence(r.recipients, 20)});
  t.AddRow({"client IPs", Evidence(r.client_ips, 20)});
  for (const auto& [target, status] : r.tickets) {
    t.AddRow({"ticket " + target, OneLine(status)});
  }
  std::cout << t.Render();
  if (!lines.empty()) {
    std::cout << "\ntimeline (newest first):\n";
    compd::TextTable tl;
    for (const auto& l : lines) tl.AddRow({"  " + When(l.time), l.what, l.detail});
    std::cout << tl.Render();
  }
  return kExitOk;
}

int PrintChange(Context& ctx, const std::string& account, const std::string& state,
                const compd::AccountChange& change, const std::string& message) {
  if (ctx.globals.json) {
    PrintJson(Dump({{"account", compd::AccountKey(account)},
                    {"state", state},
                    {"previous_state", change.previous_state},
                    {"version", change.version}}));
  } else {
    std::cout << message << "\n";
  }
  return kExitOk;
}

int RunLock(const AccountsOptions& o, Context& ctx) {
  int64_t expires = 0;
  if (!o.lock_for.empty()) {
    std::chrono::milliseconds d;
    if (!compd::ParseAge(o.lock_for, &d)) {
      return Fail(compd::Status::Invalid("--for: '" + o.lock_for +
                                         "' is not a duration such as 30m, 24h, 7d"));
    }
    expires = NowMs() + d.count();
  }
  compd::Status s = compd::CheckAccountName(o.account);
  if (!s.ok()) return Fail(s);
  std::unique_ptr<compd::AccountRegistry> reg;
  s = OpenRegistry(ctx, &reg);
  if (!s.ok()) return Fail(s);
  compd::AccountChange change;
  s = reg->Lock(o.account, Context::Operator(), o.reason, expires, &change);
  if (!s.ok()) return Fail(s);
  std::string msg = "locked " + compd::AccountKey(o.account) +
                    (expires ? " until " + WhenMs(expires) : std::string(" until released")) +
                    (change.previous_state == "locked" ? " (was locked already)" : "") +
                    "; every node refuses its MAIL FROM within a second";
  return PrintChange(ctx, o.account, "locked", change, msg);
}

int RunRelease(const AccountsOptions& o, Context& ctx) {
  compd::Status s = compd::CheckAccountName(o.account);
  if (!s.ok()) return Fail(s);
  std::unique_ptr<compd::AccountRegistry> reg;
  s = OpenRegistry(ctx, &reg);
  if (!s.ok()) return Fail(s);
  compd::AccountChange change;
  s = reg->Release(o.account, Context::Operator(), o.reason, &change);
  if (s.IsNotFound()) {
    PrintError(s.message());
    return kExitNegative;
  }
  if (!s.ok()) return Fail(s);
  std::string msg =
      "released " + compd::AccountKey(o.account) + " (was " +
      (change.previous_state.empty() ? std::string("flagged") : change.previous_state) +
      "); a new hit flags it again";
  return PrintChange(ctx, o.account, "released", change, msg);
}

int RunNote(const AccountsOptions& o, Context& ctx) {
  compd::Status s = compd::CheckAccountName(o.account);
  if (!s.ok()) return Fail(s);
  if (o.text.empty()) return Fail(compd::Status::Invalid("the note is empty"));
  std::unique_ptr<compd::AccountRegistry> reg;
  s = OpenRegistry(ctx, &reg);
  if (!s.ok()) return Fail(s);
  s = reg->Note(o.account, Context::Operator(), o.text);
  if (s.IsNotFound()) {
    PrintError(s.message());
    return kExitNegative;
  }
  if (!s.ok()) return Fail(s);
  if (ctx.globals.json) {
    PrintJson(Dump({{"account", compd::AccountKey(o.account)}, {"note", o.text}}));
  } else {
    std::cout << "noted on " << compd::AccountKey(o.account) << "\n";
  }
  return kExitOk;
}

int RunReport(const AccountsOptions& o, Context& ctx) {
  std::vector<compd::AccountRecord> records;
  int64_t since = 0;
  compd::Status s =
      ListRecords(ctx, o.since.empty() ? "24h" : o.since, /*with_evidence=*/true, &records, &since);
  if (!s.ok()) return Fail(s);
  const int64_t now = NowMs();
  // To contact: flagged or locked (not released), with a hit in the window.
  std::vector<const compd::AccountRecord*> due;
  for (const auto& r : records) {
    std::string state = r.EffectiveState(now);
    int64_t last = 0;
    if (state != "flagged" && state != "locked") continue;
    if (r.last_seen.empty() || !compd::ParseUtcMillis(r.last_seen, &last) || last < since) {
      continue;
    }
    due.push_back(&r);
  }
  std::sort(due.begin(), due.end(), [](const auto* a, const auto* b) {
    return a->last_seen != b->last_seen ? a->last_seen > b->last_seen : a->account < b->account;
  });
  if (ctx.globals.json) {
    Json j = {{"since", compd::FormatUtcMillis(std::chrono::system_clock::time_point(
                            std::chrono::milliseconds(since)))},
              {"accounts", Json::array()}};
    for (const auto* r : due) {
      Json a = RecordJson(*r, now);
      a["recipients"] = CountsJson(r->recipients);
      a["client_ips"] = CountsJson(r->client_ips);
      j["accounts"].push_back(std::move(a));
    }
    PrintJson(Dump(j));
    return kExitOk;
  }
  if (due.empty()) {
    std::cerr << "no account to contact: none flagged or locked with a hit since " << WhenMs(since)
              << "\n";
    return kExitOk;
  }
  compd::TextTable table;
  table.AddRow({"ACCOUNT", "STATE", "HITS", "RECIPIENTS", "CLIENT IPS", "FIRST HIT", "LAST HIT"});
  for (const auto* r : due) {
    table.AddRow({OneLine(r->account), StateText(*r, now), std::to_string(r->hits),
                  Evidence(r->recipients, 5), Evidence(r->client_ips, 5), When(r->first_seen),
                  When(r->last_seen)});
  }
  std::cout << table.Render();
  return kExitOk;
}

void Examples(CLI::App* sub, const std::string& text) {
  sub->footer(text +
              "Global options (--redis, --prefix, --config, --json, ...) may come before or "
              "after the command; see mapctl --help.");
}

// A subcommand about one account that must have a record (show, release, note): the
// account argument, and the exit status when there is no record, after `examples`.
CLI::App* RecordCommand(CLI::App* cmd, const std::string& name, const std::string& description,
                        std::string* account, const std::string& examples) {
  CLI::App* sub = cmd->add_subcommand(name, description);
  sub->add_option("account", *account, "SASL account")->required();
  Examples(sub, examples + "Exit status 1: no record for the account.\n");
  return sub;
}

}  // namespace

RunFn SetupAccounts(CLI::App* cmd) {
  auto o = std::make_shared<AccountsOptions>();
  cmd->require_subcommand(1);
  cmd->fallthrough();

  CLI::App* list = cmd->add_subcommand("list", "Accounts in the registry, latest activity first");
  list->add_option("--state", o->state,
                   "Only accounts in this state (a lock past its expiry "
                   "counts as flagged)")
      ->check(CLI::IsMember({"flagged", "locked", "released"}));
  list->add_option("--since", o->since,
                   "Only accounts with a hit or change in this period "
                   "(e.g. 24h, 7d)");
  Examples(list,
           "Examples:\n"
           "  mapctl accounts list\n"
           "  mapctl accounts list --state locked --since 7d\n"
           "  mapctl accounts list --json\n");

  CLI::App* show = RecordCommand(cmd, "show", "One account's record and timeline", &o->account,
                                 "Examples:\n"
                                 "  mapctl accounts show alice@customer.example\n"
                                 "  mapctl accounts show alice@customer.example --json\n");

  CLI::App* lock = cmd->add_subcommand(
      "lock", "Lock an account: every node refuses its MAIL FROM within a second");
  lock->add_option("account", o->account, "SASL account (need not have a record)")->required();
  lock->add_option("--reason", o->reason, "Why, for the record (e.g. a ticket number)");
  lock->add_option("--for", o->lock_for,
                   "Expire the lock after this long (e.g. 7d); default: "
                   "until released");
  Examples(lock,
           "Examples:\n"
           "  mapctl accounts lock alice@customer.example --reason 'ticket 4711'\n"
           "  mapctl accounts lock bob@customer.example --for 24h\n");

  CLI::App* release = RecordCommand(
      cmd, "release", "Release an account (unlock it; it stays in the registry)", &o->account,
      "Examples:\n"
      "  mapctl accounts release alice@customer.example --reason 'password reset'\n"
      "A new hit after the release flags (and with lock_on_hit locks) it again.\n");
  release->add_option("--reason", o->reason, "Why, for the record (e.g. 'password reset')");

  CLI::App* note = RecordCommand(
      cmd, "note", "Add a note to an account's record", &o->account,
      "Examples:\n"
      "  mapctl accounts note alice@customer.example 'called customer, ticket 4711'\n");
  note->add_option("text", o->text, "The note")->required();

  CLI::App* report = cmd->add_subcommand(
      "report", "Accounts to contact: flagged or locked, with a hit in the period, with evidence");
  report->add_option("--since", o->since, "Period (default 24h)");
  Examples(report,
           "Examples:\n"
           "  mapctl accounts report                   (hits in the last 24 hours)\n"
           "  mapctl accounts report --since 72h --json\n"
           "Each line: account, state, hits, recipients hit and client IPs (with counts),\n"
           "first and last hit.\n");

  for (CLI::App* sub : {list, show, lock, release, note, report}) sub->fallthrough();

  return [o, list, show, lock, release, note, report](Context& ctx) {
    if (list->parsed()) return RunList(*o, ctx);
    if (show->parsed()) return RunShow(*o, ctx);
    if (lock->parsed()) return RunLock(*o, ctx);
    if (release->parsed()) return RunRelease(*o, ctx);
    if (note->parsed()) return RunNote(*o, ctx);
    if (report->parsed()) return RunReport(*o, ctx);
    return kExitError;
  };
}

}  // namespace mapctl
