#!/usr/bin/env python3
"""Live discovery: two compd-milter nodes on one real redis-server behind real Postfix
(one submission listener per node), Dovecot SASL, swaks.

What a user and an operator see:
  - discovery = propose: account A (a.example) sends a test-like message (HELO localhost,
    random-looking subject, tiny body, one external recipient X) through node 1, account B
    (b.example) through node 2: X waits in `mapctl candidates list` with both sightings
    (account, node, HELO, subject), nobody is flagged yet, and `mapctl candidates accept`
    adds it and gives A and B the hit reaction;
  - near misses stay quiet although their sightings reach Redis: two colleagues of one
    customer domain sending the same supplier test-like first mails through both nodes,
    and one account sending a new contact a test-like first mail;
  - discovery = add (both nodes restarted): C through node 1 and D through node 2 make Y a
    map entry (source=discovered, the evidence as its note) that both nodes write to their
    rspamd map file; C and D get the hit reaction (lock_on_hit: locked) with the evidence,
    once; a third account's later mail to Y is refused at RCPT (swaks exit 24).

Run: COMPD_BUILD_DIR=build python3 tests/discovery_live_test.py
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402

PREFIX = "compd:"
MILTER_MACROS = {
    "mail": "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
}
ACCOUNTS = ["register@a.example", "winfield@b.example", "anna@shop.example",
            "bert@shop.example", "carl@other.example", "dora@c.example", "emil@d.example",
            "fritz@e.example"]
USERS = {a: "pw-" + a.split("@")[0] for a in ACCOUNTS}
X = "toewebvastsatw@gmx.example"
Y = "probe7@outlook.example"
SUPPLIER = "sales@supplier.example"
CONTACT = "friend@contacts.example"


class DiscoveryLiveTest(h.ServersTestCase):
    @classmethod
    def start_servers(cls):
        cls.redis = cls.started(h.RedisServer().start())
        cls.nodes = [cls.started(h.Milter.standard(cls.redis, prefix=PREFIX, extra=[
            "--hostname", name,
            "--discovery", "propose",
            "--lock-on-hit", "yes",
            # The engine's own test_message reaction stays out of the accounts'
            # states, so a state here is discovery's doing.
            "--reaction-test-message", "monitor",
            "--map-poll-interval", "1s",
        ]).start()) for name in ("node-1", "node-2")]
        cls.stack = cls.started(h.MailStack(
            users=USERS, milter_macros=MILTER_MACROS,
            extra_submissions=[{"smtpd_milters": n.postfix_spec}
                               for n in cls.nodes]).start())

    def mapctl(self, *args):
        return h.mapctl(*args, redis=self.redis, prefix=PREFIX)

    def send(self, node, account, to, test_like=True):
        """Mail from `account` through node 1 or 2; test-like is the thread's sample."""
        if test_like:
            kw = dict(helo="localhost", subject="wFd2, MkRWa2 A", body="x")
        else:
            kw = dict(helo="Carls-MacBook.local", subject="Lunch on Friday?",
                      body="Shall we meet at noon?")
        return h.swaks(self.stack.postfix.extra_submission_ports[node - 1], to, sender=account, user=account,
                       password=USERS[account], headers=["To: <%s>" % to], **kw)

    def diag(self):
        return "\n".join("--- %s\n%s" % (n.log_path, h.tail(n.log_path, 40))
                         for n in self.nodes) + "\n" + self.stack.logs()

    def candidates(self):
        p = self.mapctl("--json", "candidates", "list")
        self.assertEqual(p.returncode, 0, p.stderr)
        return {c["recipient"]: c for c in json.loads(p.stdout)}

    def account(self, account):
        p = self.mapctl("--json", "accounts", "show", account)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def sightings(self, recipient):
        """The accounts whose sightings of `recipient` wait in Redis."""
        return sorted(self.redis.call("HKEYS", PREFIX + "discovery:sightings:" + recipient))

    def test_a_propose_then_accept(self):
        # Near misses first: their sightings reach Redis before the pair below completes.
        for node, account, to in ((1, "anna@shop.example", SUPPLIER),
                                  (2, "bert@shop.example", SUPPLIER),
                                  (1, "carl@other.example", CONTACT)):
            self.assertEqual(self.send(node, account, to).code, 0, self.diag())
        # A through node 1, B through node 2; nothing to do with the two nodes' clocks.
        self.assertEqual(self.send(1, "register@a.example", X).code, 0, self.diag())
        self.assertEqual(self.send(2, "winfield@b.example", X).code, 0, self.diag())
        h.wait_for(lambda: X in self.candidates(), 10, interval=0.1,
                   what="%s among the candidates\n%s" % (X, self.diag()))
        ev = self.candidates()[X]
        self.assertEqual(ev["domains"], 2, ev)
        seen = {s["account"]: s for s in ev["sightings"]}
        self.assertEqual(sorted(seen), ["register@a.example", "winfield@b.example"])
        self.assertEqual(seen["register@a.example"]["node"], "node-1")
        self.assertEqual(seen["winfield@b.example"]["node"], "node-2")
        self.assertEqual(seen["winfield@b.example"]["helo"], "localhost")
        self.assertEqual(seen["winfield@b.example"]["subject"], "wFd2, MkRWa2 A")
        self.assertEqual(seen["register@a.example"]["client_ip"], "127.0.0.1")
        self.assertIn("queue_id", seen["register@a.example"])
        p = self.mapctl("candidates", "list")
        self.assertIn(X, p.stdout)
        self.assertIn("1 candidate waiting", p.stdout)

        # The near misses were seen and shared, and completed nothing.
        self.assertEqual(self.sightings(SUPPLIER), ["anna@shop.example", "bert@shop.example"])
        self.assertEqual(self.sightings(CONTACT), ["carl@other.example"])
        self.assertEqual(sorted(self.candidates()), [X])

        # Proposed, not enforced: nobody reacted, X still gets mail.
        self.assertIsNone(self.account("register@a.example"))
        self.assertEqual(self.mapctl("test", X).returncode, 1)

        p = self.mapctl("candidates", "accept", X)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("2 account hits recorded", p.stdout)
        for account in ("register@a.example", "winfield@b.example"):
            rec = self.account(account)
            self.assertIsNotNone(rec, account)
            self.assertIn(rec.get("state"), ("flagged", "locked"), rec)
        for account in ("anna@shop.example", "bert@shop.example", "carl@other.example"):
            self.assertIsNone(self.account(account), account)

    def test_b_add(self):
        for node in self.nodes:
            node.stop()
            node.args[node.args.index("--discovery") + 1] = "add"
            node.start()
        self.assertEqual(self.send(1, "dora@c.example", Y).code, 0, self.diag())
        self.assertEqual(self.send(2, "emil@d.example", Y).code, 0, self.diag())

        def entry():
            return self.redis.call("HGET", PREFIX + "map:exact", Y)
        h.wait_for(entry, 10, interval=0.1, what="%s in the map\n%s" % (Y, self.diag()))
        meta = json.loads(entry())
        self.assertEqual(meta["source"], "discovered", meta)
        note = json.loads(meta["note"])
        self.assertEqual(sorted(s["account"] for s in note["sightings"]),
                         ["dora@c.example", "emil@d.example"])
        self.assertNotIn(Y, self.candidates())
        self.assertEqual(self.sightings(Y), [])

        # Both nodes enforce it and write it to their rspamd map file.
        for node in self.nodes:
            path = os.path.join(node.map_dir, "compd_rcpt.map")

            def written():
                if not os.path.exists(path):
                    return False
                with open(path) as f:
                    return Y in f.read()
            h.wait_for(written, 5, interval=0.1, what="%s in %s" % (Y, path))

        # The accounts behind it get the hit reaction (locked), with the evidence, once.
        for account in ("dora@c.example", "emil@d.example"):
            h.wait_for(lambda: (self.account(account) or {}).get("state") == "locked", 5,
                       interval=0.1, what="%s locked\n%s" % (account, self.diag()))
            rec = self.account(account)
            self.assertIn(Y, json.dumps(rec))
        hits = [json.loads(f["event"]) for _, f in self.redis.stream(PREFIX + "events")]
        discovered = [e for e in hits if e.get("id", "").startswith("discovered:" + Y)]
        self.assertEqual(sorted(e["account"] for e in discovered),
                         ["dora@c.example", "emil@d.example"], discovered)

        # A third account's later mail to Y is refused at RCPT, on either node.
        r = self.send(1, "fritz@e.example", Y, test_like=False)
        self.assertEqual(r.code, 24, r.transcript)


if __name__ == "__main__":
    h.main()
