#include "compd/mta/tripwire.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <set>

#include "compd/map/entry.h"
#include "compd/testutil/tripwire.h"

namespace compd {
namespace {

using Fixture = testing::TripwireFixture;

TEST_CASE("unauthenticated mail is not ours", "[tripwire]") {
  Fixture f({"bad@spam.example"});
  Session s(f.tripwire.get(), "203.0.113.5", "client.example");
  CHECK(s.Mail("<a@b.example>", "", "", "").kind == Verdict::Kind::kAccept);
  CHECK_FALSE(s.in_scope());
}

TEST_CASE("a listed envelope recipient is refused, others pass, one event", "[tripwire]") {
  Fixture f({"bad@spam.example"});
  {
    Session s(f.tripwire.get(), "203.0.113.5", "client.example");
    s.Helo("localhost");
    REQUIRE(s.Mail("<winfield@customer.example>", "winfield@customer.example", "LOGIN", "").kind ==
            Verdict::Kind::kContinue);
    CHECK(s.Rcpt("<ok@fine.example>", "").kind == Verdict::Kind::kContinue);
    Verdict v = s.Rcpt("<Bad@Spam.Example>", "4XyZ1");
    CHECK(v.kind == Verdict::Kind::kReject);
    CHECK(v.rcode == "550");
    CHECK(v.xcode == "5.7.1");
    CHECK(v.text.find("(ref " + s.transaction_id() + ")") != std::string::npos);
    s.Header("Subject", "ZYaeD, X");
    CHECK(s.EndOfHeaders().kind == Verdict::Kind::kContinue);
    CHECK(s.EndOfMessage("4XyZ1").kind == Verdict::Kind::kContinue);
    CHECK(s.accepted_recipients() == std::vector<std::string>{"ok@fine.example"});
  }
  REQUIRE(f.events.size() == 1);
  const Event& e = f.events[0];
  CHECK(e.account == "winfield@customer.example");
  CHECK(e.auth_type == "LOGIN");
  CHECK(e.client_ip == "203.0.113.5");
  CHECK(e.client_name == "client.example");
  CHECK(e.helo == "localhost");
  CHECK(e.sender == "winfield@customer.example");
  CHECK(e.recipient == "Bad@Spam.Example");
  CHECK(e.where == "envelope");
  CHECK(e.entry == "bad@spam.example");
  CHECK(e.entry_kind == "exact");
  CHECK(e.action == "reject");
  CHECK(e.queue_id == "4XyZ1");
  CHECK(e.subject == "ZYaeD, X");
  CHECK(e.host == "node1");
  CHECK(e.source == "milter");
  CHECK_FALSE(e.txn_id.empty());
}

TEST_CASE("header hits act at end of message", "[tripwire]") {
  struct Case {
    const char* header;
    const char* value;
    const char* where;
    const char* recipient;
  };
  const Case cases[] = {
      {"To", "\"Friend\" <bad@spam.example>", "header:to", "bad@spam.example"},
      {"Cc", "a@x.example,\r\n\tBAD@spam.example", "header:cc", "BAD@spam.example"},
      {"To", "\"bad@spam.example\" <ok@fine.example>", "display-name", "bad@spam.example"},
      {"to", "undisclosed-recipients:;", nullptr, nullptr},
  };
  for (const auto& c : cases) {
    INFO(c.header << ": " << c.value);
    Fixture f({"bad@spam.example"});
    Session s(f.tripwire.get(), "198.51.100.7", "x");
    s.Mail("<u@customer.example>", "u@customer.example", "PLAIN", "");
    CHECK(s.Rcpt("<ok@fine.example>", "").kind == Verdict::Kind::kContinue);
    s.Header(c.header, c.value);
    s.Header("Message-ID", "<m1@x>");
    s.EndOfHeaders();
    Verdict v = s.EndOfMessage("QID");
    if (c.where == nullptr) {
      CHECK(v.kind == Verdict::Kind::kContinue);
      CHECK(f.events.empty());
      continue;
    }
    CHECK(v.kind == Verdict::Kind::kReject);
    REQUIRE(f.events.size() == 1);
    CHECK(f.events[0].where == c.where);
    CHECK(f.events[0].recipient == c.recipient);
    CHECK(f.events[0].queue_id == "QID");
    CHECK(f.events[0].message_id == "<m1@x>");
  }
}

TEST_CASE("display names are only checked when enabled", "[tripwire]") {
  TripwireOptions o;
  o.check_display_names = false;
  Fixture f({"bad@spam.example"}, o);
  Session s(f.tripwire.get(), "198.51.100.7", "x");
  s.Mail("<u@c.example>", "u@c.example", "PLAIN", "");
  s.Rcpt("<ok@fine.example>", "");
  s.Header("To", "\"bad@spam.example\" <ok@fine.example>");
  s.EndOfHeaders();
  CHECK(s.EndOfMessage("Q").kind == Verdict::Kind::kContinue);
  CHECK(f.events.empty());
}

TEST_CASE("actions", "[tripwire]") {
  struct Case {
    HitAction action;
    Verdict::Kind at_rcpt;
    Verdict::Kind at_eom;
    const char* rcode;
  };
  const Case cases[] = {
      {HitAction::kReject, Verdict::Kind::kReject, Verdict::Kind::kContinue, "550"},
      {HitAction::kTempfail, Verdict::Kind::kTempfail, Verdict::Kind::kContinue, "451"},
      {HitAction::kQuarantine, Verdict::Kind::kContinue, Verdict::Kind::kQuarantine, ""},
      {HitAction::kDiscard, Verdict::Kind::kDiscard, Verdict::Kind::kContinue, ""},
      {HitAction::kMonitor, Verdict::Kind::kContinue, Verdict::Kind::kContinue, ""},
  };
  for (const auto& c : cases) {
    INFO(HitActionName(c.action));
    TripwireOptions o;
    o.action = c.action;
    Fixture f({"/^bad[0-9]+@spam\\.example$/"}, o);
    {
      Session s(f.tripwire.get(), "198.51.100.7", "x");
      s.Mail("<u@c.example>", "u@c.example", "PLAIN", "");
      Verdict v = s.Rcpt("<bad42@spam.example>", "");
      CHECK(v.kind == c.at_rcpt);
      CHECK(v.rcode == c.rcode);
      if (v.kind == Verdict::Kind::kContinue) CHECK(s.EndOfMessage("Q").kind == c.at_eom);
    }
    REQUIRE(f.events.size() == 1);
    CHECK(f.events[0].action == HitActionName(c.action));
    CHECK(f.events[0].entry_kind == "pattern");
  }
}

TEST_CASE("trusted networks and local submissions", "[tripwire]") {
  TripwireOptions o;
  REQUIRE(ParseCidrList("192.0.2.0/24", &o.trusted_networks).ok());
  o.check_non_smtpd = true;
  Fixture f({"bad@spam.example"}, o);
  {
    Session s(f.tripwire.get(), "192.0.2.10", "web1");
    REQUIRE(s.Mail("<www@host.example>", "", "", "").kind == Verdict::Kind::kContinue);
    CHECK(s.account() == "ip:192.0.2.10");
    CHECK(s.Rcpt("<bad@spam.example>", "").kind == Verdict::Kind::kReject);
  }
  {
    // Postfix presents sendmail(1) mail as localhost [127.0.0.1]: never refuse it per
    // recipient; quarantine the message instead.
    Session s(f.tripwire.get(), "127.0.0.1", "localhost");
    REQUIRE(s.Mail("<joe@host.example>", "", "", "").kind == Verdict::Kind::kContinue);
    CHECK(s.account() == "local:joe@host.example");
    CHECK(s.Rcpt("<bad@spam.example>", "").kind == Verdict::Kind::kContinue);
    CHECK(s.EndOfMessage("Q").kind == Verdict::Kind::kQuarantine);
  }
  REQUIRE(f.events.size() == 2);
  CHECK(f.events[1].action == "quarantine");
}

TEST_CASE("abort twice and a second transaction on one connection", "[tripwire]") {
  Fixture f({"bad@spam.example"});
  Session s(f.tripwire.get(), "198.51.100.7", "x");
  s.Mail("<u@c.example>", "u@c.example", "PLAIN", "");
  s.Rcpt("<bad@spam.example>", "");
  std::string first = s.transaction_id();
  s.Abort();
  s.Abort();
  CHECK(f.events.size() == 1);
  s.Mail("<u@c.example>", "u@c.example", "PLAIN", "");
  CHECK(s.transaction_id() != first);
  s.Rcpt("<bad@spam.example>", "");
  s.Close();
  CHECK(f.events.size() == 2);
  CHECK(f.events[0].txn_id == first);
}

TEST_CASE("reply text is one safe line", "[tripwire]") {
  TripwireOptions o;
  o.reject_text = "100% refused\r\nX: {ref}";
  Fixture f({"bad@spam.example"}, o);
  Session s(f.tripwire.get(), "198.51.100.7", "x");
  s.Mail("<u@c.example>", "u@c.example", "PLAIN", "");
  Verdict v = s.Rcpt("<bad@spam.example>", "");
  CHECK(v.text == "100%% refusedX: " + s.transaction_id());
}

TEST_CASE("options can be swapped while sessions run", "[tripwire]") {
  Fixture f({"bad@spam.example"});
  Session s(f.tripwire.get(), "198.51.100.7", "x");
  s.Mail("<u@c.example>", "u@c.example", "PLAIN", "");
  TripwireOptions monitor;
  monitor.action = HitAction::kMonitor;
  f.tripwire->SetOptions(monitor);
  // The running transaction keeps its options; the next one gets the new ones.
  CHECK(s.Rcpt("<bad@spam.example>", "").kind == Verdict::Kind::kReject);
  s.Mail("<u@c.example>", "u@c.example", "PLAIN", "");
  CHECK(s.Rcpt("<bad@spam.example>", "").kind == Verdict::Kind::kContinue);
}

TEST_CASE("transaction ids are short and distinct", "[tripwire]") {
  Fixture f({});
  std::set<std::string> ids;
  for (int i = 0; i < 10000; ++i) ids.insert(f.tripwire->NewTransactionId());
  CHECK(ids.size() == 10000);
  CHECK(ids.begin()->size() == 10);
}

}  // namespace
}  // namespace compd

namespace compd {
namespace {

TEST_CASE("accepted messages are counted, refused ones are not", "[tripwire]") {
  Fixture f({"bad@spam.example"});
  Session s(f.tripwire.get(), "198.51.100.7", "x");
  s.Mail("<u@c.example>", "u@c.example", "PLAIN", "");
  s.Rcpt("<a@fine.example>", "");
  s.Rcpt("<bad@spam.example>", "");
  s.Rcpt("<b@fine.example>", "");
  s.EndOfHeaders();
  s.EndOfMessage("Q1");
  REQUIRE(f.messages.size() == 1);
  CHECK(f.messages[0].account == "u@c.example");
  CHECK(f.messages[0].recipients == 2);
  CHECK(f.messages[0].client_ip == "198.51.100.7");
  s.Mail("<u@c.example>", "u@c.example", "PLAIN", "");
  s.Rcpt("<a@fine.example>", "");
  s.Header("To", "bad@spam.example");
  s.EndOfHeaders();
  CHECK(s.EndOfMessage("Q2").kind == Verdict::Kind::kReject);
  CHECK(f.messages.size() == 1);
}

TEST_CASE("the engine gets the message's facts, the To header included", "[tripwire]") {
  for (bool check_headers : {true, false}) {
    TripwireOptions o;
    o.check_headers = check_headers;
    Fixture f({"bad@spam.example"}, o);
    Session s(f.tripwire.get(), "198.51.100.7", "x");
    s.Helo("localhost");
    s.Mail("<u@c.example>", "u@c.example", "PLAIN", "");
    s.Rcpt("<a@fine.example>", "");
    s.Header("From", "\"service@paypal.example\" <u@c.example>");
    s.Header("To", " \"ceo@c.example\" <a@fine.example>");
    s.Header("To", "second@fine.example");
    s.Header("Subject", "ZYaeD, X");
    s.EndOfHeaders();  // consumes what the map checks read
    s.EndOfMessage("Q1");
    REQUIRE(f.observed.size() == 1);
    const Message& m = f.observed[0];
    CHECK(m.to_header == "\"ceo@c.example\" <a@fine.example>");
    CHECK(m.from_header == "\"service@paypal.example\" <u@c.example>");
    CHECK(m.helo == "localhost");
    CHECK(m.subject == "ZYaeD, X");
    CHECK(m.recipients == std::vector<std::string>{"a@fine.example"});
    // No SIZE= and no body (the milter does not ask for it): the header fields' bytes.
    size_t header_bytes = 0;
    for (const char* field : {"From: \"service@paypal.example\" <u@c.example>\r\n",
                              "To:  \"ceo@c.example\" <a@fine.example>\r\n",
                              "To: second@fine.example\r\n", "Subject: ZYaeD, X\r\n"}) {
      header_bytes += std::strlen(field);
    }
    CHECK(m.size == static_cast<int64_t>(header_bytes));
    CHECK(m.queue_id == "Q1");
    // The next transaction starts clean.
    s.Mail("<u@c.example>", "u@c.example", "PLAIN", "");
    s.Rcpt("<a@fine.example>", "");
    s.EndOfHeaders();
    s.EndOfMessage("Q2");
    REQUIRE(f.observed.size() == 2);
    CHECK(f.observed[1].to_header.empty());
    CHECK(f.observed[1].from_header.empty());
  }
}

TEST_CASE("a locked account is refused at MAIL", "[tripwire]") {
  Fixture f({"bad@spam.example"});
  f.locked = "stolen@c.example";
  Session s(f.tripwire.get(), "198.51.100.7", "x");
  Verdict v = s.Mail("<stolen@c.example>", "stolen@c.example", "PLAIN", "");
  CHECK(v.kind == Verdict::Kind::kTempfail);
  CHECK(v.text == "account suspended");
  CHECK(s.Mail("<ok@c.example>", "ok@c.example", "PLAIN", "").kind == Verdict::Kind::kContinue);
}

TEST_CASE("the tripwire counts transactions and the addresses it checks", "[tripwire]") {
  Fixture f({"bad@spam.example"});
  {
    Session s(f.tripwire.get(), "203.0.113.5", "client.example");
    CHECK(s.Mail("<a@b.example>", "", "", "").kind == Verdict::Kind::kAccept);  // not ours
    REQUIRE(s.Mail("<w@customer.example>", "w@customer.example", "LOGIN", "").kind ==
            Verdict::Kind::kContinue);
    s.Rcpt("<one@fine.example>", "");
    s.Rcpt("<two@fine.example>", "");
    s.Header("To", "one@fine.example, \"x@y.example\" <two@fine.example>");
    s.EndOfHeaders();
    s.EndOfMessage("Q1");
  }
  TripwireStats st = f.tripwire->stats();
  CHECK(st.transactions == 1);
  CHECK(st.recipients_checked == 2);
  CHECK(st.header_addresses_checked == 3);  // two addresses and one in a display name
}

TEST_CASE("ESMTP SIZE= parameters", "[tripwire]") {
  const struct {
    const char* param;
    int64_t size;  // -1: not a SIZE= parameter
  } kCases[] = {
      {"SIZE=1234", 1234}, {"size=0", 0},         {"SIZE=", -1},
      {"SIZE=12a", -1},    {"BODY=8BITMIME", -1}, {"SIZE=1234567890123456789012", -1},
  };
  for (const auto& c : kCases) {
    INFO(c.param);
    CHECK(EsmtpSizeParameter(c.param) == c.size);
  }
}

// The facts the detection engine gets for one delivered message of this session.
Message Observe(Fixture& f, int64_t declared_size, const char* source = "milter") {
  Session s(f.tripwire.get(), "203.0.113.5", "client.example", source);
  s.Helo("client.example");
  REQUIRE(s.Mail("<alice@customer.example>", "alice@customer.example", "PLAIN", "", declared_size)
              .kind == Verdict::Kind::kContinue);
  REQUIRE(s.Rcpt("<bob@remote.example>", "").kind == Verdict::Kind::kContinue);
  s.Header("From", "Alice <alice@customer.example>");
  s.Header("To", "\"bob@remote.example\" <bob@remote.example>");
  s.Header("Subject", " =?utf-8?B?SsO2cmc=?=\n =?utf-8?Q?_wFd2?= ");
  s.EndOfHeaders();
  s.EndOfMessage("4XyZ1");
  REQUIRE(f.observed.size() == 1);
  CHECK(s.accepted_recipients() == std::vector<std::string>{"bob@remote.example"});
  Message m = f.observed[0];
  f.observed.clear();
  return m;
}

TEST_CASE("live messages: size from SIZE= or the header bytes, subject decoded", "[tripwire]") {
  Fixture f({"bad@spam.example"});
  Message m = Observe(f, 4321);
  CHECK(m.size == 4321);
  CHECK(m.subject == "J\xc3\xb6rg wFd2");  // as Exim and Postfix log it
  CHECK(m.to_header == "\"bob@remote.example\" <bob@remote.example>");
  CHECK(m.from_header == "Alice <alice@customer.example>");
  CHECK(m.recipients == std::vector<std::string>{"bob@remote.example"});
  CHECK(m.queue_id == "4XyZ1");
  // Without SIZE=: every header field as "Name: value\r\n", a folded line counting its CRLF.
  const int64_t headers = (4 + 30 + 4) + (2 + 42 + 4) + (7 + 40 + 4 + 1);
  CHECK(Observe(f, -1).size == headers);
  // The policy front end sees only some headers: unknown rather than a wrong size.
  CHECK(Observe(f, -1, "policy").size == -1);
}

}  // namespace
}  // namespace compd
