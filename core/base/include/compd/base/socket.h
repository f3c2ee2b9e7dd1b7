// Listening sockets: the one grammar of socket settings and the permissions of a unix
// socket.
//
// Owns how compd reads `socket` (the milter), `policy_socket` (the policy listener) and
// `http_listen` (the dashboard), so that every bad value is a kInvalid naming the setting
// at --check-config time, never an exception, and how a unix socket gets its mode and
// group. Pure functions apart from SetSocketPermissions and LookupGroupId (which use only
// reentrant lookups); thread-safe.
#ifndef COMPD_BASE_SOCKET_H_
#define COMPD_BASE_SOCKET_H_

#include <sys/types.h>

#include <string>
#include <string_view>

#include "compd/base/status.h"

namespace compd {

// "unix:/PATH" (or "local:/PATH"), "inet:PORT[@ADDR]" or "inet6:PORT[@ADDR]".
struct SocketSpec {
  enum class Kind { kUnix, kInet, kInet6 };
  Kind kind = Kind::kInet;
  std::string path;     // kUnix
  std::string address;  // kInet, kInet6: as written, or the loopback default
  int port = 0;
};

// What a setting accepts beyond the shared grammar.
struct SocketRules {
  // "inet:PORT" means loopback. When false it is refused: libmilter would listen on
  // every interface, which must be written out ("@0.0.0.0").
  bool default_loopback = true;
  // ADDR must be a numeric address of the family (the policy protocol has no
  // authentication: a name that resolves to something else must not widen it). When
  // false ADDR is left to the library (libmilter resolves names).
  bool numeric_address = true;
  int min_port = 0;  // 0 lets the kernel choose (tests)
  // A bare "/PATH" is a unix socket (libmilter reads it so).
  bool bare_path = false;

  // libmilter's reading of `socket`: a bare /PATH is a unix socket, ADDR may be a name,
  // and no default address.
  static SocketRules Libmilter() { return SocketRules{false, false, 1, true}; }
};

// kInvalid: "<setting>: '<spec>': <why>". Never throws, whatever `spec` holds.
Status ParseSocketSpec(std::string_view setting, std::string_view spec, const SocketRules& rules,
                       SocketSpec* out);

// "HOST:PORT" or "[IPV6]:PORT" with PORT 1-65535 (http_listen). kInvalid:
// "<setting>: '<spec>' <why>". Never throws.
Status ParseHostPort(std::string_view setting, std::string_view spec, std::string* host, int* port);

// Octal permission bits ("0660"). False on anything else.
bool ParseOctalMode(std::string_view text, mode_t* mode);

// The group's id by getgrnam_r. False when there is no such group.
bool LookupGroupId(const std::string& name, gid_t* gid);

// chmod (octal text `mode`) and, if `group` is set, chgrp of the unix socket at `path`,
// after it was bound. Errors name the settings: "<setting>_mode: ...",
// "<setting>_group: ...", "<setting>: chmod <path>: ...".
Status SetSocketPermissions(std::string_view setting, const std::string& path,
                            const std::string& mode, const std::string& group);

}  // namespace compd

#endif  // COMPD_BASE_SOCKET_H_
