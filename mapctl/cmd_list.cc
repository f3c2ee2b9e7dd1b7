// mapctl list: the entries with their metadata, filtered by kind and substring.
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app.h"
#include "compd/base/text.h"
#include "compd/base/text_output.h"

namespace mapctl {

namespace {

struct ListOptions {
  std::string kind;
  std::string contains;
};

// A note is free text: keep a table row on one line.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return s;
}

int RunList(const ListOptions& o, Context& ctx) {
  compd::MapStore* store = nullptr;
  compd::Status s = ctx.OpenStore(&store);
  if (!s.ok()) return Fail(s);
  compd::MapState state;
  s = store->Load(&state);
  if (!s.ok()) return Fail(s);
  for (const auto& bad : state.invalid) PrintError("warning: skipped " + bad);

  const std::string needle = compd::AsciiLower(o.contains);
  std::vector<const compd::StoredEntry*> shown;
  for (const auto& e : state.entries) {
    if (!o.kind.empty() && o.kind != compd::EntryKindName(e.entry.kind)) continue;
    if (!needle.empty() && compd::AsciiLower(e.entry.text).find(needle) == std::string::npos)
      continue;
    shown.push_back(&e);
  }

  if (ctx.globals.json) {
    nlohmann::json j = {{"version", state.version}, {"entries", nlohmann::json::array()}};
    for (const auto* e : shown) {
      j["entries"].push_back({{"entry", e->entry.text},
                              {"kind", compd::EntryKindName(e->entry.kind)},
                              {"added_at", e->meta.added_at},
                              {"added_by", e->meta.added_by},
                              {"note", e->meta.note},
                              {"source", e->meta.source}});
    }
    PrintJson(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return kExitOk;
  }
  if (shown.empty()) {
    std::cerr << (state.entries.empty() ? "the map is empty\n" : "no entry matches\n");
    return kExitOk;
  }
  compd::TextTable table;
  table.AddRow({"ENTRY", "KIND", "ADDED", "BY", "SOURCE", "NOTE"});
  for (const auto* e : shown) {
    table.AddRow({e->entry.text, compd::EntryKindName(e->entry.kind),
                  compd::FormatUnixTime(e->meta.added_at), OneLine(e->meta.added_by),
                  OneLine(e->meta.source), OneLine(e->meta.note)});
  }
  std::cout << table.Render();
  return kExitOk;
}

}  // namespace

RunFn SetupList(CLI::App* cmd) {
  auto o = std::make_shared<ListOptions>();
  cmd->add_option("--kind", o->kind, "Only exact entries or only patterns")
      ->check(CLI::IsMember({"exact", "pattern"}));
  cmd->add_option("--contains", o->contains,
                  "Only entries whose text contains this (ASCII case-insensitive)");
  return [o](Context& ctx) { return RunList(*o, ctx); };
}

}  // namespace mapctl
