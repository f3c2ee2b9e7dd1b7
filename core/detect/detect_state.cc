#include "compd/detect/detect_state.h"

namespace compd {

void MemoryDetectState::WithAccount(const std::string& key,
                                    const std::function<void(AccountState&)>& fn) {
  Shard& s = shards_[std::hash<std::string>()(key) % kShards];
  std::lock_guard<std::mutex> lock(s.mu);
  fn(s.accounts[key]);
}

bool MemoryDetectState::IsLocalDomain(std::string_view domain) const {
  std::shared_lock<std::shared_mutex> lock(domains_mu_);
  return domains_.find(domain) != domains_.end();
}

void MemoryDetectState::AddDomain(std::string_view domain) {
  if (domain.empty()) return;
  {
    std::shared_lock<std::shared_mutex> lock(domains_mu_);
    if (domains_.find(domain) != domains_.end()) return;
  }
  std::unique_lock<std::shared_mutex> lock(domains_mu_);
  domains_.emplace(domain);
}

size_t MemoryDetectState::accounts() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.accounts.size();
  }
  return n;
}

void MemoryDetectState::ForEach(
    const std::function<void(const std::string&, const AccountState&)>& fn) const {
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    for (const auto& [key, state] : s.accounts) fn(key, state);
  }
}

}  // namespace compd
