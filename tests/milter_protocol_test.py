#!/usr/bin/env python3
"""Protocol level: the real compd-milter driven by a real milter client (Debian's miltertest).

What an MTA sees of the filter: what it negotiates, how it answers each step for
authenticated and unauthenticated sessions, per-recipient refusals with their SMTP code,
message-level refusals and quarantine at end of message, and the events it records.
Note: miltertest drops {auth_authen} unless mt.helo() was sent first.
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import stack_util as su  # noqa: E402

PREFIX = "compd:"

# A Lua prelude: connect, negotiate like a current MTA, connection info, HELO.
PRELUDE = """
local conn = mt.connect("inet:" .. port .. "@127.0.0.1", 40, 0.05)
if conn == nil then error("cannot connect to the milter") end
local function expect(what, want)
  local got = mt.getreply(conn)
  if got ~= want then
    error(what .. ": expected reply " .. string.char(want) .. ", got " .. string.char(got))
  end
end
-- After DATA: the header fields ({name, value} pairs), end of headers and of message;
-- the milter's reply to the end of message must be `want`; then the connection closes.
local function finish(headers, want)
  for _, hd in ipairs(headers) do mt.header(conn, hd[1], hd[2]) end
  mt.eoh(conn)
  mt.eom(conn)
  expect("EOM", want)
  mt.disconnect(conn)
end
if mt.conninfo(conn, "client.example", "203.0.113.9") ~= nil then error("conninfo") end
if mt.helo(conn, "botnet-helo") ~= nil then error("helo") end
"""

# `account` is defined per test (-D account=...), so each test finds its own events in
# the shared stream.
AUTH_MAIL = """
mt.macro(conn, SMFIC_MAIL, "{auth_authen}", account, "{auth_type}", "LOGIN")
if mt.mailfrom(conn, "<" .. account .. ">") ~= nil then error("mailfrom") end
expect("MAIL", SMFIR_CONTINUE)
"""


def add_entries(redis, exact=(), patterns=()):
    su.add_listed(redis, *exact, patterns=patterns, prefix=PREFIX)


def events(redis, n, account_prefix, timeout=10):
    """Waits until the stream holds at least n events of accounts starting with
    account_prefix; returns those as dicts."""
    got = []

    def enough():
        got[:] = [e for e in su.stream_events(redis, PREFIX)
                  if e.get("account", "").startswith(account_prefix)]
        return len(got) >= n
    try:
        h.wait_for(enough, timeout, what="%d events in the stream" % n)
    except TimeoutError:
        raise AssertionError("expected %d events in the stream, found %d: %s" %
                             (n, len(got), [e.get("account") for e in got]))
    return got


class ProtocolTest(unittest.TestCase):
    # One milter per action, shared by the tests: libmilter notices a stop request only
    # every 5 seconds, so starting one per test would make the suite slow.
    @classmethod
    def setUpClass(cls):
        h.require_programs("miltertest", "redis-server")
        cls.redis = h.RedisServer().start()
        add_entries(cls.redis, exact=["listed@bad.example"],
                    patterns=["/^probe[0-9]+@test\\.example$/i"])
        cls.milters = {}

    @classmethod
    def tearDownClass(cls):
        h.close_all([cls.redis] + list(cls.milters.values()))  # the milters all at once

    def account(self):
        return su.test_account(self)

    def events(self, n):
        return events(self.redis, n, self.account())

    def run_milter(self, script, action="reject"):
        m = self.milters.get(action)
        if m is None:
            m = h.Milter.standard(self.redis, action=action).start()
            self.milters[action] = m
        code, out = h.miltertest(PRELUDE + script, m.port, defines={"account": self.account()})
        self.milter_log = m.log()
        self.assertEqual(code, 0, "miltertest failed:\n%s\n--- milter log:\n%s" %
                         (out, self.milter_log))
        return out

    def test_negotiates_only_what_it_needs(self):
        # No body, no unknown commands, no replies where the answer is always "continue";
        # DATA stays a replied step (else Postfix stalls ~40 ms per message over TCP).
        self.run_milter("""
            for _, o in ipairs({SMFIP_NOBODY, SMFIP_NOUNKNOWN, SMFIP_NR_HDR}) do
              if not mt.test_option(conn, o) then error("option not requested: " .. o) end
            end
            for _, o in ipairs({SMFIP_NODATA, SMFIP_NR_DATA, SMFIP_NR_RCPT, SMFIP_NR_MAIL}) do
              if mt.test_option(conn, o) then error("option must not be requested: " .. o) end
            end
            if not mt.test_action(conn, SMFIF_QUARANTINE) then error("quarantine action") end
            mt.disconnect(conn)
        """)

    def test_unauthenticated_session_is_accepted_at_mail(self):
        self.run_milter("""
            if mt.mailfrom(conn, "<someone@outside.example>") ~= nil then error("mailfrom") end
            expect("MAIL", SMFIR_ACCEPT)
            mt.disconnect(conn)
        """)
        time.sleep(0.3)
        self.assertEqual([e for e in (json.loads(f[b"event"] if b"event" in f else f["event"])
                                      for _, f in self.redis.stream(PREFIX + "events"))
                          if e["sender"] == "someone@outside.example"], [])

    def test_listed_recipient_refused_others_continue(self):
        self.run_milter(AUTH_MAIL + """
            if mt.rcptto(conn, "<friend@fine.example>") ~= nil then error("rcpt") end
            expect("RCPT unlisted", SMFIR_CONTINUE)
            if mt.rcptto(conn, "<LISTED@Bad.Example>") ~= nil then error("rcpt") end
            expect("RCPT listed", SMFIR_REPLYCODE)
            if mt.rcptto(conn, "<probe12@TEST.example>") ~= nil then error("rcpt") end
            expect("RCPT pattern", SMFIR_REPLYCODE)
            if mt.data(conn) ~= nil then error("data") end
            expect("DATA", SMFIR_CONTINUE)
            finish({{"Subject", "wFd2, MkRWa2 A"}, {"To", "<friend@fine.example>"}},
                   SMFIR_CONTINUE)
        """)
        # Two hits, and the message itself looks like a credential test: one external
        # recipient, small (no SIZE=: its two header fields), a random subject.
        every = self.events(3)
        got = [e for e in every if e["type"] == "hit"]
        self.assertEqual(len(got), 2)
        signal = [e for e in every if e["type"] == "signal"]
        self.assertEqual([e["rule"] for e in signal], ["test_message"])
        evidence = json.loads(signal[0]["evidence"])["test_message"]
        self.assertEqual(evidence["subject"], "wFd2, MkRWa2 A")
        self.assertLess(evidence["size"], 100)
        by_rcpt = {e["recipient"]: e for e in got}
        exact = by_rcpt["LISTED@Bad.Example"]
        self.assertEqual(exact["entry"], "listed@bad.example")
        self.assertEqual(exact["entry_kind"], "exact")
        self.assertEqual(exact["where"], "envelope")
        self.assertEqual(exact["account"], self.account())
        self.assertEqual(exact["auth_type"], "LOGIN")
        self.assertEqual(exact["client_ip"], "203.0.113.9")
        self.assertEqual(exact["client_name"], "client.example")
        self.assertEqual(exact["helo"], "botnet-helo")
        self.assertEqual(exact["sender"], self.account())
        self.assertEqual(exact["action"], "reject")
        self.assertEqual(exact["subject"], "wFd2, MkRWa2 A")
        self.assertEqual(exact["source"], "milter")
        self.assertEqual(by_rcpt["probe12@TEST.example"]["entry_kind"], "pattern")
        self.assertEqual(by_rcpt["probe12@TEST.example"]["entry"],
                         "/^probe[0-9]+@test\\.example$/i")
        self.assertEqual(exact["txn_id"], by_rcpt["probe12@TEST.example"]["txn_id"])

    def test_header_hit_rejects_at_end_of_message(self):
        self.run_milter(AUTH_MAIL + """
            mt.rcptto(conn, "<friend@fine.example>")
            expect("RCPT", SMFIR_CONTINUE)
            mt.data(conn)
            -- miltertest cannot show the code of a final reply; the Postfix test checks 550.
            finish({{"To", "\\"Friend\\" <friend@fine.example>"},
                    {"Cc", "a@x.example,\\r\\n\\t\\"listed@bad.example\\" <b@y.example>"},
                    {"Message-ID", "<abc@botnet>"}}, SMFIR_REPLYCODE)
        """)
        got = self.events(1)
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["where"], "display-name")
        self.assertEqual(got[0]["recipient"], "listed@bad.example")
        self.assertEqual(got[0]["message_id"], "<abc@botnet>")

    def test_monitor_records_but_accepts(self):
        self.run_milter(AUTH_MAIL + """
            mt.rcptto(conn, "<listed@bad.example>")
            expect("RCPT", SMFIR_CONTINUE)
            mt.data(conn)
            finish({{"To", "listed@bad.example"}}, SMFIR_CONTINUE)
        """, action="monitor")
        got = self.events(2)
        self.assertEqual(sorted(e["where"] for e in got), ["envelope", "header:to"])
        self.assertTrue(all(e["action"] == "monitor" for e in got))

    def test_quarantine(self):
        self.run_milter(AUTH_MAIL + """
            mt.rcptto(conn, "<listed@bad.example>")
            expect("RCPT", SMFIR_CONTINUE)
            mt.data(conn)
            mt.eoh(conn)
            mt.eom(conn)
            if not mt.eom_check(conn, MT_QUARANTINE) then error("not quarantined") end
            mt.disconnect(conn)
        """, action="quarantine")
        self.assertEqual(self.events(1)[0]["action"], "quarantine")

    def test_tempfail_uses_451(self):
        self.run_milter(AUTH_MAIL + """
            mt.rcptto(conn, "<listed@bad.example>")
            expect("RCPT", SMFIR_REPLYCODE)
            mt.data(conn)
            finish({{"To", "listed@bad.example"}}, SMFIR_REPLYCODE)
        """, action="tempfail")

    def test_abort_twice_and_second_transaction(self):
        self.run_milter(AUTH_MAIL + """
            mt.rcptto(conn, "<listed@bad.example>")
            expect("RCPT", SMFIR_REPLYCODE)
            mt.abort(conn)
            mt.abort(conn)
            mt.macro(conn, SMFIC_MAIL, "{auth_authen}", account)
            mt.mailfrom(conn, "<" .. account .. ">")
            expect("MAIL again", SMFIR_CONTINUE)
            mt.rcptto(conn, "<listed@bad.example>")
            expect("RCPT again", SMFIR_REPLYCODE)
            mt.disconnect(conn)
        """)
        got = self.events(2)
        self.assertEqual(len(got), 2)
        self.assertNotEqual(got[0]["txn_id"], got[1]["txn_id"])

    def test_many_connections_at_once(self):
        # 20 concurrent connections, each with a listed and an unlisted recipient.
        script = "local conns = {}\n"
        script += """
            for i = 1, 20 do
              local c = mt.connect("inet:" .. port .. "@127.0.0.1", 40, 0.05)
              mt.conninfo(c, "c" .. i .. ".example", "198.51.100." .. i)
              mt.helo(c, "h" .. i)
              mt.macro(c, SMFIC_MAIL, "{auth_authen}", "many" .. i .. "-" .. account)
              mt.mailfrom(c, "<many" .. i .. "-" .. account .. ">")
              conns[i] = c
            end
            for i = 1, 20 do
              mt.rcptto(conns[i], "<listed@bad.example>")
              if mt.getreply(conns[i]) ~= SMFIR_REPLYCODE then error("conn " .. i) end
              mt.rcptto(conns[i], "<ok" .. i .. "@fine.example>")
              if mt.getreply(conns[i]) ~= SMFIR_CONTINUE then error("conn " .. i) end
            end
            for i = 1, 20 do mt.disconnect(conns[i]) end
            mt.disconnect(conn)
        """
        self.run_milter(script)
        got = events(self.redis, 20, "many")
        self.assertEqual(sorted(e["account"] for e in got),
                         sorted("many%d-%s" % (i, self.account()) for i in range(1, 21)))


class ReloadTest(unittest.TestCase):
    """SIGUSR1 reloads the decision settings from the config file; flags keep winning."""

    def test_sigusr1_reloads_action_and_flags_still_win(self):
        h.require_programs("miltertest", "redis-server")
        with h.RedisServer() as redis:
            redis.start()
            add_entries(redis, exact=["listed@bad.example"])
            conf = os.path.join(h.temp_dir("reload"), "compd.conf")
            with open(conf, "w") as f:
                f.write("action = monitor\n")
            script = PRELUDE + AUTH_MAIL + """
                mt.rcptto(conn, "<listed@bad.example>")
                if mt.getreply(conn) ~= _G[expected] then error("unexpected reply, wanted " .. expected) end
                mt.disconnect(conn)
            """
            from_file = h.Milter.standard(redis, extra=["--config", conf])
            # Milter.standard passes --action reject; drop it so the file decides.
            i = from_file.args.index("--action")
            del from_file.args[i:i + 2]
            flag = h.Milter.standard(redis, action="monitor", extra=["--config", conf])
            with from_file, flag:
                from_file.start()
                flag.start()

                def check(milter, reply):
                    code, out = h.miltertest(script, milter.port, defines={
                        "account": "reload@customer.example", "expected": reply})
                    self.assertEqual(code, 0, out + milter.log())

                check(from_file, "SMFIR_CONTINUE")
                check(flag, "SMFIR_CONTINUE")
                with open(conf, "w") as f:
                    f.write("action = reject\n")
                for m in (from_file, flag):
                    m.child.proc.send_signal(10)  # SIGUSR1
                for m in (from_file, flag):
                    h.wait_for(lambda: "reloaded" in m.log(), 5, what="reload log line")
                check(from_file, "SMFIR_REPLYCODE")
                check(flag, "SMFIR_CONTINUE")  # --action monitor still wins over the file


if __name__ == "__main__":
    h.main()
