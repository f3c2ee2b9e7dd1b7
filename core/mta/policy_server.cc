#include "compd/mta/policy_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

#include "compd/base/thread_guard.h"

namespace compd {

namespace {

constexpr int kBacklog = 128;
constexpr size_t kReadChunk = 64 * 1024;

std::string Errno() { return std::strerror(errno); }

int64_t MillisUntil(std::chrono::steady_clock::time_point t) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(t - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : left.count();
}

// Writes all of `data` unless the peer is gone or stays unwilling for `timeout`.
bool SendAll(int fd, std::string_view data, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      int64_t left = MillisUntil(deadline);
      if (left == 0 || poll(&p, 1, static_cast<int>(left)) <= 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

std::string PeerName(int fd, bool unix_socket) {
  if (unix_socket) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      return "unix peer pid " + std::to_string(cred.pid) + " uid " + std::to_string(cred.uid);
    }
    return "unix peer";
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "peer";
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return "peer";
}

// A short summary of a request for debug logs.
std::string Summary(const PolicyRequest& r) {
  std::string out = "state=" + std::string(r.Get("protocol_state"));
  for (const char* name : {"sasl_username", "client_address", "recipient", "queue_id"}) {
    if (r.Has(name)) out += std::string(" ") + name + "=" + std::string(r.Get(name));
  }
  if (r.Has("compd_to") || r.Has("compd_cc")) out += " headers";
  return EscapeForLog(out.substr(0, 400));
}

}  // namespace

Status ParsePolicySocket(std::string_view spec, PolicySocketSpec* out) {
  return ParseSocketSpec("policy_socket", spec, SocketRules(), out);
}

Status PolicyServerOptions::FromConfig(const Config& config, PolicyServerOptions* out) {
  PolicyServerOptions o;
  o.socket = config.GetString("policy_socket");
  if (!o.socket.empty()) {
    PolicySocketSpec spec;
    Status s = ParsePolicySocket(o.socket, &spec);
    if (!s.ok()) return s;
  }
  o.socket_mode = config.GetString("policy_socket_mode");
  mode_t mode;
  if (!ParseOctalMode(o.socket_mode, &mode)) {
    return Status::Invalid("policy_socket_mode: '" + o.socket_mode + "' is not an octal mode");
  }
  o.socket_group = config.GetString("policy_socket_group");
  o.max_connections = static_cast<int>(config.GetInt("policy_max_connections"));
  o.timeout = std::chrono::milliseconds(config.GetDurationMs("policy_timeout"));
  o.tempfail_on_error = config.GetString("on_error") == "tempfail";
  *out = std::move(o);
  return Status::Ok();
}

struct PolicyServer::Connection {
  int fd = -1;
  std::string peer;
  std::thread thread;
  bool done = false;  // under PolicyServer::mu_; the thread closes fd and sets done together
};

PolicyServer::PolicyServer(PolicyServerOptions options, LogFn log)
    : options_(std::move(options)), log_(std::move(log)) {
  if (!log_) log_ = [](LogLevel, const std::string&) {};
}

PolicyServer::~PolicyServer() { Stop(); }

std::string PolicyServer::description() const {
  switch (spec_.kind) {
    case PolicySocketSpec::Kind::kUnix:
      return "unix:" + spec_.path;
    case PolicySocketSpec::Kind::kInet:
      return "inet:" + spec_.address + ":" + std::to_string(bound_port_);
    case PolicySocketSpec::Kind::kInet6:
      return "inet6:[" + spec_.address + "]:" + std::to_string(bound_port_);
  }
  return options_.socket;
}

int PolicyServer::active_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_;
}

Status PolicyServer::Listen() {
  if (listen_fd_ >= 0) return Status::Internal("policy listener: Listen called twice");
  Status s = ParsePolicySocket(options_.socket, &spec_);
  if (!s.ok()) return s;
  if (pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Status::IoError("policy listener: pipe: " + Errno());
  }
  int fd = -1;
  if (spec_.kind == PolicySocketSpec::Kind::kUnix) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, spec_.path.c_str(), spec_.path.size() + 1);
    struct stat st {};
    if (lstat(spec_.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return Status::Invalid("policy_socket: " + spec_.path + " exists and is not a socket");
      }
      int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      bool live =
          probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
      if (probe >= 0) close(probe);
      if (live) {
        return Status::Unavailable("policy_socket: " + spec_.path +
                                   " is in use by another process");
      }
      unlink(spec_.path.c_str());  // stale, from a previous run
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::IoError("policy listener: socket: " + Errno());
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      std::string e = Errno();
      close(fd);
      return Status::IoError("policy_socket: cannot bind " + spec_.path + ": " + e);
    }
    s = SetSocketPermissions("policy_socket", spec_.path, options_.socket_mode,
                             options_.socket_group);
    if (!s.ok()) {
      close(fd);
      return s;
    }
  } else {
    bool v6 = spec_.kind == PolicySocketSpec::Kind::kInet6;
    fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::IoError("policy listener: socket: " + Errno());
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage ss{};
    socklen_t len;
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(static_cast<uint16_t>(spec_.port));
      inet_pton(AF_INET6, spec_.address.c_str(), &a->sin6_addr);
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_port = htons(static_cast<uint16_t>(spec_.port));
      inet_pton(AF_INET, spec_.address.c_str(), &a->sin_addr);
      len = sizeof *a;
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      std::string e = Errno();
      close(fd);
      return Status::IoError("policy_socket: cannot bind " + options_.socket + ": " + e);
    }
    len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      bound_port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                             : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    }
  }
  if (listen(fd, kBacklog) != 0) {
    std::string e = Errno();
    close(fd);
    return Status::IoError("policy_socket: listen: " + e);
  }
  listen_fd_ = fd;
  return Status::Ok();
}

Status PolicyServer::Start(const Tripwire* tripwire) {
  if (listen_fd_ < 0) return Status::Internal("policy listener: Start before Listen");
  if (tripwire == nullptr) return Status::Internal("policy listener: no tripwire");
  if (acceptor_.joinable()) return Status::Internal("policy listener: Start called twice");
  tripwire_ = tripwire;
  acceptor_ = StartLoopThread(
      "policy", log_, [this] { AcceptLoop(); }, FlagUnder(&mu_, &stopping_));
  return Status::Ok();
}

void PolicyServer::ReapFinished() {
  // Under mu_. Joining a finished thread does not block.
  for (auto it = connections_.begin(); it != connections_.end();) {
    if ((*it)->done) {
      if ((*it)->thread.joinable()) (*it)->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void PolicyServer::AcceptLoop() {
  bool warned_full = false;
  const bool unix_socket = spec_.kind == PolicySocketSpec::Kind::kUnix;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ReapFinished();
      if (active_ >= options_.max_connections && !stopping_) {
        if (!warned_full) {
          log_(LogLevel::kWarning, "policy: all " + std::to_string(options_.max_connections) +
                                       " connections busy (policy_max_connections); new "
                                       "clients wait until one closes");
          warned_full = true;
        }
        slot_free_.wait(lock, [this] { return stopping_ || active_ < options_.max_connections; });
        ReapFinished();
      } else if (active_ < options_.max_connections / 2) {
        warned_full = false;
      }
      if (stopping_) return;
    }
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    // The timeout only bounds how long finished connection threads wait to be joined.
    int r = poll(fds, 2, 1000);
    if (r < 0 && errno != EINTR) {
      log_(LogLevel::kError, "policy: poll: " + Errno());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (fds[1].revents != 0) return;  // Stop()
    if (r <= 0 || (fds[0].revents & POLLIN) == 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      // Out of descriptors and the like: say so and back off instead of spinning.
      log_(LogLevel::kError, "policy: accept: " + Errno());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    auto conn = std::make_unique<Connection>();
    conn->fd = fd;
    conn->peer = PeerName(fd, unix_socket);
    Connection* raw = conn.get();
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      close(fd);
      return;
    }
    try {
      raw->thread = std::thread([this, raw] {
        // A failure ends this connection only; the slot is given back all the same.
        RunGuarded("policy: " + raw->peer, log_, [this, raw] { Serve(raw); });
        // Closed under the lock: Stop() only touches the fds of connections not done.
        std::lock_guard<std::mutex> lock(mu_);
        close(raw->fd);
        raw->fd = -1;
        raw->done = true;
        --active_;
        slot_free_.notify_all();
      });
    } catch (const std::exception& e) {  // no thread to be had: refuse this one
      log_(LogLevel::kError, std::string("policy: cannot start a connection thread: ") + e.what());
      close(fd);
      continue;
    }
    ++active_;
    connections_.push_back(std::move(conn));
  }
}

void PolicyServer::Serve(Connection* conn) {
  const std::string& peer = conn->peer;
  log_(LogLevel::kDebug, "policy: " + peer + ": connected");
  PolicyParser parser(options_.limits);
  PostfixMessageMemory postfix_message;
  std::string buf(kReadChunk, '\0');
  bool in_request = false;
  auto request_deadline = std::chrono::steady_clock::now();

  bool refused = false;
  // Answers once with the reason and ends the connection.
  auto refuse = [&](const std::string& why) {
    refused = true;
    log_(LogLevel::kWarning, "policy: " + peer + ": " + why + "; closing the connection");
    SendAll(conn->fd, FormatPolicyReply("451 4.3.0 compd: malformed policy request: " + why),
            options_.timeout);
  };

  for (bool open = true; open;) {
    int64_t wait_ms = in_request ? MillisUntil(request_deadline) : options_.timeout.count();
    pollfd p{conn->fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(wait_ms));
    if (r < 0) {
      if (errno == EINTR) continue;
      log_(LogLevel::kError, "policy: " + peer + ": poll: " + Errno());
      break;
    }
    if (r == 0) {
      if (in_request) {
        refuse("request " + std::to_string(parser.requests() + 1) + " not complete within " +
               std::to_string(options_.timeout.count() / 1000) + "s (policy_timeout)");
      } else {
        log_(LogLevel::kDebug, "policy: " + peer + ": idle for " +
                                   std::to_string(options_.timeout.count() / 1000) + "s; closing");
      }
      break;
    }
    ssize_t n = recv(conn->fd, buf.data(), buf.size(), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      if (parser.mid_request()) {
        // Exim's ${readsocket} half-closes after writing, so a request macro that lacks
        // its final empty line gets this answer instead of a silent empty string.
        refuse("request " + std::to_string(parser.requests() + 1) +
               " ended without the empty line that ends a request");
      }
      break;
    }
    std::string_view data(buf.data(), static_cast<size_t>(n));
    while (!data.empty() && open) {
      size_t consumed = 0;
      bool complete = false;
      Status s = parser.Feed(data, &consumed, &complete);
      data.remove_prefix(consumed);
      if (!s.ok()) {
        refuse(s.message());
        open = false;
        break;
      }
      if (!complete) break;
      PolicyRequest request = parser.TakeRequest();
      postfix_message.Prepare(&request);
      std::string action;
      try {
        s = postfix_message.Repeated(request, &action)
                ? Status::Ok()
                : EvaluatePolicyRequest(*tripwire_, request, &action);
      } catch (const std::exception& e) {
        log_(LogLevel::kError, "policy: " + peer + ": request " +
                                   std::to_string(parser.requests()) + ": " + e.what());
        action = options_.tempfail_on_error ? "451 4.3.0 compd: internal error" : "DUNNO";
      }
      if (!s.ok()) {
        refuse("request " + std::to_string(parser.requests()) + ": " + s.message());
        open = false;
        break;
      }
      postfix_message.Answered(request, action);
      log_(LogLevel::kDebug, "policy: " + peer + ": request " + std::to_string(parser.requests()) +
                                 ": " + Summary(request) + " -> " + EscapeForLog(action));
      if (!SendAll(conn->fd, FormatPolicyReply(action), options_.timeout)) {
        log_(LogLevel::kInfo, "policy: " + peer + ": could not send the answer; closing");
        open = false;
      }
    }
    bool now_in_request = parser.mid_request();
    if (now_in_request && !in_request) {
      request_deadline = std::chrono::steady_clock::now() + options_.timeout;
    }
    in_request = now_in_request;
  }
  // FIN right after the last answer. After a refusal the client may still be sending:
  // read a little of that first, so closing does not reset the connection before the
  // client has read why.
  shutdown(conn->fd, SHUT_WR);
  if (refused) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(250);
    for (size_t drained = 0; drained < (1u << 20);) {
      pollfd p{conn->fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(MillisUntil(until))) <= 0) break;
      ssize_t n = recv(conn->fd, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      drained += static_cast<size_t>(n);
    }
  }
}

void PolicyServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  slot_free_.notify_all();
  if (wake_pipe_[1] >= 0) {
    ssize_t ignored = write(wake_pipe_[1], "x", 1);
    (void)ignored;
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::list<std::unique_ptr<Connection>> conns;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : connections_) {
      if (!c->done) shutdown(c->fd, SHUT_RDWR);  // wakes its poll/recv; fd still ours
    }
    conns.swap(connections_);
  }
  for (auto& c : conns) {
    if (c->thread.joinable()) c->thread.join();
  }
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
    if (spec_.kind == PolicySocketSpec::Kind::kUnix) unlink(spec_.path.c_str());
  }
  for (int& fd : wake_pipe_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
}

}  // namespace compd
