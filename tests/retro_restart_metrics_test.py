#!/usr/bin/env python3
"""Discovery's first-mail memory across a restart, and retro-hunt's and discovery's numbers
on /metrics: real Postfix + Dovecot SASL + swaks, a real redis-server, one compd-milter.

What a user and an operator see:
  - alice mails probe@ an ordinary message; compd-milter restarts; alice then sends probe@
    a test-like message and bob (another customer) one too. Alice's is not a first mail
    (the node refilled who mailed whom from spool_dir/retro at start, and says so in its
    log), so only bob's is a sighting and nothing is proposed: a long-time contact is not
    taken for a new one after a restart;
  - `mapctl add probe@` then flags both through retro-hunt, and /metrics counts it:
    compd_retro_flagged_total, compd_retro_hunts_total, compd_retro_memory_messages and
    _bytes, compd_discovery_sightings_total, compd_discovery_candidates_total.

Run: COMPD_BUILD_DIR=build/dev python3 tests/retro_restart_metrics_test.py
"""

import json
import os
import re
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import stack_util as su  # noqa: E402

PREFIX = "compd:"
MILTER_MACROS = {
    "mail": "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
}
ALICE, BOB = "alice@one-customer.example", "bob@other-customer.example"
USERS = {ALICE: "pw-alice", BOB: "pw-bob"}
PROBE = "probe@gmx.example"


class RetroRestartMetricsTest(h.ServersTestCase):
    @classmethod
    def start_servers(cls):
        cls.redis = cls.started(h.RedisServer().start())
        su.mapctl_add(cls.redis, "listed@bad.example", prefix=PREFIX)
        cls.work = h.temp_dir("retro_restart")
        token = os.path.join(cls.work, "token")
        with open(token, "w") as f:
            f.write("metrics-test-token-0123456789abcdef\n")
        os.chmod(token, 0o600)
        cls.http_port = h.free_port()
        cls.node = cls.started(h.Milter.standard(
            cls.redis, action="reject", prefix=PREFIX,
            extra=["--hostname", "node-a", "--http-listen", "127.0.0.1:%d" % cls.http_port,
                   "--http-token-file", token]).start())
        cls.stack = cls.started(h.MailStack(users=USERS, milter_macros=MILTER_MACROS,
                                            smtpd_milters=cls.node.postfix_spec).start())

    def diag(self):
        return "\n--- milter log\n" + h.tail(self.node.log_path, 40)

    def mapctl(self, *args):
        p = h.mapctl(*args, redis=self.redis, prefix=PREFIX)
        self.assertEqual(p.returncode, 0, "mapctl %s: %s%s%s" % (
            " ".join(args), p.stdout, p.stderr, self.diag()))
        return p

    def send(self, account, subject, helo):
        r = h.swaks(self.stack.submission_port, PROBE, sender=account, user=account,
                    password=USERS[account], helo=helo, subject=subject)
        self.assertEqual(r.code, 0, "swaks: %s%s" % (r.transcript, self.diag()))
        self.stack.sink.wait_for_message(lambda m: m.subject == subject, 10, what=subject)

    def metrics(self):
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http_port,
                                      timeout=5).read().decode()
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def test_restart_then_metrics(self):
        # An ordinary message: alice knows probe@ from before.
        self.send(ALICE, "Invoice 2026-117 attached", "client.example.test")
        h.wait_for(lambda: self.metrics()["compd_retro_observed_total"] == 1, 5,
                   what="retro-hunt remembering the message")
        self.node.stop()
        self.node.start()
        # The log file goes on across the restart: the first start's line said 0 messages.
        refilled = re.compile(r"discovery: who mailed whom, from \S+/retro: 1 messages in "
                              r"\d+ ms")
        try:
            h.wait_for(lambda: refilled.search(self.node.log()), 5,
                       what="discovery refilling its memory with alice's message")
        except TimeoutError as e:
            self.fail("%s%s" % (e, self.diag()))
        # Two unrelated customers' test-like messages: alice's is no first mail.
        self.send(ALICE, "ZYaeD, X", "localhost")
        self.send(BOB, "wFd2, MkRWa2 A", "localhost")
        # Sightings go to Redis in order, one field per account: bob's there means alice's
        # would be too (and two would have completed a candidate and dropped the key).
        key = PREFIX + "discovery:sightings:" + PROBE

        def sighted():
            fields = self.redis.call("HKEYS", key) or []
            return [f.decode() if isinstance(f, bytes) else f for f in fields]
        try:
            h.wait_for(lambda: BOB in sighted(), 5, what="bob's sighting in Redis")
        except TimeoutError as e:
            self.fail("%s; candidates: %s%s" % (
                e, self.mapctl("--json", "candidates", "list").stdout, self.diag()))
        self.assertEqual(sighted(), [BOB])
        self.assertEqual(self.metrics()["compd_discovery_sightings_total"], 1)
        p = self.mapctl("--json", "candidates", "list")
        self.assertEqual(json.loads(p.stdout), [], p.stdout + self.diag())
        m = self.metrics()
        self.assertEqual(m['compd_discovery_candidates_total{outcome="proposed"}'], 0)
        self.assertEqual(m["compd_retro_memory_messages"], 3)  # reloaded 1 + 2
        self.assertGreater(m["compd_retro_memory_bytes"], 0)
        self.assertGreater(m["compd_retro_memory_oldest_timestamp_seconds"], 0)
        # The address enters the map: retro-hunt flags both, and says so on /metrics.
        self.mapctl("add", PROBE)
        h.wait_for(lambda: self.metrics()["compd_retro_flagged_total"] == 2, 5,
                   what="two accounts flagged by retro-hunt")
        m = self.metrics()
        self.assertGreaterEqual(m["compd_retro_hunts_total"], 1)
        self.assertEqual(m["compd_retro_over_cap_total"], 0)
        self.assertEqual(m["compd_retro_dropped_total"], 0)


if __name__ == "__main__":
    h.main()
