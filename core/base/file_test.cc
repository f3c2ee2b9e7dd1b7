#include "compd/base/file.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "compd/testutil/redis.h"

namespace compd {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileOrEmpty;

// The folder of a testing::TempDir, with the names in it.
class TempDir : public testing::TempDir {
 public:
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path())) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
};

std::string Slurp(const std::string& path) { return ReadFileOrEmpty(path); }

mode_t ModeOf(const std::string& path) {
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

TEST_CASE("WriteFileAtomically writes the contents with the mode asked for", "[file]") {
  TempDir dir;
  const std::string path = dir / "m.map";
  REQUIRE(WriteFileAtomically(path, "one\n").ok());
  CHECK(Slurp(path) == "one\n");
  CHECK(ModeOf(path) == 0644);

  const mode_t old_umask = umask(0077);  // the mode must not depend on the umask
  Status st = WriteFileAtomically(path, "two\n", 0640);
  umask(old_umask);
  REQUIRE(st.ok());
  CHECK(Slurp(path) == "two\n");
  CHECK(ModeOf(path) == 0640);
  CHECK(dir.Names() == std::vector<std::string>{"m.map"});  // no temporary file left
}

TEST_CASE("WriteFileAtomically leaves the old file alone on failure", "[file]") {
  TempDir dir;

  SECTION("the path is a folder") {
    const std::string path = dir / "sub";
    REQUIRE(fs::create_directory(path));
    Status st = WriteFileAtomically(path, "x\n");
    REQUIRE(st.IsIoError());
    CHECK(st.message() == "cannot replace " + path + ": Is a directory");
    CHECK(fs::is_directory(path));
    CHECK(dir.Names() == std::vector<std::string>{"sub"});
  }

  SECTION("the folder does not exist") {
    const std::string path = dir / "missing/m.map";
    Status st = WriteFileAtomically(path, "x\n");
    REQUIRE(st.IsIoError());
    CHECK(st.message() ==
          "cannot create a temporary file beside " + path + ": No such file or directory");
  }

  SECTION("writing fails half-way") {
    const std::string path = dir / "m.map";
    REQUIRE(WriteFileAtomically(path, "old contents\n").ok());
    // A file size limit makes write() fail with EFBIG after a few bytes.
    struct rlimit old_limit;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    struct rlimit small = old_limit;
    small.rlim_cur = 4;
    auto old_handler = signal(SIGXFSZ, SIG_IGN);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    Status st = WriteFileAtomically(path, std::string(100, 'n'));
    setrlimit(RLIMIT_FSIZE, &old_limit);
    signal(SIGXFSZ, old_handler);
    REQUIRE(st.IsIoError());
    CHECK(st.message() == "cannot write " + path + ": File too large");
    CHECK(Slurp(path) == "old contents\n");
    CHECK(dir.Names() == std::vector<std::string>{"m.map"});
  }
}

TEST_CASE("WriteFileAtomically is not stopped by a temporary file a crash left behind", "[file]") {
  TempDir dir;
  const std::string path = dir / "locked-accounts.json";
  // Whatever a crashed writer left under a temporary-looking name, even a folder.
  REQUIRE(fs::create_directory(path + ".tmp"));
  REQUIRE(WriteFileAtomically(path, "{}\n", 0600).ok());
  CHECK(Slurp(path) == "{}\n");
  CHECK(ModeOf(path) == 0600);
}

TEST_CASE("ReadFile keeps a missing file apart from one it cannot read", "[file]") {
  TempDir dir;
  std::string out = "stale";
  Status st = ReadFile(dir / "nope", &out);
  CHECK(st.IsNotFound());
  CHECK(out.empty());
  st = ReadFile(dir.path(), &out);
  REQUIRE(st.IsIoError());
  CHECK(st.message() == "cannot read " + dir.path() + ": Is a directory");
  REQUIRE(WriteFileAtomically(dir / "f", std::string(200000, 'x')).ok());
  REQUIRE(ReadFile(dir / "f", &out).ok());
  CHECK(out == std::string(200000, 'x'));
}

TEST_CASE("DirName", "[file]") {
  CHECK(DirName("a.json") == ".");
  CHECK(DirName("/a.json") == "/");
  CHECK(DirName("/var/spool/compd/a.json") == "/var/spool/compd");
}

}  // namespace
}  // namespace compd
