#include "compd/logs/assembly.h"

#include <algorithm>
#include <charconv>

namespace compd {

void Tally::NotUnderstood(size_t file, uint64_t number, std::string_view raw) {
  Bump(file, &LogCounts::not_understood);
  if (sampled_ >= max_samples_) return;
  ++sampled_;
  constexpr size_t kMaxText = 160;
  std::string s = stats_->files[file].path;
  s += ':';
  s += std::to_string(number);
  s += ": ";
  if (raw.size() > kMaxText) {
    s.append(raw.substr(0, kMaxText));
    s += "...";
  } else {
    s.append(raw);
  }
  stats_->samples.push_back(std::move(s));
}

size_t MessagePool::Acquire() {
  size_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = slots_.size();
    slots_.emplace_back();
  }
  Message& m = slots_[slot].message;
  m.time_ms = 0;
  m.node.clear();
  m.queue_id.clear();
  m.account.clear();
  m.client_ip.clear();
  m.client_name.clear();
  m.helo.clear();
  m.sender.clear();
  m.recipients.clear();
  m.from_header.clear();
  m.to_header.clear();
  m.subject.clear();
  m.size = -1;
  m.message_id.clear();
  m.source.clear();
  m.origin.clear();
  slots_[slot].file = 0;
  return slot;
}

bool MessagePool::Later(const Ready& a, const Ready& b) {
  return a.time_ms != b.time_ms ? a.time_ms > b.time_ms : a.order > b.order;
}

void MessagePool::Finish(size_t slot) {
  ready_.push_back(Ready{slots_[slot].message.time_ms, order_++, slot});
  std::push_heap(ready_.begin(), ready_.end(), Later);
}

bool MessagePool::PopUpTo(int64_t limit, size_t* slot) {
  if (ready_.empty() || ready_.front().time_ms > limit) return false;
  std::pop_heap(ready_.begin(), ready_.end(), Later);
  *slot = ready_.back().slot;
  ready_.pop_back();
  return true;
}

PendingMessages::Entry* PendingMessages::Find(std::string_view key) {
  key_.assign(key);
  auto it = entries_.find(key_);
  return it == entries_.end() ? nullptr : &it->second;
}

PendingMessages::Entry* PendingMessages::Add(std::string_view key, size_t slot, int64_t start_ms) {
  key_.assign(key);
  Entry e;
  e.slot = slot;
  e.start_ms = start_ms;
  e.seq = seq_++;
  by_start_.emplace(std::make_pair(start_ms, e.seq), key_);
  return &entries_.insert_or_assign(key_, e).first->second;
}

size_t PendingMessages::Take(std::string_view key) {
  key_.assign(key);
  auto it = entries_.find(key_);
  if (it == entries_.end()) return SIZE_MAX;
  size_t slot = it->second.slot;
  by_start_.erase(std::make_pair(it->second.start_ms, it->second.seq));
  entries_.erase(it);
  return slot;
}

void SetOrigin(std::string_view base_name, uint64_t line, std::string* out) {
  out->assign(base_name);
  out->push_back(':');
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, line);
  out->append(buf, r.ptr);
}

void AddRecipient(std::string_view addr, std::vector<std::string>* recipients) {
  if (addr.empty()) return;
  for (const std::string& r : *recipients) {
    if (r == addr) return;
  }
  recipients->emplace_back(addr);
}

bool HasControlChar(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

void Assembler::Expire(int64_t time_ms) {
  while (pending_.OldestStart() < time_ms) FinishPending(pending_.OldestKey());
}

void Assembler::SetOriginOf(const LogLine& line, std::string* out) const {
  SetOrigin((*base_names_)[line.file], line.number, out);
}

}  // namespace compd
