// The rspamd plugin built from its template: the Recorder's script verbatim, and key names
// that evaluate to RecordKeys'.
#include "compd/accounts/rspamd_plugin.h"

#include <catch2/catch.hpp>
#include <vector>

#include "compd/accounts/recorder.h"
#include "compd/base/file.h"
#include "compd/base/keys.h"

namespace compd {
namespace {

std::string Template() {
  std::string tmpl;
  REQUIRE(ReadFile(std::string(COMPD_SOURCE_DIR) + "/rspamd-conf/plugins.d/compd_recorder.lua.in",
                   &tmpl)
              .ok());
  return tmpl;
}

// Evaluates one generated expression (`p .. 'x:' .. a`): quoted literals and p, a, id.
std::string Evaluate(std::string expr, const std::string& p, const std::string& a,
                     const std::string& id) {
  std::string out;
  while (!expr.empty()) {
    size_t end = expr.find(" .. ");
    std::string part = expr.substr(0, end);
    expr = end == std::string::npos ? "" : expr.substr(end + 4);
    if (part == "p") {
      out += p;
    } else if (part == "a") {
      out += a;
    } else if (part == "id") {
      out += id;
    } else {
      REQUIRE(part.size() >= 2);
      REQUIRE(part.front() == '\'');
      REQUIRE(part.back() == '\'');
      REQUIRE(part.find('\\') == std::string::npos);  // key names need no escapes
      out += part.substr(1, part.size() - 2);
    }
  }
  return out;
}

// The expressions of the generated keys(p, a, id), in order; `with_account` includes the
// ones under `if a ~= ''`.
std::vector<std::string> KeyExpressions(const std::string& module, bool with_account) {
  size_t begin = module.find("function compd_record.keys(p, a, id)\n");
  REQUIRE(begin != std::string::npos);
  size_t end = module.find("  return k\nend\n", begin);
  REQUIRE(end != std::string::npos);
  std::vector<std::string> out;
  bool account_part = false;
  size_t pos = module.find('\n', begin) + 1;
  while (pos < end) {
    size_t nl = module.find('\n', pos);
    std::string line = module.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.find("if a ~= ''") != std::string::npos) account_part = true;
    if (account_part && !with_account) continue;
    const std::string item = "k[#k + 1] = ";
    size_t at = line.find(item);
    if (at != std::string::npos) {
      out.push_back(line.substr(at + item.size()));
    } else if (line.size() > 5 && line.rfind("    ", 0) == 0 && line.back() == ',') {
      out.push_back(line.substr(4, line.size() - 5));
    }
  }
  return out;
}

TEST_CASE("the rspamd plugin carries the recorder's script and its key names", "[recorder]") {
  std::string plugin;
  REQUIRE(BuildRspamdPlugin(Template(), &plugin).ok());
  CHECK(plugin.find(kRspamdPluginMarker) == std::string::npos);
  CHECK(plugin.find("compd_record.script = [") != std::string::npos);
  CHECK(plugin.find(RecordScript()) != std::string::npos);

  const std::string module = RspamdRecordModule();
  const Keys keys("pre:");
  for (bool with_account : {false, true}) {
    const std::string a = with_account ? "alice@example.com" : "";
    std::vector<std::string> names;
    for (const std::string& e : KeyExpressions(module, with_account)) {
      names.push_back(Evaluate(e, keys.prefix, a, "n1:rspamd:7"));
    }
    CHECK(names == RecordKeys(keys, "n1:rspamd:7", a));
  }
  CHECK(RecordKeys(keys, "x", "a@b").back() == keys.hook_job(""));
  CHECK(
      module.find("function compd_record.layout(p)\n  return {\n    p .. 'accounts:changes',\n") !=
      std::string::npos);
}

TEST_CASE("the plugin's template spells no key name", "[recorder]") {
  const std::string tmpl = Template();
  CHECK(tmpl.find("prefix ..") == std::string::npos);
  CHECK(tmpl.find("'seen:'") == std::string::npos);
  CHECK(tmpl.find("'account:'") == std::string::npos);
  CHECK(tmpl.find("redis.call") == std::string::npos);  // no script of its own
}

TEST_CASE("a template without its marker line is refused", "[recorder]") {
  std::string out = "unchanged";
  CHECK(BuildRspamdPlugin("local x = 1\n", &out).IsInvalid());
  std::string twice = std::string(kRspamdPluginMarker) + "\n" + std::string(kRspamdPluginMarker);
  CHECK(BuildRspamdPlugin(twice, &out).IsInvalid());
  CHECK(out == "unchanged");
  REQUIRE(BuildRspamdPlugin("a\n" + std::string(kRspamdPluginMarker) + "\nb\n", &out).ok());
  CHECK(out == "a\n" + RspamdRecordModule() + "b\n");
}

}  // namespace
}  // namespace compd
