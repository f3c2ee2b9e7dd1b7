#include "compd/base/redis_config.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>

#include "compd/base/sentinel.h"

namespace compd {

namespace {

// A dead sentinel must not hold a connection up for a whole redis_timeout: the next one is
// asked after at most this long.
constexpr std::chrono::milliseconds kSentinelTimeoutMax{1000};

}  // namespace

Status RedisUrlFromConfig(const Config& config, RedisUrl* out) {
  RedisUrl url;
  Status s = ParseRedisUrl(config.GetString("redis_url"), &url);
  if (!s.ok()) return Status::Invalid("redis_url: " + s.message());
  s = LoadRedisPassword(config.GetString("redis_password_file"), &url.password);
  if (!s.ok()) return s;
  const std::string sentinels = config.GetString("redis_sentinels");
  if (sentinels.empty()) {
    *out = std::move(url);
    return Status::Ok();
  }
  SentinelOptions so;
  s = ParseSentinelList(sentinels, &so.sentinels);
  if (!s.ok()) return Status::Invalid("redis_sentinels: " + s.message());
  so.master = config.GetString("redis_sentinel_master");
  if (so.master.empty()) {
    return Status::Invalid(
        "redis_sentinel_master: required with redis_sentinels (the name the sentinels "
        "monitor the primary under, as in their `sentinel monitor NAME ...` line)");
  }
  if (!url.socket_path.empty()) {
    return Status::Invalid(
        "redis_url: a unix socket cannot follow a failover; with redis_sentinels use "
        "redis://[user@]host/db (only the user and database are taken from it)");
  }
  const std::string file = config.GetString("redis_sentinel_password_file");
  if (!file.empty()) {
    s = LoadRedisPassword(file, &so.password);
    if (!s.ok()) return s;
  } else if (const char* env = std::getenv("COMPD_REDIS_SENTINEL_PASSWORD")) {
    so.password = env;
  }
  so.timeout = std::min(kSentinelTimeoutMax,
                        std::chrono::milliseconds(config.GetDurationMs("redis_timeout")));
  url.sentinel = std::make_shared<Sentinel>(std::move(so));
  *out = std::move(url);
  return Status::Ok();
}

}  // namespace compd
