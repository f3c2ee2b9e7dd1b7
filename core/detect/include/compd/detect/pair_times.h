// PairTimes: a hash table from 64-bit keys to a time (Unix ms), open addressing with
// linear probing in one flat array. Discovery's memory of (account, recipient) pairs
// holds hundreds of thousands of entries and is swept for old ones every few hours of log
// time: in node-based std::unordered_map those sweeps and lookups were most of a replay's
// CPU (cache misses on every node); here a sweep is one pass over contiguous memory.
//
// Not thread-safe: the owner locks.
#ifndef COMPD_DETECT_PAIR_TIMES_H_
#define COMPD_DETECT_PAIR_TIMES_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace compd {

class PairTimes {
 public:
  // Stores max(stored, time_ms) for `key`; returns the time stored before, or -1 if the
  // key was not there.
  int64_t Touch(uint64_t key, int64_t time_ms);
  bool Contains(uint64_t key) const;
  // Drops every entry whose time is before `from_ms`.
  void DropBefore(int64_t from_ms);
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key = 0;  // 0: empty (key 0 itself lives in zero_)
    int64_t time_ms = 0;
  };
  size_t Find(uint64_t key) const;  // its slot, or the empty slot where it would go
  void Rehash(size_t capacity);

  std::vector<Slot> slots_;  // a power of two in size, at most 1/2 full
  size_t size_ = 0;
  std::vector<Slot> scratch_;  // DropBefore's, kept for the next sweep
  bool has_zero_ = false;
  int64_t zero_ms_ = 0;
};

}  // namespace compd

#endif  // COMPD_DETECT_PAIR_TIMES_H_
