// Test helpers (compd_tests only, subsystems from mta up): a matcher built from entry
// texts, and a tripwire over it that collects its events, message records and the messages
// it hands to detection in vectors.
// Not thread-safe: for tests that drive the tripwire from the test's own thread.
#ifndef COMPD_TESTUTIL_TRIPWIRE_H_
#define COMPD_TESTUTIL_TRIPWIRE_H_

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "compd/map/entry.h"
#include "compd/map/matcher.h"
#include "compd/mta/tripwire.h"

namespace compd::testing {

inline std::shared_ptr<const Matcher> BuildMatcher(const std::vector<std::string>& entries) {
  std::vector<Entry> parsed;
  for (const auto& text : entries) {
    Entry e;
    REQUIRE(ParseEntry(text, &e).ok());
    parsed.push_back(e);
  }
  std::shared_ptr<const Matcher> matcher;
  REQUIRE(Matcher::Build(parsed, &matcher).ok());
  return matcher;
}

// A tripwire on node "node1" over a real matcher. The account named by `locked` is
// tempfailed by the account gate, as a locked account is.
struct TripwireFixture {
  explicit TripwireFixture(const std::vector<std::string>& entries, TripwireOptions options = {})
      : matcher(BuildMatcher(entries)) {
    options.hostname = "node1";
    TripwireOutlets outlets;
    outlets.snapshot = [this] { return matcher; };
    outlets.events = [this](Event e) { events.push_back(e); };
    outlets.messages = [this](const MessageRecord& m) { messages.push_back(m); };
    outlets.observe = [this](const Message& m) {
      observed.push_back(m);
      return Verdict();
    };
    outlets.account_gate = [this](const std::string& account) {
      return account == locked ? Verdict::Tempfail("account suspended") : Verdict::Continue();
    };
    tripwire = std::make_unique<Tripwire>(options, outlets);
  }

  std::shared_ptr<const Matcher> matcher;
  std::vector<Event> events;
  std::vector<MessageRecord> messages;
  std::vector<Message> observed;
  std::string locked;
  std::unique_ptr<Tripwire> tripwire;
};

}  // namespace compd::testing

#endif  // COMPD_TESTUTIL_TRIPWIRE_H_
