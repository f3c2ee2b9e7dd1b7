// mapctl add / mapctl remove: validate every entry first, then one atomic change.
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app.h"
#include "compd/base/text_output.h"

namespace mapctl {

namespace {

struct EditOptions {
  std::vector<std::string> entries;
  std::string note;
};

// Parses all inputs; on any invalid one reports every problem and returns false.
bool ParseAll(const std::vector<std::string>& args, std::vector<compd::Entry>* entries,
              int* exit_code) {
  std::vector<compd::EntryInput> inputs;
  compd::Status s = GatherInputs(args, &inputs);
  if (!s.ok()) {
    *exit_code = Fail(s);
    return false;
  }
  std::vector<std::string> errors = compd::ParseEntryInputs(inputs, entries);
  if (!errors.empty()) {
    for (const auto& e : errors) PrintError(e);
    PrintError("nothing written: " +
               compd::CountOf(errors.size(), "invalid entry", "invalid entries"));
    *exit_code = kExitError;
    return false;
  }
  if (entries->empty()) {
    PrintError("no entries given (standard input had none)");
    *exit_code = kExitError;
    return false;
  }
  return true;
}

// Parses the entries, then opens the store (nothing is opened for bad input). False with
// the exit code set when either fails.
bool ParseAndOpen(const EditOptions& o, Context& ctx, std::vector<compd::Entry>* entries,
                  compd::MapStore** store, int* exit_code) {
  if (!ParseAll(o.entries, entries, exit_code)) return false;
  compd::Status s = ctx.OpenStore(store);
  if (!s.ok()) {
    *exit_code = Fail(s);
    return false;
  }
  return true;
}

int RunAdd(const EditOptions& o, Context& ctx) {
  std::vector<compd::Entry> entries;
  compd::MapStore* store = nullptr;
  int code = kExitOk;
  if (!ParseAndOpen(o, ctx, &entries, &store, &code)) return code;

  const std::string by = Context::Operator();
  const int64_t now = static_cast<int64_t>(time(nullptr));
  std::vector<compd::StoredEntry> stored;
  stored.reserve(entries.size());
  for (auto& e : entries) stored.push_back({std::move(e), {now, by, o.note, "mapctl"}});
  std::vector<bool> added;
  compd::ChangeResult result;
  compd::Status s = store->Add(stored, by, &added, &result);
  if (!s.ok()) return Fail(s);

  if (ctx.globals.json) {
    nlohmann::json j = {{"version", result.version},
                        {"added", nlohmann::json::array()},
                        {"existing", nlohmann::json::array()}};
    for (size_t i = 0; i < stored.size(); ++i) {
      j[added[i] ? "added" : "existing"].push_back(stored[i].entry.text);
    }
    PrintJson(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return kExitOk;
  }
  compd::TextTable table;
  for (size_t i = 0; i < stored.size(); ++i) {
    if (added[i]) {
      table.AddRow({"added", stored[i].entry.text});
    } else {
      table.AddRow({"exists", stored[i].entry.text, "already in the map, left unchanged"});
    }
  }
  std::cout << table.Render() << "map version " << result.version << ": " << result.added
            << " added, " << stored.size() - result.added << " already there\n";
  return kExitOk;
}

int RunRemove(const EditOptions& o, Context& ctx) {
  std::vector<compd::Entry> entries;
  compd::MapStore* store = nullptr;
  int code = kExitOk;
  if (!ParseAndOpen(o, ctx, &entries, &store, &code)) return code;

  std::vector<bool> removed;
  compd::ChangeResult result;
  compd::Status s = store->Remove(entries, Context::Operator(), &removed, &result);
  if (!s.ok()) return Fail(s);
  size_t missing = entries.size() - result.removed;

  if (ctx.globals.json) {
    nlohmann::json j = {{"version", result.version},
                        {"removed", nlohmann::json::array()},
                        {"missing", nlohmann::json::array()}};
    for (size_t i = 0; i < entries.size(); ++i) {
      j[removed[i] ? "removed" : "missing"].push_back(entries[i].text);
    }
    PrintJson(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    compd::TextTable table;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (removed[i]) table.AddRow({"removed", entries[i].text});
    }
    std::cout << table.Render() << "map version " << result.version << ": " << result.removed
              << " removed, " << missing << " not found\n";
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!removed[i]) PrintError("not in the map: " + entries[i].text);
  }
  return missing == 0 ? kExitOk : kExitNegative;
}

}  // namespace

RunFn SetupAdd(CLI::App* cmd) {
  auto o = std::make_shared<EditOptions>();
  cmd->add_option("entries", o->entries,
                  "Addresses (exact entries) or /regex/flags patterns; - reads stdin")
      ->required();
  cmd->add_option("--note", o->note, "Free text kept with each entry");
  return [o](Context& ctx) { return RunAdd(*o, ctx); };
}

RunFn SetupRemove(CLI::App* cmd) {
  auto o = std::make_shared<EditOptions>();
  cmd->add_option("entries", o->entries,
                  "Entries to remove, as given to add (case and brackets do not matter "
                  "for addresses); - reads stdin")
      ->required();
  return [o](Context& ctx) { return RunRemove(*o, ctx); };
}

}  // namespace mapctl
