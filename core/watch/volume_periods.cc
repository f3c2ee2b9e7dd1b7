// Hour and day buckets and client networks: how the volume counters name what they count.
#include <arpa/inet.h>

#include <cstdio>
#include <cstring>
#include <ctime>

#include "compd/watch/volume.h"

namespace compd {

namespace {

constexpr int64_t kHour = 3600;
constexpr int64_t kDay = 86400;

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

struct tm Utc(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  return tm;
}

std::string Pad(int v, int width) {
  std::string s = std::to_string(v);
  if (static_cast<int>(s.size()) < width) s.insert(0, width - s.size(), '0');
  return s;
}

}  // namespace

int64_t NextMonthStart(int64_t unix_seconds) {
  struct tm tm = Utc(unix_seconds);
  struct tm next {};
  next.tm_year = tm.tm_mon == 11 ? tm.tm_year + 1 : tm.tm_year;
  next.tm_mon = (tm.tm_mon + 1) % 12;
  next.tm_mday = 1;
  return static_cast<int64_t>(timegm(&next));
}

std::string HourId(int64_t unix_seconds) {
  struct tm tm = Utc(unix_seconds);
  return Pad(tm.tm_year + 1900, 4) + Pad(tm.tm_mon + 1, 2) + Pad(tm.tm_mday, 2) +
         Pad(tm.tm_hour, 2);
}

std::string DayId(int64_t unix_seconds) { return HourId(unix_seconds).substr(0, 8); }

int64_t HourStart(int64_t unix_seconds) { return FloorDiv(unix_seconds, kHour) * kHour; }

int64_t DayStart(int64_t unix_seconds) { return FloorDiv(unix_seconds, kDay) * kDay; }

bool ParseDayId(std::string_view day, int64_t* day_start) {
  if (day.size() != 8) return false;
  int v[3] = {0, 0, 0};
  const int widths[3] = {4, 2, 2};
  size_t pos = 0;
  for (int k = 0; k < 3; ++k) {
    for (int j = 0; j < widths[k]; ++j, ++pos) {
      char c = day[pos];
      if (c < '0' || c > '9') return false;
      v[k] = v[k] * 10 + (c - '0');
    }
  }
  if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31) return false;
  struct tm tm {};
  tm.tm_year = v[0] - 1900;
  tm.tm_mon = v[1] - 1;
  tm.tm_mday = v[2];
  *day_start = static_cast<int64_t>(timegm(&tm));
  return DayId(*day_start) == day;  // rejects 20260231
}

std::string HourLabel(int64_t unix_seconds) {
  std::string id = HourId(unix_seconds);
  return id.substr(0, 4) + "-" + id.substr(4, 2) + "-" + id.substr(6, 2) + "T" + id.substr(8, 2);
}

std::string DayLabel(int64_t unix_seconds) { return HourLabel(unix_seconds).substr(0, 10); }

std::string ClientNetwork(std::string_view ip_text, int ipv4_bits, int ipv6_bits) {
  std::string s(ip_text);
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  if (s.rfind("IPv6:", 0) == 0) s = s.substr(5);
  uint8_t a[16] = {};
  bool v6 = false;
  in_addr v4addr;
  in6_addr v6addr;
  if (inet_pton(AF_INET, s.c_str(), &v4addr) == 1) {
    std::memcpy(a, &v4addr, 4);
  } else if (inet_pton(AF_INET6, s.c_str(), &v6addr) == 1) {
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(v6addr.s6_addr, kMapped, 12) == 0) {
      std::memcpy(a, v6addr.s6_addr + 12, 4);
    } else {
      std::memcpy(a, v6addr.s6_addr, 16);
      v6 = true;
    }
  } else {
    return "";
  }
  int bits = std::clamp(v6 ? ipv6_bits : ipv4_bits, 0, v6 ? 128 : 32);
  int len = v6 ? 16 : 4;
  for (int i = 0; i < len; ++i) {
    int keep = std::clamp(bits - i * 8, 0, 8);
    a[i] &= static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, a, buf, sizeof buf) == nullptr) return "";
  return std::string(buf) + "/" + std::to_string(bits);
}

}  // namespace compd
