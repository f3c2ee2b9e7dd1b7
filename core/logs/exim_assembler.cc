#include "compd/logs/exim_assembler.h"

#include <cstdint>

#include "compd/base/encoded_words.h"

namespace compd {

void EximAssembler::Line(const LogLine& line) {
  ParseEximLine(line.text, &parsed_);
  switch (parsed_.kind) {
    case EximLineKind::kArrival:
      Arrival(line);
      return;
    case EximLineKind::kDelivery:
    case EximLineKind::kCompleted: {
      PendingMessages::Entry* e = pending().Find(parsed_.id);
      if (e == nullptr) {
        tally()->Ignored(line.file);
        return;
      }
      if (parsed_.kind == EximLineKind::kDelivery) {
        AddRecipient(parsed_.recipient, &pool()->at(e->slot).recipients);
      } else {
        Finish(parsed_.id);
      }
      return;
    }
    case EximLineKind::kOther:
      tally()->Ignored(line.file);
      return;
    case EximLineKind::kBad:
      tally()->NotUnderstood(line.file, line.number, line.raw);
      return;
  }
}

void EximAssembler::Arrival(const LogLine& line) {
  const EximArrival& a = parsed_.arrival;
  if (a.authenticator.empty() || a.auth_id.empty()) {
    tally()->Unauthenticated(line.file);
    return;
  }
  size_t slot = pool()->Acquire();
  pool()->file_of(slot) = line.file;
  Message& m = pool()->at(slot);
  m.time_ms = line.time_ms;
  m.queue_id.assign(parsed_.id);
  AssignEximValue(a.auth_id, a.auth_id_quoted, &m.account);
  if (HasControlChar(m.account)) {
    pool()->Release(slot);
    tally()->NotUnderstood(line.file, line.number, line.raw);
    return;
  }
  m.client_ip.assign(a.client_ip);
  m.client_name.assign(a.client_name);
  m.helo.assign(a.helo);
  m.sender.assign(a.sender);
  m.size = a.size;
  m.message_id.assign(a.message_id);
  AssignEximValue(a.subject, a.subject_quoted, &m.subject);
  CleanSubject(&m.subject);  // Exim logs it decoded; \ooo escapes print as blanks
  m.source.assign("exim-log");
  SetOriginOf(line, &m.origin);
  if (a.has_for) {
    std::string_view r = a.recipients;
    while (!r.empty()) {
      size_t sp = r.find(' ');
      std::string_view addr = r.substr(0, sp);
      if (!addr.empty()) m.recipients.emplace_back(addr);
      if (sp == std::string_view::npos) break;
      r.remove_prefix(sp + 1);
    }
    pool()->Finish(slot);
    return;
  }
  if (pending().Find(parsed_.id) != nullptr) Finish(parsed_.id);  // the same id twice
  pending().Add(parsed_.id, slot, line.time_ms);
}

}  // namespace compd
