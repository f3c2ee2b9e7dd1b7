#include "process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "compd/base/file.h"

namespace compd {

namespace {

std::string Errno() { return std::strerror(errno); }

bool LookupUser(const std::string& user, uid_t* uid, gid_t* gid) {
  struct passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) return false;
  *uid = pw->pw_uid;
  *gid = pw->pw_gid;
  return true;
}

bool LookupGroup(const std::string& group, gid_t* gid) {
  struct group* gr = getgrnam(group.c_str());
  if (gr == nullptr) return false;
  *gid = gr->gr_gid;
  return true;
}

}  // namespace

std::string UnixSocketPath(const std::string& spec) {
  for (const char* p : {"unix:", "local:"}) {
    if (spec.rfind(p, 0) == 0) return spec.substr(std::strlen(p));
  }
  if (!spec.empty() && spec[0] == '/') return spec;
  return "";
}

Status CheckSocketSpec(const std::string& spec) {
  auto bad = [&](const std::string& why) {
    return Status::Invalid("socket: '" + spec + "': " + why);
  };
  if (!UnixSocketPath(spec).empty()) {
    if (UnixSocketPath(spec)[0] != '/') return bad("the unix socket path must be absolute");
    return Status::Ok();
  }
  for (const char* p : {"inet:", "inet6:"}) {
    if (spec.rfind(p, 0) != 0) continue;
    std::string rest = spec.substr(std::strlen(p));
    size_t at = rest.find('@');
    std::string port = rest.substr(0, at);
    if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stol(port) < 1 || std::stol(port) > 65535) {
      return bad("expected " + std::string(p) + "PORT@ADDRESS with PORT 1-65535");
    }
    if (at == std::string::npos) {
      return bad("no address: this would listen on every interface; write @0.0.0.0 to mean it");
    }
    return Status::Ok();
  }
  return bad("expected inet:PORT@ADDRESS, inet6:PORT@ADDRESS or unix:/PATH");
}

Status SetSocketPermissions(const std::string& path, const std::string& mode,
                            const std::string& group) {
  char* end = nullptr;
  long m = std::strtol(mode.c_str(), &end, 8);
  if (mode.empty() || *end != '\0' || m < 0 || m > 07777) {
    return Status::Invalid("socket_mode: '" + mode + "' is not an octal mode");
  }
  if (chmod(path.c_str(), static_cast<mode_t>(m)) != 0) {
    return Status::IoError(path + ": chmod: " + Errno());
  }
  if (!group.empty()) {
    gid_t gid;
    if (!LookupGroup(group, &gid)) return Status::Invalid("socket_group: no group '" + group + "'");
    if (chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
      return Status::IoError(path + ": chgrp " + group + ": " + Errno());
    }
  }
  return Status::Ok();
}

Status PrepareDirectory(const std::string& dir, const std::string& user, const std::string& group,
                        mode_t mode) {
  if (dir.empty()) return Status::Ok();
  // Create parents as needed.
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos == dir.size() || dir[pos] == '/') {
      std::string part = dir.substr(0, pos);
      if (mkdir(part.c_str(), pos == dir.size() ? mode : 0755) != 0 && errno != EEXIST) {
        return Status::IoError(part + ": mkdir: " + Errno());
      }
    }
  }
  // A private folder (the spool) must not stay readable by others because it existed
  // before with looser permissions.
  if ((mode & 077) == 0 && chmod(dir.c_str(), mode) != 0) {
    return Status::IoError(dir + ": chmod: " + Errno());
  }
  if (!user.empty() && geteuid() == 0) {
    uid_t uid;
    gid_t gid;
    if (!LookupUser(user, &uid, &gid)) return Status::Invalid("user: no user '" + user + "'");
    if (!group.empty() && !LookupGroup(group, &gid)) {
      return Status::Invalid("group: no group '" + group + "'");
    }
    if (chown(dir.c_str(), uid, gid) != 0) return Status::IoError(dir + ": chown: " + Errno());
  }
  return Status::Ok();
}

Status DropPrivileges(const std::string& user, const std::string& group) {
  if (user.empty()) return Status::Ok();
  uid_t uid;
  gid_t gid;
  if (!LookupUser(user, &uid, &gid)) return Status::Invalid("user: no user '" + user + "'");
  if (!group.empty() && !LookupGroup(group, &gid)) {
    return Status::Invalid("group: no group '" + group + "'");
  }
  if (geteuid() != 0) {
    if (geteuid() == uid) return Status::Ok();
    return Status::Invalid("user: cannot switch to '" + user + "' without root");
  }
  if (initgroups(user.c_str(), gid) != 0) return Status::Internal("initgroups: " + Errno());
  if (setgid(gid) != 0) return Status::Internal("setgid: " + Errno());
  if (setuid(uid) != 0) return Status::Internal("setuid: " + Errno());
  // Make sure there is no way back.
  if (setuid(0) == 0) return Status::Internal("privileges could be regained after setuid");
  return Status::Ok();
}

Status Daemonize() {
  pid_t pid = fork();
  if (pid < 0) return Status::Internal("fork: " + Errno());
  if (pid > 0) _exit(0);
  if (setsid() < 0) return Status::Internal("setsid: " + Errno());
  pid = fork();
  if (pid < 0) return Status::Internal("fork: " + Errno());
  if (pid > 0) _exit(0);
  if (chdir("/") != 0) return Status::Internal("chdir /: " + Errno());
  int fd = open("/dev/null", O_RDWR);
  if (fd >= 0) {
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO) close(fd);
  }
  return Status::Ok();
}

Status WritePidFile(const std::string& path) {
  if (path.empty()) return Status::Ok();
  // Atomic: a supervisor reading it never sees an empty file.
  Status s = WriteFileAtomically(path, std::to_string(getpid()) + "\n", 0644);
  if (!s.ok()) return Status::IoError("pid_file: " + s.message());
  return Status::Ok();
}

void BlockProcessSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGHUP, SIGINT, SIGUSR1}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void StartReloadSignalThread(std::function<void()> on_reload) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set, on_reload = std::move(on_reload)] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) == 0 && sig == SIGUSR1) on_reload();
    }
  }).detach();
}

}  // namespace compd
