#!/usr/bin/env python3
"""Security promises of docs/security.md, checked against the real daemon:
the Redis password never appears in argv or logs, the daemon runs unprivileged after
binding, listeners default to loopback, and the alert log and spool are private.
"""

import json
import os
import pwd
import stat
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
from milter_client import MilterClient  # noqa: E402

PREFIX = "compd:"
SECRET = "Tr0ub4dor-and-3-horses"
LISTED = "listed@bad.example"


def redis_cli(redis, *args):
    r = subprocess.run(["redis-cli", "-p", str(redis.port), "-a", SECRET, "--no-auth-warning"] +
                       list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=10)
    return r.stdout


def hit(port, account):
    with MilterClient(port) as c:
        c.negotiate()
        c.connect("client.example", "203.0.113.9")
        c.helo("helo")
        c.macro("M", {"{auth_authen}": account})
        c.mail("<%s>" % account)
        return c.rcpt("<%s>" % LISTED)


class SecurityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = h.RedisServer().start()
        cls.redis.call("HSET", PREFIX + "map:exact", LISTED, "{}")
        cls.redis.call("INCR", PREFIX + "map:version")
        cls.redis.call("CONFIG", "SET", "requirepass", SECRET)

    @classmethod
    def tearDownClass(cls):
        redis_cli(cls.redis, "CONFIG", "SET", "requirepass", "")
        cls.redis.close()

    def test_password_from_environment_never_in_argv_or_logs(self):
        m = h.Milter.standard(self.redis, env={"COMPD_REDIS_PASSWORD": SECRET},
                              extra=["--log-level", "debug"])
        with m:
            m.start()
            self.assertEqual(hit(m.port, "env@customer.example"), "y", m.log())
            h.wait_for(lambda: "env@customer.example" in redis_cli(
                self.redis, "XRANGE", PREFIX + "events", "-", "+"), 10, what="the event")
            with open("/proc/%d/cmdline" % m.child.proc.pid, "rb") as f:
                self.assertNotIn(SECRET.encode(), f.read())
            # --print-config shows the settings, never the password.
            out = subprocess.run([m.binary, "--print-config", "--redis", self.redis.url],
                                 env=dict(os.environ, COMPD_REDIS_PASSWORD=SECRET),
                                 stdout=subprocess.PIPE, text=True).stdout
            self.assertIn("redis_url", out)
            self.assertNotIn(SECRET, out)
            self.assertNotIn(SECRET, m.log())
            with open(m.alert_log) as f:
                self.assertNotIn(SECRET, f.read())

    def test_password_in_url_is_refused_without_echoing_it(self):
        url = self.redis.url.replace("redis://", "redis://default:%s@" % SECRET)
        r = subprocess.run([h.compd_binary("compd-milter"), "--check-config", "--redis", url],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("password in the URL is refused", r.stdout)
        self.assertNotIn(SECRET, r.stdout)

    def test_wrong_password_fails_closed_for_recording_not_for_mail(self):
        m = h.Milter.standard(self.redis, env={"COMPD_REDIS_PASSWORD": "wrong"})
        with m:
            m.start()
            # The map could not be loaded from Redis: nothing is listed, mail flows.
            self.assertEqual(hit(m.port, "wrongpw@customer.example"), "c")
            log = m.log()
        self.assertIn("authentication failed", log)
        self.assertNotIn("wrong", log.replace("authentication failed", ""))

    def test_runs_unprivileged_after_binding_with_private_files(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to drop privileges")  # CI runs as root
        work = h.temp_dir("security")
        os.chmod(work, 0o755)
        sock = os.path.join(work, "run", "milter.sock")
        os.makedirs(os.path.dirname(sock))
        m = h.Milter.standard(self.redis, env={"COMPD_REDIS_PASSWORD": SECRET},
                              extra=["--socket", "unix:" + sock, "--user", "nobody",
                                     "--socket-mode", "0660"])
        # Milter.standard put its files under its own folder; let nobody reach them.
        os.chmod(m.work.path, 0o755)
        with m:
            m.start()
            with open("/proc/%d/status" % m.child.proc.pid) as f:
                uids = [l for l in f if l.startswith("Uid:")][0].split()[1:]
            nobody = pwd.getpwnam("nobody").pw_uid
            self.assertEqual({int(u) for u in uids}, {nobody}, "still privileged: %s" % uids)
            self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o660)
            self.assertEqual(stat.S_IMODE(os.stat(m.spool_dir).st_mode), 0o700)
            self.assertEqual(os.stat(m.spool_dir).st_uid, nobody)

    def test_alert_log_and_spool_are_private(self):
        m = h.Milter.standard(self.redis, env={"COMPD_REDIS_PASSWORD": SECRET},
                              extra=["--redis-timeout", "200ms"])
        with m:
            m.start()
            # Writes stall: the event goes to the spool after the timeout.
            redis_cli(self.redis, "CLIENT", "PAUSE", "20000", "WRITE")
            try:
                self.assertEqual(hit(m.port, "private@customer.example"), "y")
                spool = os.path.join(m.spool_dir, "events.spool")
                h.wait_for(lambda: os.path.exists(spool) and os.path.getsize(spool) > 0, 15,
                           what="the spool file")
                self.assertEqual(stat.S_IMODE(os.stat(spool).st_mode), 0o600)
                self.assertEqual(stat.S_IMODE(os.stat(m.alert_log).st_mode), 0o600)
                self.assertEqual(stat.S_IMODE(os.stat(m.spool_dir).st_mode), 0o700)
            finally:
                redis_cli(self.redis, "CLIENT", "UNPAUSE")

    def test_listeners_default_to_loopback(self):
        binary = h.compd_binary("compd-milter")
        out = subprocess.run([binary, "--print-config", "--config", "/nonexistent-ok"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # An explicit --config that does not exist is an error; the defaults need none.
        self.assertNotEqual(out.returncode, 0)
        out = subprocess.run([binary, "--print-config"], stdout=subprocess.PIPE, text=True,
                             cwd="/", env=dict(os.environ, COMPD_REDIS_URL="redis://127.0.0.1:1"))
        socket_line = [l for l in out.stdout.splitlines() if l.startswith("socket ")][0]
        self.assertIn("inet:8890@127.0.0.1", socket_line)
        r = subprocess.run([binary, "--check-config", "--socket", "inet:8890"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("every interface", r.stdout)


if __name__ == "__main__":
    h.main()
