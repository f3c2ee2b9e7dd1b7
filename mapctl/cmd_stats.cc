// mapctl stats: counts, version and the last change.
#include <iostream>
#include <nlohmann/json.hpp>

#include "app.h"
#include "compd/base/text_output.h"

namespace mapctl {

namespace {

int RunStats(Context& ctx) {
  compd::MapStore* store = nullptr;
  compd::Status s = ctx.OpenStore(&store);
  if (!s.ok()) return Fail(s);
  compd::MapStats st;
  s = store->Stats(&st);
  if (!s.ok()) return Fail(s);
  if (ctx.globals.json) {
    nlohmann::json j = {{"exact", st.exact},
                        {"patterns", st.patterns},
                        {"version", st.version},
                        {"changed_at", st.changed_at},
                        {"changed_by", st.changed_by},
                        {"changed_op", st.changed_op},
                        {"redis", ctx.RedisDescription()},
                        {"server", ctx.redis()->server()},
                        {"prefix", store->keys().prefix}};
    PrintJson(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return kExitOk;
  }
  compd::TextTable table;
  table.AddRow({"exact entries", std::to_string(st.exact)});
  table.AddRow({"patterns", std::to_string(st.patterns)});
  table.AddRow({"version", std::to_string(st.version)});
  table.AddRow({"last change", st.changed_at == 0 ? "never"
                                                  : compd::FormatUnixTime(st.changed_at) + " " +
                                                        st.changed_op + " by " + st.changed_by});
  table.AddRow({"redis", ctx.RedisDescription()});
  // With sentinels, the primary this command used; else the one server.
  table.AddRow({ctx.redis()->url().sentinel ? "primary" : "server", ctx.redis()->server()});
  table.AddRow({"prefix", store->keys().prefix});
  std::cout << table.Render();
  return kExitOk;
}

}  // namespace

RunFn SetupStats(CLI::App*) {
  return [](Context& ctx) { return RunStats(ctx); };
}

}  // namespace mapctl
