#include "compd/mta/policy.h"

#include <catch2/catch.hpp>

#include "compd/map/entry.h"
#include "compd/testutil/tripwire.h"

namespace compd {
namespace {

// A tripwire over a real matcher that is asked in policy-protocol text.
struct Fixture : testing::TripwireFixture {
  using TripwireFixture::TripwireFixture;

  // Evaluates a request written as protocol text (without the final empty line).
  std::string Ask(const std::string& text) {
    PolicyParser parser;
    size_t consumed = 0;
    bool complete = false;
    std::string wire = text + (!text.empty() && text.back() == '\n' ? "\n" : "\n\n");
    Status s = parser.Feed(wire, &consumed, &complete);
    REQUIRE(s.ok());
    REQUIRE(complete);
    std::string action;
    s = EvaluatePolicyRequest(*tripwire, parser.TakeRequest(), &action);
    INFO(s.ToString());
    REQUIRE(s.ok());
    return action;
  }
};

const char kRcptRequest[] =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTPA\n"
    "helo_name=botnet-helo\n"
    "queue_id=\n"
    "sender=alice@customer.example\n"
    "client_address=203.0.113.9\n"
    "client_name=client.example\n"
    "sasl_method=LOGIN\n"
    "sasl_username=alice@customer.example\n";

std::string Rcpt(const std::string& recipient) {
  return std::string(kRcptRequest) + "recipient=" + recipient + "\n";
}

// Feeds `wire` in one piece; returns the status of the last Feed and the requests.
Status FeedAll(PolicyParser* parser, std::string_view wire, std::vector<PolicyRequest>* out) {
  while (!wire.empty()) {
    size_t consumed = 0;
    bool complete = false;
    Status s = parser->Feed(wire, &consumed, &complete);
    wire.remove_prefix(consumed);
    if (!s.ok()) return s;
    if (complete) out->push_back(parser->TakeRequest());
    if (!complete && consumed == 0) break;
  }
  return Status::Ok();
}

TEST_CASE("policy parser: requests, values with '=', empty values, CRLF", "[policy]") {
  PolicyParser parser;
  std::vector<PolicyRequest> got;
  std::string wire =
      "request=smtpd_access_policy\nsender=\nccert_subject=a=b=c\r\n\n"
      "request=smtpd_access_policy\nrecipient=x@y\n\n"
      "request=smtpd";
  REQUIRE(FeedAll(&parser, wire, &got).ok());
  REQUIRE(got.size() == 2);
  CHECK(got[0].attributes.size() == 3);
  CHECK(got[0].Has("sender"));
  CHECK(got[0].Get("sender").empty());
  CHECK(got[0].Get("ccert_subject") == "a=b=c");
  CHECK_FALSE(got[0].Has("recipient"));
  CHECK(got[1].Get("recipient") == "x@y");
  CHECK(parser.requests() == 2);
  CHECK(parser.mid_request());
}

TEST_CASE("policy parser: Feed stops at the end of each request", "[policy]") {
  PolicyParser parser;
  std::string wire = "a=1\n\nb=2\n\n";
  size_t consumed = 0;
  bool complete = false;
  REQUIRE(parser.Feed(wire, &consumed, &complete).ok());
  CHECK(complete);
  CHECK(consumed == 5);
  CHECK(parser.TakeRequest().Get("a") == "1");
  CHECK_FALSE(parser.mid_request());
}

TEST_CASE("policy parser: byte by byte gives the same requests", "[policy]") {
  std::string wire = std::string(kRcptRequest) + "recipient=a@b\n\n" + kRcptRequest + "\n";
  PolicyParser whole, bytes;
  std::vector<PolicyRequest> a, b;
  REQUIRE(FeedAll(&whole, wire, &a).ok());
  for (char c : wire) REQUIRE(FeedAll(&bytes, std::string_view(&c, 1), &b).ok());
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == 2);
  CHECK(a[0].attributes == b[0].attributes);
  CHECK(a[1].attributes == b[1].attributes);
}

TEST_CASE("policy parser: malformed input is refused with its place", "[policy]") {
  struct Case {
    std::string wire;
    std::string message;
  };
  const Case cases[] = {
      {"a=1\n\nb=2\nhello world\n", "request 2, line 2: expected name=value, got \"hello world\""},
      {"=x\n", "request 1, line 1: empty attribute name"},
      {"a b=1\n", "request 1, line 1: invalid attribute name \"a b\""},
      {"a=1\nb=2\na=3\n", "request 1, line 3: attribute \"a\" given twice"},
      {std::string("a=x\0y\n", 6), "request 1, line 1: NUL byte in \"a=x\\x00y\""},
      {"\n", "request 1, line 1: empty line before any attribute"},
      {"a=1\n\n\n", "request 2, line 1: empty line before any attribute"},
  };
  for (const Case& c : cases) {
    INFO(c.wire);
    PolicyParser parser;
    std::vector<PolicyRequest> got;
    Status s = FeedAll(&parser, c.wire, &got);
    REQUIRE(s.IsInvalid());
    CHECK(s.message().rfind(c.message, 0) == 0);
    // A failed parser stays failed.
    size_t consumed = 0;
    bool complete = false;
    CHECK_FALSE(parser.Feed("a=1\n\n", &consumed, &complete).ok());
    CHECK_FALSE(complete);
  }
}

TEST_CASE("policy parser: bounds on line, attributes and request size", "[policy]") {
  PolicyLimits limits;
  limits.max_line_bytes = 16;
  limits.max_attributes = 3;
  limits.max_request_bytes = 40;
  std::vector<PolicyRequest> got;
  {
    // Refused before the newline arrives: a client cannot make us buffer without end.
    PolicyParser parser(limits);
    Status s = FeedAll(&parser, "a=" + std::string(20, 'x'), &got);
    REQUIRE(s.IsInvalid());
    CHECK(s.message() == "request 1, line 1: line longer than 16 bytes");
  }
  {
    PolicyParser parser(limits);  // exactly 16 bytes with the LF is fine
    REQUIRE(FeedAll(&parser, "a=" + std::string(13, 'x') + "\n\n", &got).ok());
  }
  {
    PolicyParser parser(limits);
    Status s = FeedAll(&parser, "a=1\nb=2\nc=3\nd=4\n\n", &got);
    REQUIRE(s.IsInvalid());
    CHECK(s.message() == "request 1, line 4: more than 3 attributes");
  }
  {
    PolicyParser parser(limits);
    Status s = FeedAll(&parser, "a=12345678901\nb=12345678901\nc=12345678901\n\n", &got);
    REQUIRE(s.IsInvalid());
    CHECK(s.message() == "request 1, line 3: request larger than 40 bytes");
  }
  {
    // The size bound is per request: many small requests on one connection are fine.
    PolicyParser parser(limits);
    std::string wire;
    for (int i = 0; i < 100; ++i) wire += "a=1\nb=2\n\n";
    got.clear();
    REQUIRE(FeedAll(&parser, wire, &got).ok());
    CHECK(got.size() == 100);
  }
}

TEST_CASE("Exim ${escape:} text is decoded", "[policy]") {
  const std::pair<const char*, const char*> kCases[] = {
      {"a@x,\\n b@y", "a@x,\n b@y"},
      {"\\r\\t\\b\\v\\f", "\r\t\b\v\f"},
      {"caf\\303\\251", "caf\xc3\xa9"},
      {"\\001\\177\\377", "\x01\x7f\xff"},
      // Exim leaves backslashes alone; so do we when no escape follows.
      {"\"a\\\\c\" <c@d>", "\"a\\\\c\" <c@d>"},
      {"\\x \\4000 \\12 end\\", "\\x \\4000 \\12 end\\"},
      {"", ""},
  };
  for (const auto& [escaped, decoded] : kCases) {
    INFO(escaped);
    CHECK(DecodeEximEscapes(escaped) == decoded);
  }
}

TEST_CASE("verdicts become Postfix actions", "[policy]") {
  Verdict v;
  CHECK(PolicyAction(v, "R") == "DUNNO");
  v.kind = Verdict::Kind::kAccept;
  CHECK(PolicyAction(v, "R") == "DUNNO");
  v = Verdict{Verdict::Kind::kReject, "550", "5.7.1", "refused 100%% (ref R)", ""};
  CHECK(PolicyAction(v, "R") == "550 5.7.1 refused 100% (ref R)");
  v = Verdict{Verdict::Kind::kTempfail, "451", "4.7.1", "later", ""};
  CHECK(PolicyAction(v, "R") == "451 4.7.1 later");
  v = Verdict{Verdict::Kind::kDiscard, "", "", "", ""};
  CHECK(PolicyAction(v, "R") == "DISCARD compd: listed test recipient (ref R)");
  v = Verdict{Verdict::Kind::kQuarantine, "", "", "", "compd: held (ref R)"};
  CHECK(PolicyAction(v, "R") == "HOLD compd: held (ref R)");
  CHECK(FormatPolicyReply("550 5.7.1 a\r\nb") == "action=550 5.7.1 ab\n\n");
}

TEST_CASE("policy: a listed recipient is refused and recorded with source policy", "[policy]") {
  Fixture f({"listed@bad.example"});
  std::string action = f.Ask(Rcpt("Listed@Bad.Example"));
  CHECK(action.rfind("550 5.7.1 Recipient address rejected: message refused by policy (ref ", 0) ==
        0);
  REQUIRE(f.events.size() == 1);
  const Event& e = f.events[0];
  CHECK(action.find("(ref " + e.txn_id + ")") != std::string::npos);
  CHECK(e.source == "policy");
  CHECK(e.account == "alice@customer.example");
  CHECK(e.auth_type == "LOGIN");
  CHECK(e.client_ip == "203.0.113.9");
  CHECK(e.client_name == "client.example");
  CHECK(e.helo == "botnet-helo");
  CHECK(e.sender == "alice@customer.example");
  CHECK(e.recipient == "Listed@Bad.Example");
  CHECK(e.entry == "listed@bad.example");
  CHECK(e.where == "envelope");
  CHECK(e.action == "reject");
  CHECK(e.host == "node1");

  CHECK(f.Ask(Rcpt("friend@fine.example")) == "DUNNO");
  CHECK(f.Ask(Rcpt("<friend@fine.example>")) == "DUNNO");
  CHECK(f.events.size() == 1);
  // Postfix (which sends `instance`) writes "Recipient address rejected:" itself.
  action = f.Ask(Rcpt("listed@bad.example") + "instance=1a2b.3c4d.0\n");
  CHECK(action.rfind("550 5.7.1 message refused by policy (ref ", 0) == 0);
  f.events.pop_back();
  // Each request is its own transaction.
  f.Ask(Rcpt("listed@bad.example"));
  REQUIRE(f.events.size() == 2);
  CHECK(f.events[0].txn_id != f.events[1].txn_id);
  CHECK(f.messages.empty());  // a RCPT request is not a message
}

TEST_CASE("policy: scope is the milter's", "[policy]") {
  TripwireOptions o;
  REQUIRE(ParseCidrList("192.0.2.0/24", &o.trusted_networks).ok());
  Fixture f({"listed@bad.example"}, o);
  std::string base =
      "request=smtpd_access_policy\nprotocol_state=RCPT\nsender=x@y.example\n"
      "recipient=listed@bad.example\n";
  // Unauthenticated: not ours.
  CHECK(f.Ask(base + "client_address=203.0.113.9\nsasl_username=\n") == "DUNNO");
  CHECK(f.Ask(base + "client_address=203.0.113.9\n") == "DUNNO");
  CHECK(f.events.empty());
  // A trusted network is checked, its account is the address.
  CHECK(f.Ask(base + "client_address=192.0.2.7\n").rfind("550 5.7.1", 0) == 0);
  REQUIRE(f.events.size() == 1);
  CHECK(f.events[0].account == "ip:192.0.2.7");
  // A locked account is refused whatever the recipient (the account gate of the milter).
  f.locked = "alice@customer.example";
  CHECK(f.Ask(Rcpt("friend@fine.example")) == "451 4.7.1 account suspended");
}

TEST_CASE("policy: a locked account is refused at MAIL as compd-milter refuses it", "[policy]") {
  // check_policy_service in smtpd_sender_restrictions asks at MAIL, without a recipient.
  Fixture f({"listed@bad.example"});
  std::string mail = kRcptRequest;
  mail.replace(mail.find("protocol_state=RCPT"), 19, "protocol_state=MAIL");
  CHECK(f.Ask(mail) == "DUNNO");
  f.locked = "alice@customer.example";
  CHECK(f.Ask(mail) == "451 4.7.1 account suspended");
  // Unauthenticated and out of scope: still nothing to say at MAIL.
  std::string anonymous = mail;
  anonymous.replace(anonymous.find("sasl_username=alice@customer.example"), 36, "sasl_username=");
  CHECK(f.Ask(anonymous) == "DUNNO");
  CHECK(f.events.empty());
}

TEST_CASE("policy: each action has its Postfix form", "[policy]") {
  struct Case {
    HitAction action;
    std::string prefix;
    std::string event_action;
  };
  const Case cases[] = {
      {HitAction::kTempfail, "451 4.7.1 Recipient address rejected", "tempfail"},
      {HitAction::kQuarantine, "HOLD compd: listed test recipient (ref ", "quarantine"},
      {HitAction::kDiscard, "DISCARD compd: listed test recipient (ref ", "discard"},
      {HitAction::kMonitor, "DUNNO", "monitor"},
  };
  for (const Case& c : cases) {
    INFO(HitActionName(c.action));
    TripwireOptions o;
    o.action = c.action;
    Fixture f({"listed@bad.example"}, o);
    std::string action = f.Ask(Rcpt("listed@bad.example"));
    CHECK(action.rfind(c.prefix, 0) == 0);
    REQUIRE(f.events.size() == 1);
    CHECK(f.events[0].action == c.event_action);
    CHECK(f.Ask(Rcpt("friend@fine.example")) == "DUNNO");
  }
}

TEST_CASE("policy: header attributes are checked at end of message", "[policy]") {
  Fixture f({"listed@bad.example", "hidden@bad.example"});
  std::string base =
      "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n"
      "sender=alice@customer.example\nclient_address=203.0.113.9\nqueue_id=1xWfS5-0005GW-2W\n"
      "sasl_username=alice@customer.example\ncompd_subject=Caf\\303\\251 time\n"
      "compd_message_id=<m1@customer.example>\n";
  // Folded To header, as ${escape:$bh_to:} writes it.
  std::string action = f.Ask(base +
                             "compd_to=\"Doe, J\" <friend@fine.example>,\\n  Listed@bad.example\n"
                             "compd_cc=\n");
  CHECK(action.rfind("550 5.7.1 ", 0) == 0);
  REQUIRE(f.events.size() == 1);
  const Event& e = f.events[0];
  CHECK(e.where == "header:to");
  CHECK(e.recipient == "Listed@bad.example");
  CHECK(e.subject == "Caf\xc3\xa9 time");
  CHECK(e.message_id == "<m1@customer.example>");
  CHECK(e.queue_id == "1xWfS5-0005GW-2W");
  CHECK(e.source == "policy");

  action = f.Ask(base +
                 "compd_to=friend@fine.example\n"
                 "compd_cc=\"hidden@bad.example\" <other@fine.example>\n");
  CHECK(action.rfind("550 5.7.1 ", 0) == 0);
  REQUIRE(f.events.size() == 2);
  CHECK(f.events[1].where == "display-name");

  CHECK(f.Ask(base + "compd_to=friend@fine.example\ncompd_cc=x@fine.example\n") == "DUNNO");
  CHECK(f.events.size() == 2);
  // Postfix's own END-OF-MESSAGE and DATA requests carry no headers: nothing to say.
  CHECK(f.Ask(base) == "DUNNO");
  CHECK(f.Ask("request=smtpd_access_policy\nprotocol_state=DATA\nrecipient=listed@bad.example"
              "\nsasl_username=a") == "DUNNO");
  CHECK(f.events.size() == 2);
}

TEST_CASE("policy: compd_rcpts checks a local submission's envelope at once", "[policy]") {
  Fixture f({"listed@bad.example"});
  std::string base =
      "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n"
      "sender=cpuser@host.example\nsasl_username=local:cpuser\n";
  CHECK(f.Ask(base + "compd_rcpts=a@fine.example, b@fine.example\ncompd_to=a@fine.example\n") ==
        "DUNNO");
  REQUIRE(f.messages.size() == 1);
  CHECK(f.messages[0].account == "local:cpuser");
  CHECK(f.messages[0].recipients == 2);
  std::string action =
      f.Ask(base +
            "compd_rcpts=a@fine.example, listed@bad.example\ncompd_to=a@fine.example\n"
            "compd_subject=hello\n");
  CHECK(action.rfind("550 5.7.1 ", 0) == 0);
  REQUIRE(f.events.size() == 1);
  CHECK(f.events[0].where == "envelope");
  CHECK(f.events[0].subject == "hello");
  CHECK(f.events[0].account == "local:cpuser");
  CHECK(f.messages.size() == 1);  // a refused message is not counted
}

TEST_CASE("policy: Exim's end-of-message request feeds the engine, nothing looked up twice",
          "[policy]") {
  // Exim asked at RCPT already (a monitored hit was recorded there); at DATA it names the
  // accepted recipients, the size and the headers, for the engine and the volume counters.
  TripwireOptions monitor;
  monitor.action = HitAction::kMonitor;
  Fixture f({"listed@bad.example"}, monitor);
  std::string request =
      "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nhelo_name=localhost\n"
      "sender=alice@customer.example\nclient_address=203.0.113.9\nqueue_id=1xWfS5-0005GW-2W\n"
      "sasl_username=alice@customer.example\nsize=312\ncompd_subject=ZYaeD, X\n"
      "compd_accepted_rcpts=Probe@Gmx.example, listed@bad.example\n"
      "compd_from=\"service@paypal.example\" <alice@customer.example>\n"
      "compd_to=\"boss@customer.example\"\\n <probe@gmx.example>\ncompd_cc=\n";
  CHECK(f.Ask(request) == "DUNNO");
  CHECK(f.events.empty());  // listed@bad.example was the RCPT request's business
  REQUIRE(f.observed.size() == 1);
  const Message& m = f.observed[0];
  CHECK(m.account == "alice@customer.example");
  CHECK(m.recipients == std::vector<std::string>{"Probe@Gmx.example", "listed@bad.example"});
  CHECK(m.size == 312);
  CHECK(m.helo == "localhost");
  CHECK(m.client_ip == "203.0.113.9");
  CHECK(m.subject == "ZYaeD, X");
  CHECK(m.from_header == "\"service@paypal.example\" <alice@customer.example>");
  CHECK(m.to_header.find("boss@customer.example") != std::string::npos);
  CHECK(m.queue_id == "1xWfS5-0005GW-2W");
  CHECK(m.source == "policy");
  REQUIRE(f.messages.size() == 1);  // the volume counters see Exim's SMTP mail too
  CHECK(f.messages[0].recipients == 2);

  // No size (or Postfix's 0): unknown, not small.
  f.Ask(
      "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsasl_username=a@b.example\n"
      "size=0\ncompd_accepted_rcpts=x@fine.example\ncompd_to=x@fine.example\n");
  REQUIRE(f.observed.size() == 2);
  CHECK(f.observed[1].size == -1);
}

TEST_CASE("policy: Postfix's end-of-message request gets the recipients of its RCPT requests",
          "[policy]") {
  // What a real Postfix sends with check_policy_service in smtpd_recipient_restrictions and
  // smtpd_end_of_data_restrictions (and, with smtpd_delay_reject = yes, in
  // smtpd_sender_restrictions: every recipient asked twice): no headers, at END-OF-MESSAGE
  // one recipient at most.
  Fixture f({"listed@bad.example"});
  PostfixMessageMemory memory;
  auto ask = [&](const std::string& text) {
    PolicyParser parser;
    size_t consumed = 0;
    bool complete = false;
    REQUIRE(parser.Feed(text + "\n\n", &consumed, &complete).ok());
    REQUIRE(complete);
    PolicyRequest request = parser.TakeRequest();
    memory.Prepare(&request);
    std::string action;
    if (!memory.Repeated(request, &action)) {
      REQUIRE(EvaluatePolicyRequest(*f.tripwire, request, &action).ok());
    }
    memory.Answered(request, action);
    return action;
  };
  const std::string base =
      "request=smtpd_access_policy\nhelo_name=localhost\nclient_address=203.0.113.9\n"
      "sasl_method=LOGIN\nsasl_username=alice@customer.example\n"
      "sender=alice@customer.example\ninstance=1a2b.3c4d.5e6f.0\n";
  std::vector<std::string> answers;
  for (const char* r : {"one@fine.example", "one@fine.example", "listed@bad.example",
                        "listed@bad.example", "two@fine.example", "two@fine.example"}) {
    answers.push_back(ask(base + "protocol_state=RCPT\nrecipient=" + r));
  }
  // The listed one is one hit, and the second ask gets the first answer.
  CHECK(f.events.size() == 1);
  CHECK(answers[0] == "DUNNO");
  CHECK(answers[1] == "DUNNO");
  CHECK(answers[2].rfind("550 5.7.1 ", 0) == 0);
  CHECK(answers[3] == answers[2]);
  CHECK(answers[5] == "DUNNO");
  CHECK(ask(base + "protocol_state=END-OF-MESSAGE\nrecipient=\nrecipient_count=2\n"
                   "queue_id=72B22A76223\nsize=388") == "DUNNO");
  REQUIRE(f.observed.size() == 1);
  CHECK(f.observed[0].recipients ==
        std::vector<std::string>{"one@fine.example", "two@fine.example"});
  CHECK(f.observed[0].size == 388);
  CHECK(f.observed[0].helo == "localhost");
  REQUIRE(f.messages.size() == 1);
  CHECK(f.messages[0].recipients == 2);

  // The next message of the connection: a new instance; its one recipient alone.
  const std::string next =
      "request=smtpd_access_policy\nsasl_username=alice@customer.example\n"
      "client_address=203.0.113.9\ninstance=1a2b.3c4d.5e70.0\n";
  ask(next + "protocol_state=RCPT\nrecipient=three@fine.example");
  ask(next + "protocol_state=RCPT\nrecipient=listed@bad.example");  // a new message: asked anew
  CHECK(f.events.size() == 2);
  ask(next + "protocol_state=END-OF-MESSAGE\nrecipient=three@fine.example\nsize=300");
  REQUIRE(f.observed.size() == 2);
  CHECK(f.observed[1].recipients == std::vector<std::string>{"three@fine.example"});
  // Nothing remembered for it (another connection asked at RCPT): its own recipient.
  ask("request=smtpd_access_policy\nsasl_username=alice@customer.example\n"
      "instance=ffff.0\nprotocol_state=END-OF-MESSAGE\nrecipient=four@fine.example");
  REQUIRE(f.observed.size() == 3);
  CHECK(f.observed[2].recipients == std::vector<std::string>{"four@fine.example"});
  // Exim's requests (no instance) and Postfix requests a client extended itself are left
  // as they are.
  PolicyRequest exim;
  exim.attributes = {{"protocol_state", "END-OF-MESSAGE"}, {"recipient", "x@y.example"}};
  memory.Prepare(&exim);
  CHECK(!exim.Has("compd_accepted_rcpts"));
  PolicyRequest own;
  own.attributes = {{"protocol_state", "END-OF-MESSAGE"},
                    {"instance", "1"},
                    {"recipient", "x@y.example"},
                    {"compd_rcpts", "z@y.example"}};
  memory.Prepare(&own);
  CHECK(!own.Has("compd_accepted_rcpts"));
}

TEST_CASE("policy: requests the protocol does not allow are errors", "[policy]") {
  Fixture f({"listed@bad.example"});
  auto eval = [&](const std::string& text) {
    PolicyParser parser;
    size_t consumed = 0;
    bool complete = false;
    std::string wire = text + "\n\n";
    REQUIRE(parser.Feed(wire, &consumed, &complete).ok());
    REQUIRE(complete);
    std::string action;
    return EvaluatePolicyRequest(*f.tripwire, parser.TakeRequest(), &action);
  };
  Status s = eval("protocol_state=RCPT\nrecipient=listed@bad.example\nsasl_username=a");
  CHECK(s.IsInvalid());
  CHECK(s.message() == "missing request=smtpd_access_policy");
  s = eval("request=junk\nprotocol_state=RCPT");
  CHECK(s.message() == "unsupported request=\"junk\" (expected smtpd_access_policy)");
  s = eval("request=smtpd_access_policy\nrecipient=listed@bad.example\nsasl_username=a");
  CHECK(s.IsInvalid());
  CHECK(s.message().rfind("missing protocol_state", 0) == 0);
  CHECK(f.events.empty());
  // States compd has nothing to say about.
  CHECK(f.Ask("request=smtpd_access_policy\nprotocol_state=CONNECT\nsasl_username=a") == "DUNNO");
  CHECK(f.Ask("request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=a") == "DUNNO");
}

}  // namespace
}  // namespace compd
