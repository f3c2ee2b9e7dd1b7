#include "compd/watch/metrics.h"

#include <catch2/catch.hpp>
#include <map>
#include <regex>
#include <sstream>

namespace compd {
namespace {

// A strict reader of the text format: HELP/TYPE comments, then `name{labels} value` lines
// of families that were declared. Returns the samples by their full series name.
std::map<std::string, double> Parse(const std::string& text) {
  static const std::regex kHelp(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
  static const std::regex kType(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$)");
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*")*\})? (-?[0-9]+(\.[0-9]+)?)$)");
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  std::istringstream in(text);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, kHelp)) continue;
    if (std::regex_match(line, m, kType)) {
      INFO(line);
      CHECK(types.count(m[1]) == 0);
      types[m[1]] = m[2];
      continue;
    }
    INFO(line);
    REQUIRE(std::regex_match(line, m, kSample));
    CHECK(types.count(m[1]) == 1);
    std::string series = line.substr(0, line.rfind(' '));
    CHECK(samples.count(series) == 0);
    samples[series] = std::stod(m[7]);
  }
  return samples;
}

TEST_CASE("hit counters count hits by where and action", "[metrics]") {
  HitCounters h;
  Event e;
  e.where = "envelope";
  e.action = "reject";
  h.Count(e);
  h.Count(e);
  e.where = "header:to";
  e.action = "monitor";
  h.Count(e);
  e.where = "weird";
  e.action = "strange";
  h.Count(e);
  e.type = "anomaly";
  h.Count(e);
  std::map<std::string, uint64_t> by;
  for (const auto& r : h.Rows()) by[r.where + "/" + r.action] = r.count;
  CHECK(by.size() == 30);
  CHECK(by["envelope/reject"] == 2);
  CHECK(by["header:to/monitor"] == 1);
  CHECK(by["other/other"] == 1);
  CHECK(by["envelope/monitor"] == 0);
}

TEST_CASE("metrics render in the Prometheus text format", "[metrics]") {
  MetricsInput in;
  in.version = "0.1.0";
  in.start_time = 1795718000;
  in.now = 1795718688;
  in.tripwire = TripwireStats{10, 25, 7};
  RecorderStats r;
  r.submitted = 3;
  r.written = 3;
  r.spool_depth = 2;
  r.redis_errors = 1;
  r.redis_up = true;
  in.recorder = r;
  MapWatcherStats w;
  w.version = 12;
  w.redis_up = true;
  in.watcher = w;
  auto snap = std::make_shared<Snapshot>();
  snap->version = 12;
  snap->exact = 1234;
  snap->patterns = 5;
  snap->source = "re\"dis";
  snap->loaded = std::chrono::system_clock::time_point(std::chrono::seconds(1795718600));
  in.snapshot = snap;
  VolumeStats v;
  v.messages = 600;
  v.recipients = 700;
  in.volume = v;
  in.anomaly = AnomalyStats{2, 1, 0};
  HitCounters h;
  Event e;
  e.where = "envelope";
  e.action = "reject";
  h.Count(e);
  in.hits = h.Rows();
  std::string text = RenderPrometheus(in);
  auto s = Parse(text);
  CHECK(s["compd_build_info{version=\"0.1.0\"}"] == 1);
  CHECK(s["compd_transactions_total"] == 10);
  CHECK(s["compd_recipients_checked_total{where=\"envelope\"}"] == 25);
  CHECK(s["compd_recipients_checked_total{where=\"header\"}"] == 7);
  CHECK(s["compd_hits_total{where=\"envelope\",action=\"reject\"}"] == 1);
  CHECK(s["compd_hits_total{where=\"display-name\",action=\"quarantine\"}"] == 0);
  CHECK(s["compd_redis_errors_total{component=\"recorder\"}"] == 1);
  CHECK(s["compd_spool_depth"] == 2);
  CHECK(s["compd_map_version"] == 12);
  CHECK(s["compd_map_age_seconds"] == 88);
  CHECK(s["compd_map_entries{kind=\"exact\"}"] == 1234);
  CHECK(s["compd_map_source{source=\"re\\\"dis\"}"] == 1);
  CHECK(s["compd_messages_total"] == 600);
  CHECK(s["compd_message_recipients_total"] == 700);
  CHECK(s["compd_anomalies_total"] == 2);
  CHECK(text.back() == '\n');
}

TEST_CASE("metrics: discovery's candidates and retro-hunt's finds and memory", "[metrics]") {
  MetricsInput in;
  in.version = "x";
  DiscoveryMetrics d;
  d.mode = "add";
  d.sightings = 9;
  d.candidates = 2;
  d.redis_errors = 3;
  d.pairs = 1500;
  in.discovery = d;
  RetroMetrics r;
  r.observed = 40;
  r.hunts = 5;
  r.flagged = 4;
  r.over_cap = 1;
  r.answered = 2;
  r.messages = 38;
  r.bytes = 65536;
  r.oldest_ms = 1795718000123;
  in.retro = r;
  auto s = Parse(RenderPrometheus(in));
  CHECK(s["compd_discovery_sightings_total"] == 9);
  CHECK(s["compd_discovery_candidates_total{outcome=\"added\"}"] == 2);
  CHECK(s["compd_discovery_candidates_total{outcome=\"proposed\"}"] == 0);
  CHECK(s["compd_discovery_pairs"] == 1500);
  CHECK(s["compd_redis_errors_total{component=\"discovery\"}"] == 3);
  CHECK(s["compd_retro_observed_total"] == 40);
  CHECK(s["compd_retro_hunts_total"] == 5);
  CHECK(s["compd_retro_flagged_total"] == 4);
  CHECK(s["compd_retro_over_cap_total"] == 1);
  CHECK(s["compd_retro_requests_answered_total"] == 2);
  CHECK(s["compd_retro_memory_messages"] == 38);
  CHECK(s["compd_retro_memory_bytes"] == 65536);
  CHECK(s["compd_retro_memory_oldest_timestamp_seconds"] == 1795718000);
  // Under propose the same count is the proposed one.
  d.mode = "propose";
  in.discovery = d;
  s = Parse(RenderPrometheus(in));
  CHECK(s["compd_discovery_candidates_total{outcome=\"proposed\"}"] == 2);
  CHECK(s["compd_discovery_candidates_total{outcome=\"added\"}"] == 0);
}

TEST_CASE("metrics of a node with nothing running still parse", "[metrics]") {
  MetricsInput in;
  in.version = "x";
  auto s = Parse(RenderPrometheus(in));
  CHECK(s.count("compd_build_info{version=\"x\"}") == 1);
  CHECK(s.count("compd_retro_memory_bytes") == 0);
}

TEST_CASE("label values are escaped", "[metrics]") {
  CHECK(EscapeLabelValue("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
}

}  // namespace
}  // namespace compd
