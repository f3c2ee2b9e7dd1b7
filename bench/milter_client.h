// MilterClient: the MTA side of the Sendmail milter protocol (version 6), spoken the way
// Postfix 3.7 speaks it, for the load generator and the map-freshness probe.
//
// "The way Postfix speaks it" decides what the benchmark figures mean, so:
//  - OPTNEG offers every action (0x1ff) and every protocol bit Postfix offers at version 6
//    (0x1fffff). The milter's answer is honoured: an event it asked not to get (SMFIP_NO*)
//    is not sent, but its macros still are (Postfix does that too); no reply is awaited
//    for an event it will not answer (SMFIP_NR_*).
//  - Each stage sends Postfix's default macro list, replaced by the list the milter asked
//    for with smfi_setsymlist (an empty list falls back to the default, as in Postfix);
//    only macros that have a value are sent. Headers carry the end-of-header macros and
//    body chunks the end-of-message macros, as Postfix sends them.
//  - Writes are buffered and leave when a reply is awaited, after DATA (where smtpd hands
//    the milter connection to the cleanup server, which sends the content later), and at
//    QUIT. Nagle stays on, as Postfix leaves it. Together this reproduces Postfix's write
//    pattern, and with it the delayed-ACK stall of a milter that does not answer DATA.
//
// Not thread-safe: one client per connection, used by one thread.
#ifndef COMPD_BENCH_MILTER_CLIENT_H_
#define COMPD_BENCH_MILTER_CLIENT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "compd/base/status.h"

namespace compd_bench {

// The events of one SMTP session, in the order Postfix sends them.
enum class Stage { kConnect, kHelo, kMail, kRcpt, kData, kHeader, kEoh, kBody, kEom };
inline constexpr int kNumStages = 9;
const char* StageName(Stage stage);

// Protocol bits Postfix offers at version 6, and every action it can perform.
inline constexpr uint32_t kPostfixProtocolOffer = 0x1fffff;
inline constexpr uint32_t kPostfixActionOffer = 0x1ff;

// What the milter answered to one event.
struct Reply {
  // The final reply: 'c' continue, 'a' accept, 'r' reject, 't' tempfail, 'y' reply code
  // (text holds "550 5.7.1 ..."), 'd' discard, 's' skip, '4' shutdown, 'f' connection
  // failure. 0 when no reply was awaited (skipped event, or an SMFIP_NR_* stage).
  char code = 0;
  std::string text;
  // Requests before the final reply at end of message ('h' add header, 'q' quarantine, ...).
  std::vector<char> modifications;
};

// "continue", "accept", "reject", "tempfail", "discard", "skip", "shutdown", "failure",
// "none": reply codes 'y' become reject or tempfail by their first digit.
const char* ReplyKind(const Reply& reply);
// True when the reply ends the transaction (or the recipient, at RCPT) for the MTA.
inline bool IsRefusal(const Reply& r) {
  return r.code == 'r' || r.code == 't' || r.code == 'y' || r.code == '4' || r.code == 'f';
}

// Macro values the MTA knows at the moment of an event, name as in milter_*_macros
// ("i", "{auth_authen}").
using Macros = std::vector<std::pair<std::string, std::string>>;

class MilterClient {
 public:
  explicit MilterClient(int timeout_ms = 10000) : timeout_ms_(timeout_ms) {}
  ~MilterClient() { Close(); }
  MilterClient(const MilterClient&) = delete;
  MilterClient& operator=(const MilterClient&) = delete;

  // spec: "inet:PORT@HOST" (libmilter form), "inet:HOST:PORT" (Postfix form), "unix:PATH"
  // or "local:PATH".
  compd::Status Connect(const std::string& spec);
  // OPTNEG with Postfix's offer; remembers what the milter took and its macro lists.
  compd::Status Negotiate(uint32_t actions = kPostfixActionOffer,
                          uint32_t protocol = kPostfixProtocolOffer);

  // Sends the macros of `stage` (picked from `known`) and the event with `args` (the
  // event's wire payload, e.g. "<a@b>\0"), unless negotiated away, and reads the reply if
  // one is due. For kData the buffer is flushed even when no reply is due.
  compd::Status Send(Stage stage, const std::string& args, const Macros& known, Reply* reply);
  // Buffers SMFIC_ABORT (it leaves with the next command, as in Postfix).
  void Abort();
  // Writes SMFIC_QUIT and closes.
  void Quit();
  void Close();
  bool connected() const { return fd_ >= 0; }

  uint32_t version() const { return version_; }
  uint32_t actions() const { return actions_; }
  uint32_t protocol() const { return protocol_; }
  // Macro list the milter asked for at SMFIM index `where` (0 connect .. 6 eoh); "" if none.
  const std::string& symlist(int where) const { return symlists_[where]; }
  // True if the milter asked not to receive / not to answer this stage.
  bool Skips(Stage stage) const;
  bool NoReply(Stage stage) const;

 private:
  compd::Status Flush();
  compd::Status ReadPacket(char* cmd, std::string* data);
  compd::Status ReadReply(Stage stage, Reply* reply);
  void Append(char cmd, const std::string& data);
  void AppendMacros(Stage stage, const Macros& known);

  int timeout_ms_;
  int fd_ = -1;
  std::string out_;
  std::string in_;
  size_t in_pos_ = 0;
  uint32_t version_ = 0;
  uint32_t actions_ = 0;
  uint32_t protocol_ = 0;
  std::string symlists_[7];
  std::vector<std::string> macro_lists_[7];  // resolved names per SMFIM index
};

}  // namespace compd_bench

#endif  // COMPD_BENCH_MILTER_CLIENT_H_
