// Networks: CIDR lists for trusted_networks, HOST:PORT addresses (listeners, sentinels).
//
// Values only; safe from any thread once built.
#ifndef COMPD_BASE_NET_H_
#define COMPD_BASE_NET_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "compd/base/status.h"

namespace compd {

struct Cidr {
  bool v6 = false;
  std::array<uint8_t, 16> addr{};  // IPv4 in the first 4 bytes
  int bits = 0;
};

// "192.0.2.0/24, 2001:db8::/32, 10.1.2.3" (a bare address is a /32 or /128).
// kInvalid names the bad item: "trusted_networks: '10.0.0.0/33': prefix length out of range".
Status ParseCidrList(std::string_view list, std::vector<Cidr>* out);

// The networks no customer sends from directly: loopback, RFC 1918, link-local, shared
// address space (RFC 6598), IPv6 unique-local and link-local. A client there is the
// provider's own webmail, relay or internal host.
inline constexpr char kPrivateNetworks[] =
    "127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16, 100.64.0.0/10, "
    "::1, fc00::/7, fe80::/10";
// kPrivateNetworks, parsed.
std::vector<Cidr> PrivateNetworks();

// True if `ip` (textual IPv4 or IPv6; IPv4-mapped IPv6 counts as IPv4) is in any network.
bool InNetworks(const std::vector<Cidr>& networks, std::string_view ip);

// The value of one to five ASCII digits, or -1 for anything else: no conversion that
// could overflow or throw. The caller checks the range (0 is "any port" for some).
int PortDigits(std::string_view text);

struct HostPort {
  std::string host;  // without brackets
  int port = 0;
  // "host:port", or "[v6]:port".
  std::string ToString() const;
  bool operator==(const HostPort& o) const { return host == o.host && port == o.port; }
};

// "HOST:PORT" or "[IPv6]:PORT" (an IPv6 address needs the brackets). kInvalid says why,
// quoting `spec`: "'::1:80' needs brackets around an IPv6 address: [::1]:8891".
Status ParseHostPort(std::string_view spec, HostPort* out);

}  // namespace compd

#endif  // COMPD_BASE_NET_H_
