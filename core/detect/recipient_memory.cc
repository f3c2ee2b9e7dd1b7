#include "compd/detect/recipient_memory.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <unordered_map>

#include "compd/map/entry.h"
#include "compd/map/envelope_address.h"

namespace compd {

namespace {

constexpr int64_t kDayMs = int64_t{86400} * 1000;
constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

int64_t DayOf(int64_t ms) { return ms >= 0 ? ms / kDayMs : (ms - kDayMs + 1) / kDayMs; }

template <typename T>
size_t Held(const std::vector<T>& v) {
  return v.capacity() * sizeof(T);
}

// Room for `extra` more, growing by a quarter instead of the library's doubling: these
// tables are most of a node's memory, and doubling leaves up to half of each unused.
template <typename C>
void Reserve(C* c, size_t extra) {
  if (c->size() + extra <= c->capacity()) return;
  c->reserve(std::max(c->size() + extra, c->capacity() + c->capacity() / 4 + 1024));
}

}  // namespace

// Interned strings in one arena, NUL-separated, found through an open-addressing table of
// ids: no per-string allocation, which is what a million recipients would otherwise cost
// (a std::string and a hash node each, about 100 bytes).
class RecipientMemory::Strings {
 public:
  uint32_t Intern(std::string_view s) {
    if ((off_.size() + 1) * 4 > slots_.size() * 3) Grow();
    size_t mask = slots_.size() - 1;
    for (size_t i = Hash(s) & mask;; i = (i + 1) & mask) {
      uint32_t slot = slots_[i];
      if (slot == 0) {
        uint32_t id = static_cast<uint32_t>(off_.size());
        Reserve(&off_, 1);
        Reserve(&text_, s.size() + 1);
        off_.push_back(static_cast<uint32_t>(text_.size()));
        text_.insert(text_.end(), s.begin(), s.end());
        text_.push_back('\0');
        slots_[i] = id + 1;
        return id;
      }
      if (Get(slot - 1) == s) return slot - 1;
    }
  }
  std::string_view Get(uint32_t id) const {
    const char* p = text_.data() + off_[id];
    size_t end = id + 1 < off_.size() ? off_[id + 1] - 1 : text_.size() - 1;
    return std::string_view(p, end - off_[id]);
  }
  size_t size() const { return off_.size(); }
  size_t bytes() const { return Held(text_) + Held(off_) + Held(slots_); }

 private:
  static size_t Hash(std::string_view s) { return std::hash<std::string_view>()(s); }
  void Grow() {
    std::vector<uint32_t> next(slots_.empty() ? 64 : slots_.size() * 2, 0);
    size_t mask = next.size() - 1;
    for (uint32_t id = 0; id < off_.size(); ++id) {
      size_t i = Hash(Get(id)) & mask;
      while (next[i] != 0) i = (i + 1) & mask;
      next[i] = id + 1;
    }
    slots_.swap(next);
  }

  // Not std::string: libstdc++ doubles a string's capacity on any reserve that grows it.
  std::vector<char> text_;
  std::vector<uint32_t> off_;    // where each id's text starts
  std::vector<uint32_t> slots_;  // id + 1; 0 is empty; size a power of two, at most 3/4 full
};

struct RecipientMemory::Day {
  struct Msg {
    uint32_t ms;  // since the day began
    uint32_t account;
    uint32_t ip;
    uint32_t queue_id_end;  // in queue_ids; it starts where the previous message's ends
    uint32_t recipient;     // the first; most messages have one (pairs hold the others)
  };
  struct Pair {
    uint32_t msg;
    uint32_t recipient;
  };
  int64_t day = 0;
  bool sealed = false;  // its tables were shrunk to fit: no more growth slack
  std::vector<Msg> msgs;
  std::vector<Pair> pairs;
  std::vector<char> queue_ids;  // back to back

  std::string_view QueueId(uint32_t i) const {
    uint32_t start = i == 0 ? 0 : msgs[i - 1].queue_id_end;
    return std::string_view(queue_ids.data() + start, msgs[i].queue_id_end - start);
  }
  size_t bytes() const { return Held(msgs) + Held(pairs) + Held(queue_ids); }
};

RecipientMemory::RecipientMemory()
    : recipients_(std::make_unique<Strings>()),
      accounts_(std::make_unique<Strings>()),
      ips_(std::make_unique<Strings>()) {}

RecipientMemory::~RecipientMemory() = default;

RecipientMemory::Day* RecipientMemory::DayFor(int64_t day) {
  // Almost always the last one: messages arrive in time order.
  auto it = std::lower_bound(days_.begin(), days_.end(), day,
                             [](const Day& d, int64_t v) { return d.day < v; });
  if (it == days_.end() || it->day != day) {
    it = days_.insert(it, Day());
    it->day = day;
  }
  return &*it;
}

void RecipientMemory::Add(const Message& m) {
  if (m.account.empty() || m.recipients.empty()) return;
  std::vector<uint32_t> rcpts;
  rcpts.reserve(m.recipients.size());
  std::string address;
  for (const std::string& raw : m.recipients) {
    if (!EnvelopeAddress(raw, &address).ok()) continue;
    uint32_t id = recipients_->Intern(address);
    if (std::find(rcpts.begin(), rcpts.end(), id) == rcpts.end()) rcpts.push_back(id);
  }
  if (rcpts.empty()) return;
  Day* d = DayFor(DayOf(m.time_ms));
  uint32_t index = static_cast<uint32_t>(d->msgs.size());
  Reserve(&d->msgs, 1);
  Reserve(&d->pairs, rcpts.size() - 1);
  Reserve(&d->queue_ids, m.queue_id.size());
  d->queue_ids.insert(d->queue_ids.end(), m.queue_id.begin(), m.queue_id.end());
  d->msgs.push_back({static_cast<uint32_t>(m.time_ms - d->day * kDayMs),
                     accounts_->Intern(m.account), ips_->Intern(m.client_ip),
                     static_cast<uint32_t>(d->queue_ids.size()), rcpts[0]});
  for (size_t i = 1; i < rcpts.size(); ++i) d->pairs.push_back({index, rcpts[i]});
}

std::vector<RetroFind> RecipientMemory::Hunt(const Matcher& matcher, const Matcher* except,
                                             int64_t since_ms, size_t limit,
                                             bool* truncated) const {
  if (truncated != nullptr) *truncated = false;
  std::vector<RetroFind> out;
  // First the distinct recipients (each looked up once), then one pass over the pairs.
  std::vector<uint32_t> entry_of(recipients_->size(), kNone);
  std::vector<Match> entries;
  std::unordered_map<std::string, uint32_t> entry_index;
  for (uint32_t id = 0; id < recipients_->size(); ++id) {
    std::string_view r = recipients_->Get(id);
    std::optional<Match> m = matcher.Lookup(r);
    if (!m || (except != nullptr && except->Lookup(r))) continue;
    auto [it, added] = entry_index.emplace(m->entry, static_cast<uint32_t>(entries.size()));
    if (added) entries.push_back(*m);
    entry_of[id] = it->second;
  }
  if (entries.empty()) return out;
  auto take = [&](const Day& d, uint32_t index, uint32_t recipient) {
    uint32_t e = entry_of[recipient];
    if (e == kNone) return true;
    const Day::Msg& msg = d.msgs[index];
    int64_t t = d.day * kDayMs + msg.ms;
    if (t < since_ms) return true;
    if (out.size() >= limit) {
      if (truncated != nullptr) *truncated = true;
      return false;
    }
    RetroFind f;
    f.time_ms = t;
    f.account = std::string(accounts_->Get(msg.account));
    f.recipient = std::string(recipients_->Get(recipient));
    f.client_ip = std::string(ips_->Get(msg.ip));
    f.queue_id = std::string(d.QueueId(index));
    f.entry = entries[e].entry;
    f.entry_kind = EntryKindName(entries[e].kind);
    out.push_back(std::move(f));
    return true;
  };
  for (const Day& d : days_) {
    if ((d.day + 1) * kDayMs <= since_ms) continue;
    bool more = true;
    for (uint32_t i = 0; more && i < d.msgs.size(); ++i) more = take(d, i, d.msgs[i].recipient);
    for (size_t i = 0; more && i < d.pairs.size(); ++i) {
      more = take(d, d.pairs[i].msg, d.pairs[i].recipient);
    }
    if (!more) break;
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const RetroFind& a, const RetroFind& b) { return a.time_ms < b.time_ms; });
  return out;
}

void RecipientMemory::Seal() {
  // Days before the newest get no more mail (but a late one): give back the slack their
  // vectors grew with, up to half of what they hold.
  for (size_t i = 0; i + 1 < days_.size(); ++i) {
    Day& d = days_[i];
    if (d.sealed) continue;
    d.msgs.shrink_to_fit();
    d.pairs.shrink_to_fit();
    d.queue_ids.shrink_to_fit();
    d.sealed = true;
  }
}

size_t RecipientMemory::Forget(int64_t before_ms) {
  Seal();
  size_t dropped = 0;
  auto keep = std::find_if(days_.begin(), days_.end(),
                           [before_ms](const Day& d) { return (d.day + 1) * kDayMs > before_ms; });
  if (keep == days_.begin()) return 0;
  for (auto it = days_.begin(); it != keep; ++it) dropped += it->msgs.size();
  days_.erase(days_.begin(), keep);
  Rebuild(*this);
  return dropped;
}

std::unique_ptr<RecipientMemory> RecipientMemory::Without(int64_t before_ms,
                                                          size_t* dropped) const {
  *dropped = 0;
  if (days_.empty() || (days_.front().day + 1) * kDayMs > before_ms) return nullptr;
  auto out = std::make_unique<RecipientMemory>();
  for (const Day& d : days_) {
    if ((d.day + 1) * kDayMs <= before_ms) {
      *dropped += d.msgs.size();
      continue;
    }
    out->days_.push_back(d);  // a copy's vectors are allocated to fit
    out->days_.back().sealed = true;
  }
  if (!out->days_.empty()) out->days_.back().sealed = false;  // still growing
  out->Rebuild(*this);
  return out;
}

void RecipientMemory::Rebuild(const RecipientMemory& from) {
  auto recipients = std::make_unique<Strings>();
  auto accounts = std::make_unique<Strings>();
  auto ips = std::make_unique<Strings>();
  std::vector<uint32_t> r(from.recipients_->size(), kNone), a(from.accounts_->size(), kNone),
      ip(from.ips_->size(), kNone);
  auto remap = [](std::vector<uint32_t>& table, const Strings& old, Strings& to, uint32_t id) {
    if (table[id] == kNone) table[id] = to.Intern(old.Get(id));
    return table[id];
  };
  for (Day& d : days_) {
    for (Day::Msg& m : d.msgs) {
      m.account = remap(a, *from.accounts_, *accounts, m.account);
      m.ip = remap(ip, *from.ips_, *ips, m.ip);
      m.recipient = remap(r, *from.recipients_, *recipients, m.recipient);
    }
    for (Day::Pair& p : d.pairs) {
      p.recipient = remap(r, *from.recipients_, *recipients, p.recipient);
    }
  }
  recipients_ = std::move(recipients);
  accounts_ = std::move(accounts);
  ips_ = std::move(ips);
}

RecipientMemoryStats RecipientMemory::stats() const {
  RecipientMemoryStats s;
  s.recipients = recipients_->size();
  s.accounts = accounts_->size();
  s.client_ips = ips_->size();
  s.days = days_.size();
  s.bytes = recipients_->bytes() + accounts_->bytes() + ips_->bytes() + Held(days_);
  for (const Day& d : days_) {
    s.messages += d.msgs.size();
    s.pairs += d.msgs.size() + d.pairs.size();
    s.bytes += d.bytes();
  }
  if (!days_.empty()) {
    const Day& first = days_.front();
    for (const Day::Msg& m : first.msgs) {
      int64_t t = first.day * kDayMs + m.ms;
      if (s.oldest_ms == 0 || t < s.oldest_ms) s.oldest_ms = t;
    }
  }
  return s;
}

}  // namespace compd
