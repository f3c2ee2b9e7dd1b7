#include "compd/accounts/rspamd_plugin.h"

#include <cstdio>
#include <vector>

#include "compd/accounts/recorder.h"
#include "compd/base/keys.h"

namespace compd {

namespace {

// Stand-ins for the prefix, the account and the event id: bytes no key name contains.
constexpr char kPrefix = '\x01';
constexpr char kAccount = '\x02';
constexpr char kId = '\x03';

std::string LuaQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\%03u", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "'";
}

// A name built with the stand-ins, as a Lua expression of p, a and id.
std::string LuaExpression(const std::string& name) {
  std::vector<std::string> parts;
  std::string literal;
  for (char c : name) {
    const char* var = c == kPrefix ? "p" : c == kAccount ? "a" : c == kId ? "id" : nullptr;
    if (var == nullptr) {
      literal += c;
      continue;
    }
    if (!literal.empty()) parts.push_back(LuaQuote(literal));
    literal.clear();
    parts.push_back(var);
  }
  if (!literal.empty() || parts.empty()) parts.push_back(LuaQuote(literal));
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : " .. ") + p;
  return out;
}

std::string LuaList(const std::vector<std::string>& names, const std::string& indent) {
  std::string out;
  for (const std::string& n : names) out += indent + LuaExpression(n) + ",\n";
  return out;
}

}  // namespace

std::string RspamdRecordModule() {
  const Keys keys(std::string(1, kPrefix));
  const std::string id(1, kId);
  std::vector<std::string> base = RecordKeys(keys, id, "");
  std::vector<std::string> all = RecordKeys(keys, id, std::string(1, kAccount));
  std::vector<std::string> extra(all.begin() + base.size(), all.end());

  const std::string& script = RecordScript();
  std::string level;
  while (script.find("]" + level + "]") != std::string::npos) level += '=';

  std::string out =
      "-- Generated at build time from core/accounts/record.lua and compd/base/keys.h\n"
      "-- (compd's Recorder runs the same script on the same keys); do not edit here.\n"
      "local compd_record = {}\n"
      "compd_record.script = [" +
      level + "[\n" + script + "]" + level + "]\n";
  out += "function compd_record.keys(p, a, id)\n  local k = {\n" + LuaList(base, "    ") +
         "  }\n  if a ~= '' then\n";
  for (const std::string& n : extra) out += "    k[#k + 1] = " + LuaExpression(n) + "\n";
  out += "  end\n  return k\nend\n";
  out += "function compd_record.layout(p)\n  return {\n" + LuaList(RecordLayoutArgs(keys), "    ") +
         "  }\nend\n";
  return out;
}

Status BuildRspamdPlugin(std::string_view tmpl, std::string* out) {
  size_t at = tmpl.find(kRspamdPluginMarker);
  if (at == std::string_view::npos || (at > 0 && tmpl[at - 1] != '\n')) {
    return Status::Invalid("the template has no line " + std::string(kRspamdPluginMarker));
  }
  if (tmpl.find(kRspamdPluginMarker, at + 1) != std::string_view::npos) {
    return Status::Invalid("the template has more than one line " +
                           std::string(kRspamdPluginMarker));
  }
  size_t end = tmpl.find('\n', at);
  end = end == std::string_view::npos ? tmpl.size() : end + 1;
  *out = std::string(tmpl.substr(0, at)) + RspamdRecordModule() + std::string(tmpl.substr(end));
  return Status::Ok();
}

}  // namespace compd
