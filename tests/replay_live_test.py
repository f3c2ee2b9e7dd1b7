#!/usr/bin/env python3
"""mapctl replay and mapctl history import against a live compd-milter in a real Postfix
(authenticated submissions with swaks, from several loopback source addresses, a real
redis-server), sharing one set-up.

ReplayEquivalenceTest: live and replay agree. The same messages go through Postfix with
compd-milter, then `mapctl replay --json` reads Postfix's own maillog of them. Every
reaction the milter took (signal events in the Redis stream and the alert log, hit events
and the accounts' state in `mapctl accounts show`) must be one replay prints, for the same
account and message, with the same reaction, signals and evidence; and replay prints
nothing more.

The messages raise several signals: a map hit; a test-like message (HELO localhost, a
random-looking subject, one external recipient, from a network group the account never
used); new networks (127.1, 127.2 and 127.3 are three /16 groups); and, with the
combination of weaker signals on (combined_flag_score 10), the test message and the first
two new networks together (6 + 2 + 2) flag on the message that raised nothing itself.
Postfix logs HELO and subject only with a header_checks WARN rule for Subject
(docs/postfix.md), which this Postfix has, as replay needs.

What differs by nature and is not compared: times (live: the end of the message, to the
millisecond; replayed: the log line's second), the size (replay reads it from the log, the
milter may not know it or count it otherwise; both sides run with a tiny
test_message_max_size, so it gives no points either way), the node name (the milter's host
name, the log's syslog host), and live writes one hit event per place a listed address
appears (envelope, To:) where replay has one hit per recipient.

HistoryImportTest: `mapctl history import --apply` on an Exim mainlog writes the daily
volume counters, known networks and account domains the live signals read; a second run
changes nothing; a day the milter counted keeps the milter's count (the output says so);
and the running milter uses the imported networks at once (the import announces them in
the detection feed): a test-like message from an imported network is not from a new one,
while one from an unseen network is, on the account's first live message.

Run: python3 tests/replay_live_test.py (needs build/compd-milter and build/mapctl,
or COMPD_BUILD_DIR).
"""

import datetime
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import stack_util as su  # noqa: E402

PREFIX = "compd:"
MILTER_MACROS = {
    "mail": "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
}
ALICE, BOB, CAROL = ("%s@customer.example" % n for n in ("alice", "bob", "carol"))
DAVE = "dave@history.example"
ACCOUNTS = (ALICE, BOB, CAROL)  # the equivalence test's
USERS = {ALICE: "pw-alice", BOB: "pw-bob", CAROL: "pw-carol", DAVE: "pw-dave"}
SYNC_MS = 100
LISTED = "probe-drop@bad.example"
# Evidence keys that differ by nature between a live message and its log lines.
# First use of a network and the combination's contribution times: the end of the message
# live, the log line's second replayed.
TIMING_KEYS = {"first_seen", "since", "time"}
# The same settings live and replayed. A tiny test_message_max_size: no message is small
# however its size is counted, so the size gives no points on either side.
# The clients are loopback addresses (127.N.0.1 as networks): none is the provider's own.
SETTINGS = ["--test-message-max-size", "100", "--own-networks", "192.168.0.0/16",
            "--combined-flag-score", "10"]


def without_time(reactions):
    return [{k: v for k, v in r.items() if k != "time"} for r in reactions]


def strip_timing(value):
    if isinstance(value, dict):
        return {k: strip_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [strip_timing(v) for v in value]
    return value


class Env(su.MilterStack):
    """redis-server, compd-milter (hit action monitor: a hit's message is delivered and
    logged, as replay needs it) and Postfix/Dovecot/sink, shared by the module's tests."""

    def start(self):
        self.work = h.temp_dir("replay-live")
        checks = os.path.join(self.work, "header_checks")
        with open(checks, "w") as f:
            f.write("/^Subject:/ WARN\n")
        self.redis = h.RedisServer().start()
        su.mapctl_add(self.redis, LISTED, prefix=PREFIX)
        # A short sync interval: the history test waits for the milter to read the feed.
        self.milter = h.Milter.standard(
            self.redis, action="monitor", prefix=PREFIX,
            extra=SETTINGS + ["--detect-sync-interval", "%dms" % SYNC_MS])
        self.milter.start()
        self.stack = h.MailStack(users=USERS, smtpd_milters=self.milter.postfix_spec,
                                 milter_macros=MILTER_MACROS,
                                 main={"header_checks": "regexp:" + checks}).start()


ENV = su.ModuleStack(Env)
setUpModule, tearDownModule = ENV.set_up, ENV.tear_down


class LiveCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis, cls.milter, cls.stack = ENV.redis, ENV.milter, ENV.stack

    def diag(self):
        return su.milter_diag(self.milter, self.stack)

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
        events = [json.loads(f["event"]) for _, f in self.redis.stream(PREFIX + "events")]
        return [e for e in events if e.get("account") in ACCOUNTS]

    def removed(self, queue_ids):
        """Waits until Postfix delivered every message and logged their removal."""
        pf = self.stack.postfix
        h.wait_for(lambda: all(re.search(r"%s: removed$" % q, pf.log(), re.M)
                               for q in queue_ids), 20,
                   what="every message delivered and removed from the queue")


class ReplayEquivalenceTest(LiveCase):
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
        self.removed(queue.values())
        # Live reactions: the signal events and the hit, in the stream and the alert log.
        expected_types = {"signal": 3, "hit": 1}
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
                                 (queue["a3"], ALICE, "flag", "combined"),
                                 (queue["a4"], ALICE, "flag", "new_networks"),
                                 (queue["b1"], BOB, "flag", "hit")]))
        a2 = next(r for r in live if r["queue_id"] == queue["a2"])["evidence"]["test_message"]
        self.assertEqual((a2["helo_kind"], a2["new_network"], a2["points"]),
                         ("localhost", "127.1.0.0/24", 7), a2)
        self.assertIn("random_subject", a2)
        a3 = next(r for r in live if r["queue_id"] == queue["a3"])["evidence"]["combined"]
        self.assertEqual((a3["score"], a3["threshold"],
                          [(c["signal"], c["score"]) for c in a3["contributions"]]),
                         (10, 10, [("test_message", 6), ("new_networks", 2),
                                   ("new_networks", 2)]), a3)
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
        self.assertEqual(summary["lines_skipped"], 0, summary)
        self.assertGreaterEqual(summary["messages"], 6, summary)
        out = []
        for line in r.stdout.splitlines():
            j = json.loads(line)
            if j["account"] not in ACCOUNTS:
                continue  # the other tests' accounts
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
        h.wait_for(lambda: sorted(e["id"] for e in self.milter.alerts()
                                  if e.get("account") in ACCOUNTS) == ids, 5,
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
                for c in ev.get("contributions", []):  # the combination's parts
                    c.get("evidence", {}).pop("size", None)
            out.append(r)
        return sorted(out, key=lambda r: (r["queue_id"], r["signals"]))

class HistoryImportTest(LiveCase):
    def exim_line(self, when, n, ip, rcpts, subject="Weekly report"):
        return ('%s 1hd%s0-00000%d-AA <= %s H=(pc-dave.example) [%s] P=esmtpsa A=login:%s '
                'S=1500 T="%s" from <%s> for %s\n' % (
                    when.strftime("%Y-%m-%d %H:%M:%S"), when.strftime("%d"), n, DAVE, ip, DAVE,
                    subject, DAVE, " ".join(rcpts)))

    def import_(self, *args):
        r = h.mapctl("history", "import", "--own-networks", "192.168.0.0/16", *args,
                     redis=self.redis, prefix=PREFIX,
                     env={"TZ": "UTC"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def snapshot(self, month_keys):
        """What the import writes, as Redis holds it (expiry times, not TTLs)."""
        groups = PREFIX + "detect:groups:" + DAVE
        return {"months": {k: (self.redis.call("HGETALL", k), self.redis.call("EXPIRETIME", k))
                           for k in month_keys},
                "groups": self.redis.call("HGETALL", groups),
                "domains": sorted(self.redis.call("SMEMBERS", PREFIX + "detect:domains")),
                "feed": self.redis.call("XLEN", PREFIX + "detect:feed")}

    def test_import_fills_what_the_live_signals_read_once(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        d3 = today - datetime.timedelta(days=3)
        d2 = today - datetime.timedelta(days=2)
        log = os.path.join(ENV.work, "mainlog")
        with open(log, "w") as f:
            f.write(self.exim_line(d3.replace(hour=10), 1, "127.7.0.1",
                                   ["a@elsewhere.example", "b@elsewhere.example"]))
            f.write(self.exim_line(d3.replace(hour=10, minute=5), 2, "127.7.0.1",
                                   ["a@elsewhere.example"]))
            f.write(self.exim_line(d2.replace(hour=9), 3, "127.0.0.1", ["c@elsewhere.example"]))
            f.write(self.exim_line(today, 4, "127.0.0.1", ["c@elsewhere.example"]))

        def month(day):
            return "%svol:m:%s:%s" % (PREFIX, day.strftime("%Y%m"), DAVE)
        months = sorted({month(d3), month(d2), month(today)})
        # The milter counted d2 already (its format: messages recipients networks).
        self.redis.call("HSET", month(d2), d2.strftime("%d"), "5 7 1")
        before = self.snapshot(months)

        out = self.import_(log)
        self.assertIn("Would write (dry run, --apply to write): 2 account-days", out)
        self.assertEqual(self.snapshot(months), before, "a dry run wrote")

        out = self.import_("--apply", log)
        self.assertIn("Written: 1 account-days of volume counters (1 already counted, kept); "
                      "1 account-days of today or later skipped (the milters count them)", out)
        self.assertIn("(2 network groups) merged (2 new or changed), 1 new account domains", out)
        self.assertEqual(self.redis.call("HGET", month(d3), d3.strftime("%d")), "2 3 1")
        self.assertEqual(self.redis.call("HGET", month(d2), d2.strftime("%d")), "5 7 1")
        self.assertIsNone(self.redis.call("HGET", month(today), today.strftime("%d")))
        ms = lambda t: int(t.timestamp() * 1000)  # noqa: E731
        groups = self.snapshot(months)["groups"]
        groups = dict(zip(groups[0::2], groups[1::2]))
        self.assertEqual(groups, {
            "127.7.0.0/16": "%d %d " % (ms(d3.replace(hour=10)), ms(d3.replace(hour=10,
                                                                                minute=5))),
            "127.0.0.0/16": "%d %d " % (ms(d2.replace(hour=9)), ms(today))})
        self.assertIn("history.example", self.snapshot(months)["domains"])
        first = self.snapshot(months)
        self.assertEqual(first["feed"], before["feed"] + 3)  # two groups, one domain

        out = self.import_("--apply", log)
        self.assertIn("Written: 0 account-days of volume counters (2 already counted, kept)", out)
        self.assertIn("merged (0 new or changed), 0 new account domains", out)
        self.assertEqual(self.snapshot(months), first, "the second import changed something")

        # The running milter learned the imported networks from the feed (nothing shows
        # when it has read it: a few sync intervals).
        time.sleep(5 * SYNC_MS / 1000)
        probe = dict(helo="localhost", subject="ZYaeD, X")
        known = self.sent(DAVE, "x1y2@freemail.example", "127.7.0.1", **probe)
        unseen = self.sent(DAVE, "x1y2@freemail.example", "127.8.0.1", **probe)
        self.removed([known, unseen])

        def dave_signals():
            events = [json.loads(f["event"]) for _, f in self.redis.stream(PREFIX + "events")]
            return [e for e in events if e.get("account") == DAVE]
        h.wait_for(dave_signals, 10, what="a signal for %s" % DAVE)
        signals = dave_signals()
        self.assertEqual([(e["rule"], e["queue_id"]) for e in signals],
                         [("test_message", unseen)], "%s%s" % (signals, self.diag()))
        evidence = json.loads(signals[0]["evidence"])["test_message"]
        self.assertEqual((evidence["new_network"], evidence["points"]), ("127.8.0.0/24", 7))

        # The milter counts today; importing the log again leaves its count alone.
        field = lambda: self.redis.call("HGET", month(today), today.strftime("%d"))  # noqa
        h.wait_for(lambda: (field() or "").startswith("2 2 "), 10,
                   what="the milter's count of today for %s" % DAVE)
        counted = field()
        out = self.import_("--apply", log)
        self.assertIn("1 account-days of today or later skipped (the milters count them)", out)
        self.assertEqual(field(), counted)


if __name__ == "__main__":
    h.main()
