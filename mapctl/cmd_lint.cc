// mapctl lint: the hazard report for rspamd map files, without Redis.
#include <iostream>
#include <nlohmann/json.hpp>

#include "app.h"
#include "compd/base/text_output.h"

namespace mapctl {

namespace {

struct LintOptions {
  std::vector<std::string> files;
  std::string kind;
};

int RunLint(const LintOptions& o, Context& ctx) {
  bool errors = false;
  bool warnings = false;
  nlohmann::json files = nlohmann::json::array();
  for (const auto& path : o.files) {
    compd::ImportFile file;
    std::string why;
    compd::Status s = ReadMapFileAs(path, o.kind, &file, &why);
    if (!s.ok()) {
      errors = true;
      Fail(s);
      files.push_back({{"path", path}, {"error", s.message()}});
      continue;
    }
    size_t n_errors = 0;
    size_t n_warnings = 0;
    nlohmann::json hazards = nlohmann::json::array();
    if (!ctx.globals.json) {
      std::cout << path << ": read as a " << compd::MapKindName(file.kind) << " map (" << why
                << ")\n";
    }
    for (const auto& h : file.read.hazards) {
      bool error = h.severity == compd::MapHazard::Severity::kError;
      ++(error ? n_errors : n_warnings);
      hazards.push_back({{"line", h.line},
                         {"severity", error ? "error" : "warning"},
                         {"code", h.code},
                         {"message", h.message}});
      // Compiler style, so editors and grep can jump to the line and see the severity.
      if (!ctx.globals.json) {
        compd::MapHazard shown = h;
        shown.message = (error ? "error: " : "warning: ") + h.message;
        std::cout << shown.Format(path) << "\n";
      }
    }
    errors = errors || n_errors > 0;
    warnings = warnings || n_warnings > 0;
    if (ctx.globals.json) {
      files.push_back({{"path", path},
                       {"kind", compd::MapKindName(file.kind)},
                       {"entries", file.read.lines.size()},
                       {"hazards", std::move(hazards)}});
    } else {
      std::cout << path << ": " << compd::CountOf(file.read.lines.size(), "entry", "entries")
                << ", " << compd::CountOf(n_errors, "error", "errors") << ", "
                << compd::CountOf(n_warnings, "warning", "warnings") << "\n";
    }
  }
  if (ctx.globals.json) {
    PrintJson(nlohmann::json({{"files", std::move(files)}})
                  .dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  return errors ? kExitError : warnings ? kExitNegative : kExitOk;
}

}  // namespace

RunFn SetupLint(CLI::App* cmd) {
  auto o = std::make_shared<LintOptions>();
  cmd->add_option("files", o->files, "rspamd map files")->required();
  AddMapKindOption(cmd, &o->kind, "file");
  return [o](Context& ctx) { return RunLint(*o, ctx); };
}

}  // namespace mapctl
