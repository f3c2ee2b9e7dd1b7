// RedisConfig: the Redis connection the settings describe (redis_url, its password, and the
// sentinels that name the primary), built once per process and shared by every component.
//
// A pure function of the configuration and the password files; the Sentinel it makes is
// thread-safe (sentinel.h), and its subscriber thread is started by whoever owns the
// process (compd-milter), not here.
#ifndef COMPD_BASE_REDIS_CONFIG_H_
#define COMPD_BASE_REDIS_CONFIG_H_

#include <string>

#include "compd/base/redis.h"
#include "compd/base/settings.h"
#include "compd/base/status.h"

namespace compd {

// redis_url and the Redis password (COMPD_REDIS_PASSWORD or redis_password_file); with
// redis_sentinels also redis_sentinel_master and the sentinels' password
// (COMPD_REDIS_SENTINEL_PASSWORD or redis_sentinel_password_file). kInvalid names the
// setting; kIoError names an unreadable password file.
Status RedisUrlFromConfig(const Config& config, RedisUrl* out);

}  // namespace compd

#endif  // COMPD_BASE_REDIS_CONFIG_H_
