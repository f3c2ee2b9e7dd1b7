#!/usr/bin/env python3
"""Faults with real servers: Redis absent at start, Redis slow, Redis gone and back,
compd-milter killed under Postfix, a corrupt spool. In every case mail keeps flowing, no
message is wrongly refused or delayed, and every event is recorded exactly once.
"""

import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import stack_util as su  # noqa: E402

PREFIX = "compd:"
LISTED = "botnet-test@bad.example"
USERS = {"alice@customer.example": "pw-alice", "bob@customer.example": "pw-bob",
         "carol@customer.example": "pw-carol", "dave@customer.example": "pw-dave",
         "erin@customer.example": "pw-erin"}
MACROS = {"mail": "i {auth_type} {auth_authen} {auth_author} {mail_addr}"}


def events(redis, account):
    return [e for e in su.stream_events(redis, PREFIX) if e.get("account") == account]


class FaultsTest(unittest.TestCase):
    """One Postfix stack; the milter is restarted on one fixed port as tests need."""

    @classmethod
    def setUpClass(cls):
        cls.redis = h.RedisServer().start()
        su.add_listed(cls.redis, LISTED, source="faults_test", prefix=PREFIX)
        cls.dir = h.temp_dir("faults")
        cls.port = h.free_port()
        cls.milter = None
        cls.start_milter()
        cls.stack = h.MailStack(users=USERS, smtpd_milters="inet:127.0.0.1:%d" % cls.port,
                                milter_macros=MACROS)
        cls.stack.start()

    @classmethod
    def tearDownClass(cls):
        for part in (cls.stack, cls.milter, cls.redis):
            if part is not None:
                part.close()

    @classmethod
    def start_milter(cls):
        """compd-milter on the fixed port with fixed map, spool and alert-log paths, so a
        restarted milter finds what the previous one left."""
        args = ["--socket", "inet:%d@127.0.0.1" % cls.port, "--redis", cls.redis.url,
                "--prefix", PREFIX, "--map-dir", os.path.join(cls.dir, "maps"),
                "--spool-dir", os.path.join(cls.dir, "spool"),
                "--alert-log", os.path.join(cls.dir, "alerts.jsonl"),
                "--redis-timeout", "500ms"]
        cls.milter = h.Milter(args, dir=os.path.join(cls.dir, "milter")).start()
        return cls.milter

    @classmethod
    def stop_milter(cls):
        cls.milter.stop()
        cls.milter = None

    def send(self, account, to, **kw):
        kw.setdefault("subject", "faults %s" % time.monotonic())
        return h.swaks(self.stack.submission_port, to, sender=account, user=account,
                       password=USERS[account], **kw)

    def diag(self):
        return "\n--- milter log\n%s\n%s" % (self.milter.log() if self.milter else "",
                                             self.stack.logs())

    def assert_code(self, r, code):
        self.assertEqual(r.code, code, "swaks exit code; transcript:\n%s%s" %
                         (r.transcript, self.diag()))

    def wait_events(self, account, n, timeout=15):
        h.wait_for(lambda: len(events(self.redis, account)) >= n, timeout,
                   what="%d events for %s" % (n, account))
        time.sleep(0.5)  # a duplicate would arrive right behind
        got = events(self.redis, account)
        self.assertEqual(len(got), n, "expected exactly %d events: %s" % (n, got))
        return got

    def test_1_redis_absent_at_start_serves_from_local_files(self):
        account = "alice@customer.example"
        # The running milter has written the map files; restart it with Redis down.
        h.wait_for(lambda: LISTED in open(os.path.join(self.dir, "maps",
                                                       "compd_rcpt.map")).read(), 5)
        self.stop_milter()
        self.redis.stop(save=True)
        try:
            self.start_milter()
            self.assertIn("files", self.milter.log())
            self.assert_code(self.send(account, LISTED), 24)
            self.assert_code(self.send(account, "friend@fine.example"), 0)
            # The hit is in the alert log at once, and waits in the spool for Redis.
            h.wait_for(lambda: any(json.loads(l).get("account") == account for l in
                                   open(os.path.join(self.dir, "alerts.jsonl"))), 5)
        finally:
            self.redis.start()
        self.wait_events(account, 1)

    def test_2_redis_slow_does_not_delay_mail(self):
        account = "bob@customer.example"
        # Freeze every write for 60 s, as an overloaded or stuck Redis would: recording
        # the hit has to wait, the mail must not.
        pause_ms = 60000
        self.redis.call("CLIENT", "PAUSE", str(pause_ms), "WRITE")
        paused_at = time.monotonic()
        try:
            r1 = self.send(account, LISTED)
            r2 = self.send(account, "friend@fine.example")
            finished = time.monotonic() - paused_at
        finally:
            self.redis.call("CLIENT", "UNPAUSE")
        # Both transactions ended while Redis was still frozen: the mail path never waits.
        self.assertLess(finished, pause_ms / 1000.0, "mail waited for a frozen Redis")
        self.assert_code(r1, 24)
        self.assert_code(r2, 0)
        self.wait_events(account, 1)

    def test_3_redis_restarted_while_mail_flows(self):
        account = "carol@customer.example"
        sent_listed = 0
        self.redis.stop(save=True)
        try:
            for i in range(3):
                self.assert_code(self.send(account, LISTED), 24)
                sent_listed += 1
                self.assert_code(self.send(account, "ok%d@fine.example" % i), 0)
        finally:
            self.redis.start()
        for i in range(2):
            self.assert_code(self.send(account, LISTED), 24)
            sent_listed += 1
        got = self.wait_events(account, sent_listed)
        self.assertEqual(len({e["id"] for e in got}), sent_listed)

    def test_4_milter_killed_mail_keeps_flowing(self):
        account = "dave@customer.example"
        self.milter.child.proc.send_signal(signal.SIGKILL)
        self.milter.child.proc.wait(5)
        try:
            # milter_default_action = accept: with the filter gone, mail is delivered.
            r = self.send(account, LISTED, subject="while the milter is down")
            self.assert_code(r, 0)
            self.stack.sink.wait_for_message(
                lambda m: m.subject == "while the milter is down", 10)
        finally:
            self.milter.close()
            self.start_milter()
        self.assert_code(self.send(account, LISTED), 24)
        self.wait_events(account, 1)

    def test_5_corrupt_spool_is_reported_and_the_rest_replayed(self):
        account = "erin@customer.example"
        self.stop_milter()
        good = {"id": "spooltest-1", "type": "hit", "time": "2026-11-26T10:00:00.000Z",
                "account": account, "recipient": LISTED, "where": "envelope",
                "entry": LISTED, "entry_kind": "exact", "action": "reject", "source": "milter"}
        good2 = dict(good, id="spooltest-2", time="2026-11-26T10:00:01.000Z")
        spool = os.path.join(self.dir, "spool", "events.spool")
        with open(spool, "a") as f:
            f.write(json.dumps(good) + "\n")
            f.write("{this is not json\n")
            f.write(json.dumps(good2) + "\n")
            f.write('{"id": "spooltest-3", "acc')  # torn last line
        os.chmod(spool, 0o600)
        self.start_milter()
        got = self.wait_events(account, 2)
        self.assertEqual([e["id"] for e in got], ["spooltest-1", "spooltest-2"])
        h.wait_for(lambda: "unreadable" in self.milter.log() or "skipped" in self.milter.log(),
                   5, what="a log line about the corrupt spool")


if __name__ == "__main__":
    h.main()
