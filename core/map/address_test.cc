#include "compd/map/address.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace std::string_literals;

namespace compd {
namespace {

struct CanonCase {
  std::string input;
  bool strip_subaddress;
  bool gmail_dots;
  std::string expected;
};

TEST_CASE("CanonicalAddress lower-cases and optionally rewrites", "[address]") {
  const CanonCase kCases[] = {
      // Default: ASCII lower-case of the whole address (rspamd plain maps compare so).
      {"John.Doe@Example.COM", false, false, "john.doe@example.com"},
      {"User+Tag@X.com", false, false, "user+tag@x.com"},
      {"J.Doe@Gmail.com", false, false, "j.doe@gmail.com"},
      {"ÄÖ@Bücher.Example", false, false, "ÄÖ@bücher.example"},
      {"U@[IPv6:2001:DB8::1]", false, false, "u@[ipv6:2001:db8::1]"},
      {"NoAt", false, false, "noat"},
      {"", false, false, ""},
      // strip_subaddress: only the first '+' matters.
      {"User+Tag@X.com", true, false, "user@x.com"},
      {"user+a+b@x.com", true, false, "user@x.com"},
      {"user+@x.com", true, false, "user@x.com"},
      {"+tag@x.com", true, false, "+tag@x.com"},
      {"user@x+y.com", true, false, "user@x+y.com"},
      {"plain@x.com", true, false, "plain@x.com"},
      // gmail_dots: gmail.com and googlemail.com only, after lower-casing.
      {"J.o.h.n@Gmail.COM", false, true, "john@gmail.com"},
      {"j.doe@googlemail.com", false, true, "jdoe@googlemail.com"},
      {"j.doe@example.com", false, true, "j.doe@example.com"},
      {"j.doe@mail.gmail.com", false, true, "j.doe@mail.gmail.com"},
      {"j.doe+x@gmail.com", false, true, "jdoe+x@gmail.com"},
      // Both.
      {"J.Doe+spam@GoogleMail.com", true, true, "jdoe@googlemail.com"},
  };
  for (const auto& c : kCases) {
    CAPTURE(c.input, c.strip_subaddress, c.gmail_dots);
    CanonOptions o;
    o.strip_subaddress = c.strip_subaddress;
    o.gmail_dots = c.gmail_dots;
    CHECK(CanonicalAddress(c.input, o) == c.expected);
  }
  CHECK(CanonicalAddress("A+B@GMAIL.COM") == "a+b@gmail.com");  // defaults are off
}

TEST_CASE("LooksLikeAddress", "[address]") {
  const std::pair<std::string, bool> kCases[] = {
      {"a@b.com", true},
      {"serv...@paypal.com", true},
      {"2...@mail01.netgate.com.uy", true},
      {"o'brien@example.ie", true},
      {"u@[192.0.2.1]", true},
      {"\"x.y\"@b.com", true},
      {"user@localhost", true},
      {"用户@例子.广告", true},
      {"", false},
      {"a", false},
      {"@b.com", false},
      {"a@", false},
      {"a@b@c.com", false},
      {"a b@c.com", false},
      {"a@b .com", false},
      {"<a@b.com>", false},
      {"a@b.com\n", false},
      {"a\0@b.com"s, false},
      {"a@.com", false},
      {"a@b..com", false},
      {"a@b.com.", false},
      {"\"a b\"@c.com", false},
      {"\"\"@c.com", false},
      {"\"a@c.com", false},
      {"mailto:a@b.com", false},
      {"u@[1.2.3.4", false},
  };
  for (const auto& c : kCases) {
    CAPTURE(c.first);
    CHECK(LooksLikeAddress(c.first) == c.second);
  }
}

TEST_CASE("AddressesInText finds addresses hidden in display names", "[address]") {
  const std::pair<std::string, std::vector<std::string>> kCases[] = {
      {"serv...@paypal.com", {"serv...@paypal.com"}},
      {"\"serv...@paypal.com\"", {"serv...@paypal.com"}},
      {"'serv...@paypal.com'", {"serv...@paypal.com"}},
      {"PayPal Service (serv...@paypal.com)", {"serv...@paypal.com"}},
      {"Contact: <a@x.com>, (b@y.com); 'c@z.com'.", {"a@x.com", "b@y.com", "c@z.com"}},
      {"a@x.com,b@y.com", {"a@x.com", "b@y.com"}},
      {"mailto:a@x.com", {"a@x.com"}},
      {"[a@x.com]", {"a@x.com"}},
      {"write to a@x.com!", {"a@x.com"}},
      {"u@[192.0.2.1]", {"u@[192.0.2.1]"}},
      {"Jörg jörg@bücher.example", {"jörg@bücher.example"}},
      {"2...@mail01.netgate.com.uy", {"2...@mail01.netgate.com.uy"}},
      {"PayPal Service", {}},
      {"@handle and foo@ and @ and a@.com", {}},
      {"", {}},
  };
  for (const auto& c : kCases) {
    CAPTURE(c.first);
    CHECK(AddressesInText(c.first) == c.second);
  }
}

}  // namespace
}  // namespace compd
