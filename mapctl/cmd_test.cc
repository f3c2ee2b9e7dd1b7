// mapctl test: which entry, if any, matches each address, decided by the milter's matcher.
#include <iostream>
#include <nlohmann/json.hpp>

#include "app.h"
#include "compd/base/text_output.h"
#include "compd/map/envelope_address.h"
#include "compd/map/matcher.h"

namespace mapctl {

namespace {

struct TestOptions {
  std::vector<std::string> addresses;
};

int RunTest(const TestOptions& o, Context& ctx) {
  std::vector<compd::Entry> entries;
  uint64_t version = 0;
  compd::Status s = ctx.LoadEntries(&entries, &version);
  if (!s.ok()) return Fail(s);
  std::shared_ptr<const compd::Matcher> matcher;
  // The canonicalisation settings the milter uses, so "listed" means the same here.
  compd::Matcher::Options options;
  options.canon.strip_subaddress = ctx.config().GetBool("canon_strip_subaddress");
  options.canon.gmail_dots = ctx.config().GetBool("canon_gmail_dots");
  s = compd::Matcher::Build(entries, options, &matcher);
  if (!s.ok()) return Fail(s);

  bool any_match = false;
  bool any_error = false;
  nlohmann::json results = nlohmann::json::array();
  compd::TextTable table;
  for (const auto& input : o.addresses) {
    std::string address;
    s = compd::EnvelopeAddress(input, &address);
    if (!s.ok()) {
      any_error = true;
      PrintError("'" + input + "': " + s.message());
      results.push_back({{"input", input}, {"error", s.message()}});
      continue;
    }
    std::optional<compd::Match> m = matcher->Lookup(address);
    any_match = any_match || m.has_value();
    nlohmann::json r = {{"input", input}, {"address", address}, {"listed", m.has_value()}};
    if (m) {
      r["kind"] = compd::EntryKindName(m->kind);
      r["entry"] = m->entry;
      table.AddRow({input, "listed", compd::EntryKindName(m->kind), m->entry});
    } else {
      table.AddRow({input, "not listed"});
    }
    results.push_back(std::move(r));
  }
  if (ctx.globals.json) {
    nlohmann::json j = {{"version", version}, {"results", std::move(results)}};
    PrintJson(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    std::cout << table.Render();
  }
  if (any_error) return kExitError;
  return any_match ? kExitOk : kExitNegative;
}

}  // namespace

RunFn SetupTest(CLI::App* cmd) {
  auto o = std::make_shared<TestOptions>();
  cmd->add_option("addresses", o->addresses,
                  "Recipient addresses as an MTA passes them (<brackets> allowed)")
      ->required();
  return [o](Context& ctx) { return RunTest(*o, ctx); };
}

}  // namespace mapctl
