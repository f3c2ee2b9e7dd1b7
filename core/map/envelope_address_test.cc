#include "compd/map/envelope_address.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace std::string_literals;

namespace compd {
namespace {

struct EnvelopeCase {
  std::string input;
  std::string expected;  // empty: kInvalid expected
};

void CheckEnvelope(const EnvelopeCase& c) {
  CAPTURE(c.input);
  std::string out = "unchanged";
  Status s = EnvelopeAddress(c.input, &out);
  if (c.expected.empty()) {
    CHECK(s.IsInvalid());
    CHECK(!s.message().empty());
    CHECK(out == "unchanged");
  } else {
    INFO(s.ToString());
    CHECK(s.ok());
    CHECK(out == c.expected);
  }
}

// Each row is one behaviour measured on rspamd 3.4 (multimap, type = "rcpt",
// filter = "email"): the string rspamd matches for that RCPT TO argument.
TEST_CASE("EnvelopeAddress reproduces rspamd 3.4 facts", "[address]") {
  const EnvelopeCase kFacts[] = {
      // Angle brackets removed.
      {"<user@example.com>", "user@example.com"},
      // Source route removed.
      {"<@a.example,@b.example:user@example.com>", "user@example.com"},
      // Quotes removed around the local part.
      {"<\"john doe\"@x.com>", "john doe@x.com"},
      // Case kept.
      {"<John.Doe@Example.COM>", "John.Doe@Example.COM"},
      // +tag kept.
      {"<user+tag@example.com>", "user+tag@example.com"},
      // Address literals kept (IPv4).
      {"<u@[192.0.2.1]>", "u@[192.0.2.1]"},
      // Address literals kept (IPv6).
      {"<u@[IPv6:2001:db8::1]>", "u@[IPv6:2001:db8::1]"},
  };
  for (const auto& c : kFacts) CheckEnvelope(c);
}

TEST_CASE("EnvelopeAddress accepts what MTAs pass", "[address]") {
  const EnvelopeCase kCases[] = {
      {"user@example.com", "user@example.com"},
      {"  <user@example.com>\t", "user@example.com"},
      {"< user@example.com >", "user@example.com"},
      {"<user@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;user@example.com",
       "user@example.com"},
      {"<user@example.com>SIZE=10", "user@example.com"},
      {"user@example.com NOTIFY=NEVER", "user@example.com"},
      {"@relay.example:user@example.com", "user@example.com"},
      {"<\"a\\\"b\\\\c\"@x.com>", "a\"b\\c@x.com"},
      {"<\"a@b\"@x.com>", "a@b@x.com"},
      {"<\"a>b\"@x.com>", "a>b@x.com"},
      {"\"john doe\"@x.com", "john doe@x.com"},
      {"<用户@例子.广告>", "用户@例子.广告"},
      {"<jörg@bücher.example>", "jörg@bücher.example"},
      {"<2...@mail01.netgate.com.uy>", "2...@mail01.netgate.com.uy"},
      {"<o'brien@example.ie>", "o'brien@example.ie"},
      {"<postmaster@localhost>", "postmaster@localhost"},
  };
  for (const auto& c : kCases) CheckEnvelope(c);
}

TEST_CASE("EnvelopeAddress rejects what is not an address", "[address]") {
  const EnvelopeCase kCases[] = {
      {"<>", ""},
      {"< >", ""},
      {"", ""},
      {"   ", ""},
      {"user", ""},
      {"<user>", ""},
      {"@x.com", ""},
      {"<@x.com>", ""},
      {"<@a.example:>", ""},
      {"user@", ""},
      {"<user@>", ""},
      {"@", ""},
      {"<@>", ""},
      {"\"\"@x.com", ""},
      {"<user@example.com", ""},
      {"user@example.com>", ""},
      {"<<user@example.com>>", ""},
      {"\"user@example.com", ""},
      {"<\"user@example.com>", ""},
      {"<\"john\"doe@x.com>", ""},
      {"<john doe@x.com>", ""},
      {"john doe@x.com", ""},
      {"a@b@c.com", ""},
      {"<a,b@c.com>", ""},
      {"u@[192.0.2.1", ""},
      {"u@[]", ""},
      {"user\r@example.com", ""},
      {"user@example.com\r\n", ""},
      {"<user@example.com>\nRCPT TO:<x@y.com>", ""},
      {"user\0@example.com"s, ""},
      {"<user@exa\0mple.com>"s, ""},
      {"<user\x01@example.com>", ""},
      {"<\"a\x7f\"@example.com>", ""},
  };
  for (const auto& c : kCases) CheckEnvelope(c);
}

}  // namespace
}  // namespace compd
