// Sentinel: which Redis server is the primary, asked of Redis Sentinel (hiredis 0.14 has
// no Sentinel support, so this speaks the few commands itself).
//
// Owns the list of sentinels, the current primary as an immutable snapshot, the failover
// bookkeeping (switches, time without a primary) and one subscriber thread per process that
// listens for `+switch-master`. Every RedisClient whose RedisUrl carries the Sentinel asks
// it for the primary when it connects, checks the answer with ROLE, and reconnects when the
// snapshot's generation moves (see redis.h).
// Thread-safe: every method may be called from any thread; Start and Stop from one
// controlling thread. The parsing functions are pure.
#ifndef COMPD_BASE_SENTINEL_H_
#define COMPD_BASE_SENTINEL_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "compd/base/log.h"
#include "compd/base/net.h"
#include "compd/base/redis.h"
#include "compd/base/status.h"

namespace compd {

// "HOST:PORT,HOST:PORT" with IPv6 hosts in brackets ("[::1]:26379"); spaces around items
// are ignored. kInvalid names the bad item; an empty list is kInvalid too.
Status ParseSentinelList(std::string_view list, std::vector<HostPort>* out);

// The reply to `SENTINEL get-master-addr-by-name NAME`: [ip, port]. kNotFound when the
// sentinel does not know the name (a nil reply), kUnavailable for anything malformed.
Status ParseMasterAddrReply(const RedisReply& reply, HostPort* out);

// The role in a ROLE reply ("master", "slave", "sentinel"); kUnavailable if malformed.
Status ParseRoleReply(const RedisReply& reply, std::string* role);

// A `+switch-master` payload: "<name> <old-ip> <old-port> <new-ip> <new-port>". True and
// the new address when it is about `master`; false for other masters and malformed text.
bool ParseSwitchMaster(std::string_view payload, std::string_view master, HostPort* to);

struct SentinelOptions {
  std::vector<HostPort> sentinels;
  std::string master;                       // the name the sentinels monitor the primary under
  std::string password;                     // of the sentinels (not of Redis); empty: none
  std::chrono::milliseconds timeout{1000};  // per sentinel: a dead one costs at most this
};

// The primary as last learnt. `generation` grows by one per change of address.
struct Primary {
  HostPort address;
  uint64_t generation = 0;
};

struct SentinelStats {
  std::string primary;  // "host:port", empty while unknown
  bool primary_up = false;
  uint64_t switches = 0;               // changes of the primary's address seen
  double seconds_without_primary = 0;  // total, including the current gap
  uint64_t sentinel_errors = 0;        // sentinels that did not answer a question
};

class Sentinel {
 public:
  explicit Sentinel(SentinelOptions options);
  ~Sentinel();  // Stop()s
  Sentinel(const Sentinel&) = delete;
  Sentinel& operator=(const Sentinel&) = delete;

  const SentinelOptions& options() const { return options_; }
  // "master NAME via h1:p1,h2:p2", for messages.
  std::string Describe() const;

  // Asks the sentinels in turn (skipping those that do not answer) for the primary's
  // address and makes it current. kUnavailable when none answers: "Redis unavailable".
  Status Resolve(Primary* out);
  // The primary as last learnt (generation 0 and no address before the first answer): an
  // immutable snapshot, swapped atomically when the primary changes.
  std::shared_ptr<const Primary> Current() const;
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // A client found the primary of `generation` gone, or read-only, or not a master.
  void ReportLost(uint64_t generation, const std::string& why);
  // A client's ROLE on the primary of `generation` said master.
  void ReportConfirmed(uint64_t generation);

  // Starts the thread that subscribes to `+switch-master` on a reachable sentinel. Log
  // lines about the primary go to `log` from now on.
  void Start(LogFn log);
  void Stop();

  SentinelStats stats() const;

 private:
  // Makes `address` current; a different address is a switch. Returns the generation.
  uint64_t Update(const HostPort& address, const std::string& source);
  void Log(LogLevel level, const std::string& message) const;
  void Subscriber();
  bool WaitFor(std::chrono::milliseconds d);  // true when stopping

  const SentinelOptions options_;

  // Read with std::atomic_load (any thread), replaced with std::atomic_store under mu_.
  std::shared_ptr<const Primary> current_;
  mutable std::mutex mu_;  // guards what follows, but the atomic
  LogFn log_;
  size_t next_sentinel_ = 0;  // the one that answered last: asked first next time
  uint64_t switches_ = 0;
  bool lost_ = true;  // no primary confirmed since start or since the last loss
  std::chrono::steady_clock::time_point lost_since_;
  std::chrono::nanoseconds without_total_{0};
  uint64_t sentinel_errors_ = 0;
  bool stop_ = false;
  std::condition_variable cv_;
  std::thread thread_;
  std::mutex resolve_mu_;  // one question to the sentinels at a time

  std::atomic<uint64_t> generation_{0};
};

}  // namespace compd

#endif  // COMPD_BASE_SENTINEL_H_
