// Policy: Postfix's policy delegation protocol (SMTPD_POLICY_README) as compd speaks it,
// and what one request means to the Tripwire. This is how Exim (through ${readsocket})
// and Postfix (through check_policy_service) reach the same checks as the milter.
//
// Wire format. A request is `name=value` lines ending in LF (a CR before the LF is
// dropped), ended by an empty line; the answer is `action=...` and an empty line. One
// connection may carry any number of requests, one after the other. Names are split
// from values at the first `=`; values are taken byte for byte, except the `compd_*`
// attributes, which are in the encoding Exim's ${escape:...} produces (see
// DecodeEximEscapes) so that header text with folded lines fits on one line.
//
// Bounds (PolicyLimits): a line, the number of attributes and the bytes of one request
// are capped; so are empty names, lines without `=`, NUL bytes and repeated names (a
// repeated name is how an unescaped value would smuggle a second `sasl_username=`).
// Anything outside them is malformed: the parser stops with kInvalid naming the request
// and line, and the caller answers once and closes the connection.
//
// Attributes read (others are ignored, as the protocol requires):
//   request=smtpd_access_policy (required), protocol_state (required),
//   sasl_username (the account), sasl_method, client_address, client_name, helo_name,
//   sender, recipient, queue_id, size, and for header checks
//   compd_to, compd_cc (To/Cc header text), compd_subject, compd_message_id, compd_from,
//   compd_rcpts (comma-separated envelope recipients, for local submissions where no
//   per-recipient request is possible, e.g. Exim's acl_not_smtp), and
//   compd_accepted_rcpts (the recipients an SMTP session got accepted after its RCPT
//   requests: the detection engine's and volume counters' input, not looked up again).
//
// Thread-safety: PolicyParser belongs to one connection (not thread-safe).
// EvaluatePolicyRequest and the free functions are safe from any thread: each request
// is its own Session (its own transaction, events handed over when it returns) on the
// shared, thread-safe Tripwire.
#ifndef COMPD_MTA_POLICY_H_
#define COMPD_MTA_POLICY_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "compd/base/status.h"
#include "compd/mta/tripwire.h"

namespace compd {

struct PolicyLimits {
  // A line, LF included. Large enough for Exim's $bh_to: (up to 64 KiB of header text)
  // after ${escape:} has turned every 8-bit byte into four characters.
  size_t max_line_bytes = 256 * 1024;
  // Postfix sends about 30 attributes; Exim sends what its ACL writes.
  size_t max_attributes = 128;
  // One request, every line and the empty line included.
  size_t max_request_bytes = 512 * 1024;
};

struct PolicyRequest {
  std::vector<std::pair<std::string, std::string>> attributes;  // in order, names unique

  // The value of `name`; empty when absent (the protocol sends empty values too).
  std::string_view Get(std::string_view name) const;
  bool Has(std::string_view name) const;
};

// Splits a byte stream into requests. Feed it what the socket gave; it consumes up to
// the end of one request at a time, so the caller answers each before reading on.
class PolicyParser {
 public:
  explicit PolicyParser(PolicyLimits limits = {});

  // Consumes a prefix of `data` (*consumed bytes). When that prefix ends a request,
  // *complete is true and TakeRequest() returns it; call Feed again with the rest.
  // kInvalid for malformed or oversized input, with a message such as
  // "request 2, line 5: no '=' in \"hello\"". After an error the parser stays failed.
  Status Feed(std::string_view data, size_t* consumed, bool* complete);
  // The request just completed; the parser is ready for the next one.
  PolicyRequest TakeRequest();

  // True when part of a request has been read (EOF now means a truncated request).
  bool mid_request() const { return request_bytes_ > 0; }
  // Requests completed so far.
  size_t requests() const { return request_no_ - 1; }

 private:
  Status Fail(std::string message);
  Status EndLine();

  PolicyLimits limits_;
  std::string line_;
  PolicyRequest current_;
  size_t request_bytes_ = 0;
  size_t line_no_ = 0;     // within the current request, 1-based once a line starts
  size_t request_no_ = 1;  // the request being read, 1-based
  bool complete_ = false;
  bool failed_ = false;
};

// Postfix's own requests name the recipients only at RCPT; its END-OF-MESSAGE request
// (smtpd_end_of_data_restrictions) names one at most, and no compd_* attribute. One
// connection carries one smtpd process's requests, one message at a time, tagged with
// `instance`: this remembers the recipients the RCPT requests of the message in progress
// got through, so its END-OF-MESSAGE request reaches the detection engine and the volume
// counters as compd_accepted_rcpts, as Exim's DATA request does. Belongs to one connection
// (not thread-safe).
class PostfixMessageMemory {
 public:
  // Before evaluating: a Postfix END-OF-MESSAGE request (it carries `instance`) without
  // compd_* attributes gets compd_accepted_rcpts with the recipients remembered for its
  // instance (or its own `recipient`); the memory is then cleared.
  void Prepare(PolicyRequest* request);
  // After answering: a RCPT request's recipient is remembered with its answer.
  void Answered(const PolicyRequest& request, std::string_view action);
  // Before evaluating: true, with the earlier answer, for a RCPT request of the message in
  // progress whose recipient was answered already. With smtpd_delay_reject = yes (Postfix's
  // default) a policy service in smtpd_sender_restrictions and smtpd_recipient_restrictions
  // is asked twice per recipient at RCPT; evaluated twice, a monitored hit was two events.
  bool Repeated(const PolicyRequest& request, std::string* action) const;

 private:
  // The answer the message in progress got for `recipient`, or null.
  const std::string* AnswerFor(std::string_view recipient) const;

  std::string instance_;
  // Recipient and action, in the order first asked: the accepted recipients are those
  // whose answer let them through.
  std::vector<std::pair<std::string, std::string>> answers_;
};

// Undoes Exim's ${escape:...}: `\n` `\r` `\t` `\b` `\v` `\f` and `\ooo` (three octal
// digits) become the byte they name. Exim leaves a backslash itself unescaped, so a
// backslash before anything else stays as it is.
std::string DecodeEximEscapes(std::string_view text);

// The action text (after "action=") for a verdict: "DUNNO" for continue/accept (never
// "OK", which in Postfix would skip every later restriction), "550 5.7.1 text",
// "451 4.7.1 text", "DISCARD text", "HOLD text". `ref` names the transaction in the
// DISCARD text.
std::string PolicyAction(const Verdict& verdict, std::string_view ref);

// "action=" + action + "\n\n", with CR, LF and NUL removed from `action`.
std::string FormatPolicyReply(std::string_view action);

// The answer to one request, checked the way the milter checks a transaction:
//   protocol_state MAIL: scope and account gate only; a locked account gets the lock
//     reply (as compd-milter's MAIL FROM), anything else DUNNO.
//   protocol_state RCPT: `recipient` as an envelope recipient (MAIL first: scope,
//     account gate); a hit answers per the configured action, quarantine as HOLD.
//   DATA or END-OF-MESSAGE with compd_* attributes: compd_rcpts as envelope recipients,
//     then compd_to / compd_cc as To/Cc headers, the whole message answered at once; a
//     message that passes goes to the detection engine (observe outlet) with
//     compd_rcpts and compd_accepted_rcpts as its recipients, and `size` when non-zero.
//   Anything else, and DATA/END-OF-MESSAGE without compd_* attributes: DUNNO (the
//     listener gives Postfix's END-OF-MESSAGE requests compd_accepted_rcpts first, see
//     PostfixMessageMemory).
// Out-of-scope requests (no sasl_username, client not in trusted_networks) get DUNNO.
// Events carry source "policy" and are handed to the Tripwire's sink before this returns.
// kInvalid (and no action) when `request` is not smtpd_access_policy or protocol_state
// is missing: a client that gets these wrong has a configuration error worth seeing.
Status EvaluatePolicyRequest(const Tripwire& tripwire, const PolicyRequest& request,
                             std::string* action);

}  // namespace compd

#endif  // COMPD_MTA_POLICY_H_
