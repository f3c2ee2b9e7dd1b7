// Message: the facts of one authenticated submission, as the detection engine consumes
// them, whoever saw it: compd-milter (libmilter callbacks), the policy listener (Exim,
// Postfix check_policy_service) or a reader of MTA logs (mapctl replay, history import).
// One struct for all three is what lets the same engine code run live and over logs.
//
// Plain values; safe from any thread. A source fills what it knows and leaves the rest
// empty (or -1 for numbers): logs have no From header, the policy protocol has no body
// size at RCPT time, and so on. Consumers must treat an empty field as "unknown", never
// as "empty in the message".
#ifndef COMPD_EVENTS_MESSAGE_H_
#define COMPD_EVENTS_MESSAGE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace compd {

struct Message {
  int64_t time_ms = 0;      // when the MTA accepted it (Unix ms, UTC); the log's clock in replay
  std::string node;         // host name of the MTA node that saw it
  std::string queue_id;     // MTA queue id (Postfix) or message id (Exim 1nh9qH-0008OE-RW)
  std::string account;      // the authenticated login, as the client gave it
  std::string client_ip;    // IPv4 or IPv6 text, no brackets
  std::string client_name;  // reverse DNS name, "unknown" or empty
  std::string helo;         // HELO/EHLO argument as given
  std::string sender;       // envelope sender (MAIL FROM), without <>
  std::vector<std::string> recipients;  // envelope recipients, in the order given
  std::string from_header;              // raw From: header value (empty when unknown)
  std::string to_header;                // raw To: header value (empty when unknown)
  std::string subject;                  // decoded Subject when known (Exim's T="...")
  int64_t size = -1;                    // message size in bytes, -1 when unknown
  std::string message_id;               // Message-ID header, without <>
  std::string source;                   // "milter" | "policy" | "exim-log" | "postfix-log"
  std::string origin;                   // where in a log it was read: "mainlog:88123" (logs only)
};

}  // namespace compd

#endif  // COMPD_EVENTS_MESSAGE_H_
