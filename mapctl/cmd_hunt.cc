// mapctl hunt: which accounts mailed an address (or any address a /regex/ matches), from the
// MTA's logs, read-only. The retro-hunt's on-demand question, answered from what the MTA
// already wrote until the recipient memory exists.
#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "app.h"
#include "compd/accounts/accounts.h"
#include "compd/base/text_output.h"
#include "compd/base/utc_time.h"
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
};

std::string Iso(int64_t ms) {
  return compd::FormatUtcMillis(
      std::chrono::system_clock::time_point(std::chrono::milliseconds(ms)));
}

int RunHunt(HuntOptions o, Context& ctx) {
  compd::Status s = ctx.LoadConfig();
  if (!s.ok()) return Fail(s);
  compd::Entry entry;
  s = compd::ParseEntry(o.what, &entry);
  if (!s.ok()) return Fail(compd::Status::Invalid(o.what + ": " + s.message()));
  std::chrono::milliseconds age{0};
  if (!o.input.since.empty() && compd::ParseAge(o.input.since, &age)) {
    o.input.since = Iso(compd::UnixMs(std::chrono::system_clock::now()) - age.count());
  }
  std::shared_ptr<const compd::Matcher> matcher;
  compd::Matcher::Options mo;
  mo.canon.strip_subaddress = ctx.config().GetBool("canon_strip_subaddress");
  mo.canon.gmail_dots = ctx.config().GetBool("canon_gmail_dots");
  s = compd::Matcher::Build({entry}, mo, &matcher);
  if (!s.ok()) return Fail(s);
  std::unique_ptr<compd::LogReader> reader;
  s = OpenLogs(o.input, &reader);
  if (!s.ok()) return Fail(s);

  nlohmann::json found = nlohmann::json::array();
  std::map<std::string, int> per_account;
  compd::TextTable table;
  table.AddRow({"TIME", "ACCOUNT", "RECIPIENT", "NODE", "CLIENT IP", "QUEUE ID"});
  compd::Message m;
  while (reader->Next(&m)) {
    if (m.account.empty()) continue;
    for (const std::string& raw : m.recipients) {
      std::string address;
      if (!compd::EnvelopeAddress(raw, &address).ok() || !matcher->Lookup(address)) continue;
      ++per_account[compd::AccountKey(m.account)];
      found.push_back({{"time", Iso(m.time_ms)},
                       {"account", m.account},
                       {"recipient", address},
                       {"node", m.node},
                       {"client_ip", m.client_ip},
                       {"queue_id", m.queue_id},
                       {"origin", m.origin}});
      table.AddRow({Iso(m.time_ms), m.account, address, m.node.empty() ? "-" : m.node,
                    m.client_ip.empty() ? "-" : m.client_ip, m.queue_id});
    }
  }
  if (!reader->status().ok()) return Fail(reader->status());
  if (ctx.globals.json) {
    PrintJson(nlohmann::json({{"entry", entry.text}, {"accounts", per_account}, {"found", found}})
                  .dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (found.empty()) {
    std::cout << "no account mailed " << entry.text << " in these logs\n";
  } else {
    std::cout << table.Render() << compd::CountOf(found.size(), "message", "messages") << " from "
              << compd::CountOf(per_account.size(), "account", "accounts") << " to " << entry.text
              << "\n";
  }
  return found.empty() ? kExitNegative : kExitOk;
}

}  // namespace

RunFn SetupHunt(CLI::App* cmd) {
  auto o = std::make_shared<HuntOptions>();
  cmd->add_option("entry", o->what, "An address or a /regex/flags pattern")->required();
  AddLogInputOptions(cmd, &o->input);
  return [o](Context& ctx) { return RunHunt(*o, ctx); };
}

}  // namespace mapctl
