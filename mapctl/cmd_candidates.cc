// mapctl candidates: review what discovery proposed (discovery = propose). list shows the
// waiting recipients with their evidence; accept adds one to the map (source=discovered,
// the evidence in its note) and records a hit for each account behind it; reject
// remembers the refusal so it is never proposed again.
#include <unistd.h>

#include <climits>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app.h"
#include "compd/accounts/accounts.h"
#include "compd/accounts/recorder.h"
#include "compd/base/text_output.h"
#include "compd/detect/candidate_store.h"
#include "compd/map/address.h"
#include "compd/map/envelope_address.h"
#include "compd/map/map_edit.h"

namespace mapctl {

namespace {

struct CandidatesOptions {
  std::string address;
};

compd::Status OpenCandidates(Context& ctx, std::unique_ptr<compd::CandidateStore>* out,
                             compd::MapStore** store) {
  compd::Status s = ctx.OpenStore(store);
  if (!s.ok()) return s;
  *out = std::make_unique<compd::CandidateStore>(ctx.redis(), ctx.config().GetString("prefix"));
  return compd::Status::Ok();
}

std::string Accounts(const nlohmann::json& c) {
  std::string out;
  for (const nlohmann::json& s : c.value("sightings", nlohmann::json::array())) {
    if (!out.empty()) out += ", ";
    out += s.value("account", "?") + " (" + s.value("time", "") + ", " + s.value("client_ip", "-") +
           ", helo " + s.value("helo", "-") + ")";
  }
  return out;
}

int RunList(Context& ctx) {
  std::unique_ptr<compd::CandidateStore> cands;
  compd::MapStore* store = nullptr;
  compd::Status s = OpenCandidates(ctx, &cands, &store);
  if (!s.ok()) return Fail(s);
  std::vector<nlohmann::json> list;
  s = cands->List(&list);
  if (!s.ok()) return Fail(s);
  if (ctx.globals.json) {
    PrintJson(nlohmann::json(list).dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return kExitOk;
  }
  if (list.empty()) {
    std::cout << "no candidates waiting\n";
    return kExitOk;
  }
  compd::TextTable table;
  table.AddRow({"RECIPIENT", "SINCE", "DOMAINS", "ACCOUNTS"});
  for (const nlohmann::json& c : list) {
    table.AddRow({c.value("recipient", ""), c.value("time", ""),
                  std::to_string(c.value("domains", 0)), Accounts(c)});
  }
  std::cout << table.Render() << compd::CountOf(list.size(), "candidate", "candidates")
            << " waiting; mapctl candidates accept|reject ADDRESS\n";
  return kExitOk;
}

std::string HostName() {
  char name[HOST_NAME_MAX + 1] = {0};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "mapctl";
  return name;
}

// The accounts behind an accepted candidate get the hit reaction, through the Recorder
// (stream, account registry and ticket hooks in one script, once per event id; the alert
// log is the milters' file, which mapctl leaves alone).
compd::Status RecordHits(Context& ctx, const nlohmann::json& evidence, size_t* written) {
  compd::RecorderOptions ro;
  ro.redis = ctx.redis()->url();
  ro.prefix = ctx.config().GetString("prefix");
  ro.redis_timeout = std::chrono::milliseconds(ctx.config().GetDurationMs("redis_timeout"));
  compd::Status s = compd::AccountReaction::FromConfig(ctx.config(), &ro.accounts);
  if (!s.ok()) return s;
  std::string problems;
  compd::Recorder recorder(ro, [&problems](compd::LogLevel level, const std::string& m) {
    if (level >= compd::LogLevel::kWarning) problems += (problems.empty() ? "" : "; ") + m;
  });
  s = recorder.Start();
  if (!s.ok()) return s;
  std::vector<compd::Event> events = compd::DiscoveredHitEvents(evidence, HostName());
  for (compd::Event& e : events) recorder.Submit(std::move(e));
  recorder.Stop();
  compd::RecorderStats st = recorder.stats();
  *written = st.written;
  if (st.dropped > 0 || st.rejected > 0) {
    return compd::Status::Unavailable("the accounts' hits were not recorded: " + problems);
  }
  return compd::Status::Ok();
}

int RunAccept(const CandidatesOptions& o, Context& ctx) {
  std::unique_ptr<compd::CandidateStore> cands;
  compd::MapStore* store = nullptr;
  compd::Status s = OpenCandidates(ctx, &cands, &store);
  if (!s.ok()) return Fail(s);
  nlohmann::json evidence;
  s = cands->Get(o.address, &evidence);
  if (s.code() == compd::Status::Code::kNotFound) {
    PrintError(s.message() + " (mapctl candidates list)");
    return kExitNegative;
  }
  if (!s.ok()) return Fail(s);
  compd::Entry entry;
  s = compd::ParseEntry(evidence.value("recipient", ""), &entry);
  if (!s.ok()) return Fail(s);
  const std::string by = Context::Operator();
  compd::StoredEntry stored{
      entry,
      {static_cast<int64_t>(time(nullptr)), by,
       evidence.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "discovered"}};
  std::vector<bool> added;
  compd::ChangeResult result;
  s = store->Add({stored}, by, &added, &result);
  if (!s.ok()) return Fail(s);
  s = cands->Remove(entry.text);
  if (!s.ok()) return Fail(s);
  size_t written = 0;
  s = RecordHits(ctx, evidence, &written);
  if (!s.ok()) return Fail(s);
  if (ctx.globals.json) {
    PrintJson(nlohmann::json({{"accepted", entry.text},
                              {"version", result.version},
                              {"added", static_cast<bool>(added[0])},
                              {"hits_recorded", written}})
                  .dump(2));
  } else {
    std::cout << (added[0] ? "added " : "already in the map: ") << entry.text
              << " (source=discovered), map version " << result.version << "; "
              << compd::CountOf(written, "account hit", "account hits") << " recorded\n";
  }
  return kExitOk;
}

int RunReject(const CandidatesOptions& o, Context& ctx) {
  std::unique_ptr<compd::CandidateStore> cands;
  compd::MapStore* store = nullptr;
  compd::Status s = OpenCandidates(ctx, &cands, &store);
  if (!s.ok()) return Fail(s);
  std::string address;
  s = compd::EnvelopeAddress(o.address, &address);
  if (!s.ok() || address.find('@') == std::string::npos) {
    return Fail(compd::Status::Invalid("not an address: '" + o.address + "'"));
  }
  bool waited = false;
  s = cands->Reject(address, Context::Operator(), static_cast<int64_t>(time(nullptr)), &waited);
  if (!s.ok()) return Fail(s);
  if (ctx.globals.json) {
    PrintJson(
        nlohmann::json({{"rejected", compd::CanonicalAddress(address)}, {"was_waiting", waited}})
            .dump(2));
  } else {
    std::cout << "rejected " << compd::CanonicalAddress(address)
              << (waited ? "" : " (it was not waiting; remembered anyway)")
              << ": discovery will never propose it again\n";
  }
  return kExitOk;
}

}  // namespace

RunFn SetupCandidates(CLI::App* cmd) {
  auto o = std::make_shared<CandidatesOptions>();
  auto which = std::make_shared<std::string>("list");
  cmd->require_subcommand(0, 1);
  CLI::App* list = cmd->add_subcommand("list", "Waiting candidates with their evidence");
  CLI::App* accept =
      cmd->add_subcommand("accept", "Add a candidate to the map and flag the accounts behind it");
  accept->add_option("address", o->address, "The candidate's recipient")->required();
  CLI::App* reject = cmd->add_subcommand("reject", "Never propose this recipient again");
  reject->add_option("address", o->address, "The recipient")->required();
  list->callback([which] { *which = "list"; });
  accept->callback([which] { *which = "accept"; });
  reject->callback([which] { *which = "reject"; });
  return [o, which](Context& ctx) {
    if (*which == "accept") return RunAccept(*o, ctx);
    if (*which == "reject") return RunReject(*o, ctx);
    return RunList(ctx);
  };
}

}  // namespace mapctl
