#include "compd/base/net.h"

#include <catch2/catch.hpp>

namespace compd {
namespace {

TEST_CASE("CIDR lists", "[net]") {
  std::vector<Cidr> nets;
  REQUIRE(ParseCidrList("192.0.2.0/24, 2001:db8::/32 10.1.2.3", &nets).ok());
  struct Case {
    const char* ip;
    bool in;
  };
  const Case cases[] = {
      {"192.0.2.1", true},        {"192.0.3.1", false},
      {"::ffff:192.0.2.9", true}, {"2001:db8:1::5", true},
      {"2001:db9::1", false},     {"10.1.2.3", true},
      {"10.1.2.4", false},        {"[IPv6:2001:db8::1]", true},
      {"not-an-ip", false},       {"", false},
  };
  for (const auto& c : cases) {
    INFO(c.ip);
    CHECK(InNetworks(nets, c.ip) == c.in);
  }
  REQUIRE(ParseCidrList("0.0.0.0/0", &nets).ok());
  CHECK(InNetworks(nets, "203.0.113.7"));
  CHECK_FALSE(InNetworks(nets, "::1"));
}

TEST_CASE("the private networks parse, and hold what no customer sends from", "[net]") {
  std::vector<Cidr> nets;
  REQUIRE(ParseCidrList(kPrivateNetworks, &nets).ok());
  CHECK(PrivateNetworks().size() == nets.size());
  for (const char* ip : {"127.0.0.1", "10.1.2.3", "172.31.0.1", "192.168.178.68", "169.254.1.1",
                         "100.64.0.1", "::1", "fd00::1", "fe80::1", "::ffff:192.168.0.1"}) {
    CHECK(InNetworks(nets, ip));
  }
  for (const char* ip : {"198.51.100.7", "172.32.0.1", "100.128.0.1", "2001:db8::1"}) {
    CHECK_FALSE(InNetworks(nets, ip));
  }
}

TEST_CASE("CIDR errors name the item", "[net]") {
  std::vector<Cidr> nets;
  CHECK(ParseCidrList("10.0.0.0/33", &nets).message() ==
        "'10.0.0.0/33': prefix length out of range");
  CHECK(ParseCidrList("10.0.0/8", &nets).message() == "'10.0.0/8': not an IP address");
  CHECK(ParseCidrList("", &nets).ok());
  CHECK(nets.empty());
}

TEST_CASE("a port is one to five digits; the range is the caller's", "[net]") {
  const struct {
    const char* text;
    int port;  // -1: not one to five digits
  } kCases[] = {
      {"0", 0}, {"00025", 25}, {"99999", 99999}, {"", -1}, {"123456", -1}, {"+80", -1}, {"8 0", -1},
  };
  for (const auto& c : kCases) {
    INFO("'" << c.text << "'");
    CHECK(PortDigits(c.text) == c.port);
  }
}

}  // namespace
}  // namespace compd
