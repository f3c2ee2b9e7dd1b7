// mapctl import: what reading rspamd map files into the map would change; writes only
// with --apply, and never when a file has errors unless --skip-invalid says so.
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app.h"
#include "compd/base/text_output.h"

namespace mapctl {

namespace {

struct ImportOptions {
  std::vector<std::string> files;
  std::string kind;
  bool apply = false;
  bool replace = false;
  bool skip_invalid = false;
};

void PrintSection(const char* title, const std::vector<std::string>& lines) {
  if (lines.empty()) return;
  std::cout << title << " (" << lines.size() << "):\n";
  for (const auto& l : lines) std::cout << "  " << l << "\n";
}

int RunImport(const ImportOptions& o, Context& ctx) {
  std::vector<compd::ImportFile> files(o.files.size());
  std::vector<std::string> why(o.files.size());
  for (size_t i = 0; i < o.files.size(); ++i) {
    compd::Status s = ReadMapFileAs(o.files[i], o.kind, &files[i], &why[i]);
    if (!s.ok()) return Fail(s);
  }
  compd::MapStore* store = nullptr;
  std::vector<compd::Entry> current;
  uint64_t version = 0;
  compd::Status s = ctx.LoadEntries(&store, &current, &version);
  if (!s.ok()) return Fail(s);

  compd::ImportPlan plan = compd::PlanImport(files, current, o.replace);
  const bool blocked = !plan.errors.empty() && !o.skip_invalid;
  // An empty or wrong file with --replace would wipe every node's map in one go: that
  // takes `mapctl remove`, not an import.
  const bool wipes = o.replace && plan.entries.empty() && !current.empty();
  const bool write = o.apply && !blocked && !wipes;
  compd::ChangeResult result;
  result.version = version;
  if (write) {
    const std::string by = Context::Operator();
    const int64_t now = static_cast<int64_t>(time(nullptr));
    std::vector<compd::StoredEntry> stored;
    stored.reserve(plan.entries.size());
    for (const auto& item : plan.entries) {
      stored.push_back(
          {item.entry, {now, by, "", "import:" + item.file + ":" + std::to_string(item.line)}});
    }
    // Every entry of the files, not only the diff: HSETNX leaves existing ones alone, and
    // an entry removed by someone else since the diff is back afterwards, as asked.
    s = o.replace ? store->Replace(stored, by, &result) : store->Add(stored, by, nullptr, &result);
    if (!s.ok()) return Fail(s);
  }

  if (ctx.globals.json) {
    nlohmann::json j;
    j["files"] = nlohmann::json::array();
    for (size_t i = 0; i < files.size(); ++i) {
      j["files"].push_back({{"path", files[i].path},
                            {"kind", compd::MapKindName(files[i].kind)},
                            {"kind_reason", why[i]}});
    }
    j["errors"] = plan.errors;
    j["warnings"] = plan.warnings;
    j["meaning_changes"] = nlohmann::json::array();
    for (const auto& m : plan.meaning_changes) {
      j["meaning_changes"].push_back({{"file", m.file},
                                      {"line", m.line},
                                      {"entry", m.entry.text},
                                      {"change", m.meaning_change}});
    }
    j["not_imported"] = plan.not_imported;
    j["add"] = nlohmann::json::array();
    for (const auto& a : plan.to_add) {
      j["add"].push_back({{"entry", a.entry.text},
                          {"kind", compd::EntryKindName(a.entry.kind)},
                          {"file", a.file},
                          {"line", a.line}});
    }
    j["remove"] = nlohmann::json::array();
    for (const auto& r : plan.to_remove) {
      j["remove"].push_back({{"entry", r.text}, {"kind", compd::EntryKindName(r.kind)}});
    }
    j["unchanged"] = plan.unchanged;
    j["applied"] = write;
    j["version"] = result.version;
    PrintJson(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    for (size_t i = 0; i < files.size(); ++i) {
      std::cout << files[i].path << ": read as a " << compd::MapKindName(files[i].kind) << " map ("
                << why[i] << ")\n";
    }
    PrintSection("errors", plan.errors);
    PrintSection("warnings", plan.warnings);
    std::vector<std::string> changes;
    for (const auto& m : plan.meaning_changes) {
      changes.push_back(m.file + ":" + std::to_string(m.line) + ": " + m.meaning_change);
    }
    PrintSection("converted with a change of meaning", changes);
    PrintSection("not imported", plan.not_imported);
    compd::TextTable diff;
    for (const auto& a : plan.to_add) {
      diff.AddRow({"+", a.entry.text, a.file + ":" + std::to_string(a.line)});
    }
    for (const auto& r : plan.to_remove) diff.AddRow({"-", r.text});
    if (!diff.empty()) std::cout << "changes:\n" << diff.Render();
    std::cout << plan.to_add.size() << " to add, " << plan.to_remove.size() << " to remove, "
              << plan.unchanged << " unchanged\n";
    if (write) {
      std::cout << "applied: map version " << result.version << " (" << result.added << " added, "
                << result.removed << " removed)\n";
    } else if (!blocked && !wipes) {
      std::cout << "dry run: nothing written; pass --apply to write\n";
    }
  }
  if (blocked) {
    PrintError("nothing written: " + compd::CountOf(plan.errors.size(), "error", "errors") +
               " in the input (fix the file, or pass --skip-invalid to import the rest)");
    return kExitError;
  }
  if (wipes) {
    PrintError(
        "nothing written: the files hold no entries, so --replace would empty the map "
        "(use mapctl remove to clear it)");
    return kExitError;
  }
  return kExitOk;
}

}  // namespace

RunFn SetupImport(CLI::App* cmd) {
  auto o = std::make_shared<ImportOptions>();
  cmd->add_option("files", o->files, "rspamd map files")->required();
  cmd->add_flag("--apply", o->apply, "Write the changes (default: only show them)");
  cmd->add_flag("--replace", o->replace,
                "Make the map equal to the files: entries not in them are removed");
  cmd->add_flag("--skip-invalid", o->skip_invalid,
                "Import the valid lines even if others have errors");
  AddMapKindOption(cmd, &o->kind, "files");
  return [o](Context& ctx) { return RunImport(*o, ctx); };
}

}  // namespace mapctl
