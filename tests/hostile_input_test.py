#!/usr/bin/env python3
"""Hostile input: huge headers, 1,000 recipients, NUL bytes, CR/LF inside fields, invalid
UTF-8, deeply nested comments. Everything is bounded in time, nothing crashes, and what is
recorded stays one JSON object per line with the control characters escaped.
"""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import stack_util as su  # noqa: E402
from milter_client import MilterClient  # noqa: E402
from milter_protocol_test import PRELUDE, add_entries, events  # noqa: E402

PREFIX = "compd:"
LISTED = "listed@bad.example"


class HostileInputTest(h.ServersTestCase):
    @classmethod
    def start_servers(cls):
        h.require_programs("miltertest", "redis-server", "swaks")
        cls.redis = cls.started(h.RedisServer().start())
        add_entries(cls.redis, exact=[LISTED])
        cls.milter = cls.started(h.Milter.standard(cls.redis).start())

    def account(self):
        return su.test_account(self)

    def run_lua(self, body, timeout=60):
        code, out = h.miltertest(PRELUDE + body, self.milter.port,
                                 defines={"account": self.account()}, timeout=timeout)
        self.assertEqual(code, 0, "miltertest failed:\n%s\n--- milter log:\n%s" %
                         (out[-4000:], self.milter.log()[-4000:]))
        self.assertTrue(self.milter.running(), "compd-milter died:\n" + self.milter.log())
        return out

    MAIL = """
        mt.macro(conn, SMFIC_MAIL, "{auth_authen}", account)
        mt.mailfrom(conn, "<" .. account .. ">")
        if mt.getreply(conn) ~= SMFIR_CONTINUE then error("MAIL") end
    """

    def test_a_thousand_recipients_one_listed(self):
        self.run_lua(self.MAIL + """
            local refused = 0
            for i = 1, 1000 do
              local rcpt = "<user" .. i .. "@fine.example>"
              if i == 777 then rcpt = "<listed@bad.example>" end
              mt.rcptto(conn, rcpt)
              if mt.getreply(conn) == SMFIR_REPLYCODE then refused = refused + 1 end
            end
            if refused ~= 1 then error("refused " .. refused .. " recipients, expected 1") end
            mt.disconnect(conn)
        """)
        got = events(self.redis, 1, self.account())
        self.assertEqual(len(got), 1)

    def test_control_characters_and_invalid_utf8_are_escaped(self):
        self.run_lua("""
            mt.disconnect(conn)
            conn = mt.connect("inet:" .. port .. "@127.0.0.1", 40, 0.05)
            mt.conninfo(conn, "evil\\r\\nname.example", "203.0.113.66")
            mt.helo(conn, "helo\\r\\nX-Injected: yes")
        """ + self.MAIL + """
            mt.rcptto(conn, "<listed@bad.example>")
            if mt.getreply(conn) ~= SMFIR_REPLYCODE then error("RCPT") end
            mt.rcptto(conn, "<a\\r\\nb@bad.example>")
            mt.data(conn)
            mt.header(conn, "Subject", "bad \\255\\254 utf8 \\r\\n and nul \\0 after")
            mt.eoh(conn)
            mt.eom(conn)
            mt.disconnect(conn)
        """)
        got = events(self.redis, 1, self.account())
        self.assertEqual(len(got), 1)
        e = got[0]
        self.assertEqual(e["client_name"], "evil\r\nname.example")  # kept, but escaped in JSON
        self.assertNotIn("\n", e["helo"])
        self.assertIn("\ufffd", e["subject"])
        # The alert log stays one JSON object per line.
        with open(self.milter.alert_log, encoding="utf-8") as f:
            lines = f.read().splitlines()
        mine = [json.loads(l) for l in lines if self.account() in l]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["client_name"], "evil\r\nname.example")
        for line in self.milter.log().splitlines():
            self.assertNotIn("\r", line)

    def test_header_over_64k_is_checked(self):
        # libmilter refuses commands over 64 KiB by default and drops the connection; with
        # milter_default_action = accept the message would then pass unchecked. Postfix
        # sends headers up to header_size_limit (100 KiB): compd-milter takes up to 1 MiB.
        many = ", ".join("user%d@fine.example" % i for i in range(4000)) + ", " + LISTED
        self.assertGreater(len(many), 70000)
        with MilterClient(self.milter.port) as c:
            c.negotiate()
            c.connect("client.example", "203.0.113.9")
            c.helo("helo")
            c.macro("M", {"{auth_authen}": self.account()})
            self.assertEqual(c.mail("<%s>" % self.account()), "c")
            self.assertEqual(c.rcpt("<friend@fine.example>"), "c")
            c.data()
            c.header("To", many)
            c.eoh()
            self.assertEqual(c.eom(), "y")
            self.assertIn("ref", c.last_text)
        self.assertEqual(events(self.redis, 1, self.account())[0]["where"], "header:to")

    def test_oversized_command_is_refused_and_the_milter_lives_on(self):
        # Over libmilter's data-size limit: libmilter drops that connection; the daemon and
        # every other connection go on.
        huge = "x" * (2 * 1024 * 1024)
        with MilterClient(self.milter.port) as c:
            c.negotiate()
            c.connect("client.example", "203.0.113.9")
            c.helo("helo")
            c.macro("M", {"{auth_authen}": self.account()})
            c.mail("<%s>" % self.account())
            c.rcpt("<friend@fine.example>")
            c.data()
            with self.assertRaises((ConnectionError, OSError)):
                c.header("To", huge)
                c.eoh()
                c.eom()
        self.assertTrue(self.milter.running(), self.milter.log())
        self.run_lua(self.MAIL + """
            mt.rcptto(conn, "<listed@bad.example>")
            if mt.getreply(conn) ~= SMFIR_REPLYCODE then error("RCPT after the big one") end
            mt.disconnect(conn)
        """)


class BadSocketSettingsTest(unittest.TestCase):
    """A bad socket setting is a configuration error naming the setting (exit 2), never an
    abort, whatever the number in it."""

    def check_config(self, *args):
        return subprocess.run([h.compd_binary("compd-milter"), "--check-config", "--config",
                               os.devnull] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=10)

    def test_bad_socket_specs_exit_2_naming_the_setting(self):
        huge = "99999999999999999999"
        for args, message in [
                (["--socket", "inet:%s@127.0.0.1" % huge],
                 "socket: 'inet:%s@127.0.0.1': port must be a number from 1 to 65535" % huge),
                (["--socket", "inet:-1@127.0.0.1"], "socket: 'inet:-1@127.0.0.1': port"),
                (["--socket", "inet:@127.0.0.1"], "socket: 'inet:@127.0.0.1': port"),
                (["--socket", "tcp:25"], "socket: 'tcp:25': unknown kind 'tcp'"),
                (["--socket", "unix:run/m.sock"], "socket: 'unix:run/m.sock': the unix socket "
                                                  "path must be absolute"),
                (["--socket-mode", "rw"], "socket_mode: 'rw' is not an octal mode"),
                (["--policy-socket", "inet:%s" % huge], "policy_socket: 'inet:%s': port" % huge),
                (["--http-listen", "127.0.0.1:%s" % huge],
                 "http_listen: '127.0.0.1:%s' has no valid port" % huge),
                (["--http-listen", "[::1:80"], "http_listen: '[::1:80' has an unclosed"),
                (["--http-listen", "localhost"], "http_listen: 'localhost' is not HOST:PORT")]:
            with self.subTest(args=args):
                r = self.check_config(*args)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn(message, r.stderr)
                self.assertNotIn("terminate", r.stderr)


class PostfixHostileTest(h.ServersTestCase):
    """The same through a real Postfix: a 1 MB To header, 1,000 recipients."""

    USER, PASSWORD = "mallory@customer.example", "pw-mallory"

    @classmethod
    def start_servers(cls):
        cls.redis = cls.started(h.RedisServer().start())
        add_entries(cls.redis, exact=[LISTED])
        cls.milter = cls.started(h.Milter.standard(cls.redis).start())
        cls.stack = cls.started(h.MailStack(
            users={cls.USER: cls.PASSWORD}, smtpd_milters=cls.milter.postfix_spec,
            milter_macros={"mail": "i {auth_type} {auth_authen}"},
            # Let whole 90 KB address headers through to the milter.
            main={"header_address_token_limit": "100000"}).start())

    def send(self, to, **kw):
        return h.swaks(self.stack.submission_port, to, sender=self.USER, user=self.USER,
                       password=self.PASSWORD, timeout=120, **kw)

    def test_thousand_recipients(self):
        rcpts = ["r%d@fine.example" % i for i in range(999)] + [LISTED]
        subject = "thousand %s" % time.monotonic()
        r = self.send(rcpts, subject=subject, headers=["To: <r1@fine.example>"])
        self.assertEqual(r.code, 0, r.transcript[-3000:])
        # Postfix delivers in batches of 50 recipients: gather them all.
        got = []

        def all_there():
            got[:] = [r for m in self.stack.sink.find(lambda m: m.subject == subject)
                      for r in m.rcpts]
            return len(got) >= 999
        h.wait_for(all_there, 60, what="999 delivered recipients")
        self.assertEqual(len(got), 999)
        self.assertNotIn(LISTED, got)

    def send_data(self, headers, subject):
        """Sends a message whose header block is given raw (folded by us)."""
        data = os.path.join(h.temp_dir("hostile"), "msg.eml")
        with open(data, "w") as f:
            f.write("From: %s\r\n%sSubject: %s\r\n\r\nhello\r\n" %
                    (self.USER, headers, subject))
        return self.send("friend@fine.example", data="@" + data)

    @staticmethod
    def fold(text, width=70):
        """Folds after commas (or anywhere, for text without them) every ~width bytes."""
        out, line = [], ""
        for part in (text.split(", ") if ", " in text else
                     [text[i:i + width] for i in range(0, len(text), width)]):
            sep = ", " if ", " in text else ""
            if line and len(line) + len(part) > width:
                out.append(line + sep.rstrip())
                line = ""
            line += (sep if line else "") + part
        out.append(line)
        return "\r\n\t".join(out)

    def test_large_to_header_with_a_listed_address_inside(self):
        # 90 KB of addresses, folded, under Postfix's 100 KiB header_size_limit. (Postfix
        # itself drops address tokens past header_address_token_limit, 10240 by default,
        # before any milter sees them; the listed address sits well inside that.)
        many = ["user%d@fine.example" % i for i in range(3800)]
        many[1000] = LISTED
        self.assertGreater(len(", ".join(many)), 80000)
        r = self.send_data("To: %s\r\n" % self.fold(", ".join(many)), "large")
        self.assertEqual(r.code, 26, r.transcript[-2000:])

    def test_deeply_nested_comments_and_garbage(self):
        nested = "(" * 20000 + ")" * 20000
        headers = ("To: %s <listed@bad.example>\r\n" % self.fold(nested) +
                   "Cc: ((((((((((( unterminated <<<< \"quoted , @@@ ;;; :::\r\n"
                   "Cc: =?utf-8?B?////?= <x@y>, =?bogus?Q?=ZZ?= <@@>\r\n")
        r = self.send_data(headers, "nested")
        self.assertEqual(r.code, 26, r.transcript[-2000:])
        self.assertTrue(self.milter.running(), self.milter.log())

    def test_one_megabyte_to_header(self):
        big = ", ".join("u%d@fine.example" % i for i in range(60000))
        self.assertGreater(len(big), 1000000)
        subject = "huge %s" % time.monotonic()
        data = os.path.join(h.temp_dir("hostile"), "huge.eml")
        with open(data, "w") as f:
            f.write("From: %s\r\nTo: %s, %s\r\nSubject: %s\r\n\r\nhello\r\n" %
                    (self.USER, big, LISTED, subject))
        r = self.send("friend@fine.example", data="@" + data)
        # Postfix cuts headers at header_size_limit (100 KiB), so the listed address at the
        # end never reaches any filter: delivered. What matters: an answer, in bounded
        # time, and a milter that is still there.
        self.assertIn(r.code, (0, 26), r.transcript[-2000:])
        self.assertTrue(self.milter.running(), self.milter.log())
        r = self.send(LISTED)
        self.assertEqual(r.code, 24, r.transcript[-2000:])


if __name__ == "__main__":
    h.main()
