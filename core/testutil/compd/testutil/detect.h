// Test helpers (compd_tests only): the clock, the credential test message of the thread
// that started compd, and signal-window entries, as the detection tests feed them.
// Stateless functions.
#ifndef COMPD_TESTUTIL_DETECT_H_
#define COMPD_TESTUTIL_DETECT_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "compd/detect/signal_window.h"
#include "compd/events/message.h"

namespace compd::testing {

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The thread's test message as compd-milter sees it on `node` (no size): one external
// recipient, HELO localhost, a random-looking subject. Callers set the queue id and source
// where they matter.
inline Message ThreadTestMessage(const std::string& account, const std::string& rcpt, int64_t t,
                                 const std::string& node = "mx1") {
  Message m;
  m.time_ms = t;
  m.account = account;
  m.recipients = {rcpt};
  m.helo = "localhost";
  m.subject = "ZYaeD, X ";
  m.client_ip = "79.10.109.221";
  m.node = node;
  m.source = "milter";
  return m;
}

// A window entry of signal `id` at `t` scoring `score` (`part`: a network group, say); its
// evidence names the time, so two entries are never the same.
inline WindowEntry WindowEntryAt(SignalId id, int64_t t, int score, const std::string& part = "") {
  WindowEntry e;
  e.id = id;
  e.time_ms = t;
  e.score = score;
  e.part = part;
  e.evidence = {{"at", t}};
  return e;
}

}  // namespace compd::testing

#endif  // COMPD_TESTUTIL_DETECT_H_
