// Tripwire: the milter's decisions, free of libmilter so they can be tested as plain code.
//
// A Tripwire holds the options and the two outlets every connection shares: where the
// current map snapshot comes from and where events go. It is thread-safe: the options are
// an immutable snapshot swapped atomically, the rest is fixed at construction apart from an
// atomic counter, so one instance serves every libmilter thread.
//
// A Session is one SMTP connection. libmilter calls a connection's callbacks one at a time
// (never concurrently), so a Session needs no locking; it must not be shared.
//
// What a Session does, in Postfix's order of events:
//   connect/helo   remember client address, name, HELO
//   MAIL           decide whether this transaction is in scope (authenticated, or a trusted
//                  network, or a local submission when enabled); out of scope: kAccept, so
//                  the MTA stops calling us for this message
//   RCPT           each envelope recipient against the map; a hit acts on that recipient
//   header         keep To, Cc, From, Subject (decoded), Message-ID (bounded); count the
//                  header bytes (the message size when MAIL FROM gave no SIZE=)
//   end of headers every To/Cc address (and addresses in display names) against the map
//   end of message apply a header hit to the whole message; events get the queue id
//   abort/close    flush the transaction's events
// Events are buffered per transaction and handed to the sink when the transaction ends,
// because Postfix assigns the queue id only after the first RCPT.
#ifndef COMPD_MTA_TRIPWIRE_H_
#define COMPD_MTA_TRIPWIRE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "compd/base/net.h"
#include "compd/base/settings.h"
#include "compd/base/status.h"
#include "compd/events/event.h"
#include "compd/events/message.h"
#include "compd/map/matcher.h"

namespace compd {

enum class HitAction { kReject, kTempfail, kQuarantine, kDiscard, kMonitor };
bool ParseHitAction(std::string_view name, HitAction* out);

// The SIZE=n parameter of MAIL FROM (RFC 1870) when `param` is one (any case), else -1.
int64_t EsmtpSizeParameter(std::string_view param);

// Reply text the MTA can carry: one line (CR, LF and NUL dropped), '%' doubled because
// libmilter treats it specially.
std::string SafeReplyText(std::string_view text);
const char* HitActionName(HitAction action);

struct TripwireOptions {
  HitAction action = HitAction::kReject;
  HitAction non_smtpd_action = HitAction::kQuarantine;
  bool check_headers = true;
  bool check_display_names = true;
  bool check_non_smtpd = false;
  std::vector<Cidr> trusted_networks;
  std::string reject_text = "Recipient address rejected: message refused by policy (ref {ref})";
  std::string hostname;
  // Reads the settings of the same names. kInvalid names the setting.
  static Status FromConfig(const Config& config, TripwireOptions* out);
};

// What the MTA is told. kContinue: nothing to say yet.
struct Verdict {
  enum class Kind { kContinue, kAccept, kReject, kTempfail, kDiscard, kQuarantine };
  Kind kind = Kind::kContinue;
  std::string rcode;   // "550" / "451" for kReject / kTempfail
  std::string xcode;   // "5.7.1" / "4.7.1"
  std::string text;    // reply text, CR/LF-free
  std::string reason;  // kQuarantine: the reason the MTA records
  static Verdict Continue() { return Verdict(); }
  // Refusals with the reply codes that go with them: Reject 550 5.7.1 (refused for good),
  // Tempfail 451 4.7.1 (the client keeps the message and retries). `text` is made safe
  // with SafeReplyText, so pass it unescaped.
  static Verdict Reject(std::string_view text);
  static Verdict Tempfail(std::string_view text);
};

// One accepted, in-scope message, for per-account volume counters.
struct MessageRecord {
  std::string account;
  std::string client_ip;
  size_t recipients = 0;  // envelope recipients accepted
  std::chrono::system_clock::time_point time;
};

// Where a Tripwire gets what it needs and sends what it learns. Each function must be
// thread-safe and must not block on the network: they run on the MTA's time.
struct TripwireOutlets {
  // The current map snapshot; may return null before the first load.
  std::function<std::shared_ptr<const Matcher>()> snapshot;
  // Every hit, when its transaction ends.
  std::function<void(Event)> events;
  // Optional: is this account locked? Asked at MAIL for in-scope sessions; a locked
  // account's message is refused with the verdict returned (kContinue = not locked).
  std::function<Verdict(const std::string& account)> account_gate;
  // Optional: every accepted in-scope message, at end of message.
  std::function<void(const MessageRecord&)> messages;
  // Optional: the detection engine. Every in-scope message that would be delivered, at end
  // of message, as Message facts; a kTempfail verdict answers that message (the MTA
  // still waits). Must not block.
  std::function<Verdict(const Message&)> observe;
};

// Counters since start, for /metrics. Each is read atomically on its own.
struct TripwireStats {
  uint64_t transactions = 0;              // in-scope MAIL commands
  uint64_t recipients_checked = 0;        // envelope recipients looked up in the map
  uint64_t header_addresses_checked = 0;  // To/Cc (and display-name) addresses looked up
};

class Tripwire {
 public:
  Tripwire(TripwireOptions options, TripwireOutlets outlets);

  // The options in force; SetOptions swaps them atomically (config reload), and a Session
  // takes a copy of the pointer at each MAIL so one transaction sees one set of options.
  std::shared_ptr<const TripwireOptions> options() const { return std::atomic_load(&options_); }
  void SetOptions(TripwireOptions options);
  std::shared_ptr<const Matcher> Snapshot() const { return outlets_.snapshot(); }
  void Emit(Event event) const { outlets_.events(std::move(event)); }
  const TripwireOutlets& outlets() const { return outlets_; }
  // A short reference for replies and events, unique in this process and unlikely to repeat
  // across processes and hosts: 10 upper-case base-32 characters.
  std::string NewTransactionId() const;

  TripwireStats stats() const;
  // Sessions count what they check (relaxed atomics: cheap on the mail path).
  void CountTransaction() const { transactions_.fetch_add(1, std::memory_order_relaxed); }
  void CountRecipientChecked() const { rcpts_checked_.fetch_add(1, std::memory_order_relaxed); }
  void CountHeaderAddressChecked() const {
    header_checked_.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  std::shared_ptr<const TripwireOptions> options_;
  TripwireOutlets outlets_;
  uint64_t seed_;
  mutable std::atomic<uint64_t> counter_{0};
  mutable std::atomic<uint64_t> transactions_{0}, rcpts_checked_{0}, header_checked_{0};
};

class Session {
 public:
  // `source` names the front end in events: "milter" or "policy".
  Session(const Tripwire* tripwire, std::string client_ip, std::string client_name,
          std::string source = "milter");
  ~Session();  // flushes pending events
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Helo(std::string_view helo);
  // `declared_size`: the client's SIZE= (or the MTA's own size), -1 when not given; a
  // Message then gets the bytes of the header fields seen as its size instead (counted
  // only by the milter, which sees every header).
  Verdict Mail(std::string_view sender, std::string_view auth_authen, std::string_view auth_type,
               std::string_view queue_id, int64_t declared_size = -1);
  Verdict Rcpt(std::string_view recipient, std::string_view queue_id);
  // A recipient the MTA accepted after asking about it at RCPT already (the policy
  // listener's end-of-message request): for the detection engine only, not looked up again
  // (a second lookup would record a monitored hit twice).
  void AcceptedRecipient(std::string_view recipient);
  void Header(std::string_view name, std::string_view value);
  Verdict EndOfHeaders();
  Verdict EndOfMessage(std::string_view queue_id);
  void Abort();  // safe to call twice (libmilter may)
  void Close();

  // For tests and logs.
  bool in_scope() const { return in_scope_; }
  const std::string& account() const { return account_; }
  const std::string& transaction_id() const { return txn_id_; }
  // Envelope recipients that were not refused, in order.
  const std::vector<std::string>& accepted_recipients() const { return accepted_; }
  // An envelope recipient hit with action quarantine: the MTA is told at end of message
  // (the policy front end, which has no end of message for a RCPT request, asks here).
  bool quarantine_pending() const { return envelope_quarantine_; }

 private:
  void Flush();
  void ResetTransaction();
  HitAction EffectiveAction() const;
  Verdict ActOn(HitAction action) const;
  Event NewEvent(const std::string& recipient, const char* where, const Match& match,
                 HitAction action) const;
  void CheckHeaderAddress(const Matcher& m, const std::string& address, const char* where);

  const Tripwire* tw_;
  std::shared_ptr<const TripwireOptions> opts_;
  // Connection.
  std::string client_ip_, client_name_, helo_;
  std::string source_;
  // Transaction.
  bool in_scope_ = false;
  bool local_submission_ = false;
  std::string txn_id_, account_, auth_type_, sender_, queue_id_;
  std::vector<std::string> accepted_;
  std::vector<std::pair<std::string, std::string>> to_cc_;  // (where, header value)
  size_t header_bytes_ = 0;
  int64_t declared_size_ = -1;
  int64_t header_fields_bytes_ = 0;  // every header field seen, as "Name: value\r\n"
  bool header_seen_ = false;
  std::string subject_, message_id_, from_header_, to_header_;
  bool envelope_quarantine_ = false;  // a RCPT hit with action quarantine
  bool header_hit_ = false;
  std::vector<Event> pending_;
};

}  // namespace compd

#endif  // COMPD_MTA_TRIPWIRE_H_
