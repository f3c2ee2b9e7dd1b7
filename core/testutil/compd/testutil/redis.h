// Test helpers (compd_tests only): a temporary folder, a real redis-server on a free
// loopback port that a test can stop and start again, options to reach it, a thread-safe
// log capture, and WaitUntil for asynchronous effects.
#ifndef COMPD_TESTUTIL_REDIS_H_
#define COMPD_TESTUTIL_REDIS_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "compd/base/log.h"
#include "compd/base/redis.h"

extern char** environ;

namespace compd::testing {

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/compd-test-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) FAIL("mkdtemp " << tmpl << " failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// A port nobody listens on right now (the kernel's choice), for servers to bind and for
// "Redis is not there" cases.
inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  close(fd);
  return ntohs(addr.sin_port);
}

inline bool WaitUntil(const std::function<bool()>& cond,
                      std::chrono::milliseconds limit = std::chrono::seconds(15)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

// A real redis-server in its own folder on 127.0.0.1:<free port>. Stop() and Start()
// keep port and folder, so with `persist` (AOF) the data survives a restart like a
// production Redis does.
class RedisServer {
 public:
  explicit RedisServer(bool persist = false) : persist_(persist), port_(FreePort()) { Start(); }
  ~RedisServer() { Stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  void Start() {
    if (pid_ > 0) return;
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     persist_ ? "yes" : "no",
                                     "--appendfsync",
                                     "always",
                                     "--dir",
                                     dir_.path(),
                                     "--logfile",
                                     dir_ / "redis.log",
                                     "--daemonize",
                                     "no",
                                     "--enable-debug-command",
                                     "local"};  // DEBUG SLEEP
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, "redis-server", nullptr, nullptr, argv.data(), environ);
    if (rc != 0) {
      FAIL("cannot run redis-server (" << std::strerror(rc)
                                       << "): install it with scripts/install-deps.sh or "
                                          "apt-get install redis-server");
    }
    pid_ = pid;
    RedisClient probe(url(), std::chrono::milliseconds(500));
    bool up = WaitUntil(
        [&] {
          RedisReply reply;
          return probe.Command({"PING"}, &reply).ok() && reply.str == "PONG";
        },
        std::chrono::seconds(10));
    if (!up) {
      FAIL("redis-server on port " << port_ << " did not answer; its log:\n"
                                   << ReadFileOrEmpty(dir_ / "redis.log"));
    }
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  int port() const { return port_; }
  RedisUrl url() const {
    RedisUrl u;
    u.host = "127.0.0.1";
    u.port = port_;
    return u;
  }
  const TempDir& dir() const { return dir_; }

 private:
  bool persist_;
  TempDir dir_;
  int port_;
  pid_t pid_ = -1;
};

// Options of a Redis-backed component (any with redis, prefix, redis_timeout, retry_min
// and retry_max) for a test's redis-server: short timeouts and backoff, so that an outage
// costs a test milliseconds.
template <typename Options>
Options TestRedisOptions(const RedisUrl& url, const std::string& prefix = "t:") {
  Options o;
  o.redis = url;
  o.prefix = prefix;
  o.redis_timeout = std::chrono::milliseconds(500);
  o.retry_min = std::chrono::milliseconds(20);
  o.retry_max = std::chrono::milliseconds(200);
  return o;
}

// Collects log lines from any thread.
class LogCapture {
 public:
  LogFn fn() {
    return [this](LogLevel level, const std::string& msg) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(std::string(LogLevelName(level)) + " " + msg);
    };
  }
  bool Contains(const std::string& needle) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& l : lines_) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  std::string All() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string s;
    for (const auto& l : lines_) s += l + "\n";
    return s;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace compd::testing

#endif  // COMPD_TESTUTIL_REDIS_H_
