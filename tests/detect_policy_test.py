#!/usr/bin/env python3
"""The detection engine live through the paths detect_live_test.py leaves out: the
display-name spoof signal (Postfix + compd-milter, and Exim's DATA request of
docs/exim.md), and a Postfix that uses compd only as a policy service
(check_policy_service, no milter), as docs/postfix.md and docs/exim.md section 4 set it up.

Set-up, shared by every case: one redis-server; one compd-milter (reaction_test_message =
flag, reaction_new_networks = lock, display_spoof at its default, flag) with its policy
listener; one Postfix with two submission services: "milter" (smtpd_milters) and "policy"
(no milter; check_policy_service in smtpd_sender_restrictions, smtpd_recipient_restrictions
and smtpd_end_of_data_restrictions); one Exim asking the policy listener. Clients come from
several loopback networks (127.N.0.1; each 127.N is its own /16 group).

What a user and an operator see:
  - From: "service@paypal.com" <dave@customer.example> through the milter, and the same
    through Exim: the message goes out, the account is flagged display_spoof with the
    header, the shown address and the real one as evidence (record, event stream, alert
    log); a To display name holding another address does the same; a display name holding
    the sender's own address, or one of its own domain family, stays quiet;
  - policy-only Postfix: a test-like message (HELO localhost, tiny, a new network; Postfix
    sends no headers, so no subject) flags its account test_message; messages from three
    new networks lock it (the third answered 451 after its data), and the next message is
    refused at MAIL FROM with the lock text; every accepted message is counted
    (`mapctl top`).

Run: COMPD_BUILD_DIR=build/dev python3 tests/detect_policy_test.py
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import exim_harness as eh  # noqa: E402
import stack_util as su  # noqa: E402

PREFIX = "compd:"
LOCK_TEXT = su.DETECT_LOCK_TEXT
NAMES = ["dave", "erin", "frank", "gina", "hank", "ivan"]
USERS = su.customer_users(NAMES)
NODE_ARGS = su.DETECT_NODE_ARGS
acct = su.customer


class DetectPolicyTest(su.DetectWaits, h.ServersTestCase):
    PREFIX = PREFIX

    @classmethod
    def start_servers(cls):
        cls.redis = cls.started(h.RedisServer().start())
        # start() waits for the policy listener too.
        cls.node = cls.started(h.Milter.standard(
            cls.redis, prefix=PREFIX, policy=True,
            extra=NODE_ARGS + ["--hostname", "node1"]).start())
        cls.policy_port = cls.node.policy_port
        policy = "check_policy_service,inet:127.0.0.1:%d" % cls.policy_port
        # docs/postfix.md and docs/exim.md section 4, without a milter.
        policy_only = {
            "smtpd_milters": "",
            # Sender restrictions at MAIL FROM (protocol_state=MAIL), not again at RCPT.
            "smtpd_delay_reject": "no",
            "smtpd_sender_restrictions": policy + ",permit_sasl_authenticated,reject",
            "smtpd_recipient_restrictions": policy + ",permit_sasl_authenticated,reject",
            "smtpd_end_of_data_restrictions": policy,
        }
        cls.stack = cls.started(h.MailStack(
            users=USERS, smtpd_milters=cls.node.postfix_spec,
            extra_submissions=[policy_only],
            main={"smtpd_policy_service_default_action": "DUNNO",
                  "smtpd_policy_service_timeout": "10s"}).start())
        cls.ports = {"milter": cls.stack.submission_port,
                     "policy": cls.stack.postfix.extra_submission_ports[0]}
        cls.exim = cls.started(eh.Exim(cls.stack.sink.port, USERS,
                                       "inet:127.0.0.1:%d" % cls.policy_port).start())
        cls.ports["exim"] = cls.exim.port

    # -- helpers

    def diag(self):
        return "\n--- node1\n%s\n%s\n%s" % (h.tail(self.node.log_path, 30), self.stack.logs(),
                                          self.exim.logs())

    def send(self, name, via, net=0, to=su.DETECT_FRIEND, helo=su.DETECT_HELO, subject=None, **kw):
        subject = subject or "%s via %s from net %d at %.3f" % (name, via, net, time.time())
        kw.setdefault("local_interface", "127.%d.0.1" % net)
        return h.swaks(self.ports[via], to, sender=acct(name), user=acct(name),
                       password="pw-" + name, helo=helo, subject=subject, **kw)

    def send_ok(self, name, via, net=0, **kw):
        r = self.send(name, via, net, **kw)
        self.assertEqual(r.code, 0, "%s via %s from net %d: swaks exit %d\n%s%s" % (
            name, via, net, r.code, r.transcript, self.diag()))
        return r

    def assert_flagged(self, name, rule):
        """Flagged for `rule`, seen in the record, the stream and the alert log."""
        rec = self.wait_state(name, "flagged")
        event = self.wait_signal(name, rule)
        self.assertEqual(event["action"], "flag", event)
        self.assertIn(rule, rec["state_reason"], rec)
        h.wait_for(lambda: [e for e in self.node.alerts() if e.get("id") == event["id"]], 5,
                   what="the %s signal in the alert log" % rule)
        return event

    def assert_spoof(self, name, header, display, address):
        event = self.assert_flagged(name, "display_spoof")
        self.assertEqual(su.signal_evidence(event, "display_spoof"),
                         {"header": header, "display": display, "address": address}, event)
        return event

    def sent_counts(self):
        """`mapctl top`: accepted (messages, recipients) per account, all nodes, this hour
        and the last (a test running across the hour keeps its sums)."""
        out = json.loads(self.mapctl("top", "--json"))
        counts = {}
        for column in ("this_hour", "last_hour"):
            for r in out[column]["rows"]:
                m, n = counts.get(r["account"], (0, 0))
                counts[r["account"]] = (m + r["messages"], n + r["recipients"])
        return counts

    # -- display_spoof

    def test_a_from_display_spoof_through_postfix_milter(self):
        # The sender's own address, and its own domain family, in the display name: quiet.
        self.send_ok("erin", "milter", headers=[
            'From: "erin@customer.example" <erin@customer.example>'])
        self.send_ok("erin", "milter", headers=[
            'From: "support@mail.customer.example" <erin@customer.example>'])
        r = self.send_ok("dave", "milter", headers=[
            'From: "service@paypal.com" <dave@customer.example>'])
        self.stack.sink.wait_for_message(lambda m: b'"service@paypal.com" <dave@' in m.data)
        event = self.assert_spoof("dave", "from", "service@paypal.com", "dave@customer.example")
        self.assertEqual(event["host"], "node1", event)
        self.assertEqual(event["client_ip"], "127.0.0.1", event)
        text = self.mapctl("accounts", "show", acct("dave"))
        self.assertRegex(text, r"signal +display_spoof -> flag from 127\.0\.0\.1 via node1", text)
        self.assertEqual(self.signals("erin"), [], r.transcript)

    def test_b_to_display_spoof_through_postfix_milter(self):
        # A To display name showing one address while the mail goes to another.
        self.send_ok("frank", "milter", to="collector@evil.example",
                     headers=['To: "friend@fine.example" <collector@evil.example>'])
        self.assert_spoof("frank", "to", "friend@fine.example", "collector@evil.example")

    def test_c_from_display_spoof_through_exim(self):
        # docs/exim.md's DATA request sends the From header as compd_from.
        self.send_ok("gina", "exim", headers=[
            'From: "service@paypal.com" <gina@customer.example>'])
        event = self.assert_spoof("gina", "from", "service@paypal.com", "gina@customer.example")
        self.assertEqual(event["source"], "detect", event)
        # ...and the To header as compd_to.
        self.send_ok("hank", "exim", to="collector@evil.example",
                     headers=['To: "Friend <friend@fine.example>" <collector@evil.example>'])
        self.assert_spoof("hank", "to", "friend@fine.example", "collector@evil.example")

    # -- Postfix with check_policy_service only

    def test_d_policy_only_postfix_test_message_then_new_networks_lock(self):
        before = self.sent_counts().get(acct("ivan"), (0, 0))
        self.send_ok("ivan", "policy", 0)
        self.send_ok("ivan", "policy", 0, to=[su.DETECT_FRIEND, "other@fine.example"])
        self.wait_known("ivan", 0)
        # The bot's test message: HELO localhost, tiny, from a network never used. Postfix
        # gives no headers to a policy service, so 6 points without the subject.
        r = self.send("ivan", "policy", 1, to=su.DETECT_TEST_RCPT, helo="localhost",
                      subject="ZYaeD, X", body="x")
        self.assertEqual(r.code, 0, r.transcript + self.diag())  # a flag stops nobody
        event = self.assert_flagged("ivan", "test_message")
        tm = su.signal_evidence(event, "test_message")
        self.assertEqual(tm["recipient"], su.DETECT_TEST_RCPT, tm)
        self.assertEqual(tm["helo"], "localhost", tm)
        self.assertEqual(tm["new_network"], "127.1.0.0/24", tm)
        self.assertLessEqual(tm["size"], 2000, tm)
        self.assertGreaterEqual(tm["points"], tm["needed"], tm)
        self.assertEqual(event["client_ip"], "127.1.0.1", event)
        # Every accepted message counted: three messages, four recipients.
        def counted():
            m, n = self.sent_counts().get(acct("ivan"), (0, 0))
            return (m - before[0], n - before[1]) == (3, 4)
        try:
            h.wait_for(counted, 10, what="3 messages, 4 recipients of ivan in mapctl top")
        except TimeoutError as e:
            self.fail("%s: %s" % (e, self.mapctl("top", "--json")))
        # Two more new networks: the third new group locks, on its own message.
        self.send_ok("ivan", "policy", 2)
        r = self.send("ivan", "policy", 3)
        self.assertEqual(r.code, 26, "the message completing 3 new networks is refused after "
                         "its data (451)\n" + r.transcript + self.diag())
        rec = self.wait_state("ivan", "locked")
        self.assertIn("new_networks", rec["state_reason"], rec)
        event = self.wait_signal("ivan", "new_networks")
        self.assertEqual(event["action"], "lock", event)
        # The reply names the queue id, which the customer can quote and the operator finds.
        self.assertTrue(event.get("queue_id"), event)
        self.assertIn("Message deferred by policy (ref %s)" % event["queue_id"], r.transcript)
        nn = su.signal_evidence(event, "new_networks")
        self.assertEqual([n["group"] for n in nn["new"]],
                         ["127.1.0.0/16", "127.2.0.0/16", "127.3.0.0/16"], nn)
        # The next message: refused at MAIL FROM (smtpd_sender_restrictions), lock text.
        r = self.send("ivan", "policy", 0, quit_after="RCPT")
        self.assertEqual(r.code, 23, r.transcript + self.diag())
        self.assertIn(LOCK_TEXT, r.transcript)


if __name__ == "__main__":
    h.main()
