// EximAssembler: turns Exim mainlog lines into messages. An arrival line (`<=`) with an
// A= account starts one; with `for` (+received_recipients) it is complete at once,
// otherwise its recipients come from its delivery lines (=> -> *> ** ==) until
// `Completed`, joined by the message id.
//
// Not thread-safe: part of one LogReader.
#ifndef COMPD_LOGS_EXIM_ASSEMBLER_H_
#define COMPD_LOGS_EXIM_ASSEMBLER_H_

#include <string>
#include <vector>

#include "compd/logs/assembly.h"
#include "compd/logs/exim_line.h"

namespace compd {

class EximAssembler : public Assembler {
 public:
  // base_names: per file, for Message::origin.
  EximAssembler(MessagePool* pool, Tally* tally, const std::vector<std::string>* base_names)
      : pool_(pool), tally_(tally), base_names_(base_names) {}
  void Line(const LogLine& line) override;
  int64_t OldestPending() const override { return pending_.OldestStart(); }
  void Expire(int64_t time_ms) override;

 private:
  void Arrival(const LogLine& line);
  void Finish(std::string_view id) { pool_->Finish(pending_.Take(id)); }

  MessagePool* pool_;
  Tally* tally_;
  const std::vector<std::string>* base_names_;
  EximLine parsed_;
  PendingMessages pending_;
};

}  // namespace compd

#endif  // COMPD_LOGS_EXIM_ASSEMBLER_H_
