#include "compd/watch/metrics.h"

#include <chrono>
#include <sstream>

namespace compd {

namespace {

const char* const kWhereNames[] = {"envelope", "header:to", "header:cc", "display-name", "other"};
const char* const kActionNames[] = {"reject",  "tempfail", "quarantine",
                                    "discard", "monitor",  "other"};

template <size_t N>
int IndexOf(const char* const (&names)[N], const std::string& value) {
  for (size_t i = 0; i + 1 < N; ++i) {
    if (value == names[i]) return static_cast<int>(i);
  }
  return static_cast<int>(N - 1);
}

class Writer {
 public:
  // A metric family: HELP and TYPE once, then samples.
  void Family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  void Sample(const char* name, double value, const std::string& labels = "") {
    out_ << name;
    if (!labels.empty()) out_ << "{" << labels << "}";
    out_ << " " << Format(value) << "\n";
  }
  void One(const char* name, const char* type, const char* help, double value) {
    Family(name, type, help);
    Sample(name, value);
  }
  std::string str() const { return out_.str(); }

 private:
  static std::string Format(double v) {
    if (v == static_cast<double>(static_cast<int64_t>(v))) {
      return std::to_string(static_cast<int64_t>(v));
    }
    std::ostringstream s;
    s.precision(6);
    s << std::fixed << v;
    return s.str();
  }
  std::ostringstream out_;
};

std::string Label(const char* name, const std::string& value) {
  return std::string(name) + "=\"" + EscapeLabelValue(value) + "\"";
}

}  // namespace

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

HitCounters::HitCounters() {
  for (auto& row : counts_) {
    for (auto& c : row) c.store(0);
  }
}

void HitCounters::Count(const Event& e) {
  if (e.type != "hit") return;
  counts_[IndexOf(kWhereNames, e.where)][IndexOf(kActionNames, e.action)].fetch_add(
      1, std::memory_order_relaxed);
}

std::vector<HitCounters::Row> HitCounters::Rows() const {
  std::vector<Row> rows;
  for (int w = 0; w < kWheres; ++w) {
    for (int a = 0; a < kActions; ++a) {
      rows.push_back(Row{kWhereNames[w], kActionNames[a], counts_[w][a].load()});
    }
  }
  return rows;
}

std::string RenderPrometheus(const MetricsInput& in) {
  Writer w;
  w.Family("compd_build_info", "gauge", "Version of compd-milter.");
  w.Sample("compd_build_info", 1, Label("version", in.version));
  w.One("compd_start_time_seconds", "gauge", "When the process started (unix seconds).",
        static_cast<double>(in.start_time));
  if (in.tripwire) {
    w.One("compd_transactions_total", "counter",
          "In-scope (authenticated or trusted) transactions seen.",
          static_cast<double>(in.tripwire->transactions));
    w.Family("compd_recipients_checked_total", "counter",
             "Addresses looked up in the map, by where they were found.");
    w.Sample("compd_recipients_checked_total", static_cast<double>(in.tripwire->recipients_checked),
             Label("where", "envelope"));
    w.Sample("compd_recipients_checked_total",
             static_cast<double>(in.tripwire->header_addresses_checked), Label("where", "header"));
  }
  w.Family("compd_hits_total", "counter", "Hits by where the address was found and action.");
  for (const auto& r : in.hits) {
    w.Sample("compd_hits_total", static_cast<double>(r.count),
             Label("where", r.where) + "," + Label("action", r.action));
  }
  w.Family("compd_redis_errors_total", "counter", "Failed Redis round trips, by component.");
  auto redis_errors = [&w](const auto& stats, const char* component) {
    if (stats) {
      w.Sample("compd_redis_errors_total", static_cast<double>(stats->redis_errors),
               Label("component", component));
    }
  };
  redis_errors(in.recorder, "recorder");
  redis_errors(in.watcher, "map");
  redis_errors(in.volume, "volume");
  redis_errors(in.anomaly, "anomaly");
  redis_errors(in.discovery, "discovery");
  w.Family("compd_redis_up", "gauge", "1 if the component's last Redis attempt succeeded.");
  auto redis_up = [&w](const auto& stats, const char* component) {
    if (stats) w.Sample("compd_redis_up", stats->redis_up, Label("component", component));
  };
  redis_up(in.recorder, "recorder");
  redis_up(in.watcher, "map");
  redis_up(in.volume, "volume");
  if (in.recorder) {
    const RecorderStats& r = *in.recorder;
    w.Family("compd_events_total", "counter", "Events by what happened to them.");
    const std::pair<uint64_t, const char*> states[] = {
        {r.submitted, "submitted"}, {r.written, "written"},   {r.duplicates, "duplicate"},
        {r.spooled, "spooled"},     {r.replayed, "replayed"}, {r.overflowed, "overflowed"},
        {r.dropped, "dropped"},     {r.rejected, "rejected"}, {r.unconfirmed, "unconfirmed"},
        {r.resent, "resent"}};
    for (const auto& [count, state] : states) {
      w.Sample("compd_events_total", static_cast<double>(count), Label("state", state));
    }
    w.One("compd_event_queue_depth", "gauge", "Events waiting in memory for Redis.",
          static_cast<double>(r.queue_depth));
    w.One("compd_spool_depth", "gauge", "Events waiting in the spool for Redis.",
          static_cast<double>(r.spool_depth));
    w.One("compd_alert_log_errors_total", "counter", "Failed writes to the alert log.",
          static_cast<double>(r.alert_log_errors));
  }
  if (in.watcher) {
    w.One("compd_map_loads_total", "counter", "Map snapshots swapped in.",
          static_cast<double>(in.watcher->loads));
    w.One("compd_map_full_loads_total", "counter",
          "Snapshots read whole (start, and changes the change log could not tell).",
          static_cast<double>(in.watcher->full_loads));
    w.One("compd_map_load_errors_total", "counter", "Map loads or compilations that failed.",
          static_cast<double>(in.watcher->load_errors));
  }
  if (in.snapshot) {
    const Snapshot& s = *in.snapshot;
    int64_t loaded =
        std::chrono::duration_cast<std::chrono::seconds>(s.loaded.time_since_epoch()).count();
    w.One("compd_map_version", "gauge", "Version of the map snapshot in use (0: not from Redis).",
          static_cast<double>(s.version));
    w.One("compd_map_loaded_timestamp_seconds", "gauge", "When the snapshot in use was loaded.",
          static_cast<double>(loaded));
    w.One("compd_map_age_seconds", "gauge", "Seconds since the snapshot in use was loaded.",
          static_cast<double>(in.now - loaded));
    w.Family("compd_map_entries", "gauge", "Entries in the snapshot in use.");
    w.Sample("compd_map_entries", static_cast<double>(s.exact), Label("kind", "exact"));
    w.Sample("compd_map_entries", static_cast<double>(s.patterns), Label("kind", "pattern"));
    w.Family("compd_map_source", "gauge", "Where the snapshot in use came from.");
    w.Sample("compd_map_source", 1, Label("source", s.source));
  }
  if (in.volume) {
    const VolumeStats& v = *in.volume;
    w.One("compd_messages_total", "counter", "Accepted in-scope messages counted.",
          static_cast<double>(v.messages));
    w.One("compd_message_recipients_total", "counter", "Recipients of those messages.",
          static_cast<double>(v.recipients));
    w.One("compd_volume_flushes_total", "counter", "Counter batches written to Redis.",
          static_cast<double>(v.flushes));
    w.One("compd_volume_pending", "gauge", "(account, hour) counts waiting for Redis.",
          static_cast<double>(v.pending));
    w.One("compd_volume_dropped_total", "counter",
          "Messages not counted because too many counts were waiting for Redis.",
          static_cast<double>(v.dropped));
    w.One("compd_volume_rejected_total", "counter",
          "Messages whose counts Redis refused for good (a key of the wrong type).",
          static_cast<double>(v.rejected));
  }
  if (in.sentinel) {
    const SentinelStats& st = *in.sentinel;
    w.Family("compd_redis_primary", "gauge",
             "The Redis primary the sentinels named last (1), by address.");
    if (!st.primary.empty()) w.Sample("compd_redis_primary", 1, Label("address", st.primary));
    w.One("compd_redis_primary_up", "gauge",
          "1 while a connection confirmed the primary with ROLE; 0 from a loss until then.",
          st.primary_up ? 1 : 0);
    w.One("compd_redis_primary_switches_total", "counter",
          "Changes of the Redis primary's address (failovers) seen.",
          static_cast<double>(st.switches));
    w.One("compd_redis_without_primary_seconds_total", "counter",
          "Seconds spent between losing the Redis primary and confirming a new one.",
          st.seconds_without_primary);
    w.One("compd_redis_sentinel_errors_total", "counter",
          "Questions to a sentinel that got no answer (the next sentinel was asked).",
          static_cast<double>(st.sentinel_errors));
  }
  if (in.anomaly) {
    w.One("compd_anomalies_total", "counter", "Anomalies this node raised.",
          static_cast<double>(in.anomaly->raised));
  }
  if (in.discovery) {
    const DiscoveryMetrics& d = *in.discovery;
    w.One("compd_discovery_sightings_total", "counter",
          "Test-like first mails to a recipient this node sent to the other nodes' in Redis.",
          static_cast<double>(d.sightings));
    w.Family("compd_discovery_candidates_total", "counter",
             "New test recipients this node completed, by what they became (discovery).");
    w.Sample("compd_discovery_candidates_total",
             static_cast<double>(d.mode == "add" ? 0 : d.candidates), Label("outcome", "proposed"));
    w.Sample("compd_discovery_candidates_total",
             static_cast<double>(d.mode == "add" ? d.candidates : 0), Label("outcome", "added"));
    w.One("compd_discovery_dropped_total", "counter",
          "Sightings not sent because too many waited for Redis.", static_cast<double>(d.dropped));
    w.One("compd_discovery_pairs", "gauge",
          "(account, recipient) pairs in the first-mail memory (retro_window).",
          static_cast<double>(d.pairs));
  }
  if (in.retro) {
    const RetroMetrics& r = *in.retro;
    w.One("compd_retro_observed_total", "counter", "Delivered messages retro-hunt remembered.",
          static_cast<double>(r.observed));
    w.One("compd_retro_dropped_total", "counter",
          "Messages not remembered because the retro-hunt queue was full.",
          static_cast<double>(r.dropped));
    w.One("compd_retro_hunts_total", "counter", "Hunts back in time after map changes.",
          static_cast<double>(r.hunts));
    w.One("compd_retro_flagged_total", "counter",
          "Accounts flagged for mail to an entry sent before it entered the map.",
          static_cast<double>(r.flagged));
    w.One("compd_retro_over_cap_total", "counter",
          "New entries that matched more accounts than retro_max_accounts (nobody flagged).",
          static_cast<double>(r.over_cap));
    w.One("compd_retro_requests_answered_total", "counter", "mapctl hunt requests answered.",
          static_cast<double>(r.answered));
    w.One("compd_retro_memory_messages", "gauge", "Messages in the recipient memory.",
          static_cast<double>(r.messages));
    w.One("compd_retro_memory_bytes", "gauge", "Heap the recipient memory holds.",
          static_cast<double>(r.bytes));
    w.One("compd_retro_memory_oldest_timestamp_seconds", "gauge",
          "Time of the oldest remembered message (0: none).",
          static_cast<double>(r.oldest_ms / 1000));
  }
  return w.str();
}

}  // namespace compd
