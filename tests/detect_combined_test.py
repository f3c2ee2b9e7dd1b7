#!/usr/bin/env python3
"""The combined signal live (docs/detection.md, "combined"): real Postfix + swaks in front
of compd-milter and a real redis-server, and what an operator sees of it everywhere.

Set-up, shared by every case: one redis-server; one compd-milter (DETECT_NODE_ARGS, with
combined_flag_score 6, combined_lock_score 10, reaction_display_spoof monitor, its
dashboard listener with a token); one Postfix submission service through it. Clients come
from loopback networks (127.N.0.1; each 127.N is its own /16 group).

The weights are the defaults: one new network group is 2 (a third of weight_new_networks
6, new_networks_min being 3), a test-like message of 5 points (small 2, a random subject 3,
a host name as HELO) under test_message_score 6 is 5, a display-name spoof is
weight_display_spoof 6. A message to one external recipient from a new network would be
test-like itself (small 2, new network 2: 4, combined_test_points), so the new network's
message goes to two recipients.

What a user and an operator see:
  - each of them alone reacts with nothing stronger than monitor: a test-like message
    alone raises nothing, a spoof alone a display_spoof event with action monitor, and
    neither account is flagged;
  - a new network, then a test-like message: 7 >= 6, the account is flagged by
    `combined` (the message still goes out), and its score and contributions are in
    `mapctl accounts show` (the reason and the timeline), the event stream, the alert log
    and the dashboard (/api/accounts: the account and its reason, though it has no hit;
    /api/signals);
  - then a spoof: 13 >= 10, locked on that message (451 after its data, swaks 26) and the
    next message is refused at MAIL FROM (swaks 23) with the lock text.

Run: COMPD_BUILD_DIR=build/dev python3 tests/detect_combined_test.py
"""

import http.client
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import stack_util as su  # noqa: E402

PREFIX = "compd:"
SPOOF = 'From: "service@paypal.com" <%s>'
TOKEN = "combined-test-token-0123456789abcdef"
NAMES = ["kim", "lee", "mia"]
USERS = su.customer_users(NAMES)
NODE_ARGS = su.DETECT_NODE_ARGS + [
    "--combined-flag-score", "6",
    "--combined-lock-score", "10",
    "--reaction-display-spoof", "monitor",
]
FLAG_SUMMARY = "combined 7 >= 6: test_message 5, new_networks 2"
LOCK_SUMMARY = "combined 13 >= 10: test_message 5, new_networks 2, display_spoof 6"
acct = su.customer


class DetectCombinedTest(su.DetectWaits, h.ServersTestCase):
    PREFIX = PREFIX

    @classmethod
    def start_servers(cls):
        cls.dir = h.temp_dir("combined")
        token_file = os.path.join(cls.dir, "dashboard.token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(token_file, 0o600)
        cls.http_port = h.free_port()
        cls.redis = cls.started(h.RedisServer().start())
        cls.node = cls.started(h.Milter.standard(
            cls.redis, prefix=PREFIX,
            extra=NODE_ARGS + ["--hostname", "node1",
                               "--http-listen", "127.0.0.1:%d" % cls.http_port,
                               "--http-token-file", token_file]).start())
        cls.stack = cls.started(h.MailStack(users=USERS,
                                            smtpd_milters=cls.node.postfix_spec).start())
        h.wait_for(lambda: h.port_open(cls.http_port), 10, what="dashboard listener")

    # -- helpers

    def diag(self):
        return "\n--- node1\n%s\n%s" % (h.tail(self.node.log_path, 30), self.stack.logs())

    def send(self, name, net=0, to=su.DETECT_FRIEND, helo=su.DETECT_HELO, subject=None, **kw):
        subject = subject or "%s from net %d" % (name, net)
        kw.setdefault("local_interface", "127.%d.0.1" % net)
        return h.swaks(self.stack.submission_port, to, sender=acct(name), user=acct(name),
                       password="pw-" + name, helo=helo, subject=subject, **kw)

    def send_ok(self, name, net=0, **kw):
        r = self.send(name, net, **kw)
        self.assertEqual(r.code, 0, "%s from net %d: swaks exit %d\n%s%s" % (
            name, net, r.code, r.transcript, self.diag()))
        return r

    def send_test_like(self, name, net=0):
        """Small, a random-looking subject: 5 points, under test_message_score."""
        return self.send(name, net, to=su.DETECT_TEST_RCPT, subject=su.DETECT_TEST_SUBJECT,
                         body="x")

    def api(self, part):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        try:
            c.request("GET", "/api/" + part, headers={"Authorization": "Bearer " + TOKEN})
            r = c.getresponse()
            body = r.read().decode("utf-8", "replace")
        finally:
            c.close()
        self.assertEqual(r.status, 200, body)
        return json.loads(body)[part]

    def combined_events(self, name, action):
        return [e for e in self.signals(name) if e["rule"] == "combined" and
                e["action"] == action]

    def wait_combined(self, name, action):
        try:
            return h.wait_for(lambda: self.combined_events(name, action), 5,
                              what="a combined %s for %s" % (action, acct(name)))[0]
        except TimeoutError as e:
            self.fail("%s; signals: %s%s" % (e, self.signals(name), self.diag()))

    def assert_everywhere(self, name, event, summary, state):
        """The combined event, with its score and contributions, in every operator view."""
        # The alert log: the same event, naming the signal, with the summary.
        try:
            alert = h.wait_for(lambda: [e for e in self.node.alerts()
                                        if e.get("id") == event["id"]], 5,
                               what="the combined event in the alert log")[0]
        except TimeoutError as e:
            self.fail("%s%s" % (e, self.diag()))
        self.assertEqual((alert["rule"], alert["action"], alert["detail"]),
                         ("combined", event["action"], summary), alert)
        # compd-milter's own log names the account, the signal and the reaction.
        what = "LOCKED" if state == "locked" else "flagged"
        h.wait_for(lambda: any(
            "account %s %s" % (acct(name), what) in line
            and "signal combined (%s) from " % event["action"] in line
            and ": " + summary in line
            for line in h.tail(self.node.log_path, 200).splitlines()),
            5, what="the %s line in compd-milter's log" % what)
        # mapctl accounts show: the reason and the timeline line, both with the summary.
        rec = self.wait_state(name, state)
        self.assertTrue(rec["state_reason"].startswith(
            "signal combined (%s): %s {" % (event["action"], summary)), rec)
        text = self.mapctl("accounts", "show", acct(name))
        self.assertIn("compd@node1: signal combined (%s): %s" % (event["action"], summary), text)
        self.assertRegex(text, r"signal +combined -> %s from 127\.0\.0\.1 via node1.*: %s" % (
            event["action"], summary.replace("+", r"\+")), text)
        # The dashboard (past its one-second cache): the account with its reason, and the
        # signal with its detail.
        def dashboard():
            accounts = [a for a in self.api("accounts") if a["account"] == acct(name)]
            signals = [s for s in self.api("signals") if s.get("id") == event["id"]]
            return accounts and accounts[0].get("state") == state and signals and \
                (accounts[0], signals[0])
        try:
            account, signal = h.wait_for(dashboard, 5, what="the %s account on the dashboard"
                                         % state)
        except TimeoutError as e:
            self.fail("%s; accounts: %s; signals: %s" % (e, self.api("accounts"),
                                                          self.api("signals")))
        self.assertIn("signal combined (%s): %s" % (event["action"], summary),
                      json.dumps(account), account)
        self.assertEqual((signal["rule"], signal["detail"]), ("combined", summary), signal)

    # -- tests, in order

    def test_a_each_weak_signal_alone_is_monitor_only(self):
        self.send_ok("lee", 0)
        self.send_ok("mia", 0)
        self.wait_known("lee", 0)
        self.wait_known("mia", 0)
        r = self.send_test_like("lee", 0)
        self.assertEqual(r.code, 0, r.transcript + self.diag())
        self.send_ok("mia", 0, headers=[SPOOF % acct("mia")])
        # Both messages went out, so their milter verdicts (and any event) are written.
        self.stack.sink.wait_for_message(lambda m: (m.subject or "").strip() ==
                                         su.DETECT_TEST_SUBJECT.strip())
        self.stack.sink.wait_for_message(lambda m: b'"service@paypal.com" <mia@' in m.data)
        # The partial test message is no signal; the spoof is one, monitored only.
        self.assertEqual(self.signals("lee"), [])
        self.assertEqual([(e["rule"], e["action"]) for e in self.signals("mia")],
                         [("display_spoof", "monitor")])
        self.assertNotIn(self.show("lee").get("state"), ("flagged", "locked"))
        self.assertNotIn(self.show("mia").get("state"), ("flagged", "locked"))

    def test_b_new_network_plus_test_like_flags_then_spoof_locks(self):
        self.send_ok("kim", 0)
        self.wait_known("kim", 0)
        # One new network group: 2 points, nothing alone.
        self.send_ok("kim", 1, to=[su.DETECT_FRIEND, "other@fine.example"])
        self.wait_known("kim", 0, 1)
        self.assertEqual(self.signals("kim"), [])
        # The test-like message from its usual network: 5 more, 7 >= 6, flagged; a flag
        # stops nobody.
        r = self.send_test_like("kim", 0)
        self.assertEqual(r.code, 0, r.transcript + self.diag())
        event = self.wait_combined("kim", "flag")
        combined = su.signal_evidence(event, "combined")
        self.assertEqual((combined["score"], combined["threshold"], combined["flag_score"],
                          combined["lock_score"]), (7, 6, 6, 10), combined)
        parts = {c["signal"]: c for c in combined["contributions"]}
        self.assertEqual(sorted(parts), ["new_networks", "test_message"], combined)
        self.assertEqual(parts["test_message"]["score"], 5, combined)
        self.assertEqual(parts["test_message"]["evidence"]["recipient"], su.DETECT_TEST_RCPT,
                         combined)
        self.assertEqual(parts["test_message"]["evidence"]["points"], 5, combined)
        self.assertEqual(parts["new_networks"]["score"], 2, combined)
        self.assertEqual(parts["new_networks"]["evidence"]["group"], "127.1.0.0/16", combined)
        self.assertEqual(parts["new_networks"]["evidence"]["client_ip"], "127.1.0.1", combined)
        self.assertEqual(event["detail"], FLAG_SUMMARY, event)
        self.assertEqual(event["host"], "node1", event)
        self.assert_everywhere("kim", event, FLAG_SUMMARY, "flagged")

        # A display-name spoof (monitor alone): 13 >= 10, locked on this very message.
        r = self.send("kim", 0, headers=[SPOOF % acct("kim")])
        self.assertEqual(r.code, 26, "the message reaching combined_lock_score is refused "
                         "after its data (451)\n" + r.transcript + self.diag())
        event = self.wait_combined("kim", "lock")
        combined = su.signal_evidence(event, "combined")
        self.assertEqual((combined["score"], combined["threshold"]), (13, 10), combined)
        spoof = [c for c in combined["contributions"] if c["signal"] == "display_spoof"]
        self.assertEqual(spoof[0]["evidence"]["display"], "service@paypal.com", combined)
        self.assert_everywhere("kim", event, LOCK_SUMMARY, "locked")
        # The next message: refused at MAIL FROM with the lock text.
        r = self.send("kim", 0, quit_after="RCPT")
        self.assertEqual(r.code, 23, r.transcript + self.diag())
        self.assertIn(su.DETECT_LOCK_TEXT, r.transcript)


if __name__ == "__main__":
    h.main()
