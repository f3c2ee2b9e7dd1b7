// Test helpers (compd_tests only, subsystems from events up): events as their producers
// report them, for tests of what consumes them. Stateless functions.
#ifndef COMPD_TESTUTIL_EVENTS_H_
#define COMPD_TESTUTIL_EVENTS_H_

#include <string>

#include "compd/events/event.h"

namespace compd::testing {

// An envelope hit on an exact entry, rejected, as compd-milter records it.
inline Event HitEvent(const std::string& account, const std::string& recipient,
                      const std::string& ip = "192.0.2.7") {
  Event e;
  e.account = account;
  e.client_ip = ip;
  e.recipient = recipient;
  e.where = "envelope";
  e.entry = recipient;
  e.entry_kind = "exact";
  e.action = "reject";
  e.source = "milter";
  return e;
}

// A detection signal: `rules` (comma-separated) fired for `account` and reacted `action`.
inline Event SignalEvent(const std::string& account, const std::string& rules,
                         const std::string& action) {
  Event e;
  e.type = "signal";
  e.account = account;
  e.source = "detect";
  e.rule = rules;
  e.action = action;
  return e;
}

}  // namespace compd::testing

#endif  // COMPD_TESTUTIL_EVENTS_H_
