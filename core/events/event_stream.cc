#include "compd/events/event_stream.h"

#include <algorithm>

#include "compd/base/keys.h"

namespace compd {

Status ReadRecentEvents(RedisClient* redis, const std::string& prefix, const std::string& type,
                        int64_t since_ms, size_t limit, std::vector<Event>* out,
                        size_t scan_limit) {
  out->clear();
  const std::string key = Keys(prefix).events();
  const std::string floor = std::to_string(std::max<int64_t>(since_ms, 0)) + "-0";
  std::string end = "+";
  size_t scanned = 0;
  const size_t page = 500;
  while (out->size() < limit && scanned < scan_limit) {
    const size_t count = std::min(page, scan_limit - scanned);
    RedisReply reply;
    Status s =
        redis->Command({"XREVRANGE", key, end, floor, "COUNT", std::to_string(count)}, &reply);
    if (!s.ok()) return s;
    if (reply.elements.empty()) break;
    for (const RedisReply& entry : reply.elements) {
      ++scanned;
      if (entry.elements.size() < 2) continue;
      end = "(" + entry.elements[0].str;  // exclusive: the next page starts below this id
      const auto& fields = entry.elements[1].elements;
      for (size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].str != "event") continue;
        Event e;
        if (!Event::FromJson(fields[i + 1].str, &e).ok()) break;
        if (!type.empty() && e.type != type) break;
        out->push_back(std::move(e));
        break;
      }
      if (out->size() >= limit) break;
    }
    if (reply.elements.size() < count) break;
  }
  return Status::Ok();
}

}  // namespace compd
