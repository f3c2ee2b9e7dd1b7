// Process plumbing for compd-milter: daemonising, pid file, privileges and the signal
// thread. Wiring only; called from main before smfi_main.
#ifndef COMPD_MILTER_PROCESS_H_
#define COMPD_MILTER_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <string>

#include "compd/base/log.h"
#include "compd/base/status.h"

namespace compd {

// Makes `dir` exist (created with `mode`) and, when `user` is set, owned by that user, so
// the daemon can still write there after dropping privileges. A private `mode` (no group
// or other bits) is also applied to a folder that already exists.
Status PrepareDirectory(const std::string& dir, const std::string& user, const std::string& group,
                        mode_t mode);

// Drops to user/group (initgroups too). No-op when `user` is empty.
Status DropPrivileges(const std::string& user, const std::string& group);

// Classic double-fork daemon; the parent exits 0 once the child runs.
Status Daemonize();

Status WritePidFile(const std::string& path);

// Blocks SIGTERM, SIGHUP, SIGINT and SIGUSR1 in the calling thread. Call it before any
// thread starts: threads inherit the mask, and libmilter's signal thread only receives
// these signals through sigwait if no other thread leaves them unblocked (else the
// default action kills the process without draining events).
void BlockProcessSignals();

// Blocks SIGUSR1 in the calling thread (call before any other thread starts, so every
// thread inherits the mask) and starts a thread that runs `on_reload` for each SIGUSR1.
// SIGHUP, SIGTERM and SIGINT are left to libmilter, which stops on all three: its signal
// thread sigwaits them and cannot be told otherwise. What `on_reload` throws is logged
// through `on_error`; the next SIGUSR1 is served all the same.
void StartReloadSignalThread(std::function<void()> on_reload, LogFn on_error);

// Makes smfi_main return as SIGTERM does (libmilter's signal thread receives it), from
// any thread; for a background thread that failed beyond repair.
void RequestStop();

}  // namespace compd

#endif  // COMPD_MILTER_PROCESS_H_
