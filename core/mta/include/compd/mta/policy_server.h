// PolicyServer: the listener for the policy protocol (policy.h) in compd-milter, on a
// unix socket or a TCP port, for Exim's ${readsocket} and Postfix's check_policy_service.
//
// One thread per connection, at most `max_connections` at a time; when all are busy the
// server stops accepting, so new clients wait in the listen backlog (their own timeout
// decides) instead of being refused. A connection serves requests one after the other
// until the client closes it, stays idle for `timeout`, takes longer than `timeout` over
// one request, or sends malformed or oversized input (or ends its side of the connection
// in the middle of a request); those last cases are logged and answered once with
// `action=451 4.3.0 compd: malformed policy request: <why>` before the connection is
// closed, so the client's log says what went wrong.
//
// Thread-safety: Listen, Start and Stop are called from one thread (the daemon's main
// thread); the connection threads share only the Tripwire (thread-safe) and the log.
#ifndef COMPD_MTA_POLICY_SERVER_H_
#define COMPD_MTA_POLICY_SERVER_H_

#include <chrono>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "compd/base/log.h"
#include "compd/base/settings.h"
#include "compd/base/socket.h"
#include "compd/base/status.h"
#include "compd/mta/policy.h"
#include "compd/mta/tripwire.h"

namespace compd {

// Where to listen, written like the milter socket: "unix:/run/compd/policy.sock",
// "inet:PORT" (127.0.0.1), "inet:PORT@ADDR", "inet6:PORT" (::1), "inet6:PORT@ADDR".
// ADDR is a numeric address: the protocol has no authentication, so binding anything but
// loopback must be a deliberate choice written out in full.
using PolicySocketSpec = SocketSpec;
// The policy listener's rules for the shared grammar (compd/base/socket.h); kInvalid naming
// the setting: "policy_socket: 'inet:99999': port must be a number from 0 to 65535".
Status ParsePolicySocket(std::string_view spec, PolicySocketSpec* out);

struct PolicyServerOptions {
  std::string socket;  // empty: no listener
  // A unix socket's permissions (octal text) and group, so the MTA can connect.
  std::string socket_mode = "0660";
  std::string socket_group;
  int max_connections = 100;
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // What an internal failure answers: DUNNO (accept, the default: this filter guards
  // reputation, not delivery) or a 451 temporary failure.
  bool tempfail_on_error = false;
  PolicyLimits limits;

  // Reads policy_socket, policy_socket_mode, policy_socket_group, policy_max_connections,
  // policy_timeout and on_error; kInvalid names the setting.
  static Status FromConfig(const Config& config, PolicyServerOptions* out);
};

class PolicyServer {
 public:
  PolicyServer(PolicyServerOptions options, LogFn log);
  ~PolicyServer();  // Stop()
  PolicyServer(const PolicyServer&) = delete;
  PolicyServer& operator=(const PolicyServer&) = delete;

  // Binds and listens (before the daemon drops privileges), and gives a unix socket its
  // mode and group. A stale unix socket left by a previous run is replaced; one that still
  // accepts connections is an error.
  Status Listen();
  // Serves requests against `tripwire`, which must outlive Stop().
  Status Start(const Tripwire* tripwire);
  // Stops accepting, closes every connection (a request being evaluated finishes first,
  // so its events are handed over), joins the threads, removes the unix socket.
  void Stop();

  // For logs: "unix:/run/compd/policy.sock" or "inet:127.0.0.1:10031".
  std::string description() const;
  // The unix socket path (for chmod/chgrp by the caller), or empty.
  const std::string& unix_path() const { return spec_.path; }
  // The bound TCP port (useful with port 0), or 0.
  int port() const { return bound_port_; }
  int active_connections() const;

 private:
  struct Connection;
  void AcceptLoop();
  void Serve(Connection* conn);
  void ReapFinished();

  PolicyServerOptions options_;
  LogFn log_;
  PolicySocketSpec spec_;
  const Tripwire* tripwire_ = nullptr;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  int bound_port_ = 0;
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::condition_variable slot_free_;
  std::list<std::unique_ptr<Connection>> connections_;
  int active_ = 0;
  bool stopping_ = false;
};

}  // namespace compd

#endif  // COMPD_MTA_POLICY_SERVER_H_
