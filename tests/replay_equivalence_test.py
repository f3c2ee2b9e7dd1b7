#!/usr/bin/env python3
"""Live and replay agree: the same messages go through a real Postfix with compd-milter
(authenticated submissions with swaks, from several loopback source addresses), then
`mapctl replay --json` reads Postfix's own maillog of them. Every reaction the milter took
(signal events in the Redis stream and the alert log, hit events and the accounts' state
in `mapctl accounts show`) must be one replay prints, for the same account and message,
with the same reaction, signals and evidence; and replay prints nothing more.

The messages raise several signals: a map hit; a test-like message (HELO localhost, a
random-looking subject, one external recipient, from a network group the account never
used); new networks (127.1, 127.2 and 127.3 are three /16 groups). Postfix logs HELO and
subject only with a header_checks WARN rule for Subject (docs/postfix.md), which this
Postfix has, as replay needs.

What differs by nature and is not compared: times (live: the end of the message, to the
millisecond; replayed: the log line's second), the size (replay reads it from the log, the
milter may not know it or count it otherwise; both sides run with a tiny
test_message_max_size, so it gives no points either way), the node name (the milter's host
name, the log's syslog host), and live writes one hit event per place a listed address
appears (envelope, To:) where replay has one hit per recipient.

Run: python3 tests/replay_equivalence_test.py (needs build/compd-milter and build/mapctl,
or COMPD_BUILD_DIR).
"""

import datetime
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402

PREFIX = "compd:"
MILTER_MACROS = {
    "mail": "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
}
ALICE, BOB, CAROL = ("%s@customer.example" % n for n in ("alice", "bob", "carol"))
USERS = {ALICE: "pw-alice", BOB: "pw-bob", CAROL: "pw-carol"}
LISTED = "probe-drop@bad.example"
# Evidence keys that differ by nature between a live message and its log lines.
TIMING_KEYS = {"first_seen"}  # first use of a network: end of message live, log line replayed
# The same settings live and replayed. A tiny test_message_max_size: no message is small
# however its size is counted, so the size gives no points on either side.
SETTINGS = ["--test-message-max-size", "100"]


def without_time(reactions):
    return [{k: v for k, v in r.items() if k != "time"} for r in reactions]


def strip_timing(value):
    if isinstance(value, dict):
        return {k: strip_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [strip_timing(v) for v in value]
    return value


class ReplayEquivalenceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = cls.milter = cls.stack = None
        try:
            cls.work = h.temp_dir("equiv")
            checks = os.path.join(cls.work, "header_checks")
            with open(checks, "w") as f:
                f.write("/^Subject:/ WARN\n")
            cls.redis = h.RedisServer().start()
            r = h.mapctl("add", LISTED, redis=cls.redis, prefix=PREFIX)
            assert r.returncode == 0, r.stderr
            # monitor: the hit's message is delivered and logged, as replay needs it.
            cls.milter = h.Milter.standard(cls.redis, action="monitor", prefix=PREFIX,
                                            extra=SETTINGS)
            cls.milter.start()
            cls.stack = h.MailStack(users=USERS, smtpd_milters=cls.milter.postfix_spec,
                                    milter_macros=MILTER_MACROS,
                                    main={"header_checks": "regexp:" + checks}).start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for part in (cls.stack, cls.milter, cls.redis):
            if part is not None:
                try:
                    part.close()
                except Exception as e:
                    print("closing %s: %s" % (type(part).__name__, e), file=sys.stderr)

    def diag(self):
        return "\n--- compd-milter log\n%s\n%s" % (h.tail(self.milter.log_path, 40),
                                                   self.stack.logs())

    def sent(self, account, to, source, helo, subject):
        """Submits as `account` from the loopback address `source`; the queue id."""
        result = h.swaks(self.stack.submission_port, to, sender=account, user=account,
                         password=USERS[account], helo=helo, subject=subject,
                         extra=["--local-interface", source])
        self.assertEqual(result.code, 0, "swaks: %s%s" % (result.transcript, self.diag()))
        m = re.search(r"queued as ([0-9A-Za-z]+)", result.transcript)
        self.assertTrue(m, result.transcript)
        return m.group(1)

    def live_events(self):
        return [json.loads(f["event"]) for _, f in self.redis.stream(PREFIX + "events")]

    def test_replay_of_the_maillog_reacts_as_the_milter_did(self):
        ext = "friend@elsewhere.example"
        queue = {}
        # alice: an ordinary message from her usual network, then a test message from a new
        # one, then two more new networks within the hour (ordinary mail to two people).
        queue["a1"] = self.sent(ALICE, [ext, "other@elsewhere.example"], "127.0.0.1",
                                "pc-alice.example", "Lunch on Friday")
        queue["a2"] = self.sent(ALICE, "ab12cd@freemail.example", "127.1.0.1",
                                "localhost", "ZYaeD, X")
        queue["a3"] = self.sent(ALICE, [ext, "third@elsewhere.example"], "127.2.0.1",
                                "pc-alice.example", "Minutes of the meeting")
        queue["a4"] = self.sent(ALICE, [ext, "fourth@elsewhere.example"], "127.3.0.1",
                                "pc-alice.example", "Agenda for tomorrow")
        # bob: mail to a listed address (a hit; action monitor lets it through).
        queue["b1"] = self.sent(BOB, [LISTED], "127.0.0.1", "pc-bob.example",
                                "Invoice attached")
        # carol: nothing suspicious.
        queue["c1"] = self.sent(CAROL, [ext], "127.0.0.1", "pc-carol.example",
                                "Holiday photos")
        pf = self.stack.postfix
        h.wait_for(lambda: all(re.search(r"%s: removed$" % q, pf.log(), re.M)
                               for q in queue.values()), 20,
                   what="every message delivered and removed from the queue")
        # Live reactions: the signal events and the hit, in the stream and the alert log.
        expected_types = {"signal": 2, "hit": 1}
        h.wait_for(lambda: all(sum(1 for e in self.live_events() if e.get("type") == t) >= n
                               for t, n in expected_types.items()), 10,
                   what="live signal and hit events")
        replayed = self.replay(pf.maillog)
        live = self.live_reactions(queue)
        self.assertEqual(without_time(replayed), without_time(live),
                         "replay (left) against live (right)%s" % self.diag())
        # Live is the end of the message, replay the log line's second.
        for r, l in zip(replayed, live):
            self.assertLess(abs(r["time"] - l["time"]), 2.5, (r, l))
        # The shapes compared above, spelled out: what an operator reads in both.
        self.assertEqual(sorted((r["queue_id"], r["account"], r["reaction"], r["signals"])
                                for r in live),
                         sorted([(queue["a2"], ALICE, "flag", "test_message"),
                                 (queue["a4"], ALICE, "flag", "new_networks"),
                                 (queue["b1"], BOB, "flag", "hit")]))
        a2 = next(r for r in live if r["queue_id"] == queue["a2"])["evidence"]["test_message"]
        self.assertEqual((a2["helo_kind"], a2["new_network"], a2["points"]),
                         ("localhost", "127.1.0.0/24", 7), a2)
        self.assertIn("random_subject", a2)
        # The accounts' state: flagged by the live reactions, as replay's "flag" says, with
        # the reactions in their timelines.
        for account in (ALICE, BOB):
            r = h.mapctl("--json", "accounts", "show", account, redis=self.redis, prefix=PREFIX)
            self.assertEqual(r.returncode, 0, r.stderr)
            record = json.loads(r.stdout)
            self.assertEqual(record["state"], "flagged", r.stdout)
            self.assertEqual(sorted({(e.get("queue_id"), e.get("rule") or "hit")
                                     for e in record["events"]}),
                             sorted((l["queue_id"], l["signals"]) for l in live
                                    if l["account"] == account), r.stdout)
        r = h.mapctl("accounts", "show", CAROL, redis=self.redis, prefix=PREFIX)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)

    def replay(self, maillog):
        """`mapctl replay --json` on the maillog: one entry per reaction, comparable."""
        r = h.mapctl("--json", "replay", *SETTINGS, maillog, redis=self.redis, prefix=PREFIX)
        self.assertEqual(r.returncode, 0, r.stderr)
        summary = json.loads(r.stderr.strip().splitlines()[-1])["summary"]
        self.assertEqual((summary["messages"], summary["lines_skipped"]), (6, 0), summary)
        out = []
        for line in r.stdout.splitlines():
            j = json.loads(line)
            out.append({"time": j["time"], "account": j["account"], "reaction": j["reaction"],
                        "signals": ",".join(j["signals"]), "queue_id": j["queue_id"],
                        "client_ip": j["client_ip"], "evidence": j["evidence"]})
        return self.comparable(out)

    def live_reactions(self, queue):
        """The milter's reactions as replay prints them: signal events as they are; the
        hit events of one message (envelope and header, one per place) as one hit
        reaction, which flags or locks the account as lock_on_hit says."""
        events = self.live_events()
        ids = sorted(e["id"] for e in events)
        h.wait_for(lambda: sorted(e["id"] for e in self.milter.alerts()) == ids, 5,
                   what="the alert log holding the stream's events %s" % ids)
        out, hits = [], {}
        for e in events:
            if e["type"] == "signal":
                out.append({"time": e["time"], "account": e["account"], "reaction": e["action"],
                            "signals": e["rule"], "queue_id": e["queue_id"],
                            "client_ip": e["client_ip"], "evidence": json.loads(e["evidence"])})
            elif e["type"] == "hit":
                r = hits.setdefault(e["queue_id"], {
                    "time": e["time"], "account": e["account"], "reaction": "flag",
                    "signals": "hit", "queue_id": e["queue_id"], "client_ip": e["client_ip"],
                    "evidence": {"hit": {"hits": []}}})
                hit = {"entry": e["entry"], "recipient": e["recipient"]}
                if hit not in r["evidence"]["hit"]["hits"]:
                    r["evidence"]["hit"]["hits"].append(hit)
            else:
                self.fail("unexpected live event %s" % e)
        return self.comparable(out + list(hits.values()))

    def comparable(self, reactions):
        """Sorted by message, times as seconds, without what only one side knows (the
        size: see the module comment) or knows to another precision (first use times)."""
        out = []
        for r in reactions:
            r = dict(r)
            r["time"] = datetime.datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            r["evidence"] = strip_timing(r["evidence"])
            for ev in r["evidence"].values():
                ev.pop("size", None)
            out.append(r)
        return sorted(out, key=lambda r: (r["queue_id"], r["signals"]))

if __name__ == "__main__":
    h.main()
