#include "compd/accounts/hook_targets.h"

#include <fcntl.h>
#include <httplib.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace compd {

namespace {

constexpr std::chrono::milliseconds kPollSlice{100};

std::string Seconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

// Writing to a program that exited raises SIGPIPE, which would end a process that does not
// ignore it (tests do not). Blocked for this thread meanwhile, then taken off if pending.
class NoSigpipe {
 public:
  NoSigpipe() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~NoSigpipe() {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) && !sigismember(&old_, SIGPIPE)) {
      timespec zero = {0, 0};
      sigtimedwait(&set_, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t set_, old_;
};

// Closes on scope exit; -1 is no descriptor.
struct Fd {
  int fd = -1;
  ~Fd() { Close(); }
  void Close() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

std::string Printable(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n') c = ' ';
  }
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& c : s) {
    if (c == '\n') c = '|';
  }
  return s;
}

}  // namespace

Status ParseCommandLine(std::string_view text, std::vector<std::string>* argv) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\'') {
      size_t end = text.find('\'', i + 1);
      if (end == std::string_view::npos) return Status::Invalid("unterminated ' quote");
      word.append(text.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        if (text[j] == '\\' && j + 1 < text.size() && (text[j + 1] == '"' || text[j + 1] == '\\')) {
          ++j;
        }
        word += text[j];
      }
      if (j >= text.size()) return Status::Invalid("unterminated \" quote");
      i = j;
    } else {
      word += c;
    }
  }
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) return Status::Invalid("no program given");
  if (words[0].empty() || words[0][0] != '/') {
    return Status::Invalid("the program must be an absolute path (no shell, no PATH search): '" +
                           words[0] + "'");
  }
  *argv = std::move(words);
  return Status::Ok();
}

Status RunProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  const std::string& input, std::chrono::milliseconds timeout,
                  const std::function<bool()>& cancelled, ProgramResult* result) {
  ProgramResult local;
  ProgramResult& r = result != nullptr ? *result : local;
  r = ProgramResult();
  if (argv.empty()) return Status::Invalid("no program to run");
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0)
    return Status::IoError(std::string("pipe: ") + strerror(errno));
  Fd in_r{in_pipe[0]}, in_w{in_pipe[1]};
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    return Status::IoError(std::string("pipe: ") + strerror(errno));
  }
  Fd out_r{out_pipe[0]}, out_w{out_pipe[1]};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.fd, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, out_w.fd, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  // Libraries (hiredis, libmilter) open descriptors without O_CLOEXEC; the hook must not
  // hold the milter's listening socket or a Redis connection.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);    // the daemon blocks signals in its threads
  posix_spawnattr_setsigdefault(&attr, &all);  // and ignores SIGPIPE
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::vector<char*> args, envp;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Status::IoError("cannot run " + argv[0] + ": " + strerror(rc));
  in_r.Close();
  out_w.Close();
  NoSigpipe no_sigpipe;
  fcntl(in_w.fd, F_SETFL, fcntl(in_w.fd, F_GETFL) | O_NONBLOCK);
  fcntl(out_r.fd, F_SETFL, fcntl(out_r.fd, F_GETFL) | O_NONBLOCK);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t written = 0;
  if (input.empty()) in_w.Close();
  bool reaped = false;
  int status = 0;
  for (;;) {
    if (!reaped) {
      pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid) reaped = true;
    }
    // Done when the program exited and its output ended (or nobody will write any more).
    if (reaped && out_r.fd < 0) break;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline || (cancelled && cancelled())) {
      r.timed_out = now >= deadline;
      r.cancelled = !r.timed_out;
      break;
    }
    pollfd fds[2];
    nfds_t n = 0;
    if (in_w.fd >= 0) fds[n++] = {in_w.fd, POLLOUT, 0};
    if (out_r.fd >= 0) fds[n++] = {out_r.fd, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    int wait_ms = static_cast<int>(std::min(left, kPollSlice).count());
    // With nothing to watch (the program closed stdout but runs on), poll just sleeps.
    if (poll(n > 0 ? fds : nullptr, n, reaped ? 0 : std::max(wait_ms, 1)) < 0 && errno != EINTR) {
      break;
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].fd == in_w.fd && (fds[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t k = write(in_w.fd, input.data() + written, input.size() - written);
        if (k > 0) written += static_cast<size_t>(k);
        // A program that does not read its input is its business, not an error.
        if ((k < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
          in_w.Close();
        }
      } else if (fds[i].fd == out_r.fd && (fds[i].revents & (POLLIN | POLLERR | POLLHUP))) {
        char buf[4096];
        ssize_t k = read(out_r.fd, buf, sizeof buf);
        if (k > 0) {
          size_t keep = std::min(static_cast<size_t>(k), kMaxProgramOutput - r.output.size());
          r.output.append(buf, keep);
        } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
          out_r.Close();
        }
      }
    }
    // The program exited but something it started keeps stdout open: do not wait for it.
    if (reaped && out_r.fd >= 0) {
      pollfd p = {out_r.fd, POLLIN, 0};
      if (poll(&p, 1, 0) <= 0) out_r.Close();
    }
  }
  if (!reaped) {
    killpg(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (r.timed_out) return Status::Unavailable("timed out after " + Seconds(timeout) + "; killed");
  if (r.cancelled) return Status::Unavailable("cancelled (stopping); killed");
  std::string out = Printable(r.output);
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
    if (r.exit_code == 0) return Status::Ok();
    return Status::Unavailable("exit status " + std::to_string(r.exit_code) +
                               (out.empty() ? "" : ": " + out));
  }
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return Status::Unavailable("killed by signal " + std::to_string(r.signal) +
                             (out.empty() ? "" : ": " + out));
}

std::string WebhookUrl::Origin() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return scheme + "://" + h + ":" + std::to_string(port);
}

std::string WebhookUrl::ToString() const { return Origin() + path; }

Status ParseWebhookUrl(std::string_view text, WebhookUrl* out) {
  WebhookUrl u;
  std::string_view rest;
  if (text.rfind("http://", 0) == 0) {
    u.scheme = "http";
    u.port = 80;
    rest = text.substr(7);
  } else if (text.rfind("https://", 0) == 0) {
    u.scheme = "https";
    u.port = 443;
    rest = text.substr(8);
  } else {
    return Status::Invalid("'" + std::string(text) + "' is not an http:// or https:// URL");
  }
  size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  u.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!u.path.empty() && u.path[0] != '/') u.path = "/" + u.path;
  size_t hash = u.path.find('#');
  if (hash != std::string::npos) u.path.resize(hash);
  if (authority.find('@') != std::string_view::npos) {
    return Status::Invalid(
        "credentials do not belong in the URL (it ends up in logs); put an "
        "Authorization header in hook_headers_file");
  }
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Status::Invalid("unterminated [ in the host");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Status::Invalid("unexpected text after ]");
      port_text = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (u.host.empty()) return Status::Invalid("no host in '" + std::string(text) + "'");
  for (char c : u.host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '/' || c == '\\') {
      return Status::Invalid("invalid host '" + u.host + "'");
    }
  }
  if (!port_text.empty() || (authority.size() > 0 && authority.back() == ':')) {
    int port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) return Status::Invalid("invalid port");
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) return Status::Invalid("invalid port");
    u.port = port;
  }
  for (char c : u.path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Status::Invalid("the path contains a space or control character (encode it)");
    }
  }
  *out = std::move(u);
  return Status::Ok();
}

Status ReadHeadersFile(const std::string& path, HttpHeaders* out) {
  std::ifstream in(path);
  if (!in) return Status::IoError(path + ": cannot read: " + strerror(errno));
  HttpHeaders headers;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    size_t colon = line.find(':');
    std::string where = path + ":" + std::to_string(lineno);
    if (colon == std::string::npos || colon == 0) {
      return Status::Invalid(where + ": expected 'Name: value'");
    }
    std::string name = line.substr(0, colon);
    for (char c : name) {
      bool token = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
      if (!token) return Status::Invalid(where + ": invalid header name '" + name + "'");
    }
    std::string value = line.substr(colon + 1);
    size_t vb = value.find_first_not_of(" \t");
    value = vb == std::string::npos ? "" : value.substr(vb);
    for (char c : value) {
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
        return Status::Invalid(where + ": control character in the value");
      }
    }
    headers.emplace_back(std::move(name), std::move(value));
  }
  *out = std::move(headers);
  return Status::Ok();
}

Status PostJson(const WebhookUrl& url, const HttpHeaders& headers, const std::string& body,
                std::chrono::milliseconds timeout) {
  httplib::Client client(url.Origin());
  if (!client.is_valid()) return Status::Invalid("cannot use " + url.ToString());
  auto sec = static_cast<time_t>(timeout.count() / 1000);
  auto usec = static_cast<time_t>((timeout.count() % 1000) * 1000);
  client.set_connection_timeout(sec, usec);
  client.set_read_timeout(sec, usec);
  client.set_write_timeout(sec, usec);
  client.set_follow_location(false);
  httplib::Headers h;
  for (const auto& [name, value] : headers) h.emplace(name, value);
  h.emplace("User-Agent", std::string("compd/") + COMPD_VERSION);
  httplib::Result res = client.Post(url.path, h, body, "application/json");
  if (!res) {
    return Status::Unavailable("POST " + url.ToString() + ": " + httplib::to_string(res.error()));
  }
  if (res->status >= 200 && res->status < 300) return Status::Ok();
  std::string start = Printable(res->body.substr(0, 200));
  return Status::Unavailable("POST " + url.ToString() + ": HTTP " + std::to_string(res->status) +
                             (start.empty() ? "" : ": " + start));
}

}  // namespace compd
