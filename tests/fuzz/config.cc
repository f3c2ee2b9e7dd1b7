// Fuzz target: the config file parser (Config::LoadFile), through a real file since that is
// the only way in: the input is written to a temporary file, rewritten for every run.
//
// Properties checked:
//  - a bad file is kInvalid and the message names the file and line ("PATH:N: ...");
//  - a good file leaves every setting valid and normalised: setting a value to what the
//    getter returns is accepted and changes nothing, and a file written from the loaded
//    values loads to the same values (what --print-config shows is what a file would give);
//  - Dump works for every scope.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "compd/base/settings.h"
#include "fuzz_check.h"

namespace {

using compd_fuzz::Escaped;

// One temporary file for the process, in $TMPDIR (scripts/fuzz.sh points it into the build
// folder), rewritten for every input.
class TempFile {
 public:
  TempFile() {
    const char* dir = std::getenv("TMPDIR");
    // Not "compd-*": test harnesses clean those up behind our back.
    path_ = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/fuzz-config-XXXXXX";
    const int fd = mkstemp(path_.data());
    FUZZ_CHECK_MSG(fd >= 0, "cannot create " + path_);
    close(fd);
  }

  void Write(std::string_view contents) const {
    const int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK_MSG(fd >= 0, "cannot open " + path_);
    size_t done = 0;
    while (done < contents.size()) {
      const ssize_t w = write(fd, contents.data() + done, contents.size() - done);
      FUZZ_CHECK_MSG(w > 0, "cannot write " + path_);
      done += static_cast<size_t>(w);
    }
    close(fd);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const TempFile& File() {
  // Leaked on purpose: libFuzzer ends with exit(), and the file must outlive every input.
  static const TempFile* file = new TempFile();
  static const bool cleanup = std::atexit([] { unlink(File().path().c_str()); }) == 0;
  (void)cleanup;
  return *file;
}

std::string Values(const compd::Config& c) {
  std::string out;
  for (const compd::SettingDef& d : compd::Settings()) {
    out += d.name;
    out += " = ";
    out += c.GetString(d.name);
    out += '\n';
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const TempFile& file = File();
  file.Write(compd_fuzz::AsText(data, size));

  compd::Config c;
  const compd::Status s = c.LoadFile(file.path());
  if (!s.ok()) {
    FUZZ_CHECK_MSG(s.IsInvalid(), s.ToString());
    FUZZ_CHECK_MSG(s.message().rfind(file.path() + ":", 0) == 0, Escaped(s.message()));
    return 0;
  }

  for (const compd::SettingDef& d : compd::Settings()) {
    const std::string v = c.GetString(d.name);
    compd::Config copy = c;
    const compd::Status again = copy.Set(d.name, v, "fuzz");
    FUZZ_CHECK_MSG(again.ok(), std::string(d.name) + " = " + Escaped(v) + ": " + again.ToString());
    FUZZ_CHECK_MSG(copy.GetString(d.name) == v, std::string(d.name) + ": " + Escaped(v) + " -> " +
                                                    Escaped(copy.GetString(d.name)));
  }

  const std::string values = Values(c);
  file.Write(values);
  compd::Config reloaded;
  const compd::Status s2 = reloaded.LoadFile(file.path());
  FUZZ_CHECK_MSG(s2.ok(), Escaped(values) + ": " + s2.ToString());
  FUZZ_CHECK_MSG(Values(reloaded) == values, Escaped(values) + " -> " + Escaped(Values(reloaded)));

  (void)c.Dump(compd::kScopeShared);
  (void)c.Dump(compd::kScopeShared | compd::kScopeMilter);
  return 0;
}
