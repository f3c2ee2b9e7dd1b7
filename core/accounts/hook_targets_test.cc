// Hook targets: command-line and URL parsing, running real programs, POSTing to a real
// (minimal) HTTP server on loopback.
#include "compd/accounts/hook_targets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <mutex>
#include <thread>

#include "compd/testutil/redis.h"

namespace compd {
namespace {

using testing::ReadFileOrEmpty;
using testing::TempDir;

// Answers every request with `status`, one connection at a time, and keeps the requests.
class TinyHttpServer {
 public:
  explicit TinyHttpServer(int status) : status_(status) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    REQUIRE(listen(fd_, 8) == 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TinyHttpServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      size_t need = std::string::npos;
      while (need == std::string::npos || req.size() < need) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        size_t end = req.find("\r\n\r\n");
        if (end != std::string::npos && need == std::string::npos) {
          size_t cl = req.find("Content-Length: ");
          size_t length = cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16));
          need = end + 4 + length;
        }
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
      }
      std::string body = status_ == 200 ? "ok" : "ticket system down";
      std::string resp = "HTTP/1.1 " + std::to_string(status_) +
                         " X\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n" + body;
      ssize_t w = write(c, resp.data(), resp.size());
      (void)w;
      close(c);
    }
  }
  int status_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

TEST_CASE("command lines split into words without a shell", "[hooks]") {
  std::vector<std::string> argv;
  REQUIRE(ParseCommandLine("/usr/local/bin/ticket --queue abuse {account}", &argv).ok());
  CHECK(argv == std::vector<std::string>{"/usr/local/bin/ticket", "--queue", "abuse", "{account}"});
  REQUIRE(ParseCommandLine("  /bin/x 'a b'  \"c \\\"d\\\" \\\\e\" f'g'h $HOME;`x` ", &argv).ok());
  CHECK(argv == std::vector<std::string>{"/bin/x", "a b", "c \"d\" \\e", "fgh", "$HOME;`x`"});
  REQUIRE(ParseCommandLine("/bin/x ''", &argv).ok());
  CHECK(argv == std::vector<std::string>{"/bin/x", ""});

  for (const char* bad : {"", "   ", "/bin/x 'open", "/bin/x \"open"}) {
    INFO("'" << bad << "'");
    CHECK(ParseCommandLine(bad, &argv).IsInvalid());
  }
  Status s = ParseCommandLine("ticket.sh {account}", &argv);
  CHECK(s.IsInvalid());
  CHECK(s.message().find("absolute path") != std::string::npos);
}

TEST_CASE("webhook URLs: http(s) only, no credentials", "[hooks]") {
  WebhookUrl u;
  REQUIRE(ParseWebhookUrl("http://127.0.0.1:8080/api/tickets?queue=abuse", &u).ok());
  CHECK(u.scheme == "http");
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == 8080);
  CHECK(u.path == "/api/tickets?queue=abuse");
  CHECK(u.Origin() == "http://127.0.0.1:8080");
  REQUIRE(ParseWebhookUrl("https://helpdesk.example/hook#frag", &u).ok());
  CHECK(u.port == 443);
  CHECK(u.path == "/hook");
  REQUIRE(ParseWebhookUrl("http://[::1]:81", &u).ok());
  CHECK(u.host == "::1");
  CHECK(u.path == "/");
  CHECK(u.Origin() == "http://[::1]:81");

  for (const char* bad : {"ftp://x/", "helpdesk.example/hook", "http:///x", "http://h:0/",
                          "http://h:99999/", "http://h:/", "http://h/a b"}) {
    INFO(bad);
    CHECK(ParseWebhookUrl(bad, &u).IsInvalid());
  }
  Status s = ParseWebhookUrl("https://user:secret@helpdesk.example/", &u);
  CHECK(s.IsInvalid());
  CHECK(s.message().find("secret") == std::string::npos);
}

TEST_CASE("the headers file gives extra headers, with file:line errors", "[hooks]") {
  TempDir tmp;
  std::ofstream(tmp / "h") << "# token for the helpdesk\n\nAuthorization: Bearer abc\r\n"
                              "X-Queue:abuse\n";
  HttpHeaders h;
  REQUIRE(ReadHeadersFile(tmp / "h", &h).ok());
  CHECK(h == HttpHeaders{{"Authorization", "Bearer abc"}, {"X-Queue", "abuse"}});
  std::ofstream(tmp / "bad") << "Authorization: x\nno colon here\n";
  Status s = ReadHeadersFile(tmp / "bad", &h);
  CHECK(s.IsInvalid());
  CHECK(s.message() == tmp / "bad" + ":2: expected 'Name: value'");
  CHECK(ReadHeadersFile(tmp / "missing", &h).IsIoError());
}

TEST_CASE("programs get the input on stdin, a clean environment and no stray descriptors",
          "[hooks]") {
  TempDir tmp;
  // A descriptor without O_CLOEXEC, as libraries leave them.
  int leak = open("/dev/null", O_RDONLY);
  REQUIRE(leak >= 0);
  ProgramResult r;
  std::string script = "cat > " + tmp / "in" + "; env > " + tmp / "env" + "; ls /proc/self/fd > " +
                       tmp / "fds" + "; echo done; echo oops >&2";
  Status s = RunProgram({"/bin/sh", "-c", script}, {"COMPD_ACCOUNT=alice@cust.example"},
                        "{\"a\":1}\n", std::chrono::seconds(5), nullptr, &r);
  close(leak);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(r.exit_code == 0);
  CHECK(r.output == "done\noops\n");
  CHECK(ReadFileOrEmpty(tmp / "in") == "{\"a\":1}\n");
  std::string env = ReadFileOrEmpty(tmp / "env");
  CHECK(env.find("COMPD_ACCOUNT=alice@cust.example") != std::string::npos);
  CHECK(env.find("HOME=") == std::string::npos);
  // stdin, stdout, stderr, and ls' own directory handle.
  CHECK(ReadFileOrEmpty(tmp / "fds") == "0\n1\n2\n3\n");
}

TEST_CASE("program failures say why", "[hooks]") {
  ProgramResult r;
  Status s = RunProgram({"/bin/sh", "-c", "echo 'no such queue' >&2; exit 3"}, {}, "x",
                        std::chrono::seconds(5), nullptr, &r);
  CHECK(s.IsUnavailable());
  CHECK(s.message() == "exit status 3: no such queue");
  CHECK(r.exit_code == 3);

  s = RunProgram({"/nonexistent/ticket"}, {}, "x", std::chrono::seconds(5), nullptr, &r);
  CHECK(s.IsIoError());
  CHECK(s.message() == "cannot run /nonexistent/ticket: No such file or directory");

  // A program that ignores its (large) input is fine, and its exit is what counts.
  s = RunProgram({"/bin/true"}, {}, std::string(1 << 20, 'x'), std::chrono::seconds(5), nullptr,
                 &r);
  CHECK(s.ok());
}

TEST_CASE("a program that overruns its timeout is killed with everything it started", "[hooks]") {
  TempDir tmp;
  ProgramResult r;
  auto t0 = std::chrono::steady_clock::now();
  // The background child keeps stdout open: it must not make us wait either.
  Status s = RunProgram({"/bin/sh", "-c", "sleep 30 & echo $! > " + tmp / "pid" + "; sleep 30"}, {},
                        "", std::chrono::milliseconds(300), nullptr, &r);
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(s.IsUnavailable());
  CHECK(s.message() == "timed out after 300ms; killed");
  CHECK(r.timed_out);
  CHECK(took < std::chrono::seconds(3));
  pid_t grandchild = std::stoi(ReadFileOrEmpty(tmp / "pid"));
  CHECK(testing::WaitUntil([&] { return kill(grandchild, 0) != 0; }, std::chrono::seconds(2)));

  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel = true;
  });
  s = RunProgram(
      {"/bin/sleep", "30"}, {}, "", std::chrono::seconds(30), [&] { return cancel.load(); }, &r);
  canceller.join();
  CHECK(r.cancelled);
  CHECK(s.message() == "cancelled (stopping); killed");
}

TEST_CASE("webhooks: 2xx is success, anything else an error with the answer", "[hooks]") {
  TinyHttpServer ok(200);
  WebhookUrl u;
  REQUIRE(ParseWebhookUrl("http://127.0.0.1:" + std::to_string(ok.port()) + "/t?q=1", &u).ok());
  Status s = PostJson(u, {{"Authorization", "Bearer abc"}}, "{\"a\":1}", std::chrono::seconds(5));
  INFO(s.ToString());
  REQUIRE(s.ok());
  auto reqs = ok.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].rfind("POST /t?q=1 HTTP/1.1\r\n", 0) == 0);
  CHECK(reqs[0].find("Authorization: Bearer abc\r\n") != std::string::npos);
  CHECK(reqs[0].find("Content-Type: application/json\r\n") != std::string::npos);
  CHECK(reqs[0].substr(reqs[0].size() - 7) == "{\"a\":1}");

  TinyHttpServer down(503);
  REQUIRE(ParseWebhookUrl("http://127.0.0.1:" + std::to_string(down.port()) + "/t", &u).ok());
  s = PostJson(u, {}, "{}", std::chrono::seconds(5));
  CHECK(s.IsUnavailable());
  CHECK(s.message().find(": HTTP 503: ticket system down") != std::string::npos);

  REQUIRE(
      ParseWebhookUrl("http://127.0.0.1:" + std::to_string(testing::FreePort()) + "/t", &u).ok());
  s = PostJson(u, {}, "{}", std::chrono::seconds(2));
  CHECK(s.IsUnavailable());
  CHECK(s.message().find("POST http://127.0.0.1:") == 0);
}

}  // namespace
}  // namespace compd
