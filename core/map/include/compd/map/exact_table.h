// The exact entries of a map: a set of canonical addresses that a lookup probes with an
// address as the MTA gave it, compared ASCII case-insensitively without lower-casing a copy.
// Part of Matcher (matcher.h); apart because the table is its own data structure.
//
// Not thread-safe to build; a built table is immutable and safe to read from any thread.
#ifndef COMPD_MAP_EXACT_TABLE_H_
#define COMPD_MAP_EXACT_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "compd/base/text.h"

namespace compd {

// Inline: every lookup hashes and compares here.
namespace exact_table_detail {

inline constexpr uint64_t kOnes = 0x0101010101010101ULL;

// ASCII lower-case of eight bytes at once; bytes >= 0x80 are left alone, as
// CanonicalAddress leaves them. Lets lookups hash and compare the canonical form of an
// address without writing it anywhere.
inline uint64_t AsciiLower8(uint64_t x) {
  const uint64_t heptets = x & (0x7f * kOnes);
  const uint64_t ge_a = heptets + ((0x80 - 'A') * kOnes);  // bit 7 set where >= 'A'
  const uint64_t gt_z = heptets + ((0x7f - 'Z') * kOnes);  // bit 7 set where > 'Z'
  const uint64_t upper = ge_a & ~gt_z & ~x & (0x80 * kOnes);
  return x | (upper >> 2);
}

inline uint64_t Mum(uint64_t a, uint64_t b) {
  const __uint128_t r = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

}  // namespace exact_table_detail

// A fast hash of the ASCII-lower-cased bytes of `s` (wyhash-style multiply-fold). Keys are
// chosen by operators, not by senders, so a fixed seed is fine: a sender controls only
// the probe start of a lookup, never how the table is filled.
inline uint64_t HashLower(std::string_view s) {
  constexpr uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL,
                     k2 = 0x8ebc6af09c88c6e3ULL, k3 = 0x589965cc75374cc3ULL;
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = exact_table_detail::Mum(n ^ k0, k1);
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    h = exact_table_detail::Mum(h ^ exact_table_detail::AsciiLower8(x) ^ k2, k1);
  }
  if (n > 0) {
    uint64_t x = 0;
    std::memcpy(&x, p, n);
    h = exact_table_detail::Mum(h ^ exact_table_detail::AsciiLower8(x) ^ k3, k1);
  }
  return exact_table_detail::Mum(h ^ k0, k3);
}

// The exact entries: an open-addressing (linear probing) set of canonical addresses. Keys
// sit back to back in one arena; each slot holds 32 bits of the hash (to reject almost
// every non-matching slot without touching the arena) and the key's index + 1 (0 = empty).
// At a load factor of at most 1/2 this costs about 45 bytes per entry at 1M entries,
// against well over 100 for std::unordered_set<std::string>, and a miss usually touches
// one cache line.
class ExactTable {
 public:
  // Sizes the slots for `keys` keys (of `bytes` bytes in all). Insert never rehashes, so
  // this comes first, with the final count.
  void Reserve(size_t keys, size_t bytes);

  // Adds `key` (canonical, so already lower-case). Returns its index and whether it is
  // new. The caller checks HasRoomFor first.
  std::pair<uint32_t, bool> Insert(std::string_view key);

  // True when one more key of `len` bytes still fits the 32-bit offsets.
  bool HasRoomFor(size_t len) const;

  // Starts loading the slot a lookup with hash `h` will read first, so that the cache miss
  // overlaps other work (the pattern sets) instead of adding to it.
  void Prefetch(uint64_t h) const { __builtin_prefetch(&slots_[h & mask_]); }

  // Index of the key equal to `address` compared ASCII case-insensitively, or -1.
  // `h` is HashLower(address).
  int64_t Find(std::string_view address, uint64_t h) const {
    const uint64_t tag = h >> 32;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t slot = slots_[i];
      if (slot == 0) return -1;
      if ((slot >> 32) == tag && Equal(address, static_cast<uint32_t>(slot) - 1)) {
        return static_cast<uint32_t>(slot) - 1;
      }
    }
  }

  std::string_view Key(uint32_t index) const {
    return std::string_view(arena_).substr(offsets_[index], offsets_[index + 1] - offsets_[index]);
  }
  size_t size() const { return offsets_.size() - 1; }

 private:
  bool Equal(std::string_view address, uint32_t index) const {
    const std::string_view key = Key(index);
    if (key.size() != address.size()) return false;
    for (size_t i = 0; i < key.size(); ++i) {
      if (AsciiLower(address[i]) != key[i]) return false;
    }
    return true;
  }

  std::string arena_;
  std::vector<uint32_t> offsets_{0};  // key i is arena_[offsets_[i], offsets_[i + 1])
  std::vector<uint64_t> slots_;
  size_t mask_ = 0;
};

}  // namespace compd

#endif  // COMPD_MAP_EXACT_TABLE_H_
