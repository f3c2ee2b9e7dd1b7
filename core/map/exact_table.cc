#include "compd/map/exact_table.h"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <utility>

namespace compd {

void ExactTable::Reserve(size_t keys, size_t bytes) {
  size_t capacity = 16;
  while (capacity < 2 * keys) capacity *= 2;
  slots_.assign(capacity, 0);
  mask_ = capacity - 1;
  offsets_.reserve(keys + 1);
  arena_.reserve(bytes);
}

std::pair<uint32_t, bool> ExactTable::Insert(std::string_view key) {
  const uint64_t h = HashLower(key);
  const uint64_t tag = h >> 32;
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const uint64_t slot = slots_[i];
    if (slot == 0) {
      const uint32_t index = static_cast<uint32_t>(offsets_.size() - 1);
      arena_.append(key);
      offsets_.push_back(static_cast<uint32_t>(arena_.size()));
      slots_[i] = (tag << 32) | (uint64_t{index} + 1);
      return {index, true};
    }
    if ((slot >> 32) == tag && Equal(key, static_cast<uint32_t>(slot) - 1)) {
      return {static_cast<uint32_t>(slot) - 1, false};
    }
  }
}

bool ExactTable::HasRoomFor(size_t len) const {
  return arena_.size() + len <= std::numeric_limits<uint32_t>::max() &&
         offsets_.size() < std::numeric_limits<uint32_t>::max() - 1;
}

}  // namespace compd
