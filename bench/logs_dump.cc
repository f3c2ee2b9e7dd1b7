// logs_dump: prints what LogReader reads from MTA log files, one JSON object per message,
// then one `{"stats": ...}` line. For tests/logs_test.py and for looking at a log by hand;
// `mapctl replay` is the operator's command.
//
//   logs_dump [--format auto|exim|postfix] [--reference-ms MS] [--since-ms MS]
//             [--until-ms MS] FILE...
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compd/logs/log_reader.h"

namespace {

nlohmann::json CountsJson(const compd::LogCounts& c) {
  return {{"lines", c.lines},
          {"messages", c.messages},
          {"outside_window", c.outside_window},
          {"unauthenticated", c.unauthenticated},
          {"ignored", c.ignored},
          {"not_understood", c.not_understood}};
}

int Usage() {
  std::fprintf(stderr,
               "usage: logs_dump [--format auto|exim|postfix] [--reference-ms MS] "
               "[--since-ms MS] [--until-ms MS] FILE...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  compd::LogReaderOptions options;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--format" && has_value) {
      if (!compd::ParseLogFormat(argv[++i], &options.format)) return Usage();
    } else if (a == "--reference-ms" && has_value) {
      options.reference_ms = std::strtoll(argv[++i], nullptr, 10);
    } else if (a == "--since-ms" && has_value) {
      options.since_ms = std::strtoll(argv[++i], nullptr, 10);
    } else if (a == "--until-ms" && has_value) {
      options.until_ms = std::strtoll(argv[++i], nullptr, 10);
    } else if (a.rfind("--", 0) == 0) {
      return Usage();
    } else {
      paths.push_back(a);
    }
  }
  std::unique_ptr<compd::LogReader> reader;
  compd::Status s = compd::LogReader::Open(paths, options, &reader);
  if (!s.ok()) {
    std::fprintf(stderr, "logs_dump: %s\n", s.ToString().c_str());
    return 1;
  }
  compd::Message m;
  while (reader->Next(&m)) {
    nlohmann::json j = {
        {"time_ms", m.time_ms}, {"node", m.node},           {"queue_id", m.queue_id},
        {"account", m.account}, {"client_ip", m.client_ip}, {"client_name", m.client_name},
        {"helo", m.helo},       {"sender", m.sender},       {"recipients", m.recipients},
        {"subject", m.subject}, {"size", m.size},           {"message_id", m.message_id},
        {"source", m.source},   {"origin", m.origin}};
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  const compd::LogReadStats& st = reader->stats();
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : st.files) {
    files.push_back({{"path", f.path},
                     {"format", compd::LogFormatName(f.format)},
                     {"counts", CountsJson(f.counts)}});
  }
  nlohmann::json out = {{"stats",
                         {{"total", CountsJson(st.total)},
                          {"files", files},
                          {"samples", st.samples},
                          {"status", reader->status().ok() ? "" : reader->status().ToString()}}}};
  std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return reader->status().ok() ? 0 : 1;
}
