#!/usr/bin/env python3
"""LogReader on the logs real MTAs write: the suite's Postfix (its maillog_file) and Exim
4.96 (its mainlog, with +received_recipients +subject +incoming_port). Mail goes in with
swaks, authenticated and not; bench/logs_dump prints what the reader makes of each log,
and we assert what replay and history import will see: account, client address, HELO
(Exim; Postfix only logs it with a header_checks WARN line, which this Postfix has),
sender, recipients, size, subject, and that mail without an account is counted, not read.

Then `mapctl replay` on the real Exim mainlog reacts to a test message as the mailop
thread's (the real Postfix maillog is replayed in replay_live_test.py, against the live
milter's reactions). HandWrittenReplayTest replays hand-written logs of both formats as
logrotate leaves them: rotated, compressed, given out of order, a message and a
new-networks window across New Year and across files, other programs' lines and garbage.

Also a smoke run of bench/logs_bench in each mode (no speed asserted).

Run: python3 tests/logs_test.py (as root; needs build/logs_dump and build/logs_bench, or
COMPD_BUILD_DIR).
"""

import datetime
import gzip
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import exim_harness as eh  # noqa: E402

USERS = {"alice@customer.example": "pw-alice", "bob@customer.example": "pw-bob",
         "carol@customer.example": "pw-carol"}


def logs_dump(*args):
    """(messages, stats) as logs_dump prints them."""
    r = subprocess.run([h.compd_binary("logs_dump")] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise AssertionError("logs_dump %s: exit %d\n%s" % (args, r.returncode,
                                                             r.stderr.decode()))
    lines = [json.loads(line) for line in r.stdout.decode().splitlines()]
    return lines[:-1], lines[-1]["stats"]


class Mixin:
    def assert_rotation_changes_nothing(self, path, messages):
        """The same log cut in two, the older half gzipped as logrotate leaves it, given
        newest first: the same messages (only their origin differs)."""
        with open(path, "rb") as f:
            lines = f.read().splitlines(keepends=True)
        half = len(lines) // 2
        d = h.temp_dir("logs")
        with gzip.open(os.path.join(d, "log.1.gz"), "wb") as f:
            f.writelines(lines[:half])
        with open(os.path.join(d, "log"), "wb") as f:
            f.writelines(lines[half:])
        rotated, _ = logs_dump(os.path.join(d, "log"), os.path.join(d, "log.1.gz"))

        def strip(ms):
            return [{k: v for k, v in m.items() if k != "origin"} for m in ms]

        # Messages completed in the same log second may come out in either order (the
        # reader promises non-decreasing time, not a tie order across files).
        def canonical(ms):
            return sorted(strip(ms), key=lambda m: json.dumps(m, sort_keys=True))
        times = [m["time_ms"] for m in rotated]
        self.assertEqual(times, sorted(times))
        self.assertEqual(canonical(rotated), canonical(messages))

    def by_account(self, messages, account):
        found = [m for m in messages if m["account"] == account]
        self.assertEqual(len(found), 1, "messages of %s in %s" % (account, messages))
        return found[0]

    def assert_sent(self, result):
        self.assertEqual(result.code, 0, "swaks: %s\n%s" % (result.transcript, self.diag()))

    def send_three(self, auth_port, plain_port, alice_subject, bob_subject):
        """alice (AUTH LOGIN, two recipients) and bob (AUTH PLAIN, one) submit on
        auth_port; a newsletter comes in without AUTH on plain_port."""
        self.assert_sent(h.swaks(auth_port, ["one@remote.example", "two@remote.example"],
                                 sender="alice@customer.example", user="alice@customer.example",
                                 password="pw-alice", auth="LOGIN", helo="pc-alice.example",
                                 subject=alice_subject))
        self.assert_sent(h.swaks(auth_port, "three@remote.example",
                                 sender="bob@customer.example", user="bob@customer.example",
                                 password="pw-bob", auth="PLAIN", helo="pc-bob.example",
                                 subject=bob_subject))
        self.assert_sent(h.swaks(plain_port, "four@remote.example",
                                 sender="news@list.example", helo="list.example",
                                 subject="Not authenticated"))


class PostfixLogTest(Mixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = None
        cls.work = h.temp_dir("logs")
        checks = os.path.join(cls.work, "header_checks")
        with open(checks, "w") as f:
            f.write("/^Subject:/ WARN\n")
        cls.stack = h.MailStack(users=USERS, main={"header_checks": "regexp:" + checks}).start()

    @classmethod
    def tearDownClass(cls):
        if cls.stack:
            cls.stack.close()

    def diag(self):
        return self.stack.logs()

    def test_submissions_read_back_from_the_maillog(self):
        pf = self.stack.postfix
        self.send_three(self.stack.submission_port, self.stack.smtp_port,
                        "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= replay", "Second one")
        # All three delivered to the sink and gone from the queue.
        h.wait_for(lambda: len(re.findall(r": removed$", pf.log(), re.M)) >= 3, 20,
                   what="three messages removed from the queue")
        messages, stats = logs_dump(pf.maillog)
        self.assertEqual(len(messages), 2, "%s\n%s" % (messages, self.diag()))
        a = self.by_account(messages, "alice@customer.example")
        self.assertEqual(a["client_ip"], "127.0.0.1")
        self.assertEqual(a["helo"], "pc-alice.example")  # from the WARN line
        self.assertEqual(a["sender"], "alice@customer.example")
        self.assertEqual(a["recipients"], ["one@remote.example", "two@remote.example"])
        self.assertEqual(a["subject"], "Gr\u00fc\u00dfe replay")  # decoded, as Exim logs it
        self.assertEqual(a["source"], "postfix-log")
        self.assertEqual(a["node"], "mx", self.diag())
        m = re.search(r"%s: from=<alice@customer\.example>, size=(\d+), nrcpt=2" %
                      re.escape(a["queue_id"]), pf.log())
        self.assertTrue(m, self.diag())
        self.assertEqual(a["size"], int(m.group(1)))
        self.assertGreater(a["size"], 100)
        self.assertTrue(a["message_id"])
        b = self.by_account(messages, "bob@customer.example")
        self.assertEqual(b["recipients"], ["three@remote.example"])
        self.assertEqual(b["subject"], "Second one")
        self.assertLessEqual(a["time_ms"], b["time_ms"])
        self.assertEqual(stats["total"]["unauthenticated"], 1)
        self.assertEqual(stats["total"]["not_understood"], 0, stats["samples"])
        self.assertEqual(stats["files"][0]["format"], "postfix")
        self.assert_rotation_changes_nothing(pf.maillog, messages)


class EximLogTest(Mixin, h.ServersTestCase):
    @classmethod
    def start_servers(cls):
        cls.sink = cls.started(h.SmtpSink().start())
        # Nothing listens at the policy port: the documented snippets let mail through.
        cls.exim = cls.started(eh.Exim(cls.sink.port, USERS,
                                       "inet:127.0.0.1:%d" % h.free_port()).start())

    def diag(self):
        return self.exim.logs()

    def test_submissions_read_back_from_the_mainlog(self):
        self.send_three(self.exim.port, self.exim.port, 'Say "hi" \\ now',
                        "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= second")
        h.wait_for(lambda: len(re.findall(r" Completed", self.exim.mainlog())) >= 3, 20,
                   what="three messages completed")
        messages, stats = logs_dump(self.exim.mainlog_path)
        self.assertEqual(len(messages), 2, "%s\n%s" % (messages, self.diag()))
        a = self.by_account(messages, "alice@customer.example")
        self.assertEqual(a["client_ip"], "127.0.0.1")
        self.assertEqual(a["helo"], "pc-alice.example")
        self.assertEqual(a["sender"], "alice@customer.example")
        self.assertEqual(a["recipients"], ["one@remote.example", "two@remote.example"])
        self.assertEqual(a["subject"], 'Say "hi" \\ now')
        self.assertEqual(a["source"], "exim-log")
        self.assertRegex(a["message_id"], r"^[^<>]+@[^<>]+$")
        self.assertRegex(a["queue_id"], r"^[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}$")
        m = re.search(r"%s <= .* S=(\d+)" % re.escape(a["queue_id"]), self.exim.mainlog())
        self.assertTrue(m, self.diag())
        self.assertEqual(a["size"], int(m.group(1)))
        self.assertGreater(a["size"], 100)
        b = self.by_account(messages, "bob@customer.example")
        self.assertEqual(b["recipients"], ["three@remote.example"])
        self.assertEqual(b["helo"], "pc-bob.example")
        self.assertEqual(b["subject"], "Gr\u00fc\u00dfe second")
        self.assertLessEqual(a["time_ms"], b["time_ms"])
        self.assertEqual(stats["total"]["unauthenticated"], 1)
        self.assertEqual(stats["total"]["not_understood"], 0, stats["samples"])
        self.assertEqual(stats["files"][0]["format"], "exim")
        self.assert_rotation_changes_nothing(self.exim.mainlog_path, messages)

        # Then a test message as the mailop thread's, and mapctl replay on the real mainlog.
        self.assert_sent(h.swaks(self.exim.port, "toewebvastsatw@gmx.example",
                                 sender="carol@customer.example", user="carol@customer.example",
                                 password="pw-carol", auth="LOGIN", helo="localhost",
                                 subject="ZYaeD, X"))
        h.wait_for(lambda: len(re.findall(r" Completed", self.exim.mainlog())) >= 4, 20,
                   what="four messages completed")
        reactions, summary = replay("--json", self.exim.mainlog_path)
        self.assertEqual([(r["account"], r["signals"]) for r in reactions],
                         [("carol@customer.example", ["test_message"])], self.diag())
        ev = reactions[0]["evidence"]["test_message"]
        self.assertEqual((ev["recipient"], ev["helo_kind"], ev["subject"]),
                         ("toewebvastsatw@gmx.example", "localhost", "ZYaeD, X"), ev)
        self.assertLessEqual(ev["size"], 2000, ev)  # S= of a short swaks message
        self.assertEqual(ev["points"], 7, ev)  # small 2, HELO localhost 2, random subject 3
        self.assertEqual((summary["messages"], summary["unauthenticated"],
                          summary["lines_skipped"]), (3, 1, 0), summary)



def replay(*args):
    """`mapctl replay --no-map` (UTC): (reactions, summary) with --json, else the text."""
    r = h.mapctl("replay", "--no-map", *args, env={"TZ": "UTC"})
    if r.returncode != 0:
        raise AssertionError("mapctl replay %s: exit %d\n%s%s" % (args, r.returncode, r.stdout,
                                                                   r.stderr))
    if "--json" not in args:
        return r.stdout
    summary = json.loads(r.stderr.strip().splitlines()[-1])["summary"]
    return [json.loads(line) for line in r.stdout.splitlines()], summary


def set_mtime(path, iso):
    t = datetime.datetime.fromisoformat(iso).replace(tzinfo=datetime.timezone.utc).timestamp()
    os.utime(path, (t, t))


class HandWrittenReplayTest(unittest.TestCase):
    """mapctl replay on hand-written logs of both formats, as logrotate leaves them: rotated
    (name.1, name.2.gz), compressed, given out of order, a message and a new-networks
    window across New Year and across files, lines from other programs and garbage,
    counted and sampled with file:line. No servers."""

    def exim(self, when, qid, account, ip, rcpts, helo="pc", subject="Minutes"):
        return ('%s %s <= %s H=(%s) [%s] P=esmtpsa A=login:%s S=%d T="%s" from <%s> '
                'for %s\n' % (when, qid, account, helo, ip, account,
                               800 if helo == "localhost" else 5000, subject, account,
                               " ".join(rcpts)))

    def test_exim_rotated_compressed_across_new_year(self):
        d = h.temp_dir("logs")
        carol = "carol@customer.example"
        ext = ["a@elsewhere.example", "b@elsewhere.example"]
        with gzip.open(os.path.join(d, "mainlog.2.gz"), "wt") as f:
            f.write("2025-12-31 22:00:00 exim 4.96 daemon started: pid=100, -q30m\n")
            f.write(self.exim("2025-12-31 23:10:00", "1aaaaa-000001-AA", carol, "198.51.100.5",
                              ext))
        with open(os.path.join(d, "mainlog.1"), "w") as f:
            f.write(self.exim("2025-12-31 23:50:00", "1aaaab-000001-AA", carol, "203.0.113.5",
                              ext))
            # The mailop thread's test message: HELO localhost, small, random subject.
            f.write(self.exim("2025-12-31 23:55:00", "1nh9qH-0008OE-RW",
                              "winfield@customer.example", "79.10.109.221",
                              ["toewebvastsatw@gmx.example"], helo="localhost",
                              subject="ZYaeD, X"))
            f.write("\x01\x02 binary junk \xff\n")
        with open(os.path.join(d, "mainlog"), "w") as f:
            f.write("2026-01-01 00:05:00 1aaaac-000001-AA <= news@list.example "
                    "H=list.example [192.0.2.7] P=esmtps S=20000 for a@customer.example\n")
            f.write(self.exim("2026-01-01 00:05:00", "1aaaad-000001-AA", carol, "192.0.2.5",
                              ext))
            f.write("Jan  1 00:06:00 mx1 CRON[4000]: (root) CMD (true)\n")
            f.write(self.exim("2026-01-01 00:20:00", "1aaaae-000001-AA", carol, "45.67.0.5",
                              ext))
        files = [os.path.join(d, n) for n in ("mainlog", "mainlog.2.gz", "mainlog.1")]
        reactions, summary = replay("--json", *files)
        self.assertEqual([(r["account"], r["signals"], r["time"]) for r in reactions], [
            ("winfield@customer.example", ["test_message"], "2025-12-31T23:55:00.000Z"),
            (carol, ["new_networks"], "2026-01-01T00:20:00.000Z")], reactions)
        self.assertEqual(reactions[0]["origin"], "mainlog.1:2")
        nets = reactions[1]["evidence"]["new_networks"]["new"]
        self.assertEqual([n["group"] for n in nets],
                         ["203.0.0.0/16", "192.0.0.0/16", "45.67.0.0/16"])
        self.assertEqual(nets[0]["first_seen"], "2025-12-31T23:50:00.000Z")
        self.assertEqual((summary["messages"], summary["unauthenticated"]), (5, 1), summary)
        self.assertEqual(summary["lines"], 9, summary)
        self.assertEqual(summary["lines_skipped"], 2, summary)  # junk and the CRON line
        text = replay(*files)
        self.assertIn("skipped %s:3: " % os.path.join(d, "mainlog.1"), text)
        self.assertIn("skipped %s:3: " % os.path.join(d, "mainlog"), text)
        self.assertIn("Nothing live was changed", text)

    def test_postfix_message_split_across_rotated_files_and_new_year(self):
        d = h.temp_dir("logs")
        qid = "4Lk0Xb5Xq8z9sWp"
        older = [
            "Dec 31 23:59:58 mx1 postfix/submission/smtpd[2001]: connect from "
            "unknown[203.0.113.9]",
            "Dec 31 23:59:58 mx1 postfix/submission/smtpd[2001]: %s: client=unknown"
            "[203.0.113.9], sasl_method=LOGIN, sasl_username=winfield@customer.example" % qid,
            "Dec 31 23:59:58 mx1 postfix/cleanup[2002]: %s: warning: header Subject: ZYaeD, X "
            "from unknown[203.0.113.9]; from=<winfield@customer.example> "
            "to=<toewebvastsatw@gmx.example> proto=ESMTP helo=<localhost>" % qid,
            "Dec 31 23:59:59 mx1 postfix/qmgr[900]: %s: from=<winfield@customer.example>, "
            "size=735, nrcpt=1 (queue active)" % qid,
            "Dec 31 23:59:59 mx1 dovecot: imap-login: Login: user=<winfield@customer.example>",
            "\x01\x02 binary junk",
        ]
        newer = [
            # The delivery, with the only mention of the recipient, after New Year.
            "Jan  1 00:00:01 mx1 postfix/smtp[2003]: %s: to=<toewebvastsatw@gmx.example>, "
            "relay=mx.gmx.example[192.0.2.99]:25, delay=2, status=sent (250 OK)" % qid,
            "Jan  1 00:00:01 mx1 postfix/qmgr[900]: %s: removed" % qid,
            "Jan  1 00:00:02 mx1 CRON[4000]: (root) CMD (true)",
        ]
        with gzip.open(os.path.join(d, "maillog.1.gz"), "wt") as f:
            f.write("\n".join(older) + "\n")
        with open(os.path.join(d, "maillog"), "w") as f:
            f.write("\n".join(newer) + "\n")
        # Classic stamps have no year: each file's modification time places them.
        set_mtime(os.path.join(d, "maillog.1.gz"), "2026-01-01T00:00:00")
        set_mtime(os.path.join(d, "maillog"), "2026-01-01T06:00:00")
        reactions, summary = replay("--json", os.path.join(d, "maillog"),
                                    os.path.join(d, "maillog.1.gz"))
        self.assertEqual(len(reactions), 1, reactions)
        r = reactions[0]
        self.assertEqual((r["account"], r["signals"], r["time"], r["queue_id"], r["client_ip"]),
                         ("winfield@customer.example", ["test_message"],
                          "2025-12-31T23:59:59.000Z", qid, "203.0.113.9"))
        ev = r["evidence"]["test_message"]
        self.assertEqual((ev["recipient"], ev["helo"], ev["subject"], ev["size"]),
                         ("toewebvastsatw@gmx.example", "localhost", "ZYaeD, X", 735))
        self.assertEqual(summary["messages"], 1, summary)
        self.assertEqual(summary["lines_skipped"], 1, summary)  # the junk; CRON is not mail
        self.assertEqual(summary["lines"], 9, summary)


class LogsBenchSmokeTest(unittest.TestCase):
    """bench/logs_bench still reads every line it generates (it exits 1 otherwise), in
    each of its modes. No speed is asserted."""

    def test_every_mode_reads_its_whole_log(self):
        d = h.temp_dir("logs")
        for mode in ([], ["--no-for", "--gzip"], ["--format", "postfix"],
                     ["--format", "postfix", "--gzip"]):
            r = subprocess.run([h.compd_binary("logs_bench"), "--messages", "3000", "--dir", d] +
                               mode, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=120)
            out = r.stdout.decode()
            self.assertEqual(r.returncode, 0, "%s: %s" % (mode, out))
            m = re.search(r"messages read=(\d+) .*unauthenticated=(\d+), not understood=0", out)
            self.assertTrue(m, out)
            self.assertEqual(int(m.group(1)) + int(m.group(2)), 3000, out)
            self.assertGreater(int(m.group(1)), 2000, out)
        self.assertEqual(os.listdir(d), [])  # it removes its log

if __name__ == "__main__":
    h.main()
