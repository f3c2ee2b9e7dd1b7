#include "compd/map/exact_table.h"

#include <catch2/catch.hpp>
#include <string>

namespace compd {
namespace {

TEST_CASE("the hash folds ASCII case and nothing else", "[exact_table]") {
  // Every byte value at every position of an 8-byte word and of the tail.
  for (int b = 0; b < 256; ++b) {
    for (size_t len : {1, 7, 8, 9, 17}) {
      for (size_t pos = 0; pos < len; ++pos) {
        std::string s(len, 'q');
        s[pos] = static_cast<char>(b);
        INFO("byte " << b << " at " << pos << " of " << len);
        CHECK(HashLower(s) == HashLower(AsciiLower(s)));
      }
    }
  }
  CHECK(HashLower("a@x.com") != HashLower("b@x.com"));
  CHECK(HashLower("\xc3\x89") != HashLower("\xc3\xa9"));
}

TEST_CASE("keys are found case-insensitively and stored once", "[exact_table]") {
  ExactTable t;
  t.Reserve(3, 64);
  REQUIRE(t.HasRoomFor(7));
  CHECK(t.Insert("a@x.com") == std::make_pair(uint32_t{0}, true));
  CHECK(t.Insert("b@x.com") == std::make_pair(uint32_t{1}, true));
  CHECK(t.Insert("a@x.com") == std::make_pair(uint32_t{0}, false));
  CHECK(t.size() == 2);
  CHECK(t.Find("A@X.Com", HashLower("A@X.Com")) == 0);
  CHECK(t.Find("b@x.com", HashLower("b@x.com")) == 1);
  CHECK(t.Find("c@x.com", HashLower("c@x.com")) == -1);
  CHECK(t.Key(1) == "b@x.com");
}

TEST_CASE("keys beyond the byte reservation are kept whole", "[exact_table]") {
  ExactTable t;
  t.Reserve(4, 0);
  for (int i = 0; i < 6; ++i) t.Insert("u" + std::to_string(i) + "@x.com");
  for (int i = 0; i < 6; ++i) {
    const std::string k = "U" + std::to_string(i) + "@X.COM";
    CHECK(t.Find(k, HashLower(k)) == i);
  }
}

}  // namespace
}  // namespace compd
