// Fuzz target: LogReader (Exim mainlog and Postfix maillog lines, joined into messages)
// on arbitrary bytes. The first byte picks the format (auto, exim, postfix); the rest is
// split at the first form feed into two files read together, so the merge of several
// files and messages spanning both are exercised too. The files are memfds, read through
// /proc/self/fd (no temporary files).
//
// Besides "no crash, no read past the input" it checks what replay relies on:
//  - messages come out in non-decreasing time, each with an account free of control
//    characters, a source of "exim-log" or "postfix-log" and an origin `name:line`;
//  - every line is counted once (lines = the input's lines), messages counted = returned,
//    samples bounded by max_samples (plus read errors, which memfds do not have);
//  - no field holds a newline (one log line never becomes two), no recipient is empty,
//    a subject has no control character.
#include "compd/logs/log_reader.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"

namespace {

using compd_fuzz::Escaped;
using compd_fuzz::HasControl;

int Memfd(const char* name, std::string_view contents) {
  const int fd = memfd_create(name, MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0);
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t w = write(fd, contents.data() + done, contents.size() - done);
    FUZZ_CHECK(w > 0);
    done += static_cast<size_t>(w);
  }
  return fd;
}

uint64_t Lines(std::string_view s) {
  if (s.empty()) return 0;
  return compd_fuzz::Count(s, '\n') + (s.back() == '\n' ? 0 : 1);
}

bool HasLineEnd(std::string_view s) { return s.find('\n') != std::string_view::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  compd::LogReaderOptions options;
  options.format = static_cast<compd::LogFormat>(data[0] % 3);
  options.reference_ms = 1796385600000;
  options.max_samples = 3;
  const std::string_view in = compd_fuzz::AsText(data + 1, size - 1);
  const size_t ff = in.find('\f');
  const std::string_view a = in.substr(0, ff);
  const std::string_view b = ff == std::string_view::npos ? std::string_view() : in.substr(ff + 1);
  const int fa = Memfd("a", a);
  const int fb = Memfd("b", b);
  std::vector<std::string> paths = {"/proc/self/fd/" + std::to_string(fa),
                                    "/proc/self/fd/" + std::to_string(fb)};
  std::unique_ptr<compd::LogReader> reader;
  FUZZ_CHECK(compd::LogReader::Open(paths, options, &reader).ok());
  compd::Message m;
  uint64_t n = 0;
  int64_t last = INT64_MIN;
  while (reader->Next(&m)) {
    ++n;
    FUZZ_CHECK_MSG(m.time_ms >= last, std::to_string(m.time_ms) + " < " + std::to_string(last));
    last = m.time_ms;
    FUZZ_CHECK_MSG(!m.account.empty() && !HasControl(m.account), Escaped(m.account));
    FUZZ_CHECK_MSG(m.source == "exim-log" || m.source == "postfix-log", Escaped(m.source));
    FUZZ_CHECK_MSG(m.origin.find(':') != std::string::npos, Escaped(m.origin));
    for (const std::string* f : {&m.client_ip, &m.client_name, &m.helo, &m.sender, &m.subject,
                                 &m.message_id, &m.queue_id, &m.node}) {
      FUZZ_CHECK_MSG(!HasLineEnd(*f), Escaped(*f));
    }
    FUZZ_CHECK_MSG(!HasControl(m.subject), Escaped(m.subject));
    for (const std::string& r : m.recipients) {
      FUZZ_CHECK_MSG(!r.empty() && !HasLineEnd(r), Escaped(r));
    }
  }
  const compd::LogReadStats& st = reader->stats();
  FUZZ_CHECK(reader->status().ok());
  FUZZ_CHECK_MSG(st.total.lines == Lines(a) + Lines(b),
                 std::to_string(st.total.lines) + " lines counted");
  FUZZ_CHECK(st.total.messages == n);
  FUZZ_CHECK(st.samples.size() <= options.max_samples);
  FUZZ_CHECK(st.files.size() == 2);
  FUZZ_CHECK(st.files[0].counts.lines + st.files[1].counts.lines == st.total.lines);
  reader.reset();
  close(fa);
  close(fb);
  return 0;
}
