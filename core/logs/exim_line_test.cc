#include "compd/logs/exim_line.h"

#include <catch2/catch.hpp>
#include <deque>
#include <string>

#include "compd/logs/log_time.h"

namespace compd {
namespace {

// The parsed views point into the text: it is kept for the whole test run.
EximLine Parse(const std::string& text) {
  static std::deque<std::string> texts;
  texts.push_back(text);
  EximLine l;
  ParseEximLine(texts.back(), &l);
  return l;
}

TEST_CASE("exim arrival line from the mailop thread", "[logs][exim]") {
  EximLine l = Parse(
      "1nh9qH-0008OE-RW <= winfield@customer.example "
      "H=host-79-10-109-221.business.telecomitalia.it (localhost) [79.10.109.221] P=esmtpsa "
      "X=TLS1.2:ECDHE-ECDSA-AES128-GCM-SHA256:128 CV=no A=login:winfield@customer.example "
      "S=735 T=\"ZYaeD, X\" from <winfield@customer.example> for toewebvastsatw@gmx.example");
  REQUIRE(l.kind == EximLineKind::kArrival);
  const EximArrival& a = l.arrival;
  CHECK(l.id == "1nh9qH-0008OE-RW");
  CHECK(a.sender == "winfield@customer.example");
  CHECK(a.client_name == "host-79-10-109-221.business.telecomitalia.it");
  CHECK(a.helo == "localhost");
  CHECK(a.client_ip == "79.10.109.221");
  CHECK(a.authenticator == "login");
  CHECK(a.auth_id == "winfield@customer.example");
  CHECK(a.size == 735);
  CHECK(a.subject == "ZYaeD, X");
  CHECK(a.has_for);
  CHECK(a.recipients == "toewebvastsatw@gmx.example");
}

TEST_CASE("exim H= forms: helo only, address only, name equal to helo, ports, IPv6",
          "[logs][exim]") {
  struct Case {
    std::string host;
    std::string name, helo, ip;
  };
  for (const Case& c : {
           Case{"H=(localhost) [1.2.3.4]", "", "localhost", "1.2.3.4"},
           Case{"H=[1.2.3.4]", "", "", "1.2.3.4"},
           Case{"H=[1.2.3.4]:58022", "", "", "1.2.3.4"},
           Case{"H=mail.example.net [1.2.3.4]", "mail.example.net", "mail.example.net", "1.2.3.4"},
           Case{"H=mail.example.net (EHLO-X) [1.2.3.4]:587", "mail.example.net", "EHLO-X",
                "1.2.3.4"},
           Case{"H=(pc1) [2001:db8::1]:58022", "", "pc1", "2001:db8::1"},
           Case{"H=v6.example (pc1) [2001:db8::1]", "v6.example", "pc1", "2001:db8::1"},
       }) {
    INFO(c.host);
    EximLine l = Parse("1nh9qH-0008OE-RW <= a@b.example " + c.host +
                       " I=[127.0.0.1]:587 P=esmtpa A=dovecot_plain:a@b.example S=12");
    REQUIRE(l.kind == EximLineKind::kArrival);
    CHECK(l.arrival.client_name == c.name);
    CHECK(l.arrival.helo == c.helo);
    CHECK(l.arrival.client_ip == c.ip);
    CHECK(l.arrival.auth_id == "a@b.example");
    CHECK(l.arrival.size == 12);
    CHECK_FALSE(l.arrival.has_for);
  }
}

TEST_CASE("exim quoted values: A= id, T= subject with escapes, DN=, 4.97 ids", "[logs][exim]") {
  EximLine l = Parse(
      "1qWr2x-00000001hJN-0jLS <= <> H=(x) [10.0.0.1] P=esmtpsa DN=\"CN=a b, O=c\" "
      "A=plain:\"john doe\" S=9 id=abc@x.example T=\"say \\\"hi\\\" \\303\\251t\\303\\251 for "
      "x\\n\" for r1@x.example r2@y.example");
  REQUIRE(l.kind == EximLineKind::kArrival);
  CHECK(l.id == "1qWr2x-00000001hJN-0jLS");
  CHECK(l.arrival.sender == "");
  CHECK(l.arrival.auth_id_quoted);
  std::string id;
  AppendEximUnquoted(l.arrival.auth_id, &id);
  CHECK(id == "john doe");
  std::string subject;
  AppendEximUnquoted(l.arrival.subject, &subject);
  CHECK(subject == "say \"hi\" \xc3\xa9t\xc3\xa9 for x\n");
  CHECK(l.arrival.message_id == "abc@x.example");
  CHECK(l.arrival.recipients == "r1@x.example r2@y.example");
}

TEST_CASE("exim delivery, completion and other lines", "[logs][exim]") {
  const struct {
    const char* line;
    EximLineKind kind;
    const char* recipient;  // kDelivery only
  } kCases[] = {
      {"1nh9qH-0008OE-RW => bob@x.example R=dnslookup T=remote_smtp H=mx [1.2.3.4]",
       EximLineKind::kDelivery, "bob@x.example"},
      {"1nh9qH-0008OE-RW => bob <bob@x.example> R=local_user T=mail_spool", EximLineKind::kDelivery,
       "bob@x.example"},
      {"1nh9qH-0008OE-RW -> carol@x.example R=dnslookup T=remote_smtp", EximLineKind::kDelivery,
       "carol@x.example"},
      {"1nh9qH-0008OE-RW ** nobody@x.example: Unrouteable address", EximLineKind::kDelivery,
       "nobody@x.example"},
      {"1nh9qH-0008OE-RW == later@x.example R=dnslookup T=remote_smtp defer (-44)",
       EximLineKind::kDelivery, "later@x.example"},
      {"1nh9qH-0008OE-RW Completed", EximLineKind::kCompleted, ""},
      {"1nh9qH-0008OE-RW Completed QT=1s", EximLineKind::kCompleted, ""},
      {"Start queue run: pid=1234", EximLineKind::kOther, ""},
      {"H=(x) [1.2.3.4] F=<a@b> rejected RCPT <c@d>: relay not permitted", EximLineKind::kOther,
       ""},
      {"1nh9qH-0008OE-RW <= a@b H=name-without-address P=esmtpa", EximLineKind::kBad, ""},
      {"1nh9qH-0008OE-RW <= a@b H=(x) [1.2.3.4] T=\"unterminated", EximLineKind::kBad, ""},
  };
  for (const auto& c : kCases) {
    INFO(c.line);
    EximLine l = Parse(c.line);
    CHECK(l.kind == c.kind);
    if (c.kind == EximLineKind::kDelivery) CHECK(l.recipient == c.recipient);
  }
}

TEST_CASE("exim timestamps: plain, milliseconds, zone, pid", "[logs][exim]") {
  LocalClock clock;
  int64_t ms;
  std::string_view rest;
  // 2022-04-20T10:53:58Z
  const int64_t base = 1650452038000;
  REQUIRE(ParseEximStamp("2022-04-20 12:53:58.123 +0200 [4711] 1nh9qH-0008OE-RW Completed", &clock,
                         &ms, &rest));
  CHECK(ms == base + 123);
  CHECK(rest == "1nh9qH-0008OE-RW Completed");
  REQUIRE(ParseEximStamp("2022-04-20 10:53:58 -0000 x", &clock, &ms, &rest));
  CHECK(ms == base);
  REQUIRE(ParseEximStamp("2022-04-20 10:53:58 Z00000-500000-RW Completed", &clock, &ms, &rest));
  CHECK(rest == "Z00000-500000-RW Completed");
  CHECK_FALSE(ParseEximStamp("2022-04-20T10:53:58 x", &clock, &ms, &rest));
  CHECK_FALSE(ParseEximStamp("garbage", &clock, &ms, &rest));
}

}  // namespace
}  // namespace compd
