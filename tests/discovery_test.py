#!/usr/bin/env python3
"""Discovery of new test recipients, with a real redis-server and mapctl.

What is covered: `mapctl replay --propose` over an Exim mainlog (the same Discovery code
the milter runs) proposes the recipient that two unrelated customers' test messages went
to, with its evidence, and nothing for the near misses (two colleagues of one customer
mailing the same new supplier; one account mailing a new contact from a new network);
`mapctl candidates list|reject|accept`: reject is remembered (a second replay does not
propose it again), accept adds the entry with source=discovered and the evidence, and
flags both accounts once.
`mapctl hunt` finds the accounts that mailed an address or /regex/ in the logs.
Discovery live in compd-milter (two nodes behind Postfix) is discovery_live_test.py.
Not covered yet: retro-hunt on map changes (not built).
Python 3 standard library only.
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402


def arrival(t, qid, account, helo, ip, size, subject, rcpt, msgid=None):
    mid = " id=%s" % msgid if msgid else ""
    return ('2026-04-20 %s %s <= %s H=(%s) [%s] P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 '
            'CV=no A=login:%s S=%d%s T="%s" from <%s> for %s\n%s' % (
                t, qid, account, helo, ip, account, size, mid, subject, account, rcpt,
                "2026-04-20 %s %s Completed\n" % (t, qid)))


# The thread's two test messages 18 seconds apart, plus near misses and ordinary mail.
LOG = "".join([
    # Colleagues of one customer, each first mail to a new supplier, small and odd HELO.
    arrival("09:00:00", "1nh9a0-0000AA-AA", "anna@shop.example", "localhost", "198.51.100.7",
            700, "ZYaeD, X ", "sales@supplier.example"),
    arrival("09:05:00", "1nh9a1-0000AA-AB", "bert@shop.example", "localhost", "198.51.100.7",
            700, "wFd2, Mk", "sales@supplier.example"),
    # One account mailing a new contact from a new network.
    arrival("10:00:00", "1nh9a2-0000AA-AC", "carl@other.example", "Carls-MacBook.local",
            "203.0.113.50", 24000, "Lunch on Friday?", "friend@gmx.com", "x1@other.example"),
    # The thread's sample.
    arrival("12:53:40", "1nh9q0-00HECV-Al", "register@customer-one.example", "localhost",
            "149.255.169.82", 691, "wFd2, MkRWa2 A", "toewebvastsatw@gmx.com"),
    arrival("12:53:58", "1nh9qH-0008OE-RW", "winfield@customer-two.example", "localhost",
            "79.10.109.221", 735, "ZYaeD, X ", "toewebvastsatw@gmx.com"),
    # A second pair, to be rejected.
    arrival("13:10:00", "1nh9r0-0000BB-BA", "dora@customer-three.example", "localhost",
            "192.0.2.10", 650, "Q7x, pR", "probe@outlook.com"),
    arrival("13:20:00", "1nh9r1-0000BB-BB", "emil@customer-four.example", "[192.0.2.11]",
            "192.0.2.11", 640, "vT3, aa", "probe@outlook.com"),
])


class DiscoveryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = h.RedisServer().start()
        cls.work = h.temp_dir("discovery")
        cls.log = os.path.join(cls.work, "mainlog")
        with open(cls.log, "w") as f:
            f.write(LOG)

    @classmethod
    def tearDownClass(cls):
        cls.redis.close()

    def mapctl(self, *args):
        return h.mapctl(*args, redis=self.redis)

    def replay(self):
        p = self.mapctl("replay", "--propose", "--json", self.log)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stderr.strip().splitlines()[-1])["summary"], p.stdout

    def test_propose_review_accept_reject(self):
        summary, out = self.replay()
        self.assertEqual(summary["candidates"], 2, summary)
        self.assertEqual(summary["proposed"], 2, summary)
        p = self.mapctl("--json", "candidates", "list")
        self.assertEqual(p.returncode, 0, p.stderr)
        cands = {c["recipient"]: c for c in json.loads(p.stdout)}
        # Near misses stay quiet.
        self.assertEqual(sorted(cands), ["probe@outlook.com", "toewebvastsatw@gmx.com"])
        ev = cands["toewebvastsatw@gmx.com"]
        self.assertEqual(ev["domains"], 2)
        s = {x["account"]: x for x in ev["sightings"]}
        self.assertEqual(s["winfield@customer-two.example"]["client_ip"], "79.10.109.221")
        self.assertEqual(s["winfield@customer-two.example"]["helo"], "localhost")
        self.assertEqual(s["register@customer-one.example"]["size"], 691)
        self.assertEqual(s["register@customer-one.example"]["queue_id"], "1nh9q0-00HECV-Al")
        self.assertEqual(s["register@customer-one.example"]["subject"], "wFd2, MkRWa2 A")
        # The accounts behind the candidates get their hit (flag) in replay's output too.
        hits = [json.loads(line) for line in out.splitlines()]
        discovered = {r["account"] for r in hits if "hit" in r["signals"]}
        self.assertIn("winfield@customer-two.example", discovered)
        self.assertNotIn("anna@shop.example", discovered)
        p = self.mapctl("candidates", "list")
        self.assertIn("toewebvastsatw@gmx.com", p.stdout)
        self.assertIn("2 candidates waiting", p.stdout)

        # Reject: gone, and a second replay does not propose it again.
        p = self.mapctl("candidates", "reject", "Probe@Outlook.com")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("never propose it again", p.stdout)
        summary, _ = self.replay()
        self.assertEqual(summary["proposed"], 0, summary)
        p = self.mapctl("--json", "candidates", "list")
        self.assertEqual([c["recipient"] for c in json.loads(p.stdout)],
                         ["toewebvastsatw@gmx.com"])

        # Accept: in the map with source=discovered and the evidence; both accounts flagged.
        p = self.mapctl("candidates", "accept", "toewebvastsatw@gmx.com")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("2 account hits recorded", p.stdout)
        p = self.mapctl("test", "toewebvastsatw@gmx.com")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        meta = json.loads(self.redis.call("HGET", "compd:map:exact", "toewebvastsatw@gmx.com"))
        self.assertEqual(meta["source"], "discovered")
        self.assertIn("winfield@customer-two.example", meta["note"])
        for account in ("winfield@customer-two.example", "register@customer-one.example"):
            p = self.mapctl("--json", "accounts", "show", account)
            self.assertEqual(p.returncode, 0, p.stderr)
            rec = json.loads(p.stdout)
            self.assertEqual(rec.get("state"), "flagged", rec)
        self.assertEqual(self.mapctl("--json", "candidates", "list").stdout.strip(), "[]")
        # A second accept finds nothing waiting; no hit is recorded twice.
        p = self.mapctl("candidates", "accept", "toewebvastsatw@gmx.com")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(self.mapctl("accounts", "show", "anna@shop.example").returncode, 1)

    def test_hunt_from_logs(self):
        p = self.mapctl("hunt", "ToeWebVastSatw@gmx.com", self.log)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("2 messages from 2 accounts", p.stdout)
        p = self.mapctl("--json", "hunt", "/^sales@supplier\\./", self.log)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = json.loads(p.stdout)
        self.assertEqual(sorted(got["accounts"]), ["anna@shop.example", "bert@shop.example"])
        first = got["found"][0]
        self.assertEqual((first["client_ip"], first["queue_id"]),
                         ("198.51.100.7", "1nh9a0-0000AA-AA"))
        p = self.mapctl("hunt", "nobody@gmx.com", self.log)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("no account mailed nobody@gmx.com", p.stdout)


if __name__ == "__main__":
    unittest.main()
