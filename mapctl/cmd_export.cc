// mapctl export: the two rspamd map files, written atomically or printed.
#include <iostream>

#include "app.h"
#include "compd/map/rspamd_map.h"

namespace mapctl {

namespace {

struct ExportOptions {
  std::string dir;
};

int RunExport(const ExportOptions& o, Context& ctx) {
  std::vector<compd::Entry> entries;
  uint64_t version = 0;
  compd::Status s = ctx.LoadEntries(&entries, &version);
  if (!s.ok()) return Fail(s);
  size_t exact = 0;
  for (const auto& e : entries) {
    if (e.kind == compd::EntryKind::kExact) ++exact;
  }
  if (o.dir.empty()) {
    // Comments, so that each half can be cut out and used as it is.
    std::cout << "# ==> " << compd::kExactMapFile << " <==\n"
              << compd::FormatExactMap(entries) << "# ==> " << compd::kPatternMapFile << " <==\n"
              << compd::FormatPatternMap(entries);
    return kExitOk;
  }
  s = compd::WriteMapFiles(o.dir, entries);
  if (!s.ok()) return Fail(s);
  std::string dir = o.dir.back() == '/' ? o.dir : o.dir + "/";
  std::cout << "wrote " << dir << compd::kExactMapFile << " (" << exact << " exact entries)\n"
            << "wrote " << dir << compd::kPatternMapFile << " (" << entries.size() - exact
            << " patterns)\n"
            << "map version " << version << "\n";
  return kExitOk;
}

}  // namespace

RunFn SetupExport(CLI::App* cmd) {
  auto o = std::make_shared<ExportOptions>();
  cmd->add_option("--dir", o->dir,
                  "Write compd_rcpt.map and compd_rcpt_re.map into this folder, atomically; "
                  "without it both files are printed");
  return [o](Context& ctx) { return RunExport(*o, ctx); };
}

}  // namespace mapctl
