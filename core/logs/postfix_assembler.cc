#include "compd/logs/postfix_assembler.h"

#include "compd/base/encoded_words.h"
#include "compd/base/text.h"
#include "compd/logs/exim_assembler.h"

namespace compd {

namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// `4Lk0Xb5Xq8z9sWp: rest` or `A1B2C3D4E5: rest`: the queue id, or empty (NOQUEUE too).
std::string_view QueueId(std::string_view text, std::string_view* rest) {
  size_t i = 0;
  while (i < text.size() &&
         ((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'A' && text[i] <= 'Z') ||
          (text[i] >= 'a' && text[i] <= 'z'))) {
    ++i;
  }
  if (i < 5 || i + 1 >= text.size() || text[i] != ':' || text[i + 1] != ' ') return {};
  std::string_view id = text.substr(0, i);
  if (id == "NOQUEUE" || id == "warning" || id == "fatal" || id == "panic" || id == "error") {
    return {};
  }
  *rest = text.substr(i + 2);
  return id;
}

// The value of `name<value>` (name includes `=<`), or false.
bool AngleValue(std::string_view s, std::string_view name, std::string_view* value,
                size_t from = 0) {
  size_t p = s.find(name, from);
  while (p != std::string_view::npos && p > 0 && s[p - 1] != ' ' && s[p - 1] != ',') {
    p = s.find(name, p + 1);  // `orig_to=<` is not `to=<`
  }
  if (p == std::string_view::npos) return false;
  size_t b = p + name.size();
  size_t e = s.find('>', b);
  if (e == std::string_view::npos) return false;
  *value = s.substr(b, e - b);
  return true;
}

// `name=value` in a `, `-separated list.
bool ListValue(std::string_view s, std::string_view name, std::string_view* value) {
  size_t p = 0;
  for (;;) {
    p = s.find(name, p);
    if (p == std::string_view::npos) return false;
    if (p == 0 || s[p - 1] == ' ') break;
    ++p;
  }
  size_t b = p + name.size();
  size_t e = s.find(", ", b);
  *value = s.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b);
  return true;
}

// `name[ip]` or `name[ip]:port`.
bool ParseClient(std::string_view s, std::string_view* name, std::string_view* ip) {
  size_t open = s.find('[');
  size_t close = s.find(']', open == std::string_view::npos ? 0 : open);
  if (open == std::string_view::npos || close == std::string_view::npos) return false;
  *name = s.substr(0, open);
  *ip = s.substr(open + 1, close - open - 1);
  return !ip->empty();
}

bool IsDeliveryAgent(std::string_view d) {
  return d == "smtp" || d == "lmtp" || d == "local" || d == "virtual" || d == "pipe" ||
         d == "error" || d == "discard" || d == "relay" || d == "retry";
}

}  // namespace

void PostfixAssembler::SetSessionKey(const LogLine& line) {
  session_key_.assign(line.host);
  session_key_.push_back(' ');
  session_key_.append(line.pid);
}

void PostfixAssembler::Line(const LogLine& line) {
  size_t slash = line.program.rfind('/');
  if (slash == std::string_view::npos) {
    tally()->Ignored(line.file);  // not Postfix: dovecot, cron, the kernel
    return;
  }
  std::string_view daemon = line.program.substr(slash + 1);
  std::string_view rest;
  std::string_view qid = QueueId(line.text, &rest);
  if (daemon == "smtpd") {
    Smtpd(line, qid, rest);
    return;
  }
  if (qid.empty()) {
    tally()->Ignored(line.file);
    return;
  }
  key_.assign(line.host);
  key_.push_back(' ');
  key_.append(qid);
  PendingMessages::Entry* e = pending().Find(key_);
  if (daemon == "pickup" && StartsWith(rest, "uid=")) {
    tally()->Unauthenticated(line.file);  // sendmail on the host: no account
    return;
  }
  if (e == nullptr) {
    tally()->Ignored(line.file);  // not ours, a retry after we finished, or mail we skip
    return;
  }
  if (daemon == "cleanup") {
    Cleanup(line, rest, e);
  } else if (daemon == "qmgr") {
    Qmgr(line, rest, e);
  } else if (IsDeliveryAgent(daemon)) {
    Delivery(rest, e);
  } else {
    tally()->Ignored(line.file);
  }
}

void PostfixAssembler::Smtpd(const LogLine& line, std::string_view qid, std::string_view rest) {
  SetSessionKey(line);
  std::string_view helo;
  if (qid.empty()) {
    if (StartsWith(line.text, "connect from ")) {
      session_helo_.erase(session_key_);
    } else if (AngleValue(line.text, "helo=<", &helo)) {
      session_helo_[session_key_].assign(helo);
    }
    tally()->Ignored(line.file);
    return;
  }
  key_.assign(line.host);
  key_.push_back(' ');
  key_.append(qid);
  if (!StartsWith(rest, "client=")) {
    PendingMessages::Entry* e = pending().Find(key_);
    if (e != nullptr && AngleValue(rest, "helo=<", &helo)) pool()->at(e->slot).helo.assign(helo);
    tally()->Ignored(line.file);
    return;
  }
  std::string_view name, ip;
  if (!ParseClient(rest.substr(7), &name, &ip)) {
    tally()->NotUnderstood(line.file, line.number, line.raw);
    return;
  }
  if (pending().Find(key_) != nullptr) Finish();  // a queue id used again
  size_t slot = pool()->Acquire();
  pool()->file_of(slot) = line.file;
  Message& m = pool()->at(slot);
  m.time_ms = line.time_ms;
  m.node.assign(line.host);
  m.queue_id.assign(qid);
  m.client_ip.assign(ip);
  m.client_name.assign(name);
  std::string_view user;
  if (ListValue(rest, "sasl_username=", &user)) {
    if (HasControlChar(user)) {
      pool()->Release(slot);
      tally()->NotUnderstood(line.file, line.number, line.raw);
      return;
    }
    m.account.assign(user);
  }
  auto h = session_helo_.find(session_key_);
  if (h != session_helo_.end()) m.helo = h->second;
  m.source.assign("postfix-log");
  SetOriginOf(line, &m.origin);
  pending().Add(key_, slot, line.time_ms);
}

void PostfixAssembler::Cleanup(const LogLine& line, std::string_view rest,
                               PendingMessages::Entry* e) {
  Message& m = pool()->at(e->slot);
  std::string_view v;
  if (StartsWith(rest, "message-id=")) {
    v = rest.substr(11);
    if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = v.substr(1, v.size() - 2);
    m.message_id.assign(v);
    return;
  }
  // `ACTION: header Subject: TEXT from name[ip]; from=<a> to=<b> proto=ESMTP helo=<h>`
  // (a header check: warning, info, reject, ...) or `milter-reject: END-OF-MESSAGE from
  // name[ip]: 5.7.1 text; from=<a> to=<b> proto=ESMTP helo=<h>`.
  size_t detail = rest.find("; from=<");
  size_t colon = rest.find(": ");
  if (detail == std::string_view::npos || colon > detail) {
    tally()->Ignored(line.file);
    return;
  }
  std::string_view action = rest.substr(0, colon);
  std::string_view what = rest.substr(colon + 2, detail - colon - 2);
  if (AngleValue(rest, "helo=<", &v, detail)) m.helo.assign(v);
  constexpr std::string_view kSubject = "header Subject: ";
  size_t from = what.rfind(" from ");
  if (StartsWith(what, kSubject) && from != std::string_view::npos && from >= kSubject.size()) {
    std::string_view raw = what.substr(kSubject.size(), from - kSubject.size());
    // Exim logs the subject decoded: so must this, for the same message to look the same.
    if (raw.find("=?") != std::string_view::npos) {
      m.subject = DecodeEncodedWords(raw);
    } else {
      m.subject.assign(raw);
    }
    CleanSubject(&m.subject);
  }
  if (action == "milter-reject" || action == "reject" || action == "discard") {
    // Refused after DATA: the message was submitted all the same. The line names the
    // sender and one recipient.
    if (AngleValue(rest, "from=<", &v, detail)) m.sender.assign(v);
    if (AngleValue(rest, "to=<", &v, detail)) AddRecipient(v, &m.recipients);
    m.time_ms = line.time_ms;
    e->queued = true;
    Finish();
  }
}

void PostfixAssembler::Qmgr(const LogLine& line, std::string_view rest, PendingMessages::Entry* e) {
  if (rest == "removed") {
    Finish();
    return;
  }
  std::string_view v;
  if (e->queued || !StartsWith(rest, "from=<") || !ListValue(rest, "nrcpt=", &v)) {
    tally()->Ignored(line.file);  // later queue runs, expiry
    return;
  }
  size_t sp = v.find(' ');
  if (!ParseDecimal(v.substr(0, sp), &e->nrcpt)) {
    tally()->NotUnderstood(line.file, line.number, line.raw);
    return;
  }
  Message& m = pool()->at(e->slot);
  if (AngleValue(rest, "from=<", &v)) m.sender.assign(v);
  if (ListValue(rest, "size=", &v)) ParseDecimal(v, &m.size);
  m.time_ms = line.time_ms;  // accepted: end of DATA, as the milter sees it
  e->queued = true;
  if (static_cast<int64_t>(m.recipients.size()) >= e->nrcpt) Finish();
}

void PostfixAssembler::Delivery(std::string_view rest, PendingMessages::Entry* e) {
  std::string_view to;
  if (!AngleValue(rest, "to=<", &to)) return;
  std::string_view orig;
  if (AngleValue(rest, "orig_to=<", &orig)) to = orig;
  Message& m = pool()->at(e->slot);
  AddRecipient(to, &m.recipients);
  if (e->queued && e->nrcpt >= 0 && static_cast<int64_t>(m.recipients.size()) >= e->nrcpt) {
    Finish();
  }
}

void PostfixAssembler::Finish() {
  PendingMessages::Entry* e = pending().Find(key_);
  if (e == nullptr) return;
  bool queued = e->queued;
  size_t slot = pending().Take(key_);
  Message& m = pool()->at(slot);
  if (!queued) {
    pool()->Release(slot);  // the client went away before the end of DATA: no message
  } else if (m.account.empty()) {
    tally()->Unauthenticated(pool()->file_of(slot));
    pool()->Release(slot);
  } else {
    pool()->Finish(slot);
  }
}

}  // namespace compd
