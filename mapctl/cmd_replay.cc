// mapctl replay: what the detection engine would have done on an MTA's logs. The same
// Engine as compd-milter, with the logs' clock and its own in-memory state; the map comes
// from Redis or --map. Nothing live is changed. Discovery and retro-hunt run as on the
// nodes: a discovered recipient is hunted back over retro_window in the mail read so far.
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "app.h"
#include "compd/accounts/accounts.h"
#include "compd/base/text_output.h"
#include "compd/base/utc_time.h"
#include "compd/detect/candidate_store.h"
#include "compd/detect/discovery.h"
#include "compd/detect/engine.h"
#include "compd/detect/retro_hunter.h"
#include "compd/detect/retro_replay.h"
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

  // Retro-hunt, as on the nodes: only its window, cap and switch matter here.
  compd::RetroHunterOptions ropt;
  s = compd::RetroHunterOptions::FromConfig(ctx.config(), &ropt);
  if (!s.ok()) return Fail(s);
  compd::Matcher::Options mopt;
  mopt.canon.strip_subaddress = ctx.config().GetBool("canon_strip_subaddress");
  mopt.canon.gmail_dots = ctx.config().GetBool("canon_gmail_dots");
  compd::RetroReplay retro(ropt.window_ms, ropt.max_accounts, mopt);
  uint64_t retro_flagged = 0, retro_messages = 0, retro_over_cap = 0;
  compd::TextTable retro_table;
  retro_table.AddRow(
      {"MAILED", "ACCOUNT", "RECIPIENT", "NODE", "CLIENT IP", "QUEUE ID", "ENTERED"});
  std::vector<std::string> retro_notes;

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
    if (ropt.enabled && dopt.mode != compd::DiscoveryMode::kOff) retro.Observe(m);
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
      if (!ropt.enabled) continue;
      // The candidate enters the map now (discovery = add) or when accepted (propose):
      // who mailed it before, as a node's retro-hunt would flag them.
      compd::RetroReplayResult found;
      s = retro.EntryAdded(c.recipient, c.time_ms, matcher.get(), &found);
      if (!s.ok()) return Fail(s);
      retro_messages += found.finds.size();
      retro_over_cap += found.over_cap.size();
      // The accounts behind the candidate have their hit already; the others are what
      // retro-hunt adds.
      std::unordered_set<std::string> behind;
      for (const compd::Sighting& x : c.sightings) behind.insert(compd::AccountKey(x.account));
      for (const compd::Event& e : found.events) {
        if (!behind.insert(compd::AccountKey(e.account)).second) continue;
        ++retro_flagged;
        rs.push_back(compd::RetroReaction(e, c.time_ms, eo.reactions));
      }
      const std::string entered = compd::FormatUtcMillis(
          std::chrono::system_clock::time_point(std::chrono::milliseconds(c.time_ms)));
      for (const compd::RetroOverCap& oc : found.over_cap) {
        retro_notes.push_back("retro: " +
                              compd::RetroOverCapMessage(oc, ropt.max_accounts, ropt.window_ms));
      }
      if (!ctx.globals.json) {
        for (const nlohmann::json& f : found.finds) {
          retro_table.AddRow({f.value("time", ""), f.value("account", ""), f.value("recipient", ""),
                              f.value("node", ""), f.value("client_ip", ""),
                              f.value("queue_id", ""), entered});
        }
      }
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
                      r.account, compd::ReactionName(r.kind), r.SignalNames(), r.Summary()});
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
                          {"retro", ropt.enabled},
                          {"retro_messages", retro_messages},
                          {"retro_flagged", retro_flagged},
                          {"retro_over_cap", retro_over_cap},
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
    std::cout << "\n";
    if (!ropt.enabled) {
      std::cout << "Retro-hunt: off (retro_hunt = no)\n";
    } else {
      std::cout << "Retro-hunt: " << retro_messages
                << " earlier messages to candidates within retro_window, " << retro_flagged
                << " more accounts flagged"
                << (dopt.mode == compd::DiscoveryMode::kAdd ? "" : " (had they been accepted)")
                << "\n";
      if (retro_messages > 0) std::cout << retro_table.Render();
      for (const std::string& note : retro_notes) std::cout << note << "\n";
    }
    std::cout << "Nothing live was changed (replay has its own in-memory state).\n";
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
