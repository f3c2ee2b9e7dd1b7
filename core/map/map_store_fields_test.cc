#include "compd/map/map_store_fields.h"

#include <catch2/catch.hpp>
#include <string>

namespace compd {
namespace map_fields {
namespace {

TEST_CASE("versions read back from every reply Redis gives", "[map_store]") {
  uint64_t v = 7;
  RedisReply nil;
  nil.type = RedisReply::Type::kNil;
  CHECK(ParseVersion(nil, &v).ok());
  CHECK(v == 0);
  RedisReply text;
  text.type = RedisReply::Type::kString;
  text.str = "42";
  CHECK(ParseVersion(text, &v).ok());
  CHECK(v == 42);
  text.str = "4x";
  CHECK(ParseVersion(text, &v).code() == Status::Code::kInternal);
  CHECK_FALSE(ParseU64("", &v));
  CHECK_FALSE(ParseU64("12345678901234567890", &v));
  CHECK(ParseU64("1234567890123456789", &v));
}

TEST_CASE("stored fields that are not entries are named", "[map_store]") {
  CHECK(std::string(InvalidExactField("a@x.com")).empty());
  CHECK(std::string(InvalidExactField("A@x.com")) == "not in canonical (lower-case) form");
  CHECK(std::string(InvalidExactField("ax.com")) == "not an address");
  Entry e;
  REQUIRE(PatternField("/^a@/i", &e).ok());
  CHECK(e.text == "/^a@/i");
  CHECK(PatternField("a@x.com", &e).message() == "not a /pattern/");
}

}  // namespace
}  // namespace map_fields
}  // namespace compd
