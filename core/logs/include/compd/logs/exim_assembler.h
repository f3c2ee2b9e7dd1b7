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
  using Assembler::Assembler;
  void Line(const LogLine& line) override;

 private:
  void FinishPending(const std::string& key) override { Finish(key); }
  void Arrival(const LogLine& line);
  void Finish(std::string_view id) { pool()->Finish(pending().Take(id)); }

  EximLine parsed_;
};

}  // namespace compd

#endif  // COMPD_LOGS_EXIM_ASSEMBLER_H_
