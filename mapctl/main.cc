// mapctl: the operator's CLI for the compd map. Wiring only; logic lives in core/.
#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"mapctl: manage the compd map of compromised-account test recipients"};
  CLI11_PARSE(app, argc, argv);
  return 0;
}
