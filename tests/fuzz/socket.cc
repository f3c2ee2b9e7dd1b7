// Fuzz target: the socket settings (ParseSocketSpec for `socket` with libmilter's rules
// and for `policy_socket` with the policy listener's, ParseHostPort for `http_listen`,
// ParseOctalMode for the modes), as --check-config reads them from a file or a flag.
//
// Besides "no crash, no exception, no read past the input" it checks:
//  - an error is kInvalid and starts with "<setting>: '<the input>'", so the operator
//    sees which setting and which value;
//  - an accepted spec is within bounds: a port within the rules' range, an absolute unix
//    path that fits in sockaddr_un, a non-empty address;
//  - an accepted spec written back in its canonical form parses to the same spec;
//  - an accepted mode is at most 07777.
#include "compd/base/socket.h"

#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"

namespace {

std::string Canonical(const compd::SocketSpec& s) {
  switch (s.kind) {
    case compd::SocketSpec::Kind::kUnix:
      return "unix:" + s.path;
    case compd::SocketSpec::Kind::kInet:
      return "inet:" + std::to_string(s.port) + "@" + s.address;
    case compd::SocketSpec::Kind::kInet6:
      return "inet6:" + std::to_string(s.port) + "@" + s.address;
  }
  return "";
}

void CheckSpec(std::string_view setting, std::string_view in, const compd::SocketRules& rules) {
  compd::SocketSpec spec;
  compd::Status s = compd::ParseSocketSpec(setting, in, rules, &spec);
  if (!s.ok()) {
    FUZZ_CHECK_MSG(s.IsInvalid(), s.ToString());
    const std::string head = std::string(setting) + ": '" + std::string(in) + "'";
    FUZZ_CHECK_MSG(s.message().rfind(head, 0) == 0, compd_fuzz::Escaped(s.message()));
    return;
  }
  if (spec.kind == compd::SocketSpec::Kind::kUnix) {
    FUZZ_CHECK(!spec.path.empty() && spec.path[0] == '/');
    FUZZ_CHECK(spec.path.size() < sizeof(sockaddr_un{}.sun_path));
  } else {
    FUZZ_CHECK(spec.port >= rules.min_port && spec.port <= 65535);
    FUZZ_CHECK(!spec.address.empty());
  }
  compd::SocketSpec again;
  const std::string canonical = Canonical(spec);
  compd::Status s2 = compd::ParseSocketSpec(setting, canonical, rules, &again);
  FUZZ_CHECK_MSG(s2.ok(), compd_fuzz::Escaped(canonical) + ": " + s2.ToString());
  FUZZ_CHECK(again.kind == spec.kind && again.path == spec.path && again.address == spec.address &&
             again.port == spec.port);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in = compd_fuzz::AsText(data, size);
  CheckSpec("socket", in, compd::SocketRules::Libmilter());
  CheckSpec("policy_socket", in, compd::SocketRules());

  std::string host;
  int port = 0;
  compd::Status s = compd::ParseHostPort("http_listen", in, &host, &port);
  if (s.ok()) {
    FUZZ_CHECK(port >= 1 && port <= 65535);
    FUZZ_CHECK(host.size() < in.size());
  } else {
    FUZZ_CHECK_MSG(s.IsInvalid(), s.ToString());
    FUZZ_CHECK(s.message().rfind("http_listen: '" + std::string(in) + "' ", 0) == 0);
  }

  mode_t mode = 0;
  if (compd::ParseOctalMode(in, &mode)) FUZZ_CHECK(mode <= 07777);
  return 0;
}
