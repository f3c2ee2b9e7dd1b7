#!/usr/bin/env python3
"""The detection engine live, on two nodes: real Postfix (milter) and real Exim (policy
listener) in front of two compd-milter nodes that share one redis-server.

Set-up: node1 and node2 run with reaction_test_message = flag and reaction_new_networks =
lock (the rest default). One Postfix has two submission services, one per node; one Exim
asks node1's policy listener (the docs/exim.md snippets). Clients come from several
loopback client networks (swaks --local-interface 127.N.0.1: with the default /16 groups
each 127.N is its own network group).

What a user and an operator see:
  - a test-like message (HELO localhost, a random-looking subject, a tiny body, one
    external recipient) flags its account with signal test_message and its evidence, in
    `mapctl accounts show`, the event stream and the alert log; the message itself goes out;
  - the same account then sending from new network groups, through either node, is locked
    on the message that completes new_networks_min (3) groups: the next message through
    EITHER node is refused, both within 2 s; a node restarted between the networks still
    counts the ones seen before (they come back from Redis);
  - the same pair through Exim;
  - carrier NAT: several accounts hopping between /24s of one operator's /16 stay quiet.

Run: COMPD_BUILD_DIR=build/dev python3 tests/detect_live_test.py
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import stack_util as su  # noqa: E402
import exim_harness as eh  # noqa: E402

PREFIX = "compd:"
LOCK_TEXT = su.DETECT_LOCK_TEXT
NAT_ACCOUNTS = ["nat%d" % i for i in range(4)]
NAMES = ["alice", "bob", "carol"] + NAT_ACCOUNTS
USERS = su.customer_users(NAMES)
NODE_ARGS = su.DETECT_NODE_ARGS
acct = su.customer


class DetectLiveTest(su.DetectWaits, h.ServersTestCase):
    PREFIX = PREFIX

    @classmethod
    def start_servers(cls):
        cls.redis = cls.started(h.RedisServer().start())
        cls.node1 = cls.started(h.Milter.standard(
            cls.redis, prefix=PREFIX, policy=True,
            extra=NODE_ARGS + ["--hostname", "node1"]).start())
        cls.policy_port = cls.node1.policy_port
        cls.node2 = cls.started(h.Milter.standard(cls.redis, prefix=PREFIX, extra=NODE_ARGS + [
            "--hostname", "node2"]).start())
        cls.stack = cls.started(h.MailStack(
            users=USERS, smtpd_milters=cls.node1.postfix_spec,
            extra_submissions=[{"smtpd_milters": cls.node2.postfix_spec}]).start())
        cls.ports = {"node1": cls.stack.submission_port,
                     "node2": cls.stack.postfix.extra_submission_ports[0]}
        cls.exim = cls.started(eh.Exim(cls.stack.sink.port, USERS,
                                       "inet:127.0.0.1:%d" % cls.policy_port).start())

    # -- helpers

    def diag(self):
        return "\n--- node1\n%s\n--- node2\n%s\n%s\n%s" % (
            h.tail(self.node1.log_path, 30), h.tail(self.node2.log_path, 30),
            self.stack.logs(), self.exim.logs())

    def send(self, name, via, net=0, to=su.DETECT_FRIEND, helo=su.DETECT_HELO, subject=None, **kw):
        """One message from 127.<net>.0.1 through node1's or node2's Postfix submission
        service, or Exim ("exim")."""
        port = self.exim.port if via == "exim" else self.ports[via]
        subject = subject or "%s via %s from net %d at %.3f" % (name, via, net, time.time())
        kw.setdefault("local_interface", "127.%d.0.1" % net)
        return h.swaks(port, to, sender=acct(name), user=acct(name), password="pw-" + name,
                       helo=helo, subject=subject, **kw)

    def send_ok(self, name, via, net=0, **kw):
        r = self.send(name, via, net, **kw)
        self.assertEqual(r.code, 0, "%s via %s from net %d: swaks exit %d\n%s%s" % (
            name, via, net, r.code, r.transcript, self.diag()))
        return r

    def send_test_message(self, name, via, net):
        return self.send(name, via, net, to=su.DETECT_TEST_RCPT, helo="localhost",
                         subject=su.DETECT_TEST_SUBJECT, body="x")

    def refused(self, name, via):
        """The account's next message through `via` is refused: at MAIL FROM by Postfix
        (swaks 23), at RCPT by Exim (24), with the lock text."""
        r = self.send(name, via, quit_after="RCPT")
        return r.code == (24 if via == "exim" else 23) and LOCK_TEXT in r.transcript

    def in_alert_log(self, node, event_id):
        return [e for e in node.alerts() if e.get("id") == event_id]

    def assert_test_message_flag(self, name, node, expect):
        """The flag is visible with its evidence: record, event stream, alert log."""
        rec = self.wait_state(name, "flagged")
        event = self.wait_signal(name, "test_message")
        self.assertEqual(event["action"], "flag", event)
        tm = su.signal_evidence(event, "test_message")
        self.assertEqual(tm["recipient"], su.DETECT_TEST_RCPT, tm)
        self.assertEqual(tm["helo"], "localhost", tm)
        self.assertEqual(tm["subject"].strip(), su.DETECT_TEST_SUBJECT.strip(), tm)
        self.assertIn("random_subject", tm)
        self.assertGreaterEqual(tm["points"], tm["needed"], tm)
        for k, v in expect.items():
            self.assertEqual(tm.get(k), v, tm)
        self.assertIn("test_message", rec["state_reason"], rec)
        h.wait_for(lambda: self.in_alert_log(node, event["id"]), 5,
                   what="the signal in %s's alert log" % node.args[node.args.index("--hostname")
                                                              + 1])
        return event, tm

    def assert_locked_everywhere(self, name, since, via=("node1", "node2")):
        """Locked for new_networks, and every front end refuses within 2 s of `since`."""
        rounds = []

        def all_refuse():
            rounds.append(time.monotonic())
            return all(self.refused(name, v) for v in via)
        try:
            h.wait_for(all_refuse, 5, what="%s refused through %s" % (acct(name), ", ".join(via)))
        except TimeoutError as e:
            self.fail("%s; record: %s%s" % (e, self.show(name), self.diag()))
        # Every front end refused by the end of the last round of probes; the probes
        # themselves (a swaks each) take their time, not compd.
        took = time.monotonic() - since
        probing = time.monotonic() - rounds[-1]
        rec = self.show(name)
        self.assertEqual(rec["state"], "locked", rec)
        self.assertIn("new_networks", rec["state_reason"], rec)
        event = self.wait_signal(name, "new_networks")
        self.assertEqual(event["action"], "lock", event)
        self.assertLessEqual(took, 2.0 + probing, "refused everywhere only after %.1f s (%.1f s "
                             "of it probing)" % (took, probing))
        return event, su.signal_evidence(event, "new_networks"), took

    # -- tests, in order

    def test_a_postfix_test_message_flags_then_new_networks_lock_every_node(self):
        # Its usual network, through both nodes (a load balancer spreads logins).
        self.send_ok("alice", "node1", 0)
        self.send_ok("alice", "node2", 0)
        self.wait_known("alice", 0)
        # The bot's test message from a network the account never used: HELO, subject and
        # the new network score (the milter does not see the size).
        r = self.send_test_message("alice", "node1", 1)
        self.assertEqual(r.code, 0, r.transcript + self.diag())  # a flag stops nobody
        self.stack.sink.wait_for_message(
            lambda m: (m.subject or "").strip() == su.DETECT_TEST_SUBJECT.strip())
        _, tm = self.assert_test_message_flag("alice", self.node1,
                                              {"new_network": "127.1.0.0/24"})
        # A second new network through node2.
        self.send_ok("alice", "node2", 2)
        self.wait_known("alice", 1, 2)
        # node2 restarts: what it learned is in Redis and comes back.
        self.assertEqual(self.node2.stop(), 0, "node2's exit status after SIGTERM")
        self.node2.start()  # listening means loaded: no message is judged before
        # The third new group, through the restarted node2: locked on this message.
        r = self.send("alice", "node2", 3)
        since = time.monotonic()
        self.assertEqual(r.code, 26, "the message completing 3 new networks is refused after "
                         "its data (451)\n" + r.transcript + self.diag())
        event, nn, took = self.assert_locked_everywhere("alice", since)
        self.assertEqual(nn["count"], 3, nn)
        self.assertEqual([n["group"] for n in nn["new"]],
                         ["127.1.0.0/16", "127.2.0.0/16", "127.3.0.0/16"], nn)
        self.assertEqual(nn["known_groups"], 1, nn)
        self.assertEqual(event["host"], "node2", event)
        # The operator's view: both reactions in the timeline, the evidence with the state.
        text = self.mapctl("accounts", "show", acct("alice"))
        self.assertRegex(text, r"signal +new_networks -> lock from 127\.3\.0\.1 via node2", text)
        self.assertRegex(text, r"signal +test_message -> flag from 127\.1\.0\.1 via node1", text)
        self.assertRegex(text, r"locked +by compd@node2: signal new_networks \(lock\): "
                         r"3 new networks \{\"new_networks\":\{\"count\":3", text)
        print("alice: locked on node2's message, both nodes refused %.2f s later" % took,
              file=sys.stderr)

    def test_b_exim_test_message_flags_then_new_networks_lock_every_node(self):
        self.send_ok("bob", "exim", 0)
        self.wait_known("bob", 0)
        # From its usual network: Exim gives the size, so HELO, subject and size score.
        r = self.send_test_message("bob", "exim", 0)
        self.assertEqual(r.code, 0, r.transcript + self.diag())
        event, tm = self.assert_test_message_flag("bob", self.node1, {})
        self.assertNotIn("new_network", tm)
        self.assertLessEqual(tm["size"], 2000, tm)
        self.assertEqual(event["source"], "detect", event)
        # Three new networks through Exim (node1's policy listener).
        self.send_ok("bob", "exim", 4)
        self.send_ok("bob", "exim", 5)
        r = self.send("bob", "exim", 6)
        since = time.monotonic()
        self.assertEqual(r.code, 26, r.transcript + self.diag())
        _, nn, took = self.assert_locked_everywhere("bob", since,
                                                    via=("exim", "node1", "node2"))
        self.assertEqual([n["group"] for n in nn["new"]],
                         ["127.4.0.0/16", "127.5.0.0/16", "127.6.0.0/16"], nn)
        print("bob: locked through Exim, every front end refused %.2f s later" % took,
              file=sys.stderr)

    def test_c_networks_split_over_the_nodes_lock_once_within_2s(self):
        # No node sees three new groups itself at first: node1 gets 7 and 9, node2 gets 8,
        # back to back. Whichever node completes the window (on the message, or when the
        # other's group arrives through Redis) locks; the event is written once.
        self.send_ok("carol", "node1", 0)
        self.send_ok("carol", "node2", 0)
        self.send_ok("carol", "node1", 7)
        self.send_ok("carol", "node2", 8)
        r = self.send("carol", "node1", 9)
        since = time.monotonic()
        self.assertIn(r.code, (0, 26), r.transcript + self.diag())
        event, nn, took = self.assert_locked_everywhere("carol", since)
        self.assertIn(event["host"], ("node1", "node2"), event)  # re-evaluated: its node
        self.assertEqual([n["group"] for n in nn["new"]],
                         ["127.7.0.0/16", "127.8.0.0/16", "127.9.0.0/16"], nn)
        time.sleep(1.0)  # a second node raising it would have written by now
        self.assertEqual(len([e for e in self.signals("carol") if e["rule"] == "new_networks"]),
                         1, self.signals("carol"))
        print("carol: %s on node1's message, both nodes refused %.2f s later" % (
            "locked" if r.code == 26 else "delivered, locked through Redis", took),
            file=sys.stderr)

    def test_d_carrier_nat_stays_quiet(self):
        # Several customers behind one mobile operator: each hops between /24s of the
        # operator's /16, through both nodes and Exim. One new group each: no signal.
        vias = ["node1", "node2", "exim"]
        for i, name in enumerate(NAT_ACCOUNTS):
            self.send_ok(name, vias[i % 3], 0)
        for i, name in enumerate(NAT_ACCOUNTS):
            self.wait_known(name, 0)
            for hop in range(3):
                via = vias[(i + hop) % 3]
                r = self.send(name, via, 0, local_interface="127.20.%d.%d" % (hop + 1, i + 1))
                self.assertEqual(r.code, 0, r.transcript + self.diag())
        time.sleep(1.5)  # two sync intervals: a late re-evaluation would have come by now
        for name in NAT_ACCOUNTS:
            self.assertEqual(self.signals(name), [], name)
            rec = json.loads(h.mapctl("accounts", "show", acct(name), "--json", redis=self.redis,
                                      prefix=PREFIX).stdout or "{}")
            self.assertNotIn(rec.get("state"), ("flagged", "locked"), rec)
            self.assertEqual(set(self.known_groups(name)), {"127.0.0.0/16", "127.20.0.0/16"})


if __name__ == "__main__":
    h.main()
