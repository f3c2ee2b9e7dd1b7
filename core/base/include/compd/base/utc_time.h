// UTC timestamps as compd writes them everywhere (events, account records, metadata):
// `2026-11-26T18:44:48.123Z`. Pure functions; safe from any thread.
#ifndef COMPD_BASE_UTC_TIME_H_
#define COMPD_BASE_UTC_TIME_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace compd {

// `2026-11-26T18:44:48.123Z` for `t` (milliseconds truncated).
std::string FormatUtcMillis(std::chrono::system_clock::time_point t);
// The same for Unix milliseconds, as the detection code keeps its times.
std::string FormatUnixMillis(int64_t unix_ms);
// Unix milliseconds for a time as FormatUtcMillis writes it (the fraction is optional).
// False when `s` is not such a time.
bool ParseUtcMillis(std::string_view s, int64_t* unix_ms);

}  // namespace compd

#endif  // COMPD_BASE_UTC_TIME_H_
