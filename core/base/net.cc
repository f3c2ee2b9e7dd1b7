#include "compd/base/net.h"

#include <arpa/inet.h>

#include <cstring>

#include "compd/base/text.h"

namespace compd {

namespace {

// Parses an address; IPv4-mapped IPv6 becomes IPv4 so 192.0.2.1 and ::ffff:192.0.2.1 agree.
bool ParseIp(std::string_view text, Cidr* out) {
  std::string s(text);
  if (!s.empty() && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  if (s.rfind("IPv6:", 0) == 0) s = s.substr(5);
  in_addr v4;
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    out->v6 = false;
    out->addr.fill(0);
    std::memcpy(out->addr.data(), &v4, 4);
    return true;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(v6.s6_addr, kMapped, 12) == 0) {
      out->v6 = false;
      out->addr.fill(0);
      std::memcpy(out->addr.data(), v6.s6_addr + 12, 4);
    } else {
      out->v6 = true;
      std::memcpy(out->addr.data(), v6.s6_addr, 16);
    }
    return true;
  }
  return false;
}

bool Contains(const Cidr& net, const Cidr& ip) {
  if (net.v6 != ip.v6) return false;
  int full = net.bits / 8, rest = net.bits % 8;
  if (std::memcmp(net.addr.data(), ip.addr.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (net.addr[full] & mask) == (ip.addr[full] & mask);
}

}  // namespace

Status ParseCidrList(std::string_view list, std::vector<Cidr>* out) {
  std::vector<Cidr> result;
  for (std::string_view item : SplitList(list, ", ")) {
    auto bad = [&](const char* why) {
      return Status::Invalid("'" + std::string(item) + "': " + why);
    };
    size_t slash = item.find('/');
    Cidr c;
    if (!ParseIp(item.substr(0, slash), &c)) return bad("not an IP address");
    int max = c.v6 ? 128 : 32;
    c.bits = max;
    if (slash != std::string_view::npos) {
      std::string_view len = item.substr(slash + 1);
      if (len.empty() || len.size() > 3) return bad("prefix length out of range");
      int n = 0;
      for (char ch : len) {
        if (ch < '0' || ch > '9') return bad("prefix length out of range");
        n = n * 10 + (ch - '0');
      }
      if (n > max) return bad("prefix length out of range");
      c.bits = n;
    }
    result.push_back(c);
  }
  *out = std::move(result);
  return Status::Ok();
}

std::string HostPort::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

int PortDigits(std::string_view text) {
  if (text.empty() || text.size() > 5) return -1;
  int n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

Status ParseHostPort(std::string_view spec, HostPort* out) {
  auto bad = [&](const char* why) { return Status::Invalid("'" + std::string(spec) + "' " + why); };
  size_t colon = spec.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad("is not HOST:PORT");
  std::string_view h = spec.substr(0, colon);
  std::string_view p = spec.substr(colon + 1);
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return bad("has an unclosed [IPv6] address");
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string_view::npos) {
    return bad("needs brackets around an IPv6 address: [::1]:8891");
  }
  const int n = PortDigits(p);
  if (n < 0) return bad("has no valid port");
  if (n < 1 || n > 65535) return bad("has a port out of range 1..65535");
  out->host = std::string(h);
  out->port = n;
  return Status::Ok();
}

std::vector<Cidr> PrivateNetworks() {
  std::vector<Cidr> out;
  ParseCidrList(kPrivateNetworks, &out);  // a constant, pinned by net_test
  return out;
}

bool InNetworks(const std::vector<Cidr>& networks, std::string_view ip) {
  Cidr addr;
  if (networks.empty() || !ParseIp(ip, &addr)) return false;
  for (const auto& n : networks) {
    if (Contains(n, addr)) return true;
  }
  return false;
}

}  // namespace compd
