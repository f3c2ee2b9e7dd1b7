#include "compd/base/socket.h"

#include <catch2/catch.hpp>
#include <string>

namespace compd {
namespace {

TEST_CASE("socket specs: the milter's reading", "[socket]") {
  const SocketRules milter = SocketRules::Libmilter();
  SocketSpec s;
  REQUIRE(ParseSocketSpec("socket", "inet:8890@127.0.0.1", milter, &s).ok());
  CHECK(s.kind == SocketSpec::Kind::kInet);
  CHECK(s.port == 8890);
  CHECK(s.address == "127.0.0.1");
  REQUIRE(ParseSocketSpec("socket", "inet:8890@mail.example", milter, &s).ok());
  CHECK(s.address == "mail.example");
  REQUIRE(ParseSocketSpec("socket", "/run/compd/milter.sock", milter, &s).ok());
  CHECK(s.kind == SocketSpec::Kind::kUnix);
  CHECK(s.path == "/run/compd/milter.sock");
  REQUIRE(ParseSocketSpec("socket", "local:/run/m.sock", milter, &s).ok());
  CHECK(s.path == "/run/m.sock");

  Status st = ParseSocketSpec("socket", "inet:8890", milter, &s);
  CHECK(st.IsInvalid());
  CHECK(st.message() ==
        "socket: 'inet:8890': no address: this would listen on every interface; write "
        "@0.0.0.0 to mean it");
  // Once an abort: stol threw std::out_of_range.
  st = ParseSocketSpec("socket", "inet:99999999999999999999@127.0.0.1", milter, &s);
  CHECK(st.IsInvalid());
  CHECK(st.message() ==
        "socket: 'inet:99999999999999999999@127.0.0.1': port must be a number from 1 to 65535");
  for (const char* bad :
       {"", "inet:0@127.0.0.1", "inet:65536@127.0.0.1", "inet:-1@127.0.0.1", "inet:+1@127.0.0.1",
        "inet: 1@127.0.0.1", "inet:1@", "unix:", "unix:rel.sock", "tcp:1", "8890"}) {
    INFO(bad);
    st = ParseSocketSpec("socket", bad, milter, &s);
    CHECK(st.IsInvalid());
    CHECK(st.message().rfind("socket: '" + std::string(bad) + "': ", 0) == 0);
  }
}

TEST_CASE("socket specs: the policy listener's reading", "[socket]") {
  SocketSpec s;
  REQUIRE(ParseSocketSpec("policy_socket", "inet:0", SocketRules(), &s).ok());
  CHECK(s.address == "127.0.0.1");
  CHECK(s.port == 0);
  REQUIRE(ParseSocketSpec("policy_socket", "inet6:10031", SocketRules(), &s).ok());
  CHECK(s.address == "::1");
  Status st = ParseSocketSpec("policy_socket", "inet:1@localhost", SocketRules(), &s);
  CHECK(st.message() ==
        "policy_socket: 'inet:1@localhost': 'localhost' is not a numeric IPv4 "
        "address");
  st = ParseSocketSpec("policy_socket", "/run/p.sock", SocketRules(), &s);
  CHECK(st.IsInvalid());
  st = ParseSocketSpec("policy_socket", "unix:/" + std::string(200, 'a'), SocketRules(), &s);
  CHECK(st.message().find("the path is too long") != std::string::npos);
}

TEST_CASE("host:port specs", "[socket]") {
  std::string host;
  int port = 0;
  REQUIRE(ParseHostPort("http_listen", "127.0.0.1:8891", &host, &port).ok());
  CHECK(host == "127.0.0.1");
  CHECK(port == 8891);
  REQUIRE(ParseHostPort("http_listen", "[::1]:8891", &host, &port).ok());
  CHECK(host == "::1");
  REQUIRE(ParseHostPort("http_listen", "localhost:1", &host, &port).ok());
  CHECK(host == "localhost");
  Status st = ParseHostPort("http_listen", "127.0.0.1:99999999999999999999", &host, &port);
  CHECK(st.message() == "http_listen: '127.0.0.1:99999999999999999999' has no valid port");
  st = ParseHostPort("http_listen", "127.0.0.1:0", &host, &port);
  CHECK(st.message() == "http_listen: '127.0.0.1:0' has a port out of range 1..65535");
  for (const char* bad : {"", ":80", "127.0.0.1", "::1:80", "[::1:80", "[]:80", "h:", "h:x"}) {
    INFO(bad);
    st = ParseHostPort("http_listen", bad, &host, &port);
    CHECK(st.IsInvalid());
    CHECK(st.message().rfind("http_listen: '" + std::string(bad) + "' ", 0) == 0);
  }
}

TEST_CASE("octal modes", "[socket]") {
  mode_t m = 0;
  REQUIRE(ParseOctalMode("0660", &m));
  CHECK(m == 0660);
  REQUIRE(ParseOctalMode("7777", &m));
  CHECK(m == 07777);
  for (const char* bad : {"", "rw", "0668", "-1", "17777", "99999999999999999999999"}) {
    INFO(bad);
    CHECK_FALSE(ParseOctalMode(bad, &m));
  }
}

}  // namespace
}  // namespace compd
