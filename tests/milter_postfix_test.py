#!/usr/bin/env python3
"""End to end: compd-milter in a real Postfix, authenticated users submitting with swaks.

A private Postfix on loopback with Dovecot passwd-file SASL relays everything to a local
sink; compd-milter runs beside it against a real redis-server. We
assert what a user and an operator see: SMTP replies (swaks exit codes), what reaches the
sink, the events in the Redis stream, and the JSON-lines alert log.

Contracts this test is written against:
  compd-milter --foreground --socket inet:PORT@127.0.0.1 --redis URL --prefix compd:
               --alert-log PATH --spool-dir DIR --map-dir DIR --action reject
  map: HSET compd:map:exact <lower-case address> <json>, INCR compd:map:version,
       PUBLISH compd:map:changes <version>; or `mapctl --redis URL --prefix P add ADDR`
  events: XADD compd:events * event <json>; the alert log holds the same JSON objects.
  envelope hit -> 550 5.7.1 at RCPT (swaks 24 when it was the only recipient);
  header hit -> 550 5.7.1 after the final dot (swaks 26).

Run: python3 tests/milter_postfix_test.py (needs build/compd-milter and build/mapctl, or
COMPD_BUILD_DIR).
"""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import stack_util as su  # noqa: E402

PREFIX = "compd:"
EVENTS = PREFIX + "events"
MILTER_MACROS = {
    # {auth_authen} and friends at MAIL; libmilter still returns them at RCPT and EOM.
    "mail": "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
}
HELO = "client.example.test"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]00:?00)$")
# Always present; queue_id, subject and message_id only when known at the time of the hit.
EVENT_KEYS = {"type", "time", "host", "account", "auth_type", "client_ip", "client_name",
              "helo", "sender", "recipient", "where", "entry", "entry_kind", "action",
              "txn_id", "source"}


def user(case):
    return "user-%s@customer.example" % case


def password(case):
    return "pw-%s" % case


CASES = "a b c d e f g h i j k m n".split()
USERS = {user(c): password(c) for c in CASES}


def read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class Env(su.MilterStack):
    """redis-server + compd-milter + Postfix/Dovecot/sink, for one test class."""

    def start(self, listed):
        self.redis = h.RedisServer().start()
        su.add_listed(self.redis, *listed, source="milter_postfix_test", prefix=PREFIX)
        self.milter = h.Milter.standard(self.redis, action="reject", prefix=PREFIX)
        self.milter.start()
        self.stack = h.MailStack(users=USERS, smtpd_milters=self.milter.postfix_spec,
                                 non_smtpd_milters=self.milter.postfix_spec,
                                 milter_macros=MILTER_MACROS)
        self.stack.start()


class MilterTestCase(unittest.TestCase):
    LISTED = ()
    env = None

    @classmethod
    def setUpClass(cls):
        cls.env = Env(cls.LISTED)
        cls.redis, cls.milter, cls.stack = cls.env.redis, cls.env.milter, cls.env.stack
        cls.sink, cls.postfix = cls.stack.sink, cls.stack.postfix

    @classmethod
    def tearDownClass(cls):
        if cls.env:
            cls.env.close()

    # -- sending

    def send(self, case, to, port=None, **kw):
        kw.setdefault("subject", "case %s %s" % (case, time.monotonic()))
        return h.swaks(port or self.stack.submission_port, to, sender=user(case),
                       user=user(case), password=password(case), helo=HELO, **kw)

    def assert_code(self, result, code):
        self.assertEqual(result.code, code, "swaks exit code; transcript:\n%s%s" %
                         (result.transcript, self.env.diag()))

    def assert_reply(self, result, prefix):
        self.assertTrue(any(r.startswith(prefix) for r in result.replies()),
                        "no reply starting %r in:\n%s" % (prefix, result.transcript))

    def delivered(self, subject, timeout=10):
        return self.sink.wait_for_message(lambda m: m.subject == subject, timeout,
                                          what="message %r" % subject)

    def assert_not_delivered(self, subject):
        # A refused message never entered the queue; wait briefly in case it did.
        time.sleep(0.5)
        self.assertEqual(self.sink.find(lambda m: m.subject == subject), [],
                         "message %r reached the sink" % subject)

    # -- events

    def events_for(self, account):
        return [e for e in su.stream_events(self.redis) if e.get("account") == account]

    def alerts_for(self, account):
        return [e for e in self.milter.alerts() if e.get("account") == account]

    def wait_events(self, account, n, timeout=5):
        try:
            return h.wait_for(lambda: len(self.events_for(account)) >= n and
                              self.events_for(account), timeout,
                              what="%d event(s) for %s in %s" % (n, account, EVENTS))
        except TimeoutError as e:
            self.fail("%s; stream holds %s%s" % (e, su.stream_events(self.redis),
                                                 self.env.diag()))

    def check_hit(self, case, recipient, where, entry=None, subject=None):
        """Exactly one hit for the case's account, in the stream and the alert log."""
        account = user(case)
        self.wait_events(account, 1)
        time.sleep(0.3)  # a duplicate would come right behind
        events = self.events_for(account)
        self.assertEqual(len(events), 1, "expected exactly one event: %s" % events)
        event = events[0]
        missing = EVENT_KEYS - set(event)
        self.assertFalse(missing, "event lacks %s: %s" % (sorted(missing), event))
        expect = {"type": "hit", "account": account, "sender": account,
                  "recipient": recipient, "where": where, "entry": entry or recipient,
                  "entry_kind": "exact", "action": "reject", "source": "milter",
                  "client_ip": "127.0.0.1", "helo": HELO}
        self.assertEqual({k: event.get(k) for k in expect}, expect, event)
        self.assertRegex(event["time"], ISO_UTC)
        self.assertTrue(event["host"], event)
        self.assertIn(str(event["auth_type"]).upper(), ("LOGIN", "PLAIN"), event)
        self.assertTrue(event["txn_id"], event)
        if subject is not None:
            self.assertEqual(event.get("subject"), subject, event)
        try:
            alerts = h.wait_for(lambda: self.alerts_for(account), 5,
                                what="alert log line for %s" % account)
        except TimeoutError as e:
            self.fail("%s; alert log %s holds %s" % (e, self.milter.alert_log,
                                                      self.milter.alerts()))
        self.assertEqual(alerts, [event], "the alert log holds the same object as the stream")
        return event


class EndToEndTest(MilterTestCase):
    LISTED = ["listed-b@bad.example", "listed-c@bad.example", "listed-d@bad.example",
              "listed-e@bad.example", "listed-f@bad.example", "listed-g@bad.example",
              "listed-j@bad.example"]

    def test_a_unlisted_recipient_is_delivered(self):
        r = self.send("a", "friend-a@fine.example", subject="case a")
        self.assert_code(r, 0)
        msg = self.delivered("case a")
        self.assertEqual(msg.rcpts, ["friend-a@fine.example"])
        self.assertEqual(msg.mail_from, user("a"))
        self.assertEqual(self.events_for(user("a")), [])

    def test_b_listed_recipient_is_rejected_at_rcpt(self):
        r = self.send("b", "listed-b@bad.example", subject="case b")
        self.assert_code(r, 24)
        self.assert_reply(r, "550 5.7.1")
        self.assert_not_delivered("case b")
        self.check_hit("b", "listed-b@bad.example", "envelope")
        self.postfix.wait_for_log(r"milter-reject: RCPT from .*<listed-b@bad\.example>")

    def test_c_listed_and_unlisted_in_one_transaction(self):
        # swaks' default To: header names every envelope recipient, which would also be a
        # header hit: keep the listed address out of the headers here.
        r = self.send("c", ["friend-c@fine.example", "listed-c@bad.example"],
                      subject="case c", headers=["To: friend-c@fine.example"])
        self.assert_code(r, 0)
        self.assert_reply(r, "550 5.7.1")
        msg = self.delivered("case c")
        self.assertEqual(msg.rcpts, ["friend-c@fine.example"])
        self.check_hit("c", "listed-c@bad.example", "envelope")

    def header_case(self, case, headers, recipient, where):
        subject = "case %s" % case
        r = self.send(case, "friend-%s@fine.example" % case, subject=subject,
                      headers=headers)
        self.assert_code(r, 26)
        self.assert_reply(r, "550 5.7.1")
        self.assert_not_delivered(subject)
        event = self.check_hit(case, recipient, where, subject=subject)
        m = re.search(r"(?im)^\s*-> Message-Id:\s*(\S+)", r.transcript)
        if m:
            self.assertEqual(str(event.get("message_id")).strip("<>"), m.group(1).strip("<>"))
        # At end of message the queue id is known; Postfix logs the reject under it.
        self.assertTrue(event.get("queue_id"), event)
        self.postfix.wait_for_log(r"%s: milter-reject: END-OF-MESSAGE" %
                                  re.escape(event["queue_id"]))
        return event

    def test_d_listed_only_in_to_header(self):
        self.header_case("d", ["To: listed-d@bad.example"], "listed-d@bad.example",
                         "header:to")

    def test_e_listed_only_in_cc_header(self):
        self.header_case("e", ["To: friend-e@fine.example", "Cc: other@fine.example, "
                               "Listed-E <listed-e@bad.example>"],
                         "listed-e@bad.example", "header:cc")

    def test_f_listed_in_display_name(self):
        self.header_case("f", ['To: "listed-f@bad.example" <friend-f@fine.example>'],
                         "listed-f@bad.example", "display-name")

    def test_g_unauthenticated_submissions_are_not_checked_by_default(self):
        # Scope is authenticated sessions: the unauthenticated listener (relaying for
        # loopback) and the sendmail (non_smtpd_milters) path pass a listed address.
        r = h.swaks(self.stack.smtp_port, "listed-g@bad.example", sender=user("g"),
                    helo=HELO, subject="case g smtp")
        self.assert_code(r, 0)
        self.assertEqual(self.delivered("case g smtp").rcpts, ["listed-g@bad.example"])
        code, out = self.postfix.sendmail(
            "From: %s\nTo: listed-g@bad.example\nSubject: case g sendmail\n\nhi\n" % user("g"),
            "listed-g@bad.example", sender=user("g"))
        self.assertEqual(code, 0, out)
        self.assertEqual(self.delivered("case g sendmail").rcpts, ["listed-g@bad.example"])
        time.sleep(0.3)
        self.assertEqual([e for e in su.stream_events(self.redis)
                          if e.get("recipient") == "listed-g@bad.example"], [])

    def test_i_mapctl_add_is_enforced_by_the_running_milter(self):
        address = "new-i@bad.example"
        r = self.send("i", address, quit_after="RCPT")
        self.assert_code(r, 0)  # not listed yet
        p = h.mapctl("add", address, redis=self.redis, prefix=PREFIX)
        self.assertEqual(p.returncode, 0, "mapctl add: %s%s" % (p.stdout, p.stderr))
        start = time.monotonic()
        try:
            h.wait_for(lambda: self.send("i", address, quit_after="RCPT").code == 24,
                       timeout=5, interval=0.1, what="the milter to refuse %s" % address)
        except TimeoutError as e:
            self.fail("%s%s" % (e, self.env.diag()))
        print("\n  mapctl add enforced after %.2fs" % (time.monotonic() - start),
              file=sys.stderr)
        self.assertEqual(len(self.wait_events(user("i"), 1)), 1)
        # The rspamd map files in --map-dir follow the change too.
        rcpt_map = os.path.join(self.milter.map_dir, "compd_rcpt.map")
        h.wait_for(lambda: address in read_text(rcpt_map), 5,
                   what="%s in %s" % (address, rcpt_map))

    def test_j_recipient_case_does_not_matter(self):
        r = self.send("j", "Listed-J@BAD.Example", subject="case j")
        self.assert_code(r, 24)
        self.assert_reply(r, "550 5.7.1")
        event = self.wait_events(user("j"), 1)[0]
        self.assertEqual(event["entry"], "listed-j@bad.example")
        self.assertEqual(event["where"], "envelope")

    def test_k_listed_entries_reach_the_rspamd_map_file(self):
        rcpt_map = os.path.join(self.milter.map_dir, "compd_rcpt.map")
        h.wait_for(lambda: all(a in read_text(rcpt_map) for a in self.LISTED), 5,
                   what="every listed address in %s" % rcpt_map)


class RedisOutageTest(MilterTestCase):
    """Redis goes away while mail flows: the last map snapshot keeps working, events wait in
    the spool and reach the stream once, in order, when Redis returns."""

    LISTED = ["listed-h1@bad.example", "listed-h2@bad.example", "listed-h3@bad.example",
              "listed-m@bad.example"]

    def tearDown(self):
        if not self.redis.running():
            self.redis.start()
        if not self.milter.running():
            self.milter.start()

    def test_h_outage_keeps_mail_flowing_and_loses_no_event(self):
        r = self.send("h", "listed-h1@bad.example", subject="h before")
        self.assert_code(r, 24)
        self.wait_events(user("h"), 1)

        self.redis.stop(save=True)  # a Redis restart that keeps its data
        r = self.send("h", "listed-h2@bad.example", subject="h during 1")
        self.assert_code(r, 24)
        r = self.send("h", "listed-h3@bad.example", subject="h during 2")
        self.assert_code(r, 24)
        r = self.send("h", "friend-h@fine.example", subject="h during ok")
        self.assert_code(r, 0)
        self.delivered("h during ok")
        # The operator's alert log does not depend on Redis.
        h.wait_for(lambda: len(self.alerts_for(user("h"))) == 3, 5,
                   what="3 alert log lines for %s" % user("h"))

        self.redis.start()
        events = self.wait_events(user("h"), 3, timeout=15)
        time.sleep(2)  # replays that would duplicate come within the writer's retry period
        events = self.events_for(user("h"))
        self.assertEqual([e["recipient"] for e in events],
                         ["listed-h1@bad.example", "listed-h2@bad.example",
                          "listed-h3@bad.example"], "each event once, in order")
        r = self.send("h", "listed-h1@bad.example", subject="h after")
        self.assert_code(r, 24)

    def test_m_spooled_events_survive_a_milter_restart(self):
        self.redis.stop(save=True)
        r = self.send("m", "listed-m@bad.example", subject="m during")
        self.assert_code(r, 24)
        h.wait_for(lambda: self.alerts_for(user("m")), 5, what="alert for %s" % user("m"))
        self.assertEqual(self.milter.stop(), 0, "compd-milter exit status after SIGTERM")
        self.redis.start()
        self.milter.start()
        self.wait_events(user("m"), 1, timeout=15)
        time.sleep(1)
        self.assertEqual(len(self.events_for(user("m"))), 1, self.events_for(user("m")))


if __name__ == "__main__":
    h.main()
