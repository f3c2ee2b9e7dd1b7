#include "compd/base/thread_guard.h"

#include <pthread.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::LogCapture;
using testing::WaitUntil;

constexpr LoopGuardOptions kQuick{std::chrono::milliseconds(5), std::chrono::milliseconds(20)};

TEST_CASE("RunGuarded logs what the body throws and reports it", "[thread_guard]") {
  LogCapture log;
  CHECK(RunGuarded("writer", log.fn(), [] {}));
  CHECK(log.All().empty());
  CHECK_FALSE(RunGuarded("writer", log.fn(), [] { throw std::bad_alloc(); }));
  CHECK(log.Contains("error writer: unexpected error: std::bad_alloc"));
  CHECK_FALSE(RunGuarded("writer", log.fn(), [] { throw 42; }));
  CHECK(log.Contains("writer: unexpected error: an exception that is not a std::exception"));
  // Neither a throwing log function nor a missing one lets the exception out.
  LogFn throwing = [](LogLevel, const std::string&) { throw std::runtime_error("log full"); };
  CHECK_FALSE(RunGuarded("writer", throwing, [] { throw std::runtime_error("x"); }));
  CHECK_FALSE(RunGuarded("writer", nullptr, [] { throw std::runtime_error("x"); }));
}

TEST_CASE("a loop thread that throws runs again after a backoff", "[thread_guard]") {
  LogCapture log;
  int runs = 0;
  // On a thread of its own, as in the daemon: an escaped exception would end the process.
  std::thread t([&] {
    RunLoopGuarded(
        "volume", log.fn(),
        [&] {
          if (++runs < 3) throw std::bad_alloc();
        },
        [] { return false; }, kQuick);
  });
  t.join();
  CHECK(runs == 3);
  CHECK(log.Contains("error volume: unexpected error: std::bad_alloc; running again in 5ms"));
  CHECK(log.Contains("error volume: unexpected error: std::bad_alloc; running again in 10ms"));
}

TEST_CASE("a loop thread that keeps throwing still stops when asked", "[thread_guard]") {
  LogCapture log;
  std::atomic<bool> stop{false};
  std::atomic<int> runs{0};
  std::thread t([&] {
    RunLoopGuarded(
        "hooks", log.fn(),
        [&] {
          ++runs;
          throw std::runtime_error("always");
        },
        [&] { return stop.load(); },
        LoopGuardOptions{std::chrono::milliseconds(10000), std::chrono::milliseconds(10000)});
  });
  REQUIRE(WaitUntil([&] { return runs.load() == 1; }, std::chrono::seconds(2)));
  const auto asked = std::chrono::steady_clock::now();
  stop = true;
  t.join();  // well within the 10 s backoff
  CHECK(std::chrono::steady_clock::now() - asked < std::chrono::seconds(2));
  CHECK(runs.load() == 2);  // one last run, so a stop still drains
  CHECK(log.Contains("hooks: unexpected error: always; running again in 10s"));
}

TEST_CASE("a thread that cannot carry on asks the daemon to stop", "[thread_guard]") {
  LogCapture log;
  Status fatal;
  RunOrStop(
      "http", log.fn(), [] { throw std::runtime_error("accept loop broke"); },
      [&](const Status& s) { fatal = s; });
  CHECK(fatal.code() == Status::Code::kInternal);
  CHECK(fatal.message() == "http: unexpected error: accept loop broke");
  CHECK(log.Contains("error http: unexpected error: accept loop broke; stopping"));

  bool called = false;
  RunOrStop(
      "http", log.fn(), [] {}, [&](const Status&) { called = true; });
  CHECK_FALSE(called);
}

TEST_CASE("a loop thread carries its name, as top -H and ps -L show it", "[thread_guard]") {
  std::string seen[2];
  const char* names[2] = {"recorder", "retro requests"};
  for (int i = 0; i < 2; ++i) {
    std::thread t = StartLoopThread(
        names[i], nullptr,
        [&seen, i] {
          char buf[64] = {};
          pthread_getname_np(pthread_self(), buf, sizeof(buf));
          seen[i] = buf;
        },
        [] { return false; });
    t.join();
  }
  CHECK(seen[0] == "compd recorder");
  CHECK(seen[1] == "compd retro req");  // the kernel keeps 15 characters
}

}  // namespace
}  // namespace compd
