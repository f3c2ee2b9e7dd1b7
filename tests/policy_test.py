#!/usr/bin/env python3
"""Protocol level: compd-milter's policy listener (Postfix policy delegation protocol).

What Exim's ${readsocket} and Postfix's check_policy_service see of compd: the answers to
unlisted, listed, mixed and header requests, scope (unauthenticated, trusted networks),
malformed and oversized input (a clear 451 4.3.0 answer, the connection closed, the
listener still serving), many requests on one connection, concurrent connections, and the
events recorded with source "policy". Then a real Postfix using check_policy_service.

Run: python3 tests/policy_test.py (needs build/compd-milter, or COMPD_BUILD_DIR).
"""

import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import exim_harness as eh  # noqa: E402
import stack_util as su  # noqa: E402

PREFIX = "compd:"
LISTED = ["listed@bad.example", "header-hit@bad.example", "display@bad.example",
          "burst@bad.example", "postfix@bad.example"]


def rcpt_request(account, recipient, **extra):
    r = {"request": "smtpd_access_policy", "protocol_state": "RCPT",
         "protocol_name": "ESMTPA", "helo_name": "botnet-helo", "queue_id": "",
         "sender": account, "recipient": recipient, "recipient_count": "0",
         "client_address": "203.0.113.9", "client_name": "client.example",
         "reverse_client_name": "client.example",
         "sasl_method": "LOGIN", "sasl_username": account, "sasl_sender": "", "size": "0",
         "ccert_subject": "", "stress": "", "compatibility_level": "3.6"}
    r.update(extra)
    return r


class PolicyTestCase(h.ServersTestCase):
    """One redis-server and one compd-milter (policy listener on a loopback port) for all
    the tests: libmilter stops only every 5 seconds."""

    @classmethod
    def start_servers(cls):
        cls.redis = cls.started(h.RedisServer().start())
        su.add_listed(cls.redis, *LISTED, source="policy_test", prefix=PREFIX)
        cls.milter = cls.started(h.Milter.standard(cls.redis, policy=True, extra=[
            "--trusted-networks", "192.0.2.0/24", "--log-level", "debug"]).start())
        cls.policy_port = cls.milter.policy_port

    def account(self):
        return su.test_account(self)

    def client(self):
        return eh.PolicyClient((h.LOOPBACK, self.policy_port))

    def ask(self, attributes):
        with self.client() as c:
            return c.request(attributes)

    def events(self, n, account=None, timeout=10):
        """Waits for at least n events of the account (default: this test's); returns all."""
        account = account or self.account()
        got = []

        def enough():
            got[:] = [e for e in su.stream_events(self.redis) if e.get("account") == account]
            return len(got) >= n
        try:
            h.wait_for(enough, timeout, what="%d events of %s" % (n, account))
        except TimeoutError:
            self.fail("expected %d events of %s, found %d: %s\n--- milter log\n%s" %
                      (n, account, len(got), got, h.tail(self.milter.log_path, 30)))
        return got

    def no_events(self, account=None):
        time.sleep(0.3)
        account = account or self.account()
        self.assertEqual([e for e in su.stream_events(self.redis) if e.get("account") == account],
                         [])

    def assert_refused(self, action):
        self.assertRegex(action, r"^550 5\.7\.1 Recipient address rejected: message refused by "
                                 r"policy \(ref [A-Z2-9]{10}\)$")


class ProtocolTest(PolicyTestCase):

    def test_locked_account_is_refused_at_mail(self):
        # check_policy_service in smtpd_sender_restrictions asks at MAIL (no recipient yet);
        # a locked account gets the same reply compd-milter gives at MAIL FROM.
        account = self.account()
        mail = rcpt_request(account, "", protocol_state="MAIL")
        self.assertEqual(self.ask(mail), "DUNNO")
        p = h.mapctl("accounts", "lock", account, "--reason", "policy test", redis=self.redis,
                     prefix=PREFIX)
        self.assertEqual(p.returncode, 0, p.stderr)

        def refused():
            return self.ask(mail).startswith("451 4.7.1 ")
        h.wait_for(refused, 10, what="the lock to reach the policy listener")
        self.assertEqual(self.ask(mail), self.ask(rcpt_request(account, "friend@fine.example")))
        self.assertEqual(self.ask(rcpt_request("other@customer.example", "", protocol_state="MAIL")),
                         "DUNNO")

    def test_unlisted_recipient_is_dunno(self):
        self.assertEqual(self.ask(rcpt_request(self.account(), "friend@fine.example")), "DUNNO")
        self.no_events()

    def test_listed_recipient_is_refused_and_recorded(self):
        account = self.account()
        action = self.ask(rcpt_request(account, "Listed@Bad.Example"))
        self.assert_refused(action)
        [event] = self.events(1)
        expect = {"type": "hit", "source": "policy", "account": account, "auth_type": "LOGIN",
                  "client_ip": "203.0.113.9", "client_name": "client.example",
                  "helo": "botnet-helo", "sender": account, "recipient": "Listed@Bad.Example",
                  "where": "envelope", "entry": "listed@bad.example", "entry_kind": "exact",
                  "action": "reject"}
        self.assertEqual({k: event.get(k) for k in expect}, expect, event)
        self.assertIn("(ref %s)" % event["txn_id"], action)
        alerts = h.wait_for(lambda: [e for e in self.milter.alerts()
                                     if e.get("account") == account], 5, what="alert line")
        self.assertEqual(alerts, [event], "the alert log holds the same object as the stream")

    def test_listed_and_unlisted_on_one_connection(self):
        account = self.account()
        with self.client() as c:
            self.assertEqual(c.request(rcpt_request(account, "friend@fine.example")), "DUNNO")
            self.assert_refused(c.request(rcpt_request(account, "listed@bad.example")))
            self.assertEqual(c.request(rcpt_request(account, "other@fine.example")), "DUNNO")
            # Each request is a transaction: its event is recorded while the connection
            # stays open (Postfix keeps policy connections for minutes).
            [event] = self.events(1)
            self.assertEqual(event["recipient"], "listed@bad.example")

    def test_header_attributes_are_checked(self):
        account = self.account()
        base = {"request": "smtpd_access_policy", "protocol_state": "END-OF-MESSAGE",
                "sasl_username": account, "sender": account, "client_address": "203.0.113.9",
                "queue_id": "1xWfS5-0005GW-2W",
                "compd_subject": "Caf\\303\\251 \\342\\202\\254",
                "compd_message_id": "<m1@customer.example>"}
        # As ${escape:$bh_to:} writes two folded To headers joined by Exim.
        to = '"Doe, J" <friend@fine.example>,\\n  Header-Hit@bad.example,\\nx@fine.example'
        self.assert_refused(self.ask(dict(base, compd_to=to, compd_cc="")))
        [event] = self.events(1)
        expect = {"where": "header:to", "recipient": "Header-Hit@bad.example",
                  "entry": "header-hit@bad.example", "subject": "Caf\u00e9 \u20ac",
                  "message_id": "<m1@customer.example>", "queue_id": "1xWfS5-0005GW-2W",
                  "source": "policy"}
        self.assertEqual({k: event.get(k) for k in expect}, expect, event)
        cc = '=?utf-8?Q?Doe=2C_John?= <a@fine.example>, "display@bad.example" <b@fine.example>'
        self.assert_refused(self.ask(dict(base, compd_to="friend@fine.example", compd_cc=cc)))
        events = self.events(2)
        self.assertEqual((events[1]["where"], events[1]["recipient"]),
                         ("display-name", "display@bad.example"))
        self.assertEqual(self.ask(dict(base, compd_to="a@fine.example", compd_cc="b@fine.example")),
                         "DUNNO")
        time.sleep(0.3)
        self.assertEqual(len(self.events(2)), 2)

    def test_unauthenticated_requests_are_not_checked(self):
        account = self.account()
        r = rcpt_request(account, "listed@bad.example", sasl_username="", sasl_method="")
        self.assertEqual(self.ask(r), "DUNNO")
        del r["sasl_username"]
        self.assertEqual(self.ask(r), "DUNNO")
        time.sleep(0.3)
        self.assertEqual([e for e in su.stream_events(self.redis) if e.get("sender") == account], [])

    def test_trusted_network_is_checked_without_authentication(self):
        r = rcpt_request("x@y.example", "listed@bad.example", sasl_username="",
                         client_address="192.0.2.7")
        self.assert_refused(self.ask(r))
        events = self.events(1, account="ip:192.0.2.7")
        self.assertEqual(events[-1]["client_ip"], "192.0.2.7")

    def test_malformed_input_gets_a_clear_answer_and_the_connection_closes(self):
        cases = [
            (b"request=smtpd_access_policy\nthis line has no equals sign\n\n",
             "451 4.3.0 compd: malformed policy request: request 1, line 2: expected "
             "name=value, got \"this line has no equals sign\""),
            (b"request=smtpd_access_policy\nsasl_username=a\x00b\n\n",
             "451 4.3.0 compd: malformed policy request: request 1, line 2: NUL byte in "
             "\"sasl_username=a\\x00b\""),
            (b"request=smtpd_access_policy\nsasl_username=a\nsasl_username=b\n\n",
             "451 4.3.0 compd: malformed policy request: request 1, line 3: attribute "
             "\"sasl_username\" given twice"),
            (b"request=smtpd_access_policy\nrecipient=listed@bad.example\n\n",
             "451 4.3.0 compd: malformed policy request: request 1: missing protocol_state "
             "(RCPT, or END-OF-MESSAGE for headers)"),
            (b"request=junk\nprotocol_state=RCPT\n\n",
             "451 4.3.0 compd: malformed policy request: request 1: unsupported "
             "request=\"junk\" (expected smtpd_access_policy)"),
        ]
        for data, answer in cases:
            with self.subTest(data=data), self.client() as c:
                c.send_raw(data)
                self.assertEqual(c.read_reply(), answer)
                self.assertTrue(c.closed(), "the connection stays open after %r" % data)
        h.wait_for(lambda: "line 2: expected name=value" in self.milter.log(), 5,
                   what="the warning in the milter log")
        self.assertRegex(self.milter.log(), r"policy: 127\.0\.0\.1:\d+: request 1, line 2: "
                                            r"expected name=value.*; closing the connection")
        # A client that hangs up in the middle of a request hurts nobody.
        with self.client() as c:
            c.send_raw(b"request=smtpd_access_policy\nprotocol_")
        self.assertEqual(self.ask(rcpt_request(self.account(), "friend@fine.example")), "DUNNO")

    def test_oversized_input_is_refused(self):
        cases = [
            # One line longer than 256 KiB: refused before the line ends.
            (b"request=smtpd_access_policy\ncompd_to=" + b"a" * (300 * 1024),
             "request 1, line 2: line longer than 262144 bytes"),
            # 129 attributes.
            (b"".join(b"a%d=1\n" % i for i in range(129)) + b"\n",
             "request 1, line 129: more than 128 attributes"),
            # Lines under the limit, but more than 512 KiB together.
            (b"".join(b"x%d=%s\n" % (i, b"b" * 200 * 1024) for i in range(3)) + b"\n",
             "request 1, line 3: request larger than 524288 bytes"),
        ]
        for data, why in cases:
            with self.subTest(why=why), self.client() as c:
                try:
                    c.send_raw(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the answer was sent and the connection closed mid-write
                self.assertEqual(c.read_reply(),
                                 "451 4.3.0 compd: malformed policy request: " + why)
                self.assertTrue(c.closed())
        self.assertEqual(self.ask(rcpt_request(self.account(), "friend@fine.example")), "DUNNO")
        self.assertTrue(self.milter.running())

    def test_many_requests_on_one_connection(self):
        account = self.account()
        with self.client() as c:
            for i in range(200):
                recipient = "burst@bad.example" if i % 4 == 0 else "f%d@fine.example" % i
                action = c.request(rcpt_request(account, recipient))
                if i % 4 == 0:
                    self.assert_refused(action)
                else:
                    self.assertEqual(action, "DUNNO", i)
            # Pipelined: several requests in one write, the answers in order.
            c.send_raw(b"".join(eh.PolicyClient.encode(rcpt_request(account, r))
                                for r in ("a@fine.example", "burst@bad.example", "b@fine.example")))
            self.assertEqual(c.read_reply(), "DUNNO")
            self.assert_refused(c.read_reply())
            self.assertEqual(c.read_reply(), "DUNNO")
        events = self.events(51)
        self.assertEqual(len(events), 51)
        self.assertEqual(len({e["txn_id"] for e in events}), 51, "one transaction per request")

    def test_concurrent_connections(self):
        n_clients, n_requests = 20, 25
        errors = []

        def run(k):
            account = "concurrent-%d@customer.example" % k
            try:
                with self.client() as c:
                    for i in range(n_requests):
                        listed = i % 5 == k % 5
                        action = c.request(rcpt_request(
                            account, "burst@bad.example" if listed else "ok%d@fine.example" % i))
                        if listed != action.startswith("550 5.7.1 "):
                            errors.append((k, i, action))
            except Exception as e:  # reported below, with the others
                errors.append((k, repr(e)))
        threads = [threading.Thread(target=run, args=(k,)) for k in range(n_clients)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        print("\n  %d requests on %d connections in %.2fs" % (
            n_clients * n_requests, n_clients, time.monotonic() - start), file=sys.stderr)
        for k in range(n_clients):
            self.assertEqual(len(self.events(n_requests // 5,
                                             account="concurrent-%d@customer.example" % k)),
                             n_requests // 5)

    def test_postfix_check_policy_service(self):
        # Postfix asks at RCPT, keeps the connection, and knows nothing of compd_* headers.
        user, password = "postfix-user@customer.example", "pw-postfix"
        with h.SmtpSink() as sink, h.Dovecot(users={user: password}) as dovecot, \
                PolicyPostfix(self.policy_port, relay_port=sink.port,
                              sasl_path=dovecot.auth_socket,
                              main={"smtpd_policy_service_default_action": "DUNNO"}) as postfix:
            r = h.swaks(postfix.submission_port, ["friend@fine.example", "postfix@bad.example"],
                        sender=user, user=user, password=password, subject="postfix policy",
                        headers=["To: friend@fine.example"])
            self.assertEqual(r.code, 0, r.transcript + h.tail(postfix.maillog))
            self.assertTrue(any(line.startswith("550 5.7.1") for line in r.replies()),
                            r.transcript)
            msg = sink.wait_for_message(lambda m: m.subject == "postfix policy")
            self.assertEqual(msg.rcpts, ["friend@fine.example"])
            [event] = self.events(1, account=user)
            self.assertEqual((event["source"], event["recipient"], event["where"],
                              event["client_ip"], event["auth_type"].upper()),
                             ("policy", "postfix@bad.example", "envelope", "127.0.0.1", "LOGIN"))
            # Postfix prefixes "<address>: Recipient address rejected:" itself; compd leaves
            # that phrase out of its answer to Postfix so it is not said twice.
            postfix.wait_for_log(r"reject: RCPT from .*: 550 5\.7\.1 <postfix@bad\.example>: "
                                 r"Recipient address rejected: message refused by policy "
                                 r"\(ref %s\)" % event["txn_id"])

    def test_postfix_asking_twice_per_recipient_records_one_hit(self):
        # Postfix's default smtpd_delay_reject = yes evaluates smtpd_sender_restrictions at
        # RCPT: with the policy service in both lists every recipient is asked twice. With
        # action monitor the message goes out, and its listed recipient is one hit, not two.
        user, password = "postfix-twice@customer.example", "pw-twice"
        with h.Milter.standard(self.redis, action="monitor", policy=True,
                               extra=["--log-level", "debug"]) as monitor, \
                h.SmtpSink() as sink, h.Dovecot(users={user: password}) as dovecot, \
                PolicyPostfix(monitor.policy_port, relay_port=sink.port,
                              sasl_path=dovecot.auth_socket,
                              main={"smtpd_policy_service_default_action": "DUNNO",
                                    "smtpd_sender_restrictions":
                                        "check_policy_service,inet:127.0.0.1:%d,"
                                        "permit_sasl_authenticated,reject" %
                                        monitor.policy_port}) as postfix:
            r = h.swaks(postfix.submission_port, ["friend@fine.example", "listed@bad.example"],
                        sender=user, user=user, password=password, subject="asked twice",
                        headers=["To: friend@fine.example"])
            self.assertEqual(r.code, 0, r.transcript + h.tail(postfix.maillog))
            msg = sink.wait_for_message(lambda m: m.subject == "asked twice")
            self.assertEqual(sorted(msg.rcpts), ["friend@fine.example", "listed@bad.example"])
            # Both lists asked about each recipient (the milter's debug log, one line per
            # request), so the test shows the case it is about.
            def asked():
                with open(monitor.log_path, errors="replace") as f:
                    return len(re.findall(r"state=RCPT [^\n]*recipient=listed@bad\.example",
                                          f.read()))
            h.wait_for(lambda: asked() >= 2, 5, what="two requests for the listed recipient")
            events = self.events(1, account=user)
            time.sleep(1.5)  # what the recorder would write of a second evaluation
            events = self.events(1, account=user)
            self.assertEqual([(e["recipient"], e["action"]) for e in events],
                             [("listed@bad.example", "monitor")], events)

    def test_check_config_names_bad_policy_settings(self):
        for args, message in [
                (["--policy-socket", "inet:99999"],
                 "policy_socket: 'inet:99999': port must be a number from 0 to 65535"),
                (["--policy-socket", "inet:10031@localhost"],
                 "policy_socket: 'inet:10031@localhost': 'localhost' is not a numeric IPv4 "
                 "address"),
                (["--policy-socket", "unix:/run/x.sock", "--policy-socket-mode", "rw"],
                 "policy_socket_mode: 'rw' is not an octal mode")]:
            with self.subTest(args=args):
                r = subprocess.run([h.compd_binary("compd-milter"), "--check-config",
                                    "--config", os.devnull] + args,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   timeout=10)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn(message, r.stderr)


class PolicyPostfix(h.Postfix):
    """The harness Postfix with compd asked through check_policy_service on submission."""

    def __init__(self, policy_port, **kwargs):
        self.policy_port = policy_port
        super().__init__(**kwargs)

    def master_cf(self):
        text = super().master_cf()
        old = "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n"
        assert old in text, text
        # As docs/exim.md says: before permit_sasl_authenticated, which ends the list.
        return text.replace(old, "  -o smtpd_recipient_restrictions=check_policy_service,"
                                 "inet:127.0.0.1:%d,permit_sasl_authenticated,reject\n" %
                            self.policy_port, 1)


if __name__ == "__main__":
    h.main()
