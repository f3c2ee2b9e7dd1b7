#include "compd/base/socket.h"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "compd/base/net.h"

namespace compd {

namespace {

bool ParsePort(std::string_view text, int* port) {
  const int p = PortDigits(text);
  if (p < 0 || p > 65535) return false;
  *port = p;
  return true;
}

}  // namespace

Status ParseSocketSpec(std::string_view setting, std::string_view spec, const SocketRules& rules,
                       SocketSpec* out) {
  auto bad = [&](const std::string& why) {
    return Status::Invalid(std::string(setting) + ": '" + std::string(spec) + "': " + why);
  };
  SocketSpec s;
  size_t colon = spec.find(':');
  std::string_view scheme, rest;
  if (rules.bare_path && !spec.empty() && spec[0] == '/') {
    scheme = "unix";
    rest = spec;
  } else if (colon == std::string_view::npos) {
    return bad("expected unix:/PATH, inet:PORT" +
               std::string(rules.default_loopback ? "[@ADDR]" : "@ADDR") + " or inet6:PORT" +
               (rules.default_loopback ? "[@ADDR]" : "@ADDR"));
  } else {
    scheme = spec.substr(0, colon);
    rest = spec.substr(colon + 1);
  }
  if (scheme == "unix" || scheme == "local") {
    if (rest.empty() || rest[0] != '/') return bad("the unix socket path must be absolute");
    if (rest.size() >= sizeof(sockaddr_un{}.sun_path)) return bad("the path is too long");
    s.kind = SocketSpec::Kind::kUnix;
    s.path = std::string(rest);
  } else if (scheme == "inet" || scheme == "inet6") {
    const bool v6 = scheme == "inet6";
    s.kind = v6 ? SocketSpec::Kind::kInet6 : SocketSpec::Kind::kInet;
    const size_t at = rest.find('@');
    if (!ParsePort(rest.substr(0, at), &s.port) || s.port < rules.min_port) {
      return bad("port must be a number from " + std::to_string(rules.min_port) + " to 65535");
    }
    if (at == std::string_view::npos) {
      if (!rules.default_loopback) {
        return bad("no address: this would listen on every interface; write @0.0.0.0 to mean it");
      }
      s.address = v6 ? "::1" : "127.0.0.1";
    } else {
      s.address = std::string(rest.substr(at + 1));
      if (s.address.empty()) return bad("no address after '@'");
      unsigned char buf[sizeof(in6_addr)];
      if (rules.numeric_address &&
          inet_pton(v6 ? AF_INET6 : AF_INET, s.address.c_str(), buf) != 1) {
        return bad("'" + s.address + "' is not a numeric " + (v6 ? "IPv6" : "IPv4") + " address");
      }
    }
  } else {
    return bad("unknown kind '" + std::string(scheme) + "' (unix, inet or inet6)");
  }
  *out = std::move(s);
  return Status::Ok();
}

Status ParseHostPort(std::string_view setting, std::string_view spec, std::string* host,
                     int* port) {
  HostPort hp;
  Status s = ParseHostPort(spec, &hp);
  if (!s.ok()) return Status::Invalid(std::string(setting) + ": " + s.message());
  *host = std::move(hp.host);
  *port = hp.port;
  return Status::Ok();
}

bool ParseOctalMode(std::string_view text, mode_t* mode) {
  if (text.empty()) return false;
  mode_t m = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return false;
    m = m * 8 + static_cast<mode_t>(c - '0');
    if (m > 07777) return false;
  }
  *mode = m;
  return true;
}

bool LookupGroupId(const std::string& name, gid_t* gid) {
  std::vector<char> buf(16384);
  group g{};
  group* found = nullptr;
  while (getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found) == ERANGE &&
         buf.size() < (1u << 22)) {
    buf.resize(buf.size() * 2);
  }
  if (found == nullptr) return false;
  *gid = found->gr_gid;
  return true;
}

Status SetSocketPermissions(std::string_view setting, const std::string& path,
                            const std::string& mode, const std::string& group) {
  const std::string name(setting);
  mode_t m;
  if (!ParseOctalMode(mode, &m)) {
    return Status::Invalid(name + "_mode: '" + mode + "' is not an octal mode");
  }
  if (chmod(path.c_str(), m) != 0) {
    return Status::IoError(name + ": chmod " + path + ": " + std::strerror(errno));
  }
  if (group.empty()) return Status::Ok();
  gid_t gid;
  if (!LookupGroupId(group, &gid)) {
    return Status::Invalid(name + "_group: no group '" + group + "'");
  }
  if (chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
    return Status::IoError(name + ": chgrp " + group + " " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace compd
