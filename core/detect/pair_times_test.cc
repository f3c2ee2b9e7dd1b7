#include "compd/detect/pair_times.h"

#include <catch2/catch.hpp>
#include <unordered_map>

namespace compd {
namespace {

TEST_CASE("pair times: touch keeps the latest time, drop sweeps the old ones", "[detect]") {
  PairTimes p;
  CHECK_FALSE(p.Contains(42));
  CHECK(p.Touch(42, 100) == -1);
  CHECK(p.Touch(42, 50) == 100);  // an older time does not move it back
  CHECK(p.Touch(42, 200) == 100);
  CHECK(p.Touch(0, 10) == -1);  // keys 0 and 1 are keys like any other
  CHECK(p.Contains(0));
  CHECK_FALSE(p.Contains(1));
  CHECK(p.Touch(1, 20) == -1);
  CHECK(p.Touch(0, 5) == 10);
  CHECK(p.size() == 3);
  p.DropBefore(150);
  CHECK(p.Contains(42));
  CHECK_FALSE(p.Contains(0));
  CHECK_FALSE(p.Contains(1));
  CHECK(p.size() == 1);
}

TEST_CASE("pair times: the same answers as a std::unordered_map through growth and sweeps",
          "[detect]") {
  PairTimes p;
  std::unordered_map<uint64_t, int64_t> ref;
  uint64_t x = 88172645463325252ULL;
  for (int64_t t = 0; t < 200000; ++t) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const uint64_t key = x % 50000;  // repeats, as pairs do
    auto it = ref.find(key);
    const int64_t want = it == ref.end() ? -1 : it->second;
    REQUIRE(p.Touch(key, t) == want);
    ref[key] = t;
    if (t % 20000 == 19999) {
      p.DropBefore(t - 10000);
      for (auto r = ref.begin(); r != ref.end();) r = r->second < t - 10000 ? ref.erase(r) : ++r;
      REQUIRE(p.size() == ref.size());
    }
  }
  for (const auto& [key, time] : ref) REQUIRE(p.Contains(key));
  CHECK_FALSE(p.Contains(50001));
}

}  // namespace
}  // namespace compd
