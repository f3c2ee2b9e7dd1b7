#include "compd/detect/features.h"

#include <catch2/catch.hpp>

namespace compd {
namespace {

TEST_CASE("HELO kinds", "[detect]") {
  CHECK(ClassifyHelo("localhost") == HeloKind::kLocalhost);
  CHECK(ClassifyHelo("LOCALHOST.localdomain") == HeloKind::kLocalhost);
  CHECK(ClassifyHelo("[192.0.2.1]") == HeloKind::kLiteral);
  CHECK(ClassifyHelo("192.0.2.1") == HeloKind::kLiteral);
  CHECK(ClassifyHelo("[IPv6:2001:db8::1]") == HeloKind::kLiteral);
  CHECK(ClassifyHelo("DESKTOP-4F2K1") == HeloKind::kBareWord);
  CHECK(ClassifyHelo("mail.example.com") == HeloKind::kHostName);
  CHECK(ClassifyHelo("") == HeloKind::kUnknown);
  // A mail client behind NAT names its LAN address: kept apart, and weighs less.
  CHECK(ClassifyHelo("[192.168.178.68]") == HeloKind::kPrivateLiteral);
  CHECK(ClassifyHelo("[10.31.43.155]") == HeloKind::kPrivateLiteral);
  CHECK(ClassifyHelo("172.20.1.1") == HeloKind::kPrivateLiteral);
  CHECK(ClassifyHelo("[IPv6:fe80::1]") == HeloKind::kPrivateLiteral);
  CHECK(ClassifyHelo("[172.32.0.1]") == HeloKind::kLiteral);
  CHECK(HeloPoints(HeloKind::kPrivateLiteral) == 1);
  CHECK(HeloPoints(HeloKind::kLiteral) == 2);
  CHECK(HeloPoints(HeloKind::kHostName) == 0);
}

TEST_CASE("private addresses: loopback, RFC 1918, link-local, shared, unique-local", "[detect]") {
  CHECK(PrivateAddress("127.0.0.1"));
  CHECK(PrivateAddress("10.0.0.1"));
  CHECK(PrivateAddress("172.16.0.1"));
  CHECK(PrivateAddress("172.31.255.1"));
  CHECK_FALSE(PrivateAddress("172.32.0.1"));
  CHECK(PrivateAddress("192.168.1.1"));
  CHECK(PrivateAddress("100.64.0.1"));
  CHECK_FALSE(PrivateAddress("100.128.0.1"));
  CHECK(PrivateAddress("::1"));
  CHECK(PrivateAddress("fd00::1"));
  CHECK(PrivateAddress("::ffff:192.168.0.1"));
  CHECK_FALSE(PrivateAddress("::ffff:198.51.100.1"));
  CHECK_FALSE(PrivateAddress("2001:db8::1"));
  CHECK_FALSE(PrivateAddress("198.51.100.1"));
  CHECK_FALSE(PrivateAddress(""));
  CHECK_FALSE(PrivateAddress("not an address"));
}

TEST_CASE("random-looking subjects: the thread's, and real ones", "[detect]") {
  std::string why;
  CHECK(RandomLookingSubject("ZYaeD, X ", &why));
  CHECK(why.find("1 of 2") != std::string::npos);
  CHECK(RandomLookingSubject("wFd2, MkRWa2 A"));
  CHECK(RandomLookingSubject("xK9pQ"));
  CHECK_FALSE(RandomLookingSubject("Invoice 2023-11"));
  CHECK_FALSE(RandomLookingSubject("Re: meeting tomorrow"));
  CHECK_FALSE(RandomLookingSubject("PayPal receipt"));
  CHECK_FALSE(RandomLookingSubject("hi"));
  CHECK_FALSE(RandomLookingSubject("ABC"));
  CHECK_FALSE(RandomLookingSubject(""));
  CHECK_FALSE(RandomLookingSubject("Grüße aus Wien"));
  CHECK_FALSE(RandomLookingSubject("a very long subject line that says nothing random at all"));
}

TEST_CASE("domain families", "[detect]") {
  CHECK(DomainOf("A@Example.COM") == "example.com");
  CHECK(DomainOf("nodomain") == "");
  CHECK(SameDomainFamily("mail.example.com", "example.com"));
  CHECK(SameDomainFamily("example.com", "EXAMPLE.com"));
  CHECK_FALSE(SameDomainFamily("badexample.com", "example.com"));
}

TEST_CASE("display-name spoof forms", "[detect]") {
  SpoofFinding f = FromDisplaySpoof("\"service@paypal.com\" <engineering@customer.example>");
  CHECK(f.found);
  CHECK(f.header == "from");
  CHECK(f.display == "service@paypal.com");
  CHECK(f.address == "engineering@customer.example");
  // Unquoted, encoded, and with extra words.
  CHECK(FromDisplaySpoof("service@paypal.com <x@customer.example>").found);
  CHECK(FromDisplaySpoof("=?utf-8?B?c2VydmljZUBwYXlwYWwuY29t?= <x@customer.example>").found);
  CHECK(FromDisplaySpoof("\"PayPal (service@paypal.com)\" <x@customer.example>").found);
  // The sender's own address or domain in its name is common and fine.
  CHECK_FALSE(FromDisplaySpoof("\"john@customer.example\" <john@customer.example>").found);
  CHECK_FALSE(FromDisplaySpoof("\"sales@shop.customer.example\" <a@customer.example>").found);
  CHECK_FALSE(FromDisplaySpoof("John Doe <john@customer.example>").found);
  CHECK_FALSE(FromDisplaySpoof("").found);
  // To: a display address other than the real one.
  CHECK(ToDisplaySpoof("\"boss@customer.example\" <drop@evil.example>").found);
  CHECK_FALSE(ToDisplaySpoof("\"2x@mail01.example.uy\" <2x@mail01.example.uy>").found);
  CHECK_FALSE(ToDisplaySpoof("Bob <bob@example.org>, \"Amy\" <amy@example.org>").found);
}

}  // namespace
}  // namespace compd
