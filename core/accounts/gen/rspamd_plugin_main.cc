// compd_rspamd_plugin TEMPLATE OUTPUT: writes rspamd's compd_recorder.lua (a build step;
// see compd/accounts/rspamd_plugin.h).
#include <cstdio>
#include <string>

#include "compd/accounts/rspamd_plugin.h"
#include "compd/base/file.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: compd_rspamd_plugin TEMPLATE OUTPUT\n");
    return 2;
  }
  std::string tmpl, plugin;
  compd::Status s = compd::ReadFile(argv[1], &tmpl);
  if (s.ok()) s = compd::BuildRspamdPlugin(tmpl, &plugin);
  if (s.ok()) s = compd::WriteFileAtomically(argv[2], plugin);
  if (!s.ok()) {
    std::fprintf(stderr, "compd_rspamd_plugin: %s: %s\n", argv[1], s.ToString().c_str());
    return 1;
  }
  return 0;
}
