#!/usr/bin/env python3
"""Compromised accounts end to end: real Postfix + Dovecot SASL + swaks, a real
redis-server, compd-milter with lock_on_hit, and both ticket hooks (a local program and a
local webhook listener).

What a user and an operator see:
  - a hit flags the account, and with lock_on_hit locks it: the same account's next MAIL
    FROM gets the configured 550 5.7.1 (swaks exit 23) while other accounts still send;
  - `mapctl accounts release` lets it send again; `mapctl accounts lock` is enforced within
    about a second; allowlisted accounts are flagged but never locked automatically;
  - each newly flagged account produces exactly one ticket per hook within the quiet
    period (a failing webhook is retried), also across a milter restart, and the registry
    and the locks survive that restart;
  - `mapctl accounts report` is the morning list, with the evidence.
The policy listener (Exim, check_policy_service) shares the gate in Session::Mail; one
test asks it about a locked account.

Run: COMPD_BUILD_DIR=build python3 tests/accounts_test.py
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import accounts_harness as ah  # noqa: E402
import compd_harness as h  # noqa: E402
import stack_util as su  # noqa: E402
import exim_harness as eh  # noqa: E402

PREFIX = "compd:"
HELO = "client.example.test"
LOCK_TEXT = "account suspended, contact support"
NAMES = ["alice", "bob", "carol", "erin", "monitor", "gina"]
USERS = su.customer_users(NAMES)
LISTED = "test-probe@bad.example"
acct = su.customer


class AccountsTest(h.ServersTestCase):

    @classmethod
    def start_servers(cls):
        cls.redis = cls.started(h.RedisServer().start())
        su.mapctl_add(cls.redis, LISTED, prefix=PREFIX)
        cls.webhook = cls.started(ah.WebhookListener().start())
        cls.program = ah.HookProgram()
        cls.webhook.fail_next = 1  # the first delivery fails and must be retried
        cls.milter = cls.started(h.Milter.standard(
            cls.redis, action="reject", prefix=PREFIX, policy=True,
            extra=ah.lock_args(LOCK_TEXT, cls.program) + [
                "--lock-allowlist", "monitor@customer.example",
                "--hook-url", cls.webhook.url,
                "--hook-timeout", "5s",
            ]).start())
        cls.policy_port = cls.milter.policy_port
        cls.stack = cls.started(h.MailStack(users=USERS, smtpd_milters=cls.milter.postfix_spec,
                                            milter_macros=ah.SASL_MACROS).start())

    # -- helpers

    def diag(self):
        return "\n--- compd-milter log\n%s\n%s" % (h.tail(self.milter.log_path, 40),
                                                   self.stack.logs())

    def send(self, name, to, **kw):
        kw.setdefault("subject", "%s %s" % (name, time.monotonic()))
        return h.swaks(self.stack.submission_port, to, sender=acct(name), user=acct(name),
                       password="pw-%s" % name, helo=HELO, **kw)

    def assert_code(self, r, code):
        self.assertEqual(r.code, code, "swaks exit code; transcript:\n%s%s" %
                         (r.transcript, self.diag()))

    def mapctl(self, *args, code=0):
        p = h.mapctl(*args, redis=self.redis, prefix=PREFIX)
        self.assertEqual(p.returncode, code, "mapctl %s: %s%s" % (" ".join(args), p.stdout,
                                                                  p.stderr))
        return p

    def show(self, name):
        return json.loads(self.mapctl("accounts", "show", acct(name), "--json").stdout)

    def wait_state(self, name, state, timeout=5):
        try:
            return h.wait_for(lambda: self.show(name)["state"] == state and self.show(name),
                              timeout, what="%s to be %s" % (acct(name), state))
        except TimeoutError as e:
            self.fail("%s; record: %s%s" % (e, self.mapctl("accounts", "show", acct(name),
                                                           code=None).stdout, self.diag()))

    def delivered(self, subject):
        return self.stack.sink.wait_for_message(lambda m: m.subject == subject, 10,
                                                what="message %r" % subject)

    def refused_at_mail(self, name):
        r = self.send(name, "friend@fine.example", quit_after="RCPT")
        return r.code == 23 and any(l.startswith("550 5.7.1 " + LOCK_TEXT)
                                    for l in r.replies())

    # -- tests, in order

    def test_a_hit_locks_the_account_and_its_next_message_is_refused(self):
        r = self.send("alice", LISTED)
        self.assert_code(r, 24)  # the hit itself: RCPT refused by the map
        rec = self.wait_state("alice", "locked")
        self.assertEqual(rec["hits"], 1)
        self.assertEqual(rec["recipients"], {LISTED: 1})
        self.assertEqual(rec["client_ips"], {"127.0.0.1": 1})
        self.assertEqual(rec["state_reason"], "hit on %s; lock_on_hit" % LISTED)
        self.assertTrue(rec["state_by"].startswith("compd@"), rec)

        r = self.send("alice", "friend@fine.example", subject="alice locked")
        self.assert_code(r, 23)
        self.assertIn("550 5.7.1 " + LOCK_TEXT, r.replies())
        r = self.send("bob", "friend@fine.example", subject="bob sends")
        self.assert_code(r, 0)
        self.delivered("bob sends")
        time.sleep(0.3)
        self.assertEqual(self.stack.sink.find(lambda m: m.subject == "alice locked"), [])

    def test_b_release_lets_it_send_again(self):
        p = self.mapctl("accounts", "release", acct("alice"), "--reason", "password reset")
        self.assertIn("released alice@customer.example (was locked)", p.stdout)
        time.sleep(1.0)
        r = self.send("alice", "friend@fine.example", subject="alice released")
        self.assert_code(r, 0)
        self.delivered("alice released")
        rec = self.show("alice")
        self.assertEqual(rec["state"], "released")
        self.assertEqual(rec["state_reason"], "password reset")

    def test_c_mapctl_lock_is_enforced_within_a_second(self):
        self.assert_code(self.send("carol", "friend@fine.example", quit_after="RCPT"), 0)
        p = self.mapctl("accounts", "lock", acct("carol"), "--reason", "phoned in")
        self.assertIn("locked carol@customer.example until released", p.stdout)
        time.sleep(1.0)
        self.assertTrue(self.refused_at_mail("carol"), self.diag())
        self.mapctl("accounts", "release", acct("carol"))
        time.sleep(1.0)
        self.assert_code(self.send("carol", "friend@fine.example", quit_after="RCPT"), 0)

    def test_d_allowlisted_accounts_are_flagged_never_locked(self):
        self.assert_code(self.send("monitor", LISTED), 24)
        rec = self.wait_state("monitor", "flagged")
        self.assertIn("not locked: in lock_allowlist", rec["state_reason"])
        self.assert_code(self.send("monitor", LISTED), 24)
        h.wait_for(lambda: self.show("monitor")["hits"] == 2, 5, what="second hit recorded")
        r = self.send("monitor", "friend@fine.example", subject="monitor sends")
        self.assert_code(r, 0)
        self.delivered("monitor sends")
        self.assertEqual(self.show("monitor")["state"], "flagged")

    def test_e_one_ticket_per_account_within_the_quiet_period(self):
        # alice, released in test b, hits again: locked again, but no second ticket.
        self.assert_code(self.send("alice", LISTED), 24)
        self.wait_state("alice", "locked")
        for name, state in (("alice", "locked"), ("monitor", "flagged")):
            try:
                h.wait_for(lambda: self.program.docs_for(acct(name)) and
                           self.webhook.docs_for(acct(name)), 10,
                           what="both tickets for %s" % acct(name))
            except TimeoutError as e:
                self.fail("%s%s" % (e, self.diag()))
        time.sleep(2.5)  # longer than the retry schedule: a duplicate would be here by now
        for name, state in (("alice", "locked"), ("monitor", "flagged")):
            runs = [r for r in self.program.runs() if r["doc"]["account"] == acct(name)]
            self.assertEqual(len(runs), 1, "program runs for %s: %s" % (name, runs))
            self.assertEqual(len(self.webhook.docs_for(acct(name))), 1)
            doc = runs[0]["doc"]
            self.assertEqual(doc["type"], "account_flagged")
            self.assertEqual(doc["state"], state)
            self.assertEqual(doc["event"]["recipient"], LISTED)
            self.assertEqual(doc["event"]["account"], acct(name))
            self.assertEqual(doc["record"]["client_ips"], {"127.0.0.1": doc["record"]["hits"]})
            self.assertEqual(runs[0]["argv"], [acct(name), state])  # {account} {state}
            self.assertEqual(runs[0]["env"]["COMPD_ACCOUNT"], acct(name))
            self.assertNotIn("COMPD_REDIS_URL", runs[0]["env"])
            web = self.webhook.docs_for(acct(name))[0]
            self.assertEqual({k: web[k] for k in ("account", "state", "event")},
                             {k: doc[k] for k in ("account", "state", "event")})
        # The first POST failed (500) and was retried; the record says how it went.
        self.assertEqual(self.webhook.requests, 3, "one failure, then one per account")
        tickets = {n: self.show(n)["tickets"] for n in ("alice", "monitor")}
        self.assertTrue(all(t["exec"].startswith("delivered") for t in tickets.values()),
                        tickets)
        self.assertTrue(any("(attempt 2)" in t["webhook"] for t in tickets.values()), tickets)
        headers = self.webhook.headers[0]
        self.assertTrue(headers.get("X-Compd-Job"), headers)

    def test_f_report_is_the_morning_list_with_evidence(self):
        p = self.mapctl("accounts", "report", "--since", "24h")
        lines = p.stdout.splitlines()
        self.assertTrue(lines[0].startswith("ACCOUNT"), p.stdout)
        rows = {l.split()[0]: l for l in lines[1:]}
        self.assertEqual(set(rows), {acct("alice"), acct("monitor")}, p.stdout)
        self.assertRegex(rows[acct("alice")],
                         r"^alice@customer\.example +locked +2 +test-probe@bad\.example \(2\) +"
                         r"127\.0\.0\.1 \(2\) +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ +\d{4}-")
        self.assertRegex(rows[acct("monitor")], r" flagged +2 +test-probe@bad\.example \(2\) ")
        j = json.loads(self.mapctl("accounts", "report", "--json").stdout)
        self.assertEqual(sorted(a["account"] for a in j["accounts"]),
                         [acct("alice"), acct("monitor")])
        alice = [a for a in j["accounts"] if a["account"] == acct("alice")][0]
        self.assertEqual(alice["recipients"], {LISTED: 2})
        self.assertEqual(alice["client_ips"], {"127.0.0.1": 2})
        self.assertTrue(alice["first_seen"] < alice["last_seen"], alice)

    def test_g_registry_locks_and_pending_tickets_survive_a_milter_restart(self):
        self.webhook.fail_accounts.add(acct("erin"))
        self.assert_code(self.send("erin", LISTED), 24)
        self.wait_state("erin", "locked")
        h.wait_for(lambda: self.program.docs_for(acct("erin")), 10, what="erin's exec ticket")
        h.wait_for(lambda: "failed" in self.show("erin")["tickets"].get("webhook", ""), 10,
                   what="erin's webhook ticket to fail")

        self.assertEqual(self.milter.stop(), 0, "compd-milter exit status after SIGTERM")
        self.milter.start()
        self.assertTrue(self.refused_at_mail("alice"), self.diag())
        self.assertTrue(self.refused_at_mail("erin"), self.diag())
        self.assertEqual(self.show("alice")["hits"], 2)

        self.webhook.fail_accounts.clear()  # the helpdesk is back
        try:
            h.wait_for(lambda: self.webhook.docs_for(acct("erin")), 10,
                       what="erin's webhook ticket after the restart")
        except TimeoutError as e:
            self.fail("%s%s" % (e, self.diag()))
        time.sleep(1.5)
        self.assertEqual(len(self.webhook.docs_for(acct("erin"))), 1)
        self.assertEqual(len(self.program.docs_for(acct("erin"))), 1)
        self.assertTrue(self.show("erin")["tickets"]["webhook"].startswith("delivered"))

    def test_h_list_show_note_and_exit_codes(self):
        j = json.loads(self.mapctl("accounts", "list", "--state", "locked", "--json").stdout)
        self.assertEqual(sorted(a["account"] for a in j["accounts"]),
                         [acct("alice"), acct("erin")])
        p = self.mapctl("accounts", "list", "--state", "released")
        self.assertIn(acct("carol"), p.stdout)
        self.mapctl("accounts", "note", acct("alice"), "called the customer, ticket 4711")
        p = self.mapctl("accounts", "show", acct("alice"))
        self.assertIn("timeline (newest first):", p.stdout)
        self.assertRegex(p.stdout, r"note +by \S+: called the customer, ticket 4711")
        self.assertRegex(p.stdout, r"hit +test-probe@bad\.example from 127\.0\.0\.1")
        self.assertRegex(p.stdout, r"released +by \S+: password reset")
        # Case does not make another account.
        self.assertEqual(self.show("alice"), json.loads(self.mapctl(
            "accounts", "show", "ALICE@Customer.Example", "--json").stdout))

        self.mapctl("accounts", "show", "nobody@customer.example", code=1)
        self.mapctl("accounts", "release", "nobody@customer.example", code=1)
        self.mapctl("accounts", "note", "nobody@customer.example", "x", code=1)
        p = self.mapctl("accounts", "lock", acct("gina"), "--for", "soon", code=2)
        self.assertIn("--for: 'soon' is not a duration", p.stderr)
        p = self.mapctl("accounts", "report", "--since", "yesterday", code=2)
        self.assertIn("--since: 'yesterday'", p.stderr)
        p = h.mapctl("accounts", "list", redis="redis://127.0.0.1:%d/0" % h.free_port())
        self.assertEqual(p.returncode, 2, p.stderr)

        # A lock with an expiry ends by itself.
        self.mapctl("accounts", "lock", acct("gina"), "--for", "2s")
        time.sleep(1.0)
        self.assertTrue(self.refused_at_mail("gina"), self.diag())
        time.sleep(1.5)
        self.assert_code(self.send("gina", "friend@fine.example", quit_after="RCPT"), 0)

    def test_i_the_policy_listener_refuses_locked_accounts_too(self):
        def ask(name):
            with eh.PolicyClient((h.LOOPBACK, self.policy_port)) as c:
                return c.request({
                    "request": "smtpd_access_policy", "protocol_state": "RCPT",
                    "protocol_name": "ESMTPA", "sender": acct(name),
                    "recipient": "friend@fine.example", "client_address": "203.0.113.9",
                    "client_name": "client.example", "sasl_method": "LOGIN",
                    "sasl_username": acct(name)})
        self.assertEqual(ask("alice"), "550 5.7.1 " + LOCK_TEXT)
        self.assertEqual(ask("bob"), "DUNNO")


if __name__ == "__main__":
    h.main()
