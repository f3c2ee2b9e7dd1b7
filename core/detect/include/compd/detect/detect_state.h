// DetectState: what the detection engine remembers between messages: per account, the
// client network groups it has used (first and last use), the new ones of the recent
// window, when each signal last fired, its signal window (signal_window.h), and (for
// engines that count volume themselves, as replay does) its daily and hourly message
// counts; and the domains hosted here.
//
// DetectState is the interface the engine uses; MemoryDetectState keeps everything in
// memory (replay, history import, unit tests) and is the base of the live, Redis-shared
// store (redis_detect_state.h), which is told what the engine learned through Learned().
//
// Thread-safe: accounts are sharded over mutexes, WithAccount runs its function under the
// account's shard lock (keep it short: no I/O); the domain set has its own lock.
#ifndef COMPD_DETECT_DETECT_STATE_H_
#define COMPD_DETECT_DETECT_STATE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "compd/detect/reaction.h"
#include "compd/detect/signal_window.h"
#include "compd/watch/anomaly.h"
#include "compd/watch/volume.h"

namespace compd {

struct KnownGroup {
  int64_t first_ms = 0;
  int64_t last_ms = 0;
};

// A network group first used inside the new_networks window.
struct RecentNewGroup {
  std::string group;    // "203.0.0.0/16"
  std::string network;  // "203.0.113.0/24", the first network of the group seen
  std::string client_ip;
  int64_t first_ms = 0;
};

struct AccountState {
  int64_t first_ms = 0;  // first message seen; 0: never
  bool domain_noted = false;
  std::unordered_map<std::string, KnownGroup> groups;
  std::vector<RecentNewGroup> recent;             // within the window, oldest first
  std::array<int64_t, kSignalCount> raised_ms{};  // when each signal last fired

  // Volume, kept only by engines that count themselves (replay).
  std::vector<DayCounts> days;              // closed days, oldest first, within the history window
  int64_t day_start = -1, hour_start = -1;  // unix seconds
  int64_t day_messages = 0, day_recipients = 0, day_networks = 0;
  int64_t hour_messages = 0, hour_recipients = 0;
  std::vector<std::string> hour_networks;  // distinct; a few (at most 256): cleared, not freed
  std::string baseline_day;
  Baseline baseline;
  std::map<std::string, std::string> anomaly_periods;  // rule -> period last raised

  SignalWindow window;  // the signals of signal_window, for the combination
};

// One use of a network group by an account, as the engine learned it (for sharing).
struct GroupUse {
  std::string group;
  std::string network;
  std::string client_ip;
  int64_t time_ms = 0;
  bool was_new = false;  // it entered the account's recent new groups
};

class DetectState {
 public:
  virtual ~DetectState() = default;
  // Runs `fn` on the state of `key` (an AccountKey), created empty when missing.
  virtual void WithAccount(const std::string& key,
                           const std::function<void(AccountState&)>& fn) = 0;
  virtual bool IsLocalDomain(std::string_view domain) const = 0;
  virtual void AddDomain(std::string_view domain) = 0;
  // The engine learned `use` for `key` (called outside the account's lock).
  virtual void Learned(const std::string& key, const GroupUse& use) {
    (void)key;
    (void)use;
  }
  // The engine put `entry` in the window of `key` (called outside the account's lock).
  virtual void Contributed(const std::string& key, const WindowEntry& entry) {
    (void)key;
    (void)entry;
  }
  virtual size_t accounts() const = 0;
};

class MemoryDetectState : public DetectState {
 public:
  MemoryDetectState() = default;
  void WithAccount(const std::string& key, const std::function<void(AccountState&)>& fn) override;
  bool IsLocalDomain(std::string_view domain) const override;
  void AddDomain(std::string_view domain) override;
  size_t accounts() const override;
  // Every account, one at a time under its shard's lock (history import, tests).
  void ForEach(const std::function<void(const std::string&, const AccountState&)>& fn) const;

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, AccountState> accounts;
  };
  std::array<Shard, kShards> shards_;
  mutable std::shared_mutex domains_mu_;
  std::set<std::string, std::less<>> domains_;  // looked up by string_view, no copy
};

}  // namespace compd

#endif  // COMPD_DETECT_DETECT_STATE_H_
