// PostfixAssembler: turns Postfix maillog lines into messages, joined by host and queue
// id: smtpd `client=..., sasl_username=` starts one; cleanup gives the Message-ID (and
// the Subject when a header_checks WARN/INFO rule logs it); qmgr `from=, size=, nrcpt=`
// marks it accepted; the delivery agents' `to=` lines give the recipients until nrcpt are
// known or qmgr says `removed`. A message rejected after DATA (milter-reject, a header
// check) is finished from the cleanup line, which names one recipient. The HELO name is
// not in Postfix's usual lines: it is taken from any line of the same smtpd session that
// logs `helo=<...>` (a warning or a reject).
//
// Any syslog_name works (postfix/submission/smtpd, postfix-out/smtp): the daemon is the
// last part of the program name. Lines of other programs are counted as ignored.
//
// Not thread-safe: part of one LogReader.
#ifndef COMPD_LOGS_POSTFIX_ASSEMBLER_H_
#define COMPD_LOGS_POSTFIX_ASSEMBLER_H_

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "compd/logs/assembly.h"

namespace compd {

class PostfixAssembler : public Assembler {
 public:
  using Assembler::Assembler;
  void Line(const LogLine& line) override;

 private:
  void FinishPending(const std::string& key) override {
    key_ = key;
    Finish();
  }
  void Smtpd(const LogLine& line, std::string_view qid, std::string_view rest);
  void Cleanup(const LogLine& line, std::string_view rest, PendingMessages::Entry* e);
  void Qmgr(const LogLine& line, std::string_view rest, PendingMessages::Entry* e);
  void Delivery(std::string_view rest, PendingMessages::Entry* e);
  // key_ holds host and queue id.
  void Finish();
  void SetSessionKey(const LogLine& line);

  std::string key_;
  std::string session_key_;
  // host and smtpd pid -> the HELO name last logged in that smtpd's current session.
  std::unordered_map<std::string, std::string> session_helo_;
};

}  // namespace compd

#endif  // COMPD_LOGS_POSTFIX_ASSEMBLER_H_
