#!/usr/bin/env python3
"""Proves the integration-test harness against the real servers it drives.

Run: python3 tests/harness_test.py  (ctest runs it as it_harness_test). A missing package is
an error with the package name, never a skip.
"""

import os
import socket
import stat
import sys
import textwrap
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402

USERS = {"alice@example.test": "alice-secret", "bob": "bob secret"}


class RedisServerTest(unittest.TestCase):
    def test_up_down_up_on_the_same_port(self):
        with h.RedisServer() as redis:
            self.assertEqual(redis.url, "redis://127.0.0.1:%d/0" % redis.port)
            self.assertEqual(redis.call("SET", "k", "v"), "OK")
            self.assertEqual(redis.cli("GET", "k"), "v")
            self.assertEqual(h.subprocess.run(
                ["redis-cli", "-s", redis.unix_socket, "PING"], capture_output=True,
                text=True).stdout.strip(), "PONG")
            self.assertTrue(redis.unix_url.startswith("unix:///"))
            self.assertTrue(stat.S_ISSOCK(os.stat(redis.unix_socket).st_mode))

            port = redis.port
            redis.stop()
            self.assertFalse(redis.running())
            with self.assertRaises(OSError):
                redis.call("PING")
            with self.assertRaises(h.HarnessError):
                redis.cli("PING")

            redis.start()
            self.assertEqual(redis.port, port)
            self.assertEqual(redis.call("PING"), "PONG")
            self.assertIsNone(redis.call("GET", "k"), "no persistence: a restart starts empty")

            redis.call("SET", "k2", "kept")
            redis.stop(save=True)  # like a Redis restart with persistence
            redis.start()
            self.assertEqual(redis.call("GET", "k2"), "kept")

    def test_stream_and_errors(self):
        with h.RedisServer() as redis:
            redis.call("XADD", "s", "*", "event", '{"a":1}')
            redis.call("XADD", "s", "*", "event", '{"a":2}')
            entries = redis.stream("s")
            self.assertEqual([f["event"] for _, f in entries], ['{"a":1}', '{"a":2}'])
            with self.assertRaises(h.RedisError):
                redis.call("NOSUCHCOMMAND")


class SmtpSinkTest(unittest.TestCase):
    def test_stores_envelope_and_data(self):
        with h.SmtpSink() as sink:
            r = h.swaks(sink.port, ["a@x.example", "b@y.example"], sender="s@z.example",
                        subject="sink test", body="line1\n.dotted\nend")
            self.assertEqual(r.code, 0, r.transcript)
            (msg,) = sink.wait_for_messages(1, timeout=5)
            self.assertEqual(msg.mail_from, "s@z.example")
            self.assertEqual(msg.rcpts, ["a@x.example", "b@y.example"])
            self.assertEqual(msg.subject, "sink test")
            self.assertIn(b"\r\n.dotted\r\n", msg.data)  # dot-unstuffed
            self.assertTrue(os.path.exists(msg.path))
            with self.assertRaises(TimeoutError):
                sink.wait_for_messages(2, timeout=0.2)


class MailStackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = h.MailStack(users=USERS)
        cls.stack.start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def setUp(self):
        self.stack.sink.clear()

    def assert_sink_empty(self):
        # Postfix hands a queued message to the sink within milliseconds; give it a moment.
        with self.assertRaises(TimeoutError):
            self.stack.sink.wait_for_messages(1, timeout=1.0)

    def test_postfix_check_is_clean(self):
        self.assertEqual(self.stack.postfix.check(), "")

    def test_authenticated_login_reaches_sink(self):
        r = h.swaks(self.stack.submission_port, "rcpt@remote.example",
                    sender="alice@example.test", user="alice@example.test",
                    password="alice-secret", auth="LOGIN", subject="auth login")
        self.assertEqual(r.code, 0, r.transcript)
        msg = self.stack.sink.wait_for_message(lambda m: m.subject == "auth login")
        self.assertEqual(msg.mail_from, "alice@example.test")
        self.assertEqual(msg.rcpts, ["rcpt@remote.example"])
        self.stack.postfix.wait_for_log(r"sasl_method=LOGIN, sasl_username=alice@example\.test")

    def test_authenticated_plain_with_headers_and_two_recipients(self):
        r = h.swaks(self.stack.submission_port, ["one@remote.example", "two@remote.example"],
                    user="bob", password="bob secret", auth="PLAIN", subject="auth plain",
                    headers=["To: Someone <shown@remote.example>", "Cc: cc@remote.example"])
        self.assertEqual(r.code, 0, r.transcript)
        msg = self.stack.sink.wait_for_message(lambda m: m.subject == "auth plain")
        self.assertEqual(sorted(msg.rcpts), ["one@remote.example", "two@remote.example"])
        self.assertEqual(msg.header("To"), ["Someone <shown@remote.example>"])
        self.assertEqual(msg.header("Cc"), ["cc@remote.example"])

    def test_wrong_password_is_auth_failure(self):
        r = h.swaks(self.stack.submission_port, "rcpt@remote.example",
                    user="alice@example.test", password="wrong", subject="bad password")
        self.assertEqual(r.code, 28, r.transcript)
        self.assertTrue(any(x.startswith("535") for x in r.replies()), r.transcript)
        self.assert_sink_empty()

    def test_unauthenticated_relay_is_refused(self):
        r = h.swaks(self.stack.submission_port, "rcpt@remote.example", subject="no auth")
        self.assertEqual(r.code, 24, r.transcript)
        self.assertTrue(any(x.startswith("554 5.7.1") for x in r.replies()), r.transcript)
        self.assert_sink_empty()

    def test_open_listener_relays_for_loopback_without_auth(self):
        r = h.swaks(self.stack.smtp_port, "rcpt@remote.example", subject="open listener")
        self.assertEqual(r.code, 0, r.transcript)
        self.stack.sink.wait_for_message(lambda m: m.subject == "open listener")

    def test_sendmail_reaches_sink(self):
        code, out = self.stack.postfix.sendmail(
            "From: root\nTo: x@remote.example\nSubject: via sendmail\n\nhello\n",
            "x@remote.example")
        self.assertEqual(code, 0, out)
        msg = self.stack.sink.wait_for_message(lambda m: m.subject == "via sendmail")
        self.assertEqual(msg.rcpts, ["x@remote.example"])

    def test_dead_milter_does_not_stop_mail(self):
        # A second instance beside the first, with a milter that is not running:
        # milter_default_action = accept lets the mail through.
        dead = h.free_port()
        with h.MailStack(users=USERS, smtpd_milters="inet:127.0.0.1:%d" % dead,
                         milter_macros={"mail": "i {auth_authen}"}) as other:
            self.assertNotEqual(other.postfix.syslog_name, self.stack.postfix.syslog_name)
            self.assertIn("milter_mail_macros = i {auth_authen}",
                          other.postfix.postconf("-n", "milter_mail_macros"))
            r = h.swaks(other.submission_port, "rcpt@remote.example", user="bob",
                        password="bob secret", subject="second instance")
            self.assertEqual(r.code, 0, r.transcript)
            msg = other.sink.wait_for_message(lambda m: m.subject == "second instance")
            self.assertEqual(msg.rcpts, ["rcpt@remote.example"])
            self.assertIn("connect to Milter service inet:127.0.0.1:%d" % dead, other.postfix.log())
        self.assertEqual(self.stack.sink.find(lambda m: m.subject == "second instance"), [])
        # The first instance still works after the second one stopped.
        r = h.swaks(self.stack.submission_port, "rcpt@remote.example", user="bob",
                    password="bob secret", subject="first again")
        self.assertEqual(r.code, 0, r.transcript)
        self.stack.sink.wait_for_message(lambda m: m.subject == "first again")


FAKE_MILTER = textwrap.dedent("""\
    #!%s
    # Stands in for compd-milter: listens on --socket inet:PORT@HOST until SIGTERM.
    import signal, socket, sys
    args = sys.argv[1:]
    spec = args[args.index("--socket") + 1]
    port, host = spec[len("inet:"):].split("@")
    if "--fail" in args:
        print("fake milter: failing on purpose", flush=True)
        sys.exit(3)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen()
    print("fake milter: listening on", spec, "args", args, flush=True)  # as compd-milter logs it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        conn, _ = s.accept()
        conn.close()
    """ % sys.executable)


class MilterHelperTest(unittest.TestCase):
    def setUp(self):
        self.dir = h.temp_dir("fake-milter")
        self.binary = os.path.join(self.dir, "fake-milter")
        with open(self.binary, "w") as f:
            f.write(FAKE_MILTER)
        os.chmod(self.binary, 0o755)

    def test_start_wait_stop(self):
        with h.RedisServer() as redis:
            m = h.Milter.standard(redis, binary=self.binary, extra=["--config", "/dev/null"])
            with m:
                self.assertTrue(m.running())
                self.assertTrue(h.port_open(m.port))
                self.assertEqual(m.postfix_spec, "inet:127.0.0.1:%d" % m.port)
                for flag in ("--foreground", "--redis", "--alert-log", "--spool-dir",
                             "--map-dir", "--action", "--config"):
                    self.assertIn(flag, m.argv)
                self.assertIn(redis.url, m.argv)
                self.assertEqual(m.alerts(), [])
                h.wait_for(lambda: "listening" in m.log(), 5)
                self.assertEqual(m.stop(), 0)
                self.assertFalse(m.running())

    def test_early_exit_is_a_clear_error(self):
        m = h.Milter(["--fail"], binary=self.binary, dir=self.dir)
        with self.assertRaises(h.HarnessError) as cm:
            m.start()
        self.assertIn("exited with code 3", str(cm.exception))
        self.assertIn("failing on purpose", str(cm.exception))

    def test_missing_binary_is_a_clear_error(self):
        old = os.environ.get("COMPD_BUILD_DIR")
        os.environ["COMPD_BUILD_DIR"] = self.dir
        try:
            with self.assertRaises(h.HarnessError) as cm:
                h.Milter([])
            self.assertIn("compd-milter binary not found", str(cm.exception))
        finally:
            if old is None:
                del os.environ["COMPD_BUILD_DIR"]
            else:
                os.environ["COMPD_BUILD_DIR"] = old


class HelpersTest(unittest.TestCase):
    def test_miltertest_runs_scripts(self):
        code, out = h.miltertest('print("lua " .. port)', 1234)
        self.assertEqual(code, 0, out)
        self.assertIn("lua 1234", out)

    def test_free_port_and_wait_for(self):
        port = h.free_port()
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
        self.assertEqual(h.wait_for(lambda: 42, 1), 42)
        with self.assertRaises(TimeoutError):
            h.wait_for(lambda: False, 0.1, what="nothing")

    def test_missing_program_names_the_package(self):
        with self.assertRaises(h.HarnessError) as cm:
            h.require_programs("redis-server", "no-such-program-compd")
        self.assertIn("no-such-program-compd", str(cm.exception))
        self.assertIn("install-deps.sh", str(cm.exception))


if __name__ == "__main__":
    h.main()
