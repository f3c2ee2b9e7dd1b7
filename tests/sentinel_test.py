#!/usr/bin/env python3
"""Redis Sentinel with real parts: a redis-server primary and replica, three sentinels
(`redis-server --sentinel`), Postfix with compd-milter on the sentinels, and a second
compd-milter node. The primary is killed with SIGKILL while mail flows: mail keeps flowing
and listed recipients keep being refused, compd follows the promotion, every hit is in the
new primary's stream exactly once, and a map change made afterwards reaches both nodes.

Timings are printed (FAILOVER ...) for docs/operations.md; the asserted bounds are the
promises (5 s to follow a promotion, 1 s for a map change), not measurements.
"""

import contextlib
import json
import os
import re
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
from milter_client import MilterClient  # noqa: E402

PREFIX = "compd:"
MASTER = "compd"
LISTED = "botnet-test@bad.example"
LATER = "added-after-failover@bad.example"
USERS = {"alice@customer.example": "pw-alice", "bob@customer.example": "pw-bob"}
MACROS = {"mail": "i {auth_type} {auth_authen} {auth_author} {mail_addr}"}
TOKEN = "sentinel-test-metrics-token-0123456789"


class Sentinel:
    """`redis-server CONF --sentinel` on a free loopback port, as a child of the test."""

    def __init__(self, primary_port, dir):
        self.port = h.free_port()
        self.dir = dir
        os.makedirs(dir, exist_ok=True)
        self.conf = os.path.join(dir, "sentinel.conf")
        with open(self.conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\nlogfile \"\"\n"
                    "sentinel monitor %s 127.0.0.1 %d 2\n"
                    "sentinel down-after-milliseconds %s 1000\n"
                    "sentinel failover-timeout %s 3000\n"
                    "sentinel parallel-syncs %s 1\n" %
                    (self.port, dir, MASTER, primary_port, MASTER, MASTER, MASTER))
        self.log_path = os.path.join(dir, "sentinel.log")
        self.child = None

    def start(self):
        prog = h.require_programs("redis-server")["redis-server"]
        self.child = h._Child([prog, self.conf, "--sentinel"], self.log_path, "redis-sentinel")
        h.wait_for(lambda: h.port_open(self.port), 10, what="sentinel on %d" % self.port)
        return self

    def call(self, *args):
        with h.socket.create_connection((h.LOOPBACK, self.port), timeout=5) as s:
            s.sendall(h._resp_encode(args))
            with s.makefile("rb") as f:
                return h._resp_read(f)

    def close(self):
        if self.child:
            self.child.stop()
            self.child = None


def role(redis):
    try:
        return redis.call("ROLE")[0]
    except (OSError, h.RedisError):
        return None


def bob_hits(redis):
    out = []
    for _, fields in redis.stream(PREFIX + "events"):
        e = json.loads(fields["event"])
        if e.get("account") == "bob@customer.example" and e.get("type", "hit") == "hit":
            out.append(e)
    return out


def metrics(port):
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % port,
                                 headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().decode()


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def refuses(port, rcpt):
    """True if the milter on `port` refuses `rcpt` at RCPT for an authenticated sender."""
    with MilterClient(port) as c:
        c.negotiate()
        c.connect("client.example", "203.0.113.9")
        c.helo("helo")
        c.macro("M", {"{auth_authen}": "alice@customer.example"})
        c.mail("<alice@customer.example>")
        return c.rcpt("<%s>" % rcpt) in ("r", "y", "t")


class StallingLink:
    """A TCP relay in front of the primary: the sentinels, compd and the replica all reach
    the primary through it (so the sentinels see one consistent address). stall() drops
    what the primary sends on the replication link from then on (the replica's
    acknowledgements still pass): a link that has fallen behind, so writes are acknowledged
    by the primary and never reach the replica."""

    def __init__(self, target_port):
        self.target = target_port
        self.stalled = threading.Event()
        self.listener = h.socket.socket()
        self.listener.bind((h.LOOPBACK, 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self):
        self.stalled.set()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = h.socket.create_connection((h.LOOPBACK, self.target), timeout=2)
                upstream.settimeout(None)
            except OSError:
                client.close()  # the primary is gone: refuse as it would
                continue
            self.socks += [client, upstream]
            state = {"replication": False}
            threading.Thread(target=self._pipe, args=(client, upstream, state, False),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, state, True),
                             daemon=True).start()

    def _pipe(self, src, dst, state, from_primary):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not from_primary and b"REPLCONF" in data:
                    state["replication"] = True
                if from_primary and state["replication"] and self.stalled.is_set():
                    continue
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(h.socket.SHUT_RDWR)

    def close(self):
        for s in [self.listener] + self.socks:
            with contextlib.suppress(OSError):
                s.close()


class SentinelFailoverTest(unittest.TestCase):
    """Each test builds its own primary, replica (through a StallingLink), sentinels,
    two compd nodes and a Postfix stack, and kills the primary."""

    def setUp(self):
        cls = self
        cls.parts = []
        cls.dir = h.temp_dir("sentinel")
        cls.primary = h.RedisServer(dir=os.path.join(cls.dir, "primary")).start()
        cls.parts.append(cls.primary)
        cls.replica = h.RedisServer(dir=os.path.join(cls.dir, "replica")).start()
        cls.parts.append(cls.replica)
        cls.link = StallingLink(cls.primary.port)
        cls.parts.append(cls.link)
        cls.replica.call("REPLICAOF", h.LOOPBACK, cls.link.port)
        h.wait_for(lambda: "master_link_status:up" in cls.replica.call("INFO", "replication"),
                   15, what="replica in sync")
        cls.sentinels = []
        for i in range(3):
            s = Sentinel(cls.link.port, os.path.join(cls.dir, "sentinel%d" % i)).start()
            cls.sentinels.append(s)
            cls.parts.append(s)

        def ready():
            for s in cls.sentinels:
                try:
                    if not str(s.call("SENTINEL", "ckquorum", MASTER)).startswith("OK"):
                        return False
                    if not s.call("SENTINEL", "replicas", MASTER):
                        return False
                except (OSError, h.RedisError):
                    return False
            return True
        h.wait_for(ready, 30, interval=0.2, what="three sentinels that know the replica")
        cls.sentinel_list = ",".join("127.0.0.1:%d" % s.port for s in cls.sentinels)
        cls.flags = ["--redis", "redis://127.0.0.1/0", "--redis-sentinels", cls.sentinel_list,
                     "--redis-sentinel-master", MASTER]
        p = cls.mapctl("add", LISTED)
        assert p.returncode == 0, p.stderr
        token_file = os.path.join(cls.dir, "metrics.token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(token_file, 0o600)
        cls.milters = []
        for name in ("node-a", "node-b"):
            port = h.free_port()
            m = h.Milter.standard(
                "redis://127.0.0.1/0", dir=os.path.join(cls.dir, name), prefix=PREFIX,
                extra=cls.flags[2:] + ["--redis-timeout", "500ms", "--hostname", name,
                                       "--http-listen", "127.0.0.1:%d" % port,
                                       "--http-token-file", token_file,
                                       "--map-poll-interval", "1s"])
            m.http_port = port
            m.start()
            cls.milters.append(m)
            cls.parts.append(m)
        cls.stack = h.MailStack(users=USERS, smtpd_milters=cls.milters[0].postfix_spec,
                                milter_macros=MACROS)
        cls.parts.append(cls.stack)
        cls.stack.start()

    def tearDown(self):
        h.close_all(self.parts)

    def mapctl(self, *args):
        return h.mapctl(*(self.flags + ["--prefix", PREFIX] + list(args)))

    def send(self, account, to):
        return h.swaks(self.stack.submission_port, to, sender=account, user=account,
                       password=USERS[account], subject="sentinel %s" % time.monotonic())

    def diag(self):
        out = []
        for m in self.milters:
            out.append("--- %s\n%s" % (m.work.path, h.tail(m.log_path, 60)))
        for s in self.sentinels:
            out.append("--- sentinel %d\n%s" % (s.port, h.tail(s.log_path, 20)))
        return "\n".join(out) + "\n" + self.stack.logs()

    def test_failover_under_mail(self):
        # Both nodes are on the primary and enforce the map.
        for m in self.milters:
            h.wait_for(lambda: metric(metrics(m.http_port), "compd_redis_primary",
                                      '{address="127.0.0.1:%d"}' % self.link.port) == 1,
                       10, what="node on the first primary")
        self.assertEqual(self.send("alice@customer.example", LISTED).code, 24, self.diag())
        self.assertEqual(self.send("alice@customer.example", "friend@fine.example").code, 0)

        # Mail flows from bob: one unlisted, one listed, again and again.
        results, stop = [], threading.Event()

        def flow():
            while not stop.is_set():
                for to, listed in (("friend@fine.example", False), (LISTED, True)):
                    t = time.monotonic()
                    r = self.send("bob@customer.example", to)
                    results.append((t, listed, r.code, r.transcript))
        sender = threading.Thread(target=flow, daemon=True)
        sender.start()
        time.sleep(2)
        killed = time.monotonic()
        self.primary.child.kill()  # SIGKILL to the process group: no goodbye to anyone
        self.primary.child = None

        promoted = None
        while time.monotonic() - killed < 30:
            if role(self.replica) == "master":
                promoted = time.monotonic()
                break
            time.sleep(0.02)
        self.assertIsNotNone(promoted, "the sentinels never promoted the replica\n" + self.diag())
        new = '{address="127.0.0.1:%d"}' % self.replica.port
        followed = []
        for m in self.milters:
            def on_new():
                text = metrics(m.http_port)
                return (metric(text, "compd_redis_primary", new) == 1 and
                        metric(text, "compd_redis_primary_up") == 1)
            h.wait_for(on_new, 10, interval=0.02, what="%s on the new primary" % m.work.path)
            followed.append(time.monotonic())
        time.sleep(2)  # mail keeps flowing on the new primary
        stop.set()
        sender.join(60)

        # Mail never noticed: unlisted delivered, listed refused, before and after the kill.
        self.assertGreater(len([r for r in results if r[0] > killed]), 4)
        for t, listed, code, transcript in results:
            self.assertEqual(code, 24 if listed else 0,
                             "at %+.2fs from the kill, %s: swaks %d\n%s%s" %
                             (t - killed, "listed" if listed else "unlisted", code, transcript,
                              self.diag()))

        # Every hit is in the new primary's stream, exactly once (spooled, replayed,
        # resent when unconfirmed: the markers drop the copies).
        sent = len([r for r in results if r[1]])
        h.wait_for(lambda: len(bob_hits(self.replica)) >= sent, 15,
                   what="%d hits of bob on the new primary" % sent)
        time.sleep(1)
        hits = bob_hits(self.replica)
        ids = [e["id"] for e in hits]
        self.assertEqual(len(ids), len(set(ids)), "a hit twice in the stream")
        self.assertEqual(len(hits), sent, "hits on the new primary vs listed mails sent")

        # A map change made now is enforced on both nodes within a second.
        p = self.mapctl("add", LATER)
        self.assertEqual(p.returncode, 0, p.stderr)
        added = time.monotonic()
        seen = []
        for m in self.milters:
            h.wait_for(lambda: refuses(m.port, LATER), 5, interval=0.02,
                       what="%s refusing the new entry" % m.work.path)
            seen.append(time.monotonic() - added)
        self.assertLess(max(seen), 1.0, "map change took %s" % seen)

        # mapctl says which primary it used; /metrics and the log say what happened.
        p = self.mapctl("stats")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"primary\s+127\.0\.0\.1:%d\n" % self.replica.port)
        self.assertIn("master %s via sentinels" % MASTER, p.stdout)
        for m in self.milters:
            text = metrics(m.http_port)
            self.assertEqual(metric(text, "compd_redis_primary_switches_total"), 1, text)
            gap = metric(text, "compd_redis_without_primary_seconds_total")
            self.assertGreater(gap, 0)
            self.assertIn("moved from 127.0.0.1:%d to 127.0.0.1:%d" %
                          (self.link.port, self.replica.port), m.log())
        text = metrics(self.milters[0].http_port)
        print("\nFAILOVER promotion %.2fs after SIGKILL; nodes on the new primary %s s after "
              "the promotion; without a primary (node-a) %.2fs; map change on both nodes in "
              "%s s; %d mails during the test, events unconfirmed %s, resent %s" %
              (promoted - killed, ["%.2f" % (f - promoted) for f in followed],
               metric(text, "compd_redis_without_primary_seconds_total"),
               ["%.3f" % s for s in seen], len(results),
               metric(text, "compd_events_total", '{state="unconfirmed"}'),
               metric(text, "compd_events_total", '{state="resent"}')), file=sys.stderr)
        for f in followed:
            self.assertLess(f - promoted, 5.0, "node followed the promotion too late")


    def test_events_the_replica_never_got_are_written_again(self):
        node = self.milters[0]
        h.wait_for(lambda: metric(metrics(node.http_port), "compd_redis_primary_up") == 1, 10,
                   what="node on the primary")
        bob = "bob@customer.example"
        self.assertEqual(self.send(bob, LISTED).code, 24, self.diag())
        h.wait_for(lambda: len(bob_hits(self.replica)) == 1, 10, what="first hit replicated")
        # The replication link falls behind: the primary acknowledges hits the replica
        # never gets. compd's WAIT finds no replica that confirms them, and counts them.
        self.link.stall()
        for _ in range(3):
            self.assertEqual(self.send(bob, LISTED).code, 24, self.diag())
        h.wait_for(lambda: len(bob_hits(self.primary)) == 4, 10, what="hits on the primary")
        h.wait_for(lambda: metric(metrics(node.http_port), "compd_events_total",
                                  '{state="unconfirmed"}') >= 3, 10, what="unconfirmed hits")
        self.assertEqual(len(bob_hits(self.replica)), 1)
        self.primary.child.kill()
        self.primary.child = None
        h.wait_for(lambda: role(self.replica) == "master", 30, interval=0.05,
                   what="promotion\n" + self.diag())
        # Without compd's resend the three hits would be gone with the old primary.
        h.wait_for(lambda: len(bob_hits(self.replica)) >= 4, 15,
                   what="the lost hits written again\n" + self.diag())
        time.sleep(1)
        hits = bob_hits(self.replica)
        self.assertEqual(len(hits), 4, hits)
        self.assertEqual(len({e["id"] for e in hits}), 4)
        text = metrics(node.http_port)
        self.assertEqual(metric(text, "compd_events_total", '{state="resent"}'), 3, text)
        self.assertIn("unconfirmed events again, 3 of them had not reached the new primary",
                      node.log())

    def test_switchover_with_the_old_primary_alive(self):
        # An operator's `SENTINEL FAILOVER`: the old primary lives on as a replica, so a
        # connection left on it would read stale data and get READONLY on writes.
        for m in self.milters:
            h.wait_for(lambda: metric(metrics(m.http_port), "compd_redis_primary_up") == 1, 10,
                       what="node on the primary")
        bob = "bob@customer.example"
        self.assertEqual(self.send(bob, LISTED).code, 24, self.diag())
        self.assertEqual(self.sentinels[0].call("SENTINEL", "FAILOVER", MASTER), "OK")
        h.wait_for(lambda: role(self.replica) == "master" and role(self.primary) == "slave", 30,
                   interval=0.05, what="switchover\n" + self.diag())
        new = '{address="127.0.0.1:%d"}' % self.replica.port
        for m in self.milters:
            h.wait_for(lambda: metric(metrics(m.http_port), "compd_redis_primary", new) == 1, 10,
                       interval=0.05, what="%s on the new primary" % m.work.path)
        for _ in range(3):
            self.assertEqual(self.send(bob, LISTED).code, 24, self.diag())
            self.assertEqual(self.send(bob, "friend@fine.example").code, 0, self.diag())
        h.wait_for(lambda: len(bob_hits(self.replica)) >= 4, 15,
                   what="hits on the new primary\n" + self.diag())
        time.sleep(1)
        self.assertEqual(len(bob_hits(self.replica)), 4)
        # The demoted server replicates from the new primary: the same four, none of its own.
        h.wait_for(lambda: len(bob_hits(self.primary)) == 4, 10, what="old primary in sync")
        p = self.mapctl("add", LATER)
        self.assertEqual(p.returncode, 0, p.stderr)
        for m in self.milters:
            h.wait_for(lambda: refuses(m.port, LATER), 2, interval=0.02,
                       what="%s refusing the new entry" % m.work.path)
        for m in self.milters:
            text = metrics(m.http_port)
            self.assertEqual(metric(text, "compd_redis_primary_switches_total"), 1, text)
            self.assertEqual(metric(text, "compd_events_total", '{state="rejected"}'), 0, text)


class SentinelConfigTest(unittest.TestCase):

    def test_all_sentinels_down_is_redis_unavailable(self):
        dead = ",".join("127.0.0.1:%d" % h.free_port() for _ in range(2))
        p = h.mapctl("--redis-sentinels", dead, "--redis-sentinel-master", MASTER, "stats")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no sentinel answered", p.stderr)

    def test_bad_sentinel_list_names_the_item(self):
        p = h.mapctl("--redis-sentinels", "127.0.0.1:1,::1:26379", "--redis-sentinel-master",
                     MASTER, "stats")
        self.assertEqual(p.returncode, 2)
        self.assertIn("redis_sentinels: '::1:26379' needs brackets", p.stderr)
        p = h.mapctl("--redis-sentinels", "127.0.0.1:1", "stats")
        self.assertEqual(p.returncode, 2)
        self.assertIn("redis_sentinel_master: required", p.stderr)


if __name__ == "__main__":
    h.main()
