#include "compd/detect/pair_times.h"

#include <algorithm>

namespace compd {

namespace {

// The keys are FNV-1a hashes already; one multiply spreads their low bits.
size_t Spread(uint64_t key) { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> 17); }

}  // namespace

size_t PairTimes::Find(uint64_t key) const {
  const size_t mask = slots_.size() - 1;
  size_t i = Spread(key) & mask;
  while (slots_[i].key != 0 && slots_[i].key != key) i = (i + 1) & mask;
  return i;
}

void PairTimes::Rehash(size_t capacity) {
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(capacity, Slot{});
  for (const Slot& s : old) {
    if (s.key != 0) slots_[Find(s.key)] = s;
  }
}

int64_t PairTimes::Touch(uint64_t key, int64_t time_ms) {
  if (key == 0) {
    const int64_t before = has_zero_ ? zero_ms_ : -1;
    if (!has_zero_) ++size_;
    zero_ms_ = has_zero_ ? std::max(zero_ms_, time_ms) : time_ms;
    has_zero_ = true;
    return before;
  }
  if ((size_ + 1) * 2 > slots_.size()) Rehash(std::max<size_t>(1024, slots_.size() * 2));
  Slot& s = slots_[Find(key)];
  if (s.key == 0) {
    s.key = key;
    s.time_ms = time_ms;
    ++size_;
    return -1;
  }
  const int64_t before = s.time_ms;
  s.time_ms = std::max(s.time_ms, time_ms);
  return before;
}

bool PairTimes::Contains(uint64_t key) const {
  if (key == 0) return has_zero_;
  if (slots_.empty()) return false;
  return slots_[Find(key)].key != 0;
}

void PairTimes::DropBefore(int64_t from_ms) {
  // Rebuilt rather than erased in place (linear probing would need every later slot of a
  // run moved back), in the same memory: fresh pages for every sweep cost more than the
  // sweep.
  if (has_zero_ && zero_ms_ < from_ms) {
    has_zero_ = false;
    --size_;
  }
  scratch_.clear();
  for (const Slot& s : slots_) {
    if (s.key != 0 && s.time_ms >= from_ms) scratch_.push_back(s);
  }
  const size_t kept = scratch_.size() + (has_zero_ ? 1 : 0);
  if (kept == size_) return;
  std::fill(slots_.begin(), slots_.end(), Slot{});
  for (const Slot& s : scratch_) slots_[Find(s.key)] = s;
  size_ = kept;
}

}  // namespace compd
