// Event stream reading: the recent hits and anomalies in {prefix}events, for the dashboard
// and mapctl. (Writing is the Recorder's.)
//
// Pure functions over a RedisClient, which is not thread-safe: one per thread.
#ifndef COMPD_EVENTS_EVENT_STREAM_H_
#define COMPD_EVENTS_EVENT_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "compd/base/redis.h"
#include "compd/base/status.h"
#include "compd/events/event.h"

namespace compd {

// Events of `type` (empty: any) written at or after `since_ms` (unix milliseconds; stream
// ids are write times), newest first, at most `limit`. Reads at most `scan_limit` entries,
// so a flood of other events cannot make it slow. Unreadable entries are skipped.
Status ReadRecentEvents(RedisClient* redis, const std::string& prefix, const std::string& type,
                        int64_t since_ms, size_t limit, std::vector<Event>* out,
                        size_t scan_limit = 20000);

}  // namespace compd

#endif  // COMPD_EVENTS_EVENT_STREAM_H_
