// Event: one hit (a recipient of an authenticated submission matched the map), as it is
// written to the Redis stream, the per-account record, the alert log and the spool. The
// same stream also carries anomalies (type "anomaly": an account sending far more than its
// own history says it does) and detection signals (type "signal"), which use the optional
// fields at the end.
//
// Plain values and pure functions; safe from any thread.
//
// The JSON form is one line with a fixed key order (time first, so `sort` and a human
// reading the morning log agree). Control characters (CR, LF, NUL, ...) are escaped and
// invalid UTF-8 (subjects are attacker-controlled) becomes U+FFFD instead of throwing, so
// any Event can always be written.
#ifndef COMPD_EVENTS_EVENT_H_
#define COMPD_EVENTS_EVENT_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "compd/base/status.h"
#include "compd/base/utc_time.h"

namespace compd {

struct Event {
  // Unique per event, stable across spool and replay: Redis uses it to drop duplicates.
  // The Recorder assigns one (host, process start, sequence) when it is empty.
  std::string id;
  std::string type = "hit";
  std::string time;  // UTC ISO 8601 with milliseconds: 2026-11-26T18:44:48.123Z
  std::string host;
  std::string account;  // {auth_authen}
  std::string auth_type;
  std::string client_ip;
  std::string client_name;
  std::string helo;
  std::string sender;
  std::string recipient;   // as matched
  std::string where;       // "envelope" | "header:to" | "header:cc" | "display-name"
  std::string entry;       // the map entry that matched
  std::string entry_kind;  // "exact" | "pattern"
  std::string action;      // "reject" | "tempfail" | "quarantine" | "discard" | "monitor"
  std::string queue_id;    // empty when the MTA had not assigned one yet
  std::string txn_id;
  std::string subject;
  std::string message_id;
  std::string source;  // "milter" | "policy" | "volume" (anomalies)

  // Optional: omitted from the JSON when empty, so hit events look as they always did.
  // Anomalies (type "anomaly") fill them in; numbers are written as decimal strings.
  std::string rule;       // "hour_volume" | "day_volume" | "networks" | "new_account"
  std::string period;     // the hour ("2026-11-26T18") or day ("2026-11-26") it is about (UTC)
  std::string value;      // what was measured: messages, or distinct client networks
  std::string baseline;   // the account's usual high value (see anomaly.h)
  std::string threshold;  // what `value` had to exceed
  std::string detail;     // one sentence for humans
  // Detection signals (type "signal"): `rule` lists the signals ("test_message,new_networks"),
  // `action` the reaction (monitor|flag|tempfail|lock), and this their evidence as a JSON
  // object text keyed by signal name.
  std::string evidence;

  // One line of JSON, no trailing newline. Never throws.
  std::string ToJson() const;
  // Tolerant of missing keys (left at their defaults) and unknown keys (ignored);
  // kInvalid when `json` is not a JSON object or a known key holds a non-string.
  static Status FromJson(std::string_view json, Event* out);

  bool operator==(const Event& o) const;
  bool operator!=(const Event& o) const { return !(*this == o); }
};

}  // namespace compd

#endif  // COMPD_EVENTS_EVENT_H_
