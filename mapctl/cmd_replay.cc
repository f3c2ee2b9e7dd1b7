// mapctl replay: what the detection engine would have done on an MTA's logs. The same
// Engine as compd-milter, with the logs' clock and its own in-memory state; the map comes
// from Redis or --map. Nothing live is changed.
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "app.h"
#include "compd/base/text_output.h"
#include "compd/base/utc_time.h"
#include "compd/detect/candidate_store.h"
#include "compd/detect/discovery.h"
#include "compd/detect/engine.h"
#include "compd/logs/log_reader.h"
#include "compd/map/address.h"
#include "compd/map/envelope_address.h"
#include "compd/map/matcher.h"
#include "replay_input.h"

namespace mapctl {

namespace {

struct ReplayOptions {
  LogInputOptions input;
  std::string map_file;
  bool no_map = false;
  std::string candidates_file;  // discovery's candidates, JSON lines
  bool propose = false;         // store them in Redis for mapctl candidates
};

// The map replay checks recipients against: --map FILE, else Redis' map.
compd::Status LoadMatcher(const ReplayOptions& o, Context& ctx,
                          std::shared_ptr<const compd::Matcher>* out, std::string* source) {
  std::vector<compd::Entry> entries;
  if (!o.map_file.empty()) {
    compd::ImportFile file;
    std::string why;
    compd::Status s = ReadMapFileAs(o.map_file, "", &file, &why);
    if (!s.ok()) return s;
    for (const compd::MapLine& line : file.read.lines) {
      if (line.converted) entries.push_back(line.entry);
    }
    *source = o.map_file + " (" + std::to_string(entries.size()) + " entries)";
  } else if (!o.no_map) {
    compd::MapStore* store = nullptr;
    uint64_t version = 0;
    compd::Status s = ctx.LoadEntries(&store, &entries, &version);
    if (!s.ok()) return s;
    *source = "Redis map version " + std::to_string(version) + " (" +
              std::to_string(entries.size()) + " entries)";
  } else {
    *source = "none (--no-map: no hit signal)";
  }
  compd::Matcher::Options options;
  options.canon.strip_subaddress = ctx.config().GetBool("canon_strip_subaddress");
  options.canon.gmail_dots = ctx.config().GetBool("canon_gmail_dots");
  return compd::Matcher::Build(entries, options, out);
}

std::string Short(const compd::Reaction& r) {
  std::string out;
  for (const compd::Signal& s : r.signals) {
    if (!out.empty()) out += "; ";
    const nlohmann::json& e = s.evidence;
    switch (s.id) {
      case compd::SignalId::kHit:
        out += "hit " + e["hits"][0].value("recipient", "");
        break;
      case compd::SignalId::kTestMessage:
        out += "test to " + e.value("recipient", "") + " (" + std::to_string(e.value("points", 0)) +
               " points)";
        break;
      case compd::SignalId::kNewNetworks:
        out += std::to_string(e.value("count", 0)) + " new networks";
        break;
      case compd::SignalId::kDisplaySpoof:
        out += e.value("header", "") + " shows " + e.value("display", "");
        break;
      default:
        out += std::string(compd::SignalName(s.id)) + " " +
               std::to_string(e.value("value", int64_t{0})) + " > " +
               std::to_string(static_cast<int64_t>(e.value("threshold", 0.0)));
    }
  }
  return out;
}

// Under discovery = add, mail to a recipient discovered earlier in the logs is a hit, as
// the map entry would have made it.
void AddDiscoveredHit(const compd::Message& m, const std::unordered_set<std::string>& discovered,
                      const compd::ReactionTable& table, std::vector<compd::Reaction>* rs) {
  nlohmann::json hits = nlohmann::json::array();
  for (const std::string& raw : m.recipients) {
    std::string address;
    if (!compd::EnvelopeAddress(raw, &address).ok()) continue;
    const std::string c = compd::CanonicalAddress(address);
    if (discovered.count(c))
      hits.push_back({{"recipient", c}, {"entry", c}, {"source", "discovered"}});
  }
  if (hits.empty()) return;
  for (compd::Reaction& r : *rs) {
    for (const compd::Signal& sig : r.signals) {
      if (sig.id == compd::SignalId::kHit) return;  // the map already hit
    }
  }
  compd::Reaction r;
  r.time_ms = m.time_ms;
  r.account = m.account;
  r.kind = table[compd::SignalId::kHit];
  r.queue_id = m.queue_id;
  r.node = m.node;
  r.client_ip = m.client_ip;
  r.origin = m.origin;
  compd::Signal sig;
  sig.id = compd::SignalId::kHit;
  sig.evidence["hits"] = std::move(hits);
  r.signals.push_back(std::move(sig));
  r.event_key = r.queue_id.empty() ? std::to_string(r.time_ms) : r.queue_id;
  rs->push_back(std::move(r));
}

int RunReplay(const ReplayOptions& o, Context& ctx) {
  compd::Status s = ctx.LoadConfig();
  if (!s.ok()) return Fail(s);
  compd::EngineOptions eo;
  s = compd::EngineOptions::FromConfig(ctx.config(), &eo);
  if (!s.ok()) return Fail(s);
  eo.count_volume = true;  // no cluster-wide counters here: the engine counts itself
  std::unique_ptr<compd::LogReader> reader;
  s = OpenLogs(o.input, &reader);
  if (!s.ok()) return Fail(s);
  std::shared_ptr<const compd::Matcher> matcher;
  std::string map_source;
  s = LoadMatcher(o, ctx, &matcher, &map_source);
  if (!s.ok()) return Fail(s);

  compd::DiscoveryOptions dopt;
  s = compd::DiscoveryOptions::FromConfig(ctx.config(), eo, &dopt);
  if (!s.ok()) return Fail(s);
  std::ofstream candidates_out;
  if (!o.candidates_file.empty()) {
    candidates_out.open(o.candidates_file, std::ios::trunc);
    if (!candidates_out) return Fail(compd::Status::IoError(o.candidates_file + ": cannot write"));
  }

  std::unique_ptr<compd::CandidateStore> store;
  if (o.propose) {
    compd::MapStore* map_store = nullptr;
    s = ctx.OpenStore(&map_store);
    if (!s.ok()) return Fail(s);
    store = std::make_unique<compd::CandidateStore>(ctx.redis(), ctx.config().GetString("prefix"));
  }
  uint64_t proposed = 0;

  auto state = std::make_shared<compd::MemoryDetectState>();
  compd::Engine engine(eo, state);
  // Discovery runs here as on every node; under discovery = add its recipients are hits
  // for later mail, as the map would make them.
  compd::Discovery discovery(dopt);
  std::unordered_set<std::string> discovered;
  uint64_t candidates = 0;
  auto is_local = [&state](const std::string& d) { return state->IsLocalDomain(d); };
  compd::Message m;
  uint64_t reactions = 0;
  std::map<std::string, uint64_t> by_signal, by_reaction;
  std::map<std::string, uint64_t> flagged;  // accounts with a reaction
  compd::TextTable table;
  table.AddRow({"TIME", "ACCOUNT", "REACTION", "SIGNALS", "EVIDENCE"});
  const auto start = std::chrono::steady_clock::now();
  std::string out;
  while (reader->Next(&m)) {
    std::vector<compd::Reaction> rs = engine.Observe(m, m.time_ms, matcher.get());
    if (dopt.mode == compd::DiscoveryMode::kAdd && !discovered.empty()) {
      AddDiscoveredHit(m, discovered, eo.reactions, &rs);
    }
    // A recipient the map already lists is no news.
    for (const compd::Reaction& r : rs) {
      for (const compd::Signal& sig : r.signals) {
        if (sig.id != compd::SignalId::kHit) continue;
        for (const nlohmann::json& h : sig.evidence["hits"]) {
          discovery.Suppress(h.value("recipient", ""));
        }
      }
    }
    for (compd::Candidate& c :
         discovery.Observe(m, m.time_ms, compd::HasTestSignal(rs), is_local)) {
      ++candidates;
      if (dopt.mode == compd::DiscoveryMode::kAdd) discovered.insert(c.recipient);
      if (store) {
        bool stored = false;
        s = store->Propose(c, &stored);
        if (!s.ok()) return Fail(s);
        proposed += stored ? 1 : 0;
      }
      if (candidates_out.is_open()) candidates_out << c.Evidence().dump() << "\n";
      if (!ctx.globals.json) {
        std::cout << "candidate " << c.recipient << ": " << c.sightings.size()
                  << " test-like first mails from unrelated domains\n";
      }
      for (compd::Reaction& r : c.AccountReactions(eo.reactions)) rs.push_back(std::move(r));
    }
    for (compd::Reaction& r : rs) {
      ++reactions;
      ++by_reaction[compd::ReactionName(r.kind)];
      for (const compd::Signal& sig : r.signals) ++by_signal[compd::SignalName(sig.id)];
      ++flagged[r.account];
      if (ctx.globals.json) {
        out += r.ToJson();
        out += '\n';
        if (out.size() > (1 << 16)) {
          std::cout << out;
          out.clear();
        }
      } else {
        table.AddRow({compd::FormatUtcMillis(std::chrono::system_clock::time_point(
                          std::chrono::milliseconds(r.time_ms))),
                      r.account, compd::ReactionName(r.kind), r.SignalNames(), Short(r)});
      }
    }
  }
  std::cout << out;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const compd::LogReadStats& st = reader->stats();
  if (ctx.globals.json) {
    // The summary goes to stderr so stdout stays one reaction per line.
    nlohmann::json j = {{"summary",
                         {{"messages", st.total.messages},
                          {"accounts", state->accounts()},
                          {"reactions", reactions},
                          {"by_signal", by_signal},
                          {"by_reaction", by_reaction},
                          {"unauthenticated", st.total.unauthenticated},
                          {"lines", st.total.lines},
                          {"lines_skipped", st.total.not_understood},
                          {"map", map_source},
                          {"discovery", compd::DiscoveryModeName(dopt.mode)},
                          {"candidates", candidates},
                          {"proposed", proposed},
                          {"discovery_test_like", discovery.stats().test_like},
                          {"discovery_first_mails", discovery.stats().first_mails},
                          {"discovery_pairs", discovery.stats().pairs},
                          {"seconds", secs}}}};
    std::cerr << j.dump() << "\n";
  } else {
    if (reactions > 0) std::cout << table.Render() << "\n";
    std::cout << "Map: " << map_source << "\n";
    std::cout << PrintSummary(st, state->accounts(), secs);
    std::cout << "Reactions: " << reactions << " for " << flagged.size() << " accounts";
    for (const auto& [name, n] : by_reaction) std::cout << ", " << name << " " << n;
    std::cout << "\nBy signal:";
    if (by_signal.empty()) std::cout << " none";
    for (const auto& [name, n] : by_signal) std::cout << " " << name << " " << n;
    std::cout << "\nDiscovery (" << compd::DiscoveryModeName(dopt.mode) << "): " << candidates
              << " candidates";
    if (store) std::cout << ", " << proposed << " stored for review (mapctl candidates list)";
    std::cout << "\nNothing live was changed (replay has its own in-memory state).\n";
  }
  if (!reader->status().ok()) {
    PrintError(reader->status().message());
    return kExitError;
  }
  return kExitOk;
}

}  // namespace

RunFn SetupReplay(CLI::App* cmd) {
  auto o = std::make_shared<ReplayOptions>();
  AddLogInputOptions(cmd, &o->input);
  cmd->add_option("--map", o->map_file,
                  "An rspamd map file to check recipients against "
                  "(default: the map in Redis)");
  cmd->add_option("--candidates", o->candidates_file,
                  "Write discovery's candidates with their evidence to FILE (JSON lines)");
  cmd->add_flag("--propose", o->propose,
                "Store discovery's candidates in Redis for review (mapctl candidates list); "
                "rejected ones are skipped. The only thing replay may write");
  cmd->add_flag("--no-map", o->no_map, "Check no map (no Redis needed; no hit signal)");
  return [o](Context& ctx) { return RunReplay(*o, ctx); };
}

}  // namespace mapctl
