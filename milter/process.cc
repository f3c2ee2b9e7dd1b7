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
#include "compd/base/socket.h"
#include "compd/base/thread_guard.h"

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

}  // namespace

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
    if (!group.empty() && !LookupGroupId(group, &gid)) {
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
  if (!group.empty() && !LookupGroupId(group, &gid)) {
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

void StartReloadSignalThread(std::function<void()> on_reload, LogFn on_error) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set, on_reload = std::move(on_reload), on_error = std::move(on_error)] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0 || sig != SIGUSR1) continue;
      RunGuarded("SIGUSR1", on_error, on_reload);
    }
  }).detach();
}

void RequestStop() { kill(getpid(), SIGTERM); }

}  // namespace compd
