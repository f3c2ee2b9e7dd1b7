#include "compd/watch/trends.h"

#include <cstdlib>

#include "compd/base/keys.h"
#include "compd/watch/volume.h"

namespace compd {

namespace {

constexpr int64_t kHour = 3600;
constexpr int64_t kDay = 86400;
// Nodes flush every second or so; five minutes after its end an hour no longer changes.
constexpr int64_t kSettleSeconds = 300;

int64_t IntOf(const RedisReply& r) {
  if (r.type == RedisReply::Type::kInteger) return r.integer;
  if (r.type == RedisReply::Type::kString) return std::strtoll(r.str.c_str(), nullptr, 10);
  return 0;  // nil: no messages that hour
}

}  // namespace

bool TrendReader::Settled(int64_t hour_start, int64_t now) {
  return hour_start + kHour + kSettleSeconds <= now;
}

void TrendReader::Prune(int64_t now) {
  const int64_t oldest = HourStart(now) - (kTrendHours + 1) * kHour;
  for (auto it = account_hours_.begin(); it != account_hours_.end();) {
    it = it->first.first < oldest ? account_hours_.erase(it) : std::next(it);
  }
  const int64_t oldest_platform = oldest - 7 * kDay;
  for (auto it = platform_hours_.begin(); it != platform_hours_.end();) {
    it = it->first < oldest_platform ? platform_hours_.erase(it) : std::next(it);
  }
  const std::string today = DayId(now);
  for (auto it = baselines_.begin(); it != baselines_.end();) {
    it = it->second.first != today ? baselines_.erase(it) : std::next(it);
  }
}

Status TrendReader::ReadAccounts(RedisClient* redis, int64_t now,
                                 const std::set<std::string>& accounts,
                                 std::map<std::string, AccountTrend>* out) {
  Prune(now);
  Keys keys(prefix_);
  const int64_t first = HourStart(now) - (kTrendHours - 1) * kHour;
  struct Want {
    std::string account;
    int64_t hour;
  };
  std::vector<Want> wants;
  std::vector<std::vector<std::string>> cmds;
  for (const std::string& account : accounts) {
    for (int i = 0; i < kTrendHours; ++i) {
      const int64_t hour = first + i * kHour;
      if (account_hours_.count({hour, account})) continue;
      wants.push_back({account, hour});
      cmds.push_back({"ZSCORE", keys.hour_messages(HourId(hour)), account});
    }
  }
  if (!cmds.empty()) {
    std::vector<RedisReply> replies;
    Status s = redis->Pipeline(cmds, &replies);
    if (!s.ok()) return s;
    std::map<std::pair<int64_t, std::string>, int64_t> fresh;
    for (size_t i = 0; i < wants.size() && i < replies.size(); ++i) {
      fresh[{wants[i].hour, wants[i].account}] = IntOf(replies[i]);
    }
    for (const auto& [key, count] : fresh) {
      if (Settled(key.first, now)) account_hours_[key] = count;
    }
    for (const std::string& account : accounts) {
      AccountTrend& t = (*out)[account];
      t.hours.assign(kTrendHours, 0);
      for (int i = 0; i < kTrendHours; ++i) {
        const std::pair<int64_t, std::string> key{first + i * kHour, account};
        auto it = fresh.find(key);
        if (it != fresh.end()) {
          t.hours[i] = it->second;
        } else {
          auto c = account_hours_.find(key);
          if (c != account_hours_.end()) t.hours[i] = c->second;
        }
      }
    }
  } else {
    for (const std::string& account : accounts) {
      AccountTrend& t = (*out)[account];
      t.hours.assign(kTrendHours, 0);
      for (int i = 0; i < kTrendHours; ++i)
        t.hours[i] = account_hours_[{first + i * kHour, account}];
    }
  }

  // Baselines change once a day: the day in progress is never part of them.
  const std::string today = DayId(now);
  const int64_t today_start = DayStart(now);
  for (const std::string& account : accounts) {
    auto it = baselines_.find(account);
    if (it == baselines_.end()) {
      std::vector<DayCounts> days;
      Status s = ReadAccountDays(redis, prefix_, account,
                                 today_start - static_cast<int64_t>(rules_.history_days) * kDay,
                                 today_start - 1, &days);
      if (!s.ok() && !s.IsNotFound()) return s;
      AccountTrend b;
      if (s.ok()) {
        Baseline base = BuildBaseline(days, today_start, rules_);
        b.history_days = base.history_days;
        b.usual_day = base.messages.UsualHigh(rules_.mad_factor);
      }
      it = baselines_.emplace(account, std::make_pair(today, b)).first;
    }
    AccountTrend& t = (*out)[account];
    t.usual_day = it->second.second.usual_day;
    t.history_days = it->second.second.history_days;
  }
  return Status::Ok();
}

Status TrendReader::ReadPlatform(RedisClient* redis, int64_t now, PlatformTrend* out) {
  Prune(now);
  Keys keys(prefix_);
  out->first_hour = HourStart(now) - (kTrendHours - 1) * kHour;
  std::vector<int64_t> wanted;
  std::vector<std::vector<std::string>> cmds;
  auto want = [&](int64_t hour) {
    if (platform_hours_.count(hour)) return;
    wanted.push_back(hour);
    cmds.push_back({"HGET", keys.hour_total(HourId(hour)), "m"});
  };
  for (int i = 0; i < kTrendHours; ++i) {
    want(out->first_hour + i * kHour);
    want(out->first_hour + i * kHour - 7 * kDay);
  }
  // Whether last week's counters exist at all: an hour without a key reads as 0, which
  // must not draw as "last week was silent" on a new install.
  cmds.push_back({"EXISTS", keys.hour_total(HourId(out->first_hour - 7 * kDay)),
                  keys.hour_total(HourId(out->first_hour - 7 * kDay - kHour))});
  std::vector<RedisReply> replies;
  Status s = redis->Pipeline(cmds, &replies);
  if (!s.ok()) return s;
  if (replies.size() != cmds.size()) return Status::Unavailable("short reply from Redis");
  std::map<int64_t, int64_t> fresh;
  for (size_t i = 0; i < wanted.size(); ++i) {
    fresh[wanted[i]] = IntOf(replies[i]);
    if (Settled(wanted[i], now)) platform_hours_[wanted[i]] = fresh[wanted[i]];
  }
  auto count = [&](int64_t hour) {
    auto it = fresh.find(hour);
    return it != fresh.end() ? it->second : platform_hours_[hour];
  };
  out->hours.assign(kTrendHours, 0);
  out->week_ago.assign(kTrendHours, 0);
  bool any_old = IntOf(replies.back()) > 0;
  for (int i = 0; i < kTrendHours; ++i) {
    out->hours[i] = count(out->first_hour + i * kHour);
    out->week_ago[i] = count(out->first_hour + i * kHour - 7 * kDay);
    if (out->week_ago[i] > 0) any_old = true;
  }
  out->week_ago_known = any_old;
  return Status::Ok();
}

}  // namespace compd
