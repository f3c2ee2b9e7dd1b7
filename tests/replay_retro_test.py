#!/usr/bin/env python3
"""Retro-hunt in `mapctl replay`: a backtest over an MTA log shows whom it would have caught.

What is covered: `mapctl replay --no-map` over a hand-written Exim mainlog (no Redis). The
thread's two test messages make a discovery candidate; retro-hunt, with the nodes' code,
then flags every account that mailed the candidate within retro_window before, as a hit
reaction beside the others (text and --json) with a node's retro evidence (time, node,
client IP, queue id of each earlier message), and a table of those messages in the text
output; the summary counts them. The candidate's own senders keep their discovery hit.
Exim's mainlog names no node, so node is empty here. Mail older than
retro_window is not found; retro_max_accounts below the number of accounts flags nobody and
says so; retro_hunt = false turns it off.
Python 3 standard library only; no Redis (--no-map).
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402


def arrival(day, t, qid, account, helo, ip, size, subject, rcpt):
    return ('2026-04-%s %s %s <= %s H=(%s) [%s] P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 '
            'CV=no A=login:%s S=%d T="%s" from <%s> for %s\n2026-04-%s %s %s Completed\n' % (
                day, t, qid, account, helo, ip, account, size, subject, account, rcpt,
                day, t, qid))


PROBE = "toewebvastsatw@gmx.com"
LOG = "".join([
    # Nine days before: outside a week's retro_window.
    arrival("11", "08:00:00", "1nh000-0000AA-A0", "old@customer-zero.example", "pc-old",
            "203.0.113.9", 30000, "Quarterly report", PROBE),
    # Two days before: an ordinary-looking message, not a test (big, plain subject).
    arrival("18", "11:22:33", "1nh001-0000AA-A1", "olga@customer-five.example", "olgas-pc",
            "203.0.113.77", 24000, "Invoice 2026-117", PROBE),
    # The thread's sample: two unrelated customers' test messages 18 seconds apart.
    arrival("20", "12:53:40", "1nh9q0-00HECV-Al", "register@customer-one.example", "localhost",
            "149.255.169.82", 691, "wFd2, MkRWa2 A", PROBE),
    arrival("20", "12:53:58", "1nh9qH-0008OE-RW", "winfield@customer-two.example", "localhost",
            "79.10.109.221", 735, "ZYaeD, X ", PROBE),
])


class ReplayRetroTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = h.temp_dir("replay_retro")
        cls.log = os.path.join(cls.work, "mainlog")
        with open(cls.log, "w") as f:
            f.write(LOG)

    def replay(self, *args, conf=""):
        path = os.path.join(self.work, "compd.conf")
        with open(path, "w") as f:
            f.write(conf)
        p = h.mapctl("--config", path, "replay", "--no-map", *args, self.log)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p

    def test_text_shows_the_earlier_senders_with_evidence(self):
        out = self.replay().stdout
        self.assertIn("Discovery (propose): 1 candidates", out)
        # The two test senders have their hit from discovery; olga is what retro-hunt adds.
        self.assertIn("Retro-hunt: 3 earlier messages to candidates within retro_window, "
                      "1 more accounts flagged (had they been accepted)", out)
        self.assertRegex(out, r"olga@customer-five.example +flag +hit +mailed %s before it "
                         r"entered the map" % PROBE)
        row = [line for line in out.splitlines()
               if "olga@customer-five.example" in line and "1nh001" in line]
        self.assertEqual(len(row), 1, out)
        for field in ("2026-04-18T11:22:33", PROBE, "203.0.113.77", "1nh001-0000AA-A1",
                      "2026-04-20T12:53:58"):
            self.assertIn(field, row[0])
        self.assertNotIn("old@customer-zero.example", out)

    def test_json_has_the_events_a_node_would_record(self):
        p = self.replay("--json")
        summary = json.loads(p.stderr.strip().splitlines()[-1])["summary"]
        self.assertEqual((summary["candidates"], summary["retro_messages"],
                          summary["retro_flagged"], summary["retro_over_cap"]), (1, 3, 1, 0))
        # One reaction per line, the retro one among them.
        reactions = [json.loads(line) for line in p.stdout.splitlines()]
        retro = [r for r in reactions if "retro" in r["evidence"].get("hit", {})]
        self.assertEqual(len(retro), 1, p.stdout)
        olga = retro[0]
        self.assertEqual((olga["account"], olga["signals"], olga["queue_id"], olga["client_ip"],
                          olga["time"]),
                         ("olga@customer-five.example", ["hit"], "1nh001-0000AA-A1",
                          "203.0.113.77", "2026-04-20T12:53:58.000Z"))
        evidence = olga["evidence"]["hit"]["retro"]
        self.assertEqual(evidence["entry"], PROBE)
        msg = evidence["messages"][0]
        self.assertEqual((msg["time"], msg["queue_id"], msg["client_ip"], msg["node"]),
                         ("2026-04-18T11:22:33.000Z", "1nh001-0000AA-A1", "203.0.113.77", ""))

    def test_cap_and_switch(self):
        out = self.replay(conf="retro_max_accounts = 2\n").stdout
        self.assertIn("0 more accounts flagged", out)
        self.assertIn("matches the mail of 3 accounts in the last 7d, more than "
                      "retro_max_accounts (2): not a test address, nobody flagged", out)
        out = self.replay(conf="retro_hunt = no\n").stdout
        self.assertIn("Retro-hunt: off (retro_hunt = no)", out)


if __name__ == "__main__":
    unittest.main()
