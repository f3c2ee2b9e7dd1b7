// The read side of the volume counters: the top-N view of the dashboard and an account's
// daily history for the anomaly detector.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include "compd/base/keys.h"
#include "compd/watch/volume.h"

namespace compd {

namespace {

constexpr int64_t kHour = 3600;

int64_t ScoreOf(const RedisReply& r) {
  if (r.type == RedisReply::Type::kInteger) return r.integer;
  if (r.type != RedisReply::Type::kString) return 0;
  return static_cast<int64_t>(std::strtod(r.str.c_str(), nullptr));
}

}  // namespace

Status ReadTop(RedisClient* redis, const std::string& prefix, int64_t now, size_t n, TopView* out) {
  Keys keys(prefix);
  const int64_t h[3] = {HourStart(now), HourStart(now) - kHour, HourStart(now) - 2 * kHour};
  std::string id[3];
  for (int i = 0; i < 3; ++i) id[i] = HourId(h[i]);
  if (n == 0) n = 1;
  std::vector<std::vector<std::string>> cmds;
  for (int i = 0; i < 3; ++i) {
    cmds.push_back(
        {"ZREVRANGE", keys.hour_messages(id[i]), "0", std::to_string(n - 1), "WITHSCORES"});
  }
  std::vector<RedisReply> replies;
  Status s = redis->Pipeline(cmds, &replies);
  if (!s.ok()) return s;
  std::vector<std::pair<std::string, int64_t>> top[3];
  std::set<std::string> members[3];
  for (int i = 0; i < 3; ++i) {
    const auto& el = replies[i].elements;
    for (size_t k = 0; k + 1 < el.size(); k += 2) {
      top[i].emplace_back(el[k].str, ScoreOf(el[k + 1]));
      members[i].insert(el[k].str);
    }
  }
  TopColumn* cols[2] = {&out->this_hour, &out->last_hour};
  cmds.clear();
  for (int c = 0; c < 2; ++c) {
    cols[c]->hour_start = h[c];
    cols[c]->hour = id[c];
    cols[c]->rows.clear();
    for (const auto& [account, count] : top[c]) {
      TopRow row;
      row.account = account;
      row.messages = count;
      row.new_to_top = members[c + 1].count(account) == 0;
      cols[c]->rows.push_back(row);
      cmds.push_back({"ZSCORE", keys.hour_recipients(id[c]), account});
      cmds.push_back({"PFCOUNT", keys.hour_networks(id[c], account)});
      cmds.push_back({"ZSCORE", keys.hour_messages(id[c + 1]), account});
    }
  }
  if (cmds.empty()) return Status::Ok();
  replies.clear();
  s = redis->Pipeline(cmds, &replies);
  if (!s.ok()) return s;
  size_t k = 0;
  for (int c = 0; c < 2; ++c) {
    for (TopRow& row : cols[c]->rows) {
      row.recipients = ScoreOf(replies[k++]);
      row.networks = ScoreOf(replies[k++]);
      row.previous = ScoreOf(replies[k++]);
    }
  }
  return Status::Ok();
}

std::vector<DayCounts> ParseMonthDays(const std::string& yyyymm,
                                      const std::vector<RedisReply>& hgetall) {
  std::vector<DayCounts> out;
  for (size_t i = 0; i + 1 < hgetall.size(); i += 2) {
    DayCounts d;
    d.day = yyyymm + hgetall[i].str;
    int64_t start;
    if (hgetall[i].str.size() != 2 || !ParseDayId(d.day, &start)) continue;
    long long m = 0, r = 0, n = 0;
    if (std::sscanf(hgetall[i + 1].str.c_str(), "%lld %lld %lld", &m, &r, &n) != 3) continue;
    d.messages = m;
    d.recipients = r;
    d.networks = n;
    out.push_back(std::move(d));
  }
  std::sort(out.begin(), out.end(),
            [](const DayCounts& a, const DayCounts& b) { return a.day < b.day; });
  return out;
}

Status ReadAccountDays(RedisClient* redis, const std::string& prefix, const std::string& account,
                       int64_t from, int64_t to, std::vector<DayCounts>* out) {
  out->clear();
  Keys keys(prefix);
  std::vector<std::string> months;
  for (int64_t t = DayStart(from); t <= to; t = NextMonthStart(t)) {
    months.push_back(DayId(t).substr(0, 6));
  }
  std::vector<std::vector<std::string>> cmds;
  for (const std::string& m : months) cmds.push_back({"HGETALL", keys.month(m, account)});
  if (cmds.empty()) return Status::NotFound("no volume history for " + account);
  std::vector<RedisReply> replies;
  Status s = redis->Pipeline(cmds, &replies);
  if (!s.ok()) return s;
  const std::string first = DayId(from), last = DayId(to);
  for (size_t i = 0; i < months.size() && i < replies.size(); ++i) {
    for (DayCounts& d : ParseMonthDays(months[i], replies[i].elements)) {
      if (d.day >= first && d.day <= last) out->push_back(std::move(d));
    }
  }
  if (out->empty()) return Status::NotFound("no volume history for " + account);
  return Status::Ok();
}

}  // namespace compd
