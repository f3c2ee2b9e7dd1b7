#include "compd/map/address_list.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "compd/map/address.h"
#include "compd/map/envelope_address.h"

using namespace std::string_literals;

namespace compd {
namespace {

struct ListCase {
  std::string header;
  std::vector<HeaderAddress> expected;
};

void CheckList(const ListCase& c) {
  CAPTURE(c.header);
  std::vector<HeaderAddress> got = ParseAddressList(c.header);
  REQUIRE(got.size() == c.expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].address == c.expected[i].address);
    CHECK(got[i].display_name == c.expected[i].display_name);
  }
}

TEST_CASE("ParseAddressList: RFC 5322 forms", "[address]") {
  const ListCase kCases[] = {
      {"a@example.com", {{"a@example.com", ""}}},
      {"<a@example.com>", {{"a@example.com", ""}}},
      {"John Doe <jd@example.com>", {{"jd@example.com", "John Doe"}}},
      {"\"Doe, John\" <jd@example.com>, other@example.com",
       {{"jd@example.com", "Doe, John"}, {"other@example.com", ""}}},
      {"\"a@b.com, c@d.com\" <x@example.com>", {{"x@example.com", "a@b.com, c@d.com"}}},
      {"\"Joe \\\"The Man\\\" Smith\" <j@x.com>", {{"j@x.com", "Joe \"The Man\" Smith"}}},
      {"John Q. Public <jqp@x.com>", {{"jqp@x.com", "John Q. Public"}}},
      {"a@x.com, b@y.com,c@z.com", {{"a@x.com", ""}, {"b@y.com", ""}, {"c@z.com", ""}}},
      // Groups.
      {"undisclosed-recipients:;", {}},
      {"undisclosed-recipients: ;", {}},
      {"team: a@x.com, b@y.com;", {{"a@x.com", ""}, {"b@y.com", ""}}},
      {"team: a@x.com, B <b@y.com>;, c@z.com",
       {{"a@x.com", ""}, {"b@y.com", "B"}, {"c@z.com", ""}}},
      {"\"The Team\": \"A, a\" <a@x.com>;", {{"a@x.com", "A, a"}}},
      {"empty:;, c@z.com", {{"c@z.com", ""}}},
      // Folded lines.
      {"John\r\n Doe <jd@x.com>,\r\n\tb@y.com", {{"jd@x.com", "John Doe"}, {"b@y.com", ""}}},
      {"John\n Doe\n <jd@x.com>", {{"jd@x.com", "John Doe"}}},
      {"\"John\r\n Doe\" <jd@x.com>", {{"jd@x.com", "John Doe"}}},
      // Comments.
      {"jd@x.com (John Doe)", {{"jd@x.com", "John Doe"}}},
      {"John (the man) Doe <jd@x.com>", {{"jd@x.com", "John Doe"}}},
      {"Name <jd@x.com> (ignored)", {{"jd@x.com", "Name"}}},
      {"(John) <jd@x.com>", {{"jd@x.com", "John"}}},
      {"a(b(c)d)@x.com", {{"a@x.com", "b(c)d"}}},
      {"(lead) a@x.com", {{"a@x.com", "lead"}}},
      {"a@x.com (with \\) escaped)", {{"a@x.com", "with ) escaped"}}},
      // CFWS around '@' and dots (obsolete syntax).
      {"john . doe @ example . com", {{"john.doe@example.com", ""}}},
      {"john(c).doe@example(d).com", {{"john.doe@example.com", "c d"}}},
      {"Name < jd @ x.com >", {{"jd@x.com", "Name"}}},
      // obs-route inside angle brackets.
      {"Name <@relay.example,@r2.example:user@example.com>, b@y.com",
       {{"user@example.com", "Name"}, {"b@y.com", ""}}},
      // Quoted local parts come out unquoted, like EnvelopeAddress.
      {"\"john doe\"@example.com", {{"john doe@example.com", ""}}},
      {"<\"john\\\"x\"@example.com>", {{"john\"x@example.com", ""}}},
      {"\"john\".\"doe\"@example.com", {{"john.doe@example.com", ""}}},
      {"\"a@b\"@example.com", {{"a@b@example.com", ""}}},
      // Domain literals.
      {"u@[192.0.2.1]", {{"u@[192.0.2.1]", ""}}},
      {"<u@[IPv6:2001:db8::1]>", {{"u@[IPv6:2001:db8::1]", ""}}},
      {"u@[ 192.0.2.1 ]", {{"u@[192.0.2.1]", ""}}},
      // Case and +tag kept, as EnvelopeAddress.
      {"<John.Doe+Tag@Example.COM>", {{"John.Doe+Tag@Example.COM", ""}}},
      // SMTPUTF8 / RFC 6532.
      {"Jörg <jörg@bücher.example>", {{"jörg@bücher.example", "Jörg"}}},
      {"", {}},
      {"   ", {}},
  };
  for (const auto& c : kCases) CheckList(c);
}

TEST_CASE("ParseAddressList: encoded-word display names", "[address]") {
  const ListCase kCases[] = {
      {"=?utf-8?B?SsO8cmdlbg==?= <j@x.com>", {{"j@x.com", "Jürgen"}}},
      {"=?UTF-8?b?SsO8cmdlbg?= <j@x.com>", {{"j@x.com", "Jürgen"}}},
      {"=?iso-8859-1?Q?J=FCrgen?= <j@x.com>", {{"j@x.com", "Jürgen"}}},
      {"=?latin1?B?SvxyZ2Vu?= <j@x.com>", {{"j@x.com", "Jürgen"}}},
      {"=?us-ascii?q?Hello_World?= <h@x.com>", {{"h@x.com", "Hello World"}}},
      {"=?utf-8*en?Q?Hi?= <h@x.com>", {{"h@x.com", "Hi"}}},
      // Whitespace between adjacent encoded words disappears (RFC 2047 6.2) ...
      {"=?utf-8?Q?a?= =?utf-8?Q?b?=\r\n =?utf-8?Q?c?= <x@y.com>", {{"x@y.com", "abc"}}},
      // ... but not between an encoded word and plain text.
      {"=?utf-8?Q?a?= b <x@y.com>", {{"x@y.com", "a b"}}},
      // Inside quotes too, as mail readers do.
      {"\"=?utf-8?B?0KHQu9GD0LbQsdCw?= serv...@paypal.com\" <eng@customer.example>",
       {{"eng@customer.example", "Служба serv...@paypal.com"}}},
      // Unknown charset: raw text kept.
      {"=?koi8-r?B?8NLJ18XU?= <x@y.com>", {{"x@y.com", "=?koi8-r?B?8NLJ18XU?="}}},
      // Broken encoded words stay text.
      {"=?utf-8?X?abc?= <x@y.com>", {{"x@y.com", "=?utf-8?X?abc?="}}},
      {"=?utf-8?Q?abc <x@y.com>", {{"x@y.com", "=?utf-8?Q?abc"}}},
      // Decoded control characters never reach the display name.
      {"=?utf-8?Q?a=0D=0Ab=00c?= <x@y.com>", {{"x@y.com", "a b c"}}},
      // Encoded words in a comment name.
      {"x@y.com (=?utf-8?Q?J=C3=BCrgen?=)", {{"x@y.com", "Jürgen"}}},
  };
  for (const auto& c : kCases) CheckList(c);
}

TEST_CASE("ParseAddressList: spam campaign headers", "[address]") {
  const ListCase kCases[] = {
      {"\"2...@mail01.netgate.com.uy\" <2...@mail01.netgate.com.uy>",
       {{"2...@mail01.netgate.com.uy", "2...@mail01.netgate.com.uy"}}},
      {"\"serv...@paypal.com\" <engineering@customer.example>",
       {{"engineering@customer.example", "serv...@paypal.com"}}},
      {"serv...@paypal.com <engineering@customer.example>",
       {{"engineering@customer.example", "serv...@paypal.com"}}},
      {"\"a@x.com\" <a@x.com>, \"b@y.com\" <b@y.com>",
       {{"a@x.com", "a@x.com"}, {"b@y.com", "b@y.com"}}},
  };
  for (const auto& c : kCases) CheckList(c);
}

TEST_CASE("ParseAddressList: malformed parts are skipped, the rest parsed", "[address]") {
  const ListCase kCases[] = {
      {"a@x.com, \"unterminated", {{"a@x.com", ""}}},
      {"a@x.com, \"unterminated@y.com", {{"a@x.com", ""}}},
      {"a@x.com, <unclosed@y.com, b@z.com", {{"a@x.com", ""}, {"b@z.com", ""}}},
      {"a@x.com, John Doe, b@y.com", {{"a@x.com", ""}, {"b@y.com", ""}}},
      {",,,a@x.com,,,", {{"a@x.com", ""}}},
      {"a@x.com; b@y.com", {{"a@x.com", ""}, {"b@y.com", ""}}},
      {"Name <a@x.com> trailing junk, b@y.com", {{"a@x.com", "Name"}, {"b@y.com", ""}}},
      {"<<a@x.com>>", {{"a@x.com", ""}}},
      {"junk <a@x.com", {}},
      {"[broken, a@x.com", {{"a@x.com", ""}}},
      {"a@[broken, b@x.com", {{"b@x.com", ""}}},
      {"<>, Name <>, a@x.com", {{"a@x.com", ""}}},
      {"a@x.com b@y.com", {}},
      {"a@@x.com, @x.com, a@, a@x.com@y.com, b@y.com", {{"b@y.com", ""}}},
      {"a@x.com>, b@y.com", {{"b@y.com", ""}}},
      {"a\\b@x.com, b@y.com", {{"b@y.com", ""}}},
      {"a@x..com", {{"a@x..com", ""}}},
      {"a@x.com, (unterminated comment, b@y.com", {{"a@x.com", ""}}},
      {"a@x.com,\0,b@y.com"s, {{"a@x.com", ""}, {"b@y.com", ""}}},
      {"a\0b@x.com, c@y.com"s, {{"c@y.com", ""}}},
      {"\"a\0b\"@x.com, c@y.com"s, {{"c@y.com", ""}}},
      {"\"a\tb\"@x.com, \"a\r\n\tb\"@x.com, c@y.com", {{"c@y.com", ""}}},
      {"\"a\0b\" <a@x.com>"s, {{"a@x.com", "a b"}}},
      {"\"\\\xff\xfe\" <a@x.com>", {{"a@x.com", "\xff\xfe"}}},
      {"\xe2\x82 \xc3 <\xe2\x82z\xff@x.com>", {{"\xe2\x82z\xff@x.com", "\xe2\x82 \xc3"}}},
      {"\\", {}},
      {"\"", {}},
      {"(", {}},
      {"<", {}},
      {"=?", {}},
      {"=?utf-8?B?", {}},
  };
  for (const auto& c : kCases) CheckList(c);
}

// A quadratic scanner or recursion would hang or overflow the stack on these.
TEST_CASE("ParseAddressList: huge and hostile headers", "[address]") {
  const size_t kMb = 1 << 20;
  SECTION("1 MB of commas") { CHECK(ParseAddressList(std::string(kMb, ',')).empty()); }
  SECTION("1 MB of open parentheses") { CHECK(ParseAddressList(std::string(kMb, '(')).empty()); }
  SECTION("1 MB of other single characters") {
    for (char ch : std::string("<>\"[]\\@.:;=?)\0\r\n a"s)) {
      CAPTURE(static_cast<int>(ch));
      CHECK(ParseAddressList(std::string(kMb, ch)).empty());
    }
  }
  SECTION("1 MB of repeated fragments") {
    for (std::string frag : {"=?", "=?a?", "=?a?b?", "\"a\" ", "<a", "a.", "[a", "@a,",
                             "a: ", "<@a", "\\\"", "a@b c", "=?utf-8?Q?a?= "}) {
      CAPTURE(frag);
      std::string h;
      while (h.size() < kMb) h += frag;
      ParseAddressList(h);
      ParseAddressList("\"" + h + "\" <a@x.com>");
      AddressesInText(h);
    }
  }
  SECTION("100k nested comments around an address") {
    std::string h = "a@x.com " + std::string(100000, '(') + std::string(100000, ')') + ", b@y.com";
    auto got = ParseAddressList(h);
    REQUIRE(got.size() == 2);
    CHECK(got[0].address == "a@x.com");
    CHECK(got[0].display_name.size() == 2 * 100000 - 2);
    CHECK(got[1].address == "b@y.com");
  }
  SECTION("100k nested comments, unterminated") {
    std::string h = "a@x.com, " + std::string(100000, '(') + "b@y.com";
    auto got = ParseAddressList(h);
    REQUIRE(got.size() == 1);
    CHECK(got[0].address == "a@x.com");
  }
  SECTION("many addresses") {
    std::string h;
    for (int i = 0; i < 100000; ++i) h += "\"N, " + std::to_string(i) + "\" <a@x.com>,\r\n ";
    auto got = ParseAddressList(h);
    REQUIRE(got.size() == 100000);
    CHECK(got[99999].display_name == "N, 99999");
  }
}

// Deterministic random garbage through every address parser: nothing crashes (ASan watches reads),
// and nothing that comes out carries CR, LF or NUL into logs or lookups.
TEST_CASE("Address functions on random garbage", "[address]") {
  const std::string kAlphabet = "ab.@<>\"\\()[],;: \t\r\n=?Bq_+\0\x01\x7f\xc3\xa9\xff"s;
  uint64_t state = 42;
  auto next = [&state]() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  };
  auto clean = [](const std::string& s) { return s.find_first_of("\r\n\0"s) == std::string::npos; };
  for (int round = 0; round < 3000; ++round) {
    std::string s(next() % 120, ' ');
    for (char& ch : s) ch = kAlphabet[next() % kAlphabet.size()];
    CAPTURE(s);
    std::string out;
    if (EnvelopeAddress(s, &out).ok()) {
      CHECK(clean(out));
      CHECK(out.find('@') != std::string::npos);
    }
    for (const auto& a : ParseAddressList(s)) {
      CHECK(clean(a.address));
      CHECK(clean(a.display_name));
      CHECK(a.address.find('@') != std::string::npos);
    }
    for (const auto& a : AddressesInText(s)) CHECK(LooksLikeAddress(a));
    CanonicalAddress(s, CanonOptions{true, true});
  }
}

// The whole point: a spammer's address in a display name is found by chaining the two.
TEST_CASE("Display-name addresses via ParseAddressList + AddressesInText", "[address]") {
  auto got = ParseAddressList("\"serv...@paypal.com\" <engineering@customer.example>");
  REQUIRE(got.size() == 1);
  CHECK(AddressesInText(got[0].display_name) == std::vector<std::string>{"serv...@paypal.com"});
}

}  // namespace
}  // namespace compd
