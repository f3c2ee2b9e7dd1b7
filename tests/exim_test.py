#!/usr/bin/env python3
"""End to end: a real Exim asking compd-milter's policy listener from its ACLs.

Debian's exim4-daemon-heavy 4.96, unpacked by scripts/fetch-exim.sh
(the package conflicts with postfix), runs as a private daemon on loopback with plaintext
AUTH for test users and relays everything to a local sink. Its compd configuration is
the snippets of docs/exim.md, taken from that file. compd-milter listens on loopback TCP,
as the documentation recommends for Exim. swaks is the client. We assert
SMTP replies, what reaches the sink, and the events in the Redis stream and alert log
(source "policy", account = the authenticated id).

Run: python3 tests/exim_test.py (as root; needs build/compd-milter, or COMPD_BUILD_DIR).
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import exim_harness as eh  # noqa: E402
import stack_util as su  # noqa: E402

PREFIX = "compd:"
HELO = "client.example.test"
CASES = "a b c d e f g".split()
LISTED = ["listed-%s@bad.example" % c for c in CASES]


def user(case):
    return "user-%s@customer.example" % case


def password(case):
    return "pw-%s" % case


class EximTest(h.ServersTestCase):
    """One redis-server, compd-milter, sink and Exim for every case (libmilter stops only
    every 5 seconds)."""

    @classmethod
    def start_servers(cls):
        cls.redis = cls.started(h.RedisServer().start())
        su.add_listed(cls.redis, *LISTED, source="exim_test", prefix=PREFIX)
        # Loopback TCP, as docs/exim.md recommends for Exim 4.96.
        cls.milter = cls.started(h.Milter.standard(cls.redis, policy=True,
                                                   extra=["--log-level", "debug"]).start())
        cls.policy_port = cls.milter.policy_port
        cls.sink = cls.started(h.SmtpSink().start())
        cls.exim = cls.started(eh.Exim(cls.sink.port, {user(c): password(c) for c in CASES},
                                       "inet:127.0.0.1:%d" % cls.policy_port).start())

    # -- helpers

    def diag(self):
        return "\n%s\n--- compd-milter log\n%s" % (self.exim.logs(),
                                                    h.tail(self.milter.log_path, 30))

    def send(self, case, to, auth=True, **kw):
        kw.setdefault("subject", "case %s" % case)
        if auth:
            kw.update(user=user(case), password=password(case))
        return h.swaks(self.exim.port, to, sender=user(case), helo=HELO, **kw)

    def assert_code(self, result, code):
        self.assertEqual(result.code, code, "swaks exit code; transcript:\n%s%s" %
                         (result.transcript, self.diag()))

    def assert_refused_with_ref(self, result):
        # Exim wraps long replies over several 550- lines; the text comes from compd.
        text = " ".join(re.sub(r"^550[- ]5\.7\.1 ?", "", r) for r in result.replies()
                        if r.startswith("550"))
        self.assertRegex(text, r"message refused by policy \(ref [A-Z2-9]{10}\)",
                         result.transcript)
        return re.search(r"\(ref ([A-Z2-9]{10})\)", text).group(1)

    def delivered(self, subject):
        return self.sink.wait_for_message(lambda m: m.subject == subject, 10,
                                          what="message %r" % subject)

    def assert_not_delivered(self, subject):
        time.sleep(0.5)
        self.assertEqual(self.sink.find(lambda m: m.subject == subject), [])

    def events_for(self, account):
        return [e for e in su.stream_events(self.redis) if e.get("account") == account]

    def one_event(self, account, **expect):
        """Exactly one event for the account, in the stream and the alert log."""
        try:
            h.wait_for(lambda: self.events_for(account), 5, what="an event of %s" % account)
        except TimeoutError as e:
            self.fail("%s%s" % (e, self.diag()))
        time.sleep(0.3)  # a duplicate would come right behind
        events = self.events_for(account)
        self.assertEqual(len(events), 1, events)
        event = events[0]
        want = {"type": "hit", "source": "policy", "account": account, "action": "reject",
                "entry_kind": "exact"}
        want.update(expect)
        self.assertEqual({k: event.get(k) for k in want}, want, event)
        alerts = h.wait_for(lambda: [e for e in self.milter.alerts()
                                     if e.get("account") == account], 5, what="alert line")
        self.assertEqual(alerts, [event])
        return event

    # -- what a user and an operator see

    def test_a_unlisted_recipient_is_delivered(self):
        r = self.send("a", "friend-a@fine.example")
        self.assert_code(r, 0)
        self.assertEqual(self.delivered("case a").rcpts, ["friend-a@fine.example"])
        time.sleep(0.3)
        self.assertEqual(self.events_for(user("a")), [])

    def test_b_listed_recipient_is_refused_at_rcpt(self):
        r = self.send("b", "listed-b@bad.example")
        self.assert_code(r, 24)
        ref = self.assert_refused_with_ref(r)
        self.assert_not_delivered("case b")
        event = self.one_event(user("b"), recipient="listed-b@bad.example", where="envelope",
                               entry="listed-b@bad.example", sender=user("b"),
                               client_ip="127.0.0.1", helo=HELO, auth_type="login",
                               txn_id=ref)
        self.assertTrue(event["host"])
        self.exim.wait_for_log(r"A=login:%s rejected RCPT <listed-b@bad\.example>: 550 5\.7\.1 "
                               % re.escape(user("b")))

    def test_c_listed_and_unlisted_in_one_transaction(self):
        # swaks' default To: lists every envelope recipient, which would be a header hit
        # too: keep the listed address out of the headers here.
        r = self.send("c", ["friend-c@fine.example", "listed-c@bad.example"],
                      headers=["To: friend-c@fine.example"])
        self.assert_code(r, 0)
        self.assert_refused_with_ref(r)
        self.assertEqual(self.delivered("case c").rcpts, ["friend-c@fine.example"])
        self.one_event(user("c"), recipient="listed-c@bad.example", where="envelope")

    def test_d_listed_only_in_to_header(self):
        r = self.send("d", "friend-d@fine.example", headers=["To: Listed-D@bad.example"])
        self.assert_code(r, 26)
        ref = self.assert_refused_with_ref(r)
        self.assert_not_delivered("case d")
        event = self.one_event(user("d"), recipient="Listed-D@bad.example", where="header:to",
                               entry="listed-d@bad.example", subject="case d", txn_id=ref)
        m = re.search(r"(?im)^\s*-> Message-Id:\s*(\S+)", r.transcript)
        self.assertEqual(event["message_id"], m.group(1))
        # The queue id is Exim's message id, under which Exim logs the refusal.
        self.assertRegex(event["queue_id"], r"^[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}$")
        self.exim.wait_for_log(r"%s .*rejected after DATA: 550 5\.7\.1 " %
                               re.escape(event["queue_id"]))

    def test_e_listed_in_a_folded_cc_header_among_several(self):
        # Two Cc headers, one folded, with an encoded display name holding a comma:
        # ${escape:$bh_cc:} must carry all of it to compd intact.
        data = ("From: {u}\r\nTo: friend-e@fine.example\r\n"
                "Cc: =?utf-8?Q?Doe=2C_John?= <doe@fine.example>\r\n"
                "Cc: other@fine.example,\r\n\tListed E <listed-e@bad.example>\r\n"
                "Subject: case e\r\nMessage-Id: <case-e@customer.example>\r\n\r\nhello\r\n"
                ).format(u=user("e"))
        r = self.send("e", "friend-e@fine.example", data=data, subject=None)
        self.assert_code(r, 26)
        self.assert_not_delivered("case e")
        self.one_event(user("e"), recipient="listed-e@bad.example", where="header:cc",
                       subject="case e", message_id="<case-e@customer.example>")

    def test_f_unauthenticated_mail_is_not_checked(self):
        # Exim relays for 127.0.0.1 without AUTH; compd's scope is authenticated sessions.
        r = self.send("f", "listed-f@bad.example", auth=False)
        self.assert_code(r, 0)
        self.assertEqual(self.delivered("case f").rcpts, ["listed-f@bad.example"])
        time.sleep(0.3)
        self.assertEqual([e for e in su.stream_events(self.redis)
                          if e.get("recipient") == "listed-f@bad.example"], [])

    def test_g_local_submission_is_checked_in_acl_not_smtp(self):
        message = "From: cron@mx.compd.test\nTo: friend-g@fine.example\nSubject: case g\n\nhi\n"
        code, out = self.exim.sendmail(message, "friend-g@fine.example")
        self.assertEqual(code, 0, out + self.diag())
        self.delivered("case g")
        code, out = self.exim.sendmail(message.replace("case g", "case g2"),
                                       "friend-g@fine.example", "listed-g@bad.example")
        self.assertNotEqual(code, 0, out)
        self.assertIn("rejected by non-SMTP ACL", out)
        self.assert_not_delivered("case g2")
        # The caller is root: the account is the caller's login.
        self.one_event("local:root", recipient="listed-g@bad.example", where="envelope",
                       sender="root@mx.compd.test", subject="case g2")

    def test_h_compd_unreachable_lets_mail_through_and_says_so(self):
        # Another Exim with the same snippets, pointed at a port nobody listens on.
        nobody = "inet:127.0.0.1:%d" % h.free_port()
        with eh.Exim(self.sink.port, {user("a"): password("a")}, nobody) as other:
            r = h.swaks(other.port, "listed-a@bad.example", sender=user("a"), user=user("a"),
                        password=password("a"), helo=HELO, subject="case h")
            self.assertEqual(r.code, 0, r.transcript + other.logs())
            self.assertEqual(self.delivered("case h").rcpts, ["listed-a@bad.example"])
            other.wait_for_log(r"compd: policy service unreachable, recipient not checked")
            other.wait_for_log(r"compd: policy service unreachable, headers not checked")


if __name__ == "__main__":
    h.main()
