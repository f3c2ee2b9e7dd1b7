#include "compd/mta/policy_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "compd/map/entry.h"
#include "compd/testutil/tripwire.h"

namespace compd {
namespace {

struct Fixture {
  Fixture() : matcher(testing::BuildMatcher({"listed@bad.example"})) {
    TripwireOutlets outlets;
    outlets.snapshot = [this] { return matcher; };
    outlets.events = [this](Event e) {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(e);
    };
    TripwireOptions o;
    o.hostname = "node1";
    tripwire = std::make_unique<Tripwire>(o, outlets);
  }
  size_t event_count() {
    std::lock_guard<std::mutex> lock(mu);
    return events.size();
  }
  std::shared_ptr<const Matcher> matcher;
  std::mutex mu;
  std::vector<Event> events;
  std::unique_ptr<Tripwire> tripwire;
  std::vector<std::string> log;
  std::mutex log_mu;
  std::unique_ptr<PolicyServer> server;
  LogFn LogTo() {
    return [this](LogLevel, const std::string& m) {
      std::lock_guard<std::mutex> lock(log_mu);
      log.push_back(m);
    };
  }
  // A policy server with `o` over this tripwire, listening and serving; it stops before
  // the tripwire goes.
  PolicyServer& Serve(const PolicyServerOptions& o) {
    server = std::make_unique<PolicyServer>(o, LogTo());
    REQUIRE(server->Listen().ok());
    REQUIRE(server->Start(tripwire.get()).ok());
    return *server;
  }
  bool Logged(const std::string& part) {
    std::lock_guard<std::mutex> lock(log_mu);
    for (const auto& l : log) {
      if (l.find(part) != std::string::npos) return true;
    }
    return false;
  }
};

int ConnectTcp(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

int ConnectUnix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

void Send(int fd, const std::string& data) {
  REQUIRE(send(fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size()));
}

// A policy client: one answer at a time, however the bytes arrive.
struct Client {
  explicit Client(int fd) : fd(fd) {}
  ~Client() { close(fd); }
  // The next "action=...\n\n", or what came before EOF or the timeout.
  std::string Next(int timeout_ms = 5000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      size_t end = buf.find("\n\n");
      if (end != std::string::npos) {
        std::string out = buf.substr(0, end + 2);
        buf.erase(0, end + 2);
        return out;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char chunk[4096];
      ssize_t n = recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) {
        eof = true;
        break;
      }
      buf.append(chunk, static_cast<size_t>(n));
    }
    std::string out;
    out.swap(buf);
    return out;
  }
  // True when the server closes the connection (after anything still unread).
  bool Closed(int timeout_ms = 5000) {
    Next(timeout_ms);
    return eof;
  }
  int fd;
  std::string buf;
  bool eof = false;
};

const std::string kListed =
    "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=alice@customer.example\n"
    "client_address=127.0.0.1\nrecipient=listed@bad.example\n\n";
const std::string kFine =
    "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=alice@customer.example\n"
    "client_address=127.0.0.1\nrecipient=friend@fine.example\n\n";

TEST_CASE("policy socket specs", "[policy_server]") {
  PolicySocketSpec s;
  REQUIRE(ParsePolicySocket("inet:10031", &s).ok());
  CHECK(s.kind == PolicySocketSpec::Kind::kInet);
  CHECK(s.address == "127.0.0.1");
  CHECK(s.port == 10031);
  REQUIRE(ParsePolicySocket("inet:0@192.0.2.1", &s).ok());
  CHECK(s.address == "192.0.2.1");
  REQUIRE(ParsePolicySocket("inet6:10031", &s).ok());
  CHECK(s.address == "::1");
  REQUIRE(ParsePolicySocket("unix:/run/compd/policy.sock", &s).ok());
  CHECK(s.kind == PolicySocketSpec::Kind::kUnix);
  CHECK(s.path == "/run/compd/policy.sock");
  for (const char* bad : {"", "10031", "inet:", "inet:99999", "inet:12x", "inet:1@localhost",
                          "inet6:1@127.0.0.1", "unix:relative.sock", "tcp:1"}) {
    INFO(bad);
    Status st = ParsePolicySocket(bad, &s);
    CHECK(st.IsInvalid());
    CHECK(st.message().rfind("policy_socket: '", 0) == 0);
  }
}

TEST_CASE("policy server: many requests on one connection, each answered", "[policy_server]") {
  Fixture f;
  PolicyServerOptions o;
  o.socket = "inet:0";
  PolicyServer& server = f.Serve(o);
  REQUIRE(server.port() > 0);
  CHECK(server.description() == "inet:127.0.0.1:" + std::to_string(server.port()));
  {
    Client c(ConnectTcp(server.port()));
    for (int i = 0; i < 5; ++i) {
      Send(c.fd, kFine);
      CHECK(c.Next() == "action=DUNNO\n\n");
      Send(c.fd, kListed);
      CHECK(c.Next().rfind("action=550 5.7.1 ", 0) == 0);
    }
    // Two requests in one write (pipelined) get two answers in order.
    Send(c.fd, kListed + kFine);
    CHECK(c.Next().rfind("action=550 5.7.1 ", 0) == 0);
    CHECK(c.Next() == "action=DUNNO\n\n");
    // Events are handed over at the end of each request, not of the connection.
    CHECK(f.event_count() == 6);
  }
  server.Stop();
  CHECK(f.events[0].source == "policy");
}

TEST_CASE("policy server: malformed input is answered once and closed", "[policy_server]") {
  Fixture f;
  PolicyServerOptions o;
  o.socket = "inet:0";
  o.limits.max_line_bytes = 1024;
  PolicyServer& server = f.Serve(o);
  {
    Client c(ConnectTcp(server.port()));
    Send(c.fd, kFine + "this is not a policy request\n");
    CHECK(c.Next() == "action=DUNNO\n\n");
    CHECK(c.Next() ==
          "action=451 4.3.0 compd: malformed policy request: request 2, line 1: expected "
          "name=value, got \"this is not a policy request\"\n\n");
    CHECK(c.Closed());
  }
  {
    Client c(ConnectTcp(server.port()));
    Send(c.fd, "request=" + std::string(5000, 'x'));
    CHECK(c.Next().find("line longer than 1024 bytes") != std::string::npos);
    CHECK(c.Closed());
  }
  {
    Client c(ConnectTcp(server.port()));
    Send(c.fd, "request=smtpd_access_policy\nrecipient=a@b\n\n");
    CHECK(c.Next().find("request 1: missing protocol_state") != std::string::npos);
    CHECK(c.Closed());
  }
  {
    // Half-closed before the empty line, as ${readsocket} does after writing its request.
    Client c(ConnectTcp(server.port()));
    Send(c.fd, "request=smtpd_access_policy\nprotocol_state=RCPT\n");
    shutdown(c.fd, SHUT_WR);
    CHECK(c.Next() ==
          "action=451 4.3.0 compd: malformed policy request: request 1 ended without the empty "
          "line that ends a request\n\n");
    CHECK(c.Closed());
  }
  CHECK(f.Logged("line longer than 1024 bytes; closing the connection"));
  // The listener still serves.
  Client c(ConnectTcp(server.port()));
  Send(c.fd, kFine);
  CHECK(c.Next() == "action=DUNNO\n\n");
}

TEST_CASE("policy server: idle and slow connections are closed", "[policy_server]") {
  Fixture f;
  PolicyServerOptions o;
  o.socket = "inet:0";
  o.timeout = std::chrono::milliseconds(300);
  PolicyServer& server = f.Serve(o);
  Client idle(ConnectTcp(server.port()));
  Client slow(ConnectTcp(server.port()));
  Send(slow.fd, "request=smtpd_access_policy\n");
  CHECK(slow.Next(3000).find("request 1 not complete within") != std::string::npos);
  CHECK(slow.Closed(3000));
  CHECK(idle.Closed(3000));
}

TEST_CASE("policy server: connections beyond the limit wait for a free slot", "[policy_server]") {
  Fixture f;
  PolicyServerOptions o;
  o.socket = "inet:0";
  o.max_connections = 1;
  PolicyServer& server = f.Serve(o);
  auto first = std::make_unique<Client>(ConnectTcp(server.port()));
  Send(first->fd, kFine);
  CHECK(first->Next() == "action=DUNNO\n\n");
  Client second(ConnectTcp(server.port()));  // lands in the backlog
  Send(second.fd, kFine);
  CHECK(second.Next(300).empty());
  CHECK(f.Logged("all 1 connections busy"));
  first.reset();
  CHECK(second.Next() == "action=DUNNO\n\n");
}

TEST_CASE("policy server: IPv6 loopback", "[policy_server]") {
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool have_v6 = probe >= 0 && bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (probe >= 0) close(probe);
  if (!have_v6) return;  // no ::1 on this machine (some containers): nothing to test
  Fixture f;
  PolicyServerOptions o;
  o.socket = "inet6:0";
  PolicyServer& server = f.Serve(o);
  CHECK(server.description() == "inet6:[::1]:" + std::to_string(server.port()));
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  a.sin6_port = htons(static_cast<uint16_t>(server.port()));
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  Client c(fd);
  Send(c.fd, kListed);
  CHECK(c.Next().rfind("action=550 5.7.1", 0) == 0);
  REQUIRE(f.event_count() == 1);
  CHECK(f.events[0].client_ip == "127.0.0.1");  // what the request says, not the peer
}

TEST_CASE("policy server: unix socket with its mode, stale socket replaced", "[policy_server]") {
  Fixture f;
  char tmpl[] = "/tmp/compd-policy-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string path = std::string(tmpl) + "/policy.sock";
  PolicyServerOptions o;
  o.socket = "unix:" + path;
  o.socket_mode = "0600";
  {
    // A socket file nobody listens on, as a crashed daemon leaves it.
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    REQUIRE(bind(stale, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    close(stale);
  }
  PolicyServer server(o, f.LogTo());
  REQUIRE(server.Listen().ok());
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  // A second daemon on the same socket is refused.
  PolicyServer other(o, f.LogTo());
  Status s = other.Listen();
  CHECK(s.IsUnavailable());
  CHECK(s.message().find("in use") != std::string::npos);
  REQUIRE(server.Start(f.tripwire.get()).ok());
  Client c(ConnectUnix(path));
  Send(c.fd, kListed);
  CHECK(c.Next().rfind("action=550 5.7.1", 0) == 0);
  // Stop closes open connections and removes the socket.
  server.Stop();
  CHECK(c.Closed(2000));
  CHECK(access(path.c_str(), F_OK) != 0);
  rmdir(tmpl);
}

TEST_CASE("policy server options from the config", "[policy_server]") {
  Config c;
  PolicyServerOptions o;
  REQUIRE(PolicyServerOptions::FromConfig(c, &o).ok());
  CHECK(o.socket.empty());
  CHECK(o.max_connections == 100);
  CHECK(o.timeout == std::chrono::minutes(5));
  REQUIRE(c.Set("policy_socket", "inet:70000", "test").ok());
  Status s = PolicyServerOptions::FromConfig(c, &o);
  CHECK(s.IsInvalid());
  CHECK(s.message().rfind("policy_socket: 'inet:70000'", 0) == 0);
  REQUIRE(c.Set("policy_socket", "unix:/run/compd/policy.sock", "test").ok());
  REQUIRE(c.Set("policy_socket_mode", "0x1", "test").ok());
  s = PolicyServerOptions::FromConfig(c, &o);
  CHECK(s.message() == "policy_socket_mode: '0x1' is not an octal mode");
}

}  // namespace
}  // namespace compd
