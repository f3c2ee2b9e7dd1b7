#!/usr/bin/env python3
"""Retro-hunt end to end: real Postfix + Dovecot SASL + swaks, a real redis-server and two
compd-milter nodes (node-a and node-b, both in Postfix's milter chain, so both remember
every message: the case where two nodes could record a find twice).

What a user and an operator see:
  - an account mails Y (delivered: Y is not listed); `mapctl add Y` flags the account
    within 2 s, visible in `mapctl accounts show` with the evidence (time, node, client IP,
    queue id), and once although both nodes found it;
  - adding a /regex/ hunts too, and flags only the accounts whose mail it matches; so does
    an import;
  - `mapctl hunt ADDRESS` without log files asks the live nodes and says which answered;
    an address nobody mailed exits 1;
  - a node restarted keeps what it remembered (its files under spool_dir/retro).

Run: COMPD_BUILD_DIR=build/dev python3 tests/retro_test.py
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import stack_util as su  # noqa: E402

PREFIX = "compd:"
MILTER_MACROS = {
    "mail": "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
}
NAMES = ["alice", "bob", "carol"]
USERS = su.customer_users(NAMES)
TEST_ADDRESS = "wFd2.probe@gmx.example"
acct = su.customer


class RetroTest(h.ServersTestCase):
    @classmethod
    def start_servers(cls):
        cls.redis = cls.started(h.RedisServer().start())
        # A map from Redis from the start, as in production.
        su.mapctl_add(cls.redis, "listed@bad.example", prefix=PREFIX)
        cls.nodes = [cls.started(h.Milter.standard(
            cls.redis, action="reject", prefix=PREFIX,
            extra=["--hostname", name, "--log-level", "debug"]).start())
            for name in ("node-a", "node-b")]
        cls.stack = cls.started(h.MailStack(
            users=USERS, milter_macros=MILTER_MACROS,
            smtpd_milters=", ".join(m.postfix_spec for m in cls.nodes)).start())

    # -- helpers

    def diag(self):
        return "".join("\n--- %s log\n%s" % (n.args[n.args.index("--hostname") + 1],
                                             h.tail(n.log_path, 30)) for n in self.nodes)

    def mapctl(self, *args, code=0):
        p = h.mapctl(*args, redis=self.redis, prefix=PREFIX)
        if code is not None:
            self.assertEqual(p.returncode, code, "mapctl %s: %s%s%s" % (
                " ".join(args), p.stdout, p.stderr, self.diag()))
        return p

    def send(self, name, to, subject):
        r = h.swaks(self.stack.submission_port, to, sender=acct(name), user=acct(name),
                    password="pw-%s" % name, helo="client.example.test", subject=subject)
        self.assertEqual(r.code, 0, "swaks: %s%s" % (r.transcript, self.diag()))
        self.stack.sink.wait_for_message(lambda m: m.subject == subject, 10, what=subject)

    def show(self, name):
        p = self.mapctl("--json", "accounts", "show", acct(name), code=None)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def wait_flagged(self, name, timeout):
        try:
            return h.wait_for(lambda: (self.show(name) or {}).get("state") == "flagged" and
                              self.show(name), timeout, interval=0.1,
                              what="%s flagged" % acct(name))
        except TimeoutError as e:
            self.fail("%s%s" % (e, self.diag()))

    def wait_hunted(self, version):
        """Both nodes have hunted map version `version` (their logs say so)."""
        needle = "retro: map version %d:" % version
        h.wait_for(lambda: all(needle in n.log() for n in self.nodes), 5,
                   what="both nodes hunting map version %d" % version)

    def map_version(self):
        return int(self.redis.call("GET", PREFIX + "map:version"))

    # -- tests, in order

    def test_a_add_flags_who_mailed_it_once_with_evidence(self):
        self.send("alice", TEST_ADDRESS, "ZYaeD, X")
        self.send("carol", "friend@fine.example", "lunch")
        self.assertIsNone(self.show("alice"))
        t0 = time.monotonic()
        self.mapctl("add", TEST_ADDRESS)
        rec = self.wait_flagged("alice", 2.0)
        took = time.monotonic() - t0
        self.assertLess(took, 2.0)
        self.wait_hunted(self.map_version())
        rec = self.show("alice")
        self.assertEqual(rec["hits"], 1, rec)  # two nodes found it; recorded once
        events = [e for e in rec["events"] if e.get("source") == "retro"]
        self.assertEqual(len(events), 1, rec["events"])
        e = events[0]
        self.assertEqual(e["entry"], TEST_ADDRESS.lower())
        self.assertEqual(e["recipient"], TEST_ADDRESS)
        self.assertEqual(e["client_ip"], "127.0.0.1")
        self.assertIn(e["host"], ("node-a", "node-b"))
        self.assertTrue(e["queue_id"], e)
        msgs = json.loads(e["evidence"])["retro"]["messages"]
        self.assertEqual(len(msgs), 1, msgs)
        self.assertEqual((msgs[0]["node"], msgs[0]["client_ip"], msgs[0]["queue_id"]),
                         (e["host"], "127.0.0.1", e["queue_id"]))
        self.assertTrue(msgs[0]["time"].endswith("Z"), msgs)
        # What an operator reads.
        text = self.mapctl("accounts", "show", acct("alice")).stdout
        self.assertIn("flagged", text)
        self.assertIn("(retro)", text)
        self.assertIn("queue id " + e["queue_id"], text)
        # carol mailed something else: untouched.
        self.assertIsNone(self.show("carol"))

    def test_b_a_pattern_hunts_too(self):
        self.send("bob", "promo-48213@spam.example", "wFd2, MkRWa2 A")
        self.mapctl("add", "/^promo-[0-9]+@spam\\.example$/")
        rec = self.wait_flagged("bob", 2.0)
        self.wait_hunted(self.map_version())
        rec = self.show("bob")
        self.assertEqual(rec["hits"], 1, rec)
        e = [e for e in rec["events"] if e.get("source") == "retro"][0]
        self.assertEqual((e["entry"], e["entry_kind"], e["recipient"]),
                         ("/^promo-[0-9]+@spam\\.example$/", "pattern",
                          "promo-48213@spam.example"))
        self.assertIsNone(self.show("carol"))
        self.assertEqual(self.show("alice")["hits"], 1)

    def test_c_hunt_asks_the_live_nodes(self):
        p = self.mapctl("--json", "hunt", TEST_ADDRESS, "--since", "1d")
        got = json.loads(p.stdout)
        self.assertEqual((got["listening"], got["answered"]), (2, 2), got)
        self.assertEqual(sorted(n["node"] for n in got["nodes"]), ["node-a", "node-b"])
        self.assertEqual(list(got["accounts"]), [acct("alice")])
        self.assertEqual(sorted(r["node"] for r in got["found"]), ["node-a", "node-b"])
        self.assertTrue(all(r["queue_id"] and r["client_ip"] == "127.0.0.1"
                            for r in got["found"]), got)
        p = self.mapctl("hunt", "/^promo-/")
        self.assertIn("2 messages from 1 account to /^promo-/", p.stdout)
        self.assertIn("answered: 2 of 2 node(s)", p.stdout)
        p = self.mapctl("hunt", "nobody@gmx.example", code=1)
        self.assertIn("no account mailed nobody@gmx.example", p.stdout)

    def test_d_a_restarted_node_remembers(self):
        node = self.nodes[0]
        node.stop()
        node.start()
        # The node subscribes for requests a moment after its milter socket accepts.
        got = h.wait_for(lambda: (lambda g: g["answered"] == 2 and g)(
            json.loads(self.mapctl("--json", "hunt", "/^promo-/").stdout)), 5,
            what="both nodes answering")
        self.assertIn("node-a", [r["node"] for r in got["found"]], got)
        self.assertIn("reloaded 3 messages", node.log())

    def test_e_an_import_hunts_too(self):
        self.send("carol", "import.probe@mail.example", "vT3, aa")
        path = os.path.join(self.stack.dir, "compd_rcpt.map")
        with open(path, "w") as f:
            f.write("import.probe@mail.example\nother.probe@mail.example\n")
        self.mapctl("import", path, "--apply")
        rec = self.wait_flagged("carol", 2.0)
        e = [e for e in rec["events"] if e.get("source") == "retro"][0]
        self.assertEqual(e["entry"], "import.probe@mail.example")


if __name__ == "__main__":
    h.main()
