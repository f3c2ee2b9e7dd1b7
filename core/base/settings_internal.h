// Private to the settings module (settings.cc, settings_table.cc): the duration units the
// table's bounds and the duration parser share. Constants only.
#ifndef COMPD_BASE_SETTINGS_INTERNAL_H_
#define COMPD_BASE_SETTINGS_INTERNAL_H_

#include <cstdint>

namespace compd::settings_internal {

constexpr int64_t kMs = 1;
constexpr int64_t kSec = 1000 * kMs;
constexpr int64_t kMin = 60 * kSec;
constexpr int64_t kHour = 60 * kMin;
constexpr int64_t kDay = 24 * kHour;

}  // namespace compd::settings_internal

#endif  // COMPD_BASE_SETTINGS_INTERNAL_H_
