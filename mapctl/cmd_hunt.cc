// mapctl hunt: which accounts mailed an address (or any address a /regex/ matches),
// read-only. Without log files it asks the live compd-milter nodes, each from its own
// recipient memory (retro_window; core/detect/retro_hunt.h has the protocol); with log
// files it reads the MTA's logs instead.
#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "app.h"
#include "compd/accounts/accounts.h"
#include "compd/base/text.h"
#include "compd/base/text_output.h"
#include "compd/base/utc_time.h"
#include "compd/detect/retro_hunt.h"
#include "compd/map/address.h"
#include "compd/map/entry.h"
#include "compd/map/envelope_address.h"
#include "compd/map/matcher.h"
#include "replay_input.h"

namespace mapctl {

namespace {

struct HuntOptions {
  std::string what;
  LogInputOptions input;
  std::string wait = "5s";
};

std::string Iso(int64_t ms) {
  return compd::FormatUtcMillis(
      std::chrono::system_clock::time_point(std::chrono::milliseconds(ms)));
}

// What both sources found: one row per (message, recipient).
struct Found {
  nlohmann::json rows = nlohmann::json::array();
  std::map<std::string, int> per_account;
  void Add(nlohmann::json row) {
    ++per_account[compd::AccountKey(row.value("account", ""))];
    rows.push_back(std::move(row));
  }
  std::string Table() const {
    compd::TextTable table;
    table.AddRow({"TIME", "ACCOUNT", "RECIPIENT", "NODE", "CLIENT IP", "QUEUE ID"});
    auto dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
    for (const nlohmann::json& r : rows) {
      table.AddRow({r.value("time", ""), r.value("account", ""), r.value("recipient", ""),
                    dash(r.value("node", "")), dash(r.value("client_ip", "")),
                    dash(r.value("queue_id", ""))});
    }
    return table.Render();
  }
  std::string Summary(const std::string& entry) const {
    return compd::CountOf(rows.size(), "message", "messages") + " from " +
           compd::CountOf(per_account.size(), "account", "accounts") + " to " + entry;
  }
};

int HuntLogs(const HuntOptions& o, const compd::Entry& entry, Context& ctx) {
  std::shared_ptr<const compd::Matcher> matcher;
  compd::Matcher::Options mo;
  mo.canon.strip_subaddress = ctx.config().GetBool("canon_strip_subaddress");
  mo.canon.gmail_dots = ctx.config().GetBool("canon_gmail_dots");
  compd::Status s = compd::Matcher::Build({entry}, mo, &matcher);
  if (!s.ok()) return Fail(s);
  std::unique_ptr<compd::LogReader> reader;
  s = OpenLogs(o.input, &reader);
  if (!s.ok()) return Fail(s);
  Found found;
  compd::Message m;
  while (reader->Next(&m)) {
    if (m.account.empty()) continue;
    for (const std::string& raw : m.recipients) {
      std::string address;
      if (!compd::EnvelopeAddress(raw, &address).ok() || !matcher->Lookup(address)) continue;
      found.Add({{"time", Iso(m.time_ms)},
                 {"account", m.account},
                 {"recipient", address},
                 {"node", m.node},
                 {"client_ip", m.client_ip},
                 {"queue_id", m.queue_id},
                 {"origin", m.origin}});
    }
  }
  if (!reader->status().ok()) return Fail(reader->status());
  if (ctx.globals.json) {
    PrintJson(nlohmann::json(
                  {{"entry", entry.text}, {"accounts", found.per_account}, {"found", found.rows}})
                  .dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (found.rows.empty()) {
    std::cout << "no account mailed " << entry.text << " in these logs\n";
  } else {
    std::cout << found.Table() << found.Summary(entry.text) << "\n";
  }
  return found.rows.empty() ? kExitNegative : kExitOk;
}

int HuntNodes(const HuntOptions& o, const compd::Entry& entry, int64_t since_ms, int64_t until_ms,
              Context& ctx) {
  std::chrono::milliseconds wait;
  if (!compd::ParseAge(o.wait, &wait) || wait.count() <= 0) {
    return Fail(compd::Status::Invalid("--wait: '" + o.wait + "' is not a duration (5s)"));
  }
  compd::MapStore* store = nullptr;
  compd::Status s = ctx.OpenStore(&store);
  if (!s.ok()) return Fail(s);
  compd::HuntRequest req;
  req.id = compd::RandomHex();
  req.entry = entry.text;
  req.since_ms = since_ms;
  req.at_ms = compd::UnixMs(std::chrono::system_clock::now());
  std::vector<nlohmann::json> answers;
  long long listening = 0;
  s = compd::AskNodes(ctx.redis(), compd::Keys(ctx.config().GetString("prefix")), req, wait,
                      &answers, &listening);
  if (!s.ok()) return Fail(s);
  if (listening == 0) {
    PrintError("no compd-milter node listens on " + ctx.RedisDescription() +
               " (retro_hunt off, or none running): nothing to ask; give log files instead");
    return kExitError;
  }
  Found found;
  nlohmann::json nodes = nlohmann::json::array();
  std::vector<std::string> names;
  bool truncated = false;
  for (nlohmann::json& a : answers) {
    const std::string node = a.value("node", "?");
    names.push_back(node);
    if (a.contains("error")) PrintError(node + ": " + a.value("error", ""));
    truncated = truncated || a.value("truncated", false);
    nlohmann::json rows = a.value("found", nlohmann::json::array());
    for (nlohmann::json& r : rows) {
      int64_t t = 0;
      if (until_ms > 0 && compd::ParseUtcMillis(r.value("time", ""), &t) && t >= until_ms) {
        continue;
      }
      found.Add(std::move(r));
    }
    a.erase("found");
    nodes.push_back(std::move(a));
  }
  std::stable_sort(found.rows.begin(), found.rows.end(),
                   [](const nlohmann::json& x, const nlohmann::json& y) {
                     return x.value("time", "") < y.value("time", "");
                   });
  const bool all = static_cast<long long>(answers.size()) >= listening;
  if (ctx.globals.json) {
    PrintJson(nlohmann::json({{"entry", entry.text},
                              {"accounts", found.per_account},
                              {"found", found.rows},
                              {"nodes", nodes},
                              {"listening", listening},
                              {"answered", answers.size()},
                              {"truncated", truncated}})
                  .dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    if (found.rows.empty()) {
      std::cout << "no account mailed " << entry.text << " in what the nodes remember\n";
    } else {
      std::cout << found.Table() << found.Summary(entry.text) << "\n";
    }
    std::string who;
    for (const nlohmann::json& n : nodes) {
      const nlohmann::json mem = n.value("memory", nlohmann::json::object());
      who +=
          "\n  " + n.value("node", "?") + ": " + std::to_string(mem.value("messages", 0)) +
          " messages remembered" +
          (mem.value("oldest", "").empty() ? std::string() : " since " + mem.value("oldest", "")) +
          " (retro_window " + mem.value("window", "?") + ")" +
          (n.value("loaded", true) ? "" : ", still loading its files");
    }
    std::cout << "answered: " << answers.size() << " of " << listening << " node(s)" << who << "\n";
    if (truncated) std::cout << "(a node sent only its first " << compd::kHuntMaxFinds << ")\n";
  }
  if (!all) {
    PrintError(std::to_string(listening - static_cast<long long>(answers.size())) + " of " +
               std::to_string(listening) + " node(s) did not answer within " + o.wait +
               ": their mail is missing above");
  }
  if (!found.rows.empty()) return kExitOk;
  return all ? kExitNegative : kExitError;
}

int RunHunt(HuntOptions o, Context& ctx) {
  compd::Status s = ctx.LoadConfig();
  if (!s.ok()) return Fail(s);
  compd::Entry entry;
  s = compd::ParseEntry(o.what, &entry);
  if (!s.ok()) return Fail(compd::Status::Invalid(o.what + ": " + s.message()));
  int64_t since_ms = 0, until_ms = 0;
  std::chrono::milliseconds age{0};
  if (!o.input.since.empty()) {
    if (compd::ParseAge(o.input.since, &age)) {
      since_ms = compd::UnixMs(std::chrono::system_clock::now()) - age.count();
      o.input.since = Iso(since_ms);
    } else if (!ParseTimeFlag(o.input.since, &since_ms)) {
      return Fail(compd::Status::Invalid("--since: '" + o.input.since +
                                         "' is neither an age (7d) nor a time (2026-11-01)"));
    }
  }
  if (!o.input.until.empty() && !ParseTimeFlag(o.input.until, &until_ms)) {
    return Fail(compd::Status::Invalid("--until: '" + o.input.until + "' is not a time"));
  }
  if (o.input.files.empty()) return HuntNodes(o, entry, since_ms, until_ms, ctx);
  return HuntLogs(o, entry, ctx);
}

}  // namespace

RunFn SetupHunt(CLI::App* cmd) {
  auto o = std::make_shared<HuntOptions>();
  cmd->add_option("entry", o->what, "An address or a /regex/flags pattern")->required();
  AddLogInputOptions(cmd, &o->input);
  // Without files the live nodes answer from their memory.
  cmd->get_option("files")->required(false)->description(
      "MTA log files (plain or .gz); without them, the compd-milter nodes answer from what "
      "they remember (retro_window)");
  cmd->add_option("--wait", o->wait, "How long to wait for the nodes' answers [default: 5s]");
  return [o](Context& ctx) { return RunHunt(*o, ctx); };
}

}  // namespace mapctl
