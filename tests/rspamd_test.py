#!/usr/bin/env python3
"""rspamd reads compd's map with compd's meaning (real rspamd from Debian, on loopback).

  - Agreement: for every address of a generated corpus (>= 500: listed exact entries, case
    variants, +tag variants, near misses, pattern hits and misses, quoted local parts,
    address literals, UTF-8), rspamd's verdict with the shipped multimap rules equals
    `mapctl test`.
  - Freshness: `mapctl add` / `remove` reach rspamd's verdict within 2 s through the files
    compd-milter writes with --map-dir.
  - The compd_recorder plugin writes the hit into compd's Redis event stream, and the hit
    has the consequences compd-milter gives it (lock_on_hit, one ticket per quiet period).
  - The shipped files pass `rspamadm configtest` inside Debian's stock configuration, the
    Redis alternative behaves as documented, and the operator's original regexp rule shows
    the hazards docs/rspamd.md describes.

Run: COMPD_BUILD_DIR=build python3 tests/rspamd_test.py [-v] [TestClass.test_name]
"""

import json
import os
import random
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import accounts_harness as ah  # noqa: E402
import compd_harness as h  # noqa: E402
import rspamd_harness as rh  # noqa: E402
import stack_util as su  # noqa: E402

FRESHNESS_LIMIT = 2.0  # seconds: the most mapctl add may take to change rspamd's verdict

# ---------------------------------------------------------------------------------------
# The map under test and the corpus

EXACT_ENTRIES = [
    # From the mailop thread (test recipients of a botnet), as an operator would type them.
    "toewebvastsatw@gmx.com",
    "2@mail01.netgate.com.uy",
    # Entered in mixed case: compd stores canonical lower case.
    "Mixed.Case@Example.ORG",
    # Subaddress kept as part of the entry.
    "sales+promo@shop.test",
    # Quoted local part that is a plain address once unquoted (rspamd strips the quotes).
    '"quoted.plain"@example.net',
    # Address literals.
    "postmaster@[198.51.100.7]",
    "abuse@[IPv6:2001:db8::25]",
    # UTF-8 local part (SMTPUTF8).
    "jörg@example.de",
    "m.smith@example.com",  # the `m` trap, harmless as an exact entry
]

PATTERN_ENTRIES = [
    r"/^toewebvastsatw[a-z0-9]*@gmx\.com$/i",
    r"/^[0-9]+@mail01\.netgate\.com\.uy$/",
    r"/@collector\.example$/i",
    r"/^test[0-9]{2,4}@trap\.test$/",
    r"/^(alpha|beta)\.tester@x\.test$/i",
    r"/^john\x20doe@quoted\.test$/i",
    r"/^u@\[192\.0\.2\.1\]$/",
    r"/^spam\+[a-z]+@tags\.test$/",
    r"/^café@unicode\.test$/iu",
    r"/^a.b@dots\.test$/",
    r"/^ml@multi\.test$/m",
    r"/^s.x@flags\.test$/s",
]

# Addresses that must hit the patterns above, and near misses that must not.
PATTERN_PROBES = [
    "toewebvastsatw@gmx.com", "toewebvastsatw42@gmx.com", "TOEWEBVASTSATWabc@GMX.COM",
    "toewebvastsatw-x@gmx.com", "xtoewebvastsatw@gmx.com", "toewebvastsatw@gmx.com.evil",
    "2@mail01.netgate.com.uy", "12345@mail01.netgate.com.uy", "12345@MAIL01.netgate.com.uy",
    "a1@mail01.netgate.com.uy", "12345@mail01.netgate.com.uy.evil",
    "anyone@collector.example", "ANYONE@COLLECTOR.EXAMPLE", "x@sub.collector.example",
    "x@collector.example.org", "x@collectorXexample",
    "test12@trap.test", "test1234@trap.test", "TEST12@trap.test", "test1@trap.test",
    "test12345@trap.test", "test12@trap.testing",
    "alpha.tester@x.test", "BETA.TESTER@X.TEST", "gamma.tester@x.test", "alpha.tester@x.test.x",
    '"john doe"@quoted.test', '"John Doe"@QUOTED.test', '"john  doe"@quoted.test',
    "johndoe@quoted.test", '"john.doe"@quoted.test',
    "u@[192.0.2.1]", "U@[192.0.2.1]", "u@[192.0.2.10]", "u@[192.0.2.1].evil",
    "spam+abc@tags.test", "spam+ABC@tags.test", "spam+@tags.test", "spam@tags.test",
    "café@unicode.test", "CAFÉ@UNICODE.TEST", "Café@unicode.test", "cafe@unicode.test",
    "a.b@dots.test", "axb@dots.test", "a-b@dots.test", "ab@dots.test", "A.B@dots.test",
    "ml@multi.test", "ML@multi.test", "xml@multi.test",
    "s.x@flags.test", "sxx@flags.test", "S.X@flags.test",
]

TAGS = ["+tag", "+x", "+promo", "+1"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "customer.example", "gmx.com",
           "web.de", "netgate.com.uy", "shop.test"]


def generated_entries(rng, n=70):
    """n plausible test recipients: dots, hyphens, digits, underscores, some mixed case."""
    words = ["info", "admin", "test", "check", "john.doe", "mary-ann", "bob_smith", "kontakt",
             "support", "billing", "noreply", "user", "verify", "alpha", "zeta"]
    out = set()
    while len(out) < n:
        local = rng.choice(words) + str(rng.randrange(0, 10000))
        if rng.random() < 0.3:
            local = local.capitalize()
        out.add("%s@%s" % (local, rng.choice(DOMAINS)))
    return sorted(out)


def case_variants(addr):
    local, _, domain = addr.rpartition("@")
    return [addr.upper(), local.capitalize() + "@" + domain.upper(),
            "".join(c.upper() if i % 2 else c for i, c in enumerate(addr))]


def near_misses(addr, rng):
    local, _, domain = addr.rpartition("@")
    out = [
        local[:-1] + "@" + domain if len(local) > 1 else "x" + local + "@" + domain,
        local + "x@" + domain,
        "x" + addr,  # what an unanchored regex line would also match
        addr + ".evil",  # likewise
        local + "@" + domain + "x",
        local + "@mail." + domain,
    ]
    if "." in local:
        out.append(local.replace(".", "", 1) + "@" + domain)
    return out


def build_corpus(seed=20260426):
    """(entries, corpus): the map to load and >= 500 addresses as an MTA passes them."""
    rng = random.Random(seed)
    generated = generated_entries(rng)
    entries = EXACT_ENTRIES + generated + PATTERN_ENTRIES
    corpus = []

    def add(addr, category):
        # rspamd 3.4 drops any envelope recipient with a non-ASCII byte (see
        # Utf8RecipientTest): those get their own category and their own test.
        if not addr.isascii():
            category = "utf8"
        elif category == "utf8":
            category = "near-miss"  # the ASCII look-alikes of the UTF-8 entries
        corpus.append((addr, category))

    plain_exact = [e for e in EXACT_ENTRIES + generated
                   if not e.startswith('"') and "[" not in e]
    for e in plain_exact:
        add(e, "listed")
        add("<%s>" % e, "listed-brackets")
        for v in case_variants(e):
            add(v, "case")
        local, _, domain = e.rpartition("@")
        add("%s%s@%s" % (local, rng.choice(TAGS), domain), "plus-tag")
        for m in near_misses(e, rng):
            add(m, "near-miss")
    # The +tag entry itself, and its untagged form.
    add("sales@shop.test", "plus-tag")
    add("SALES+PROMO@shop.test", "plus-tag")
    add("sales+other@shop.test", "plus-tag")
    for a in PATTERN_PROBES:
        add(a, "pattern")
    quoted = ['"quoted.plain"@example.net', '"QUOTED.PLAIN"@example.net',
              '"quoted.plain "@example.net', '"quoted"@example.net', '"john doe"@example.com',
              '"a@b"@example.com', '"sales+promo"@shop.test', '"Toewebvastsatw"@gmx.com',
              '"m.smith"@example.com', '"x\\"y"@example.com']
    for a in quoted:
        add(a, "quoted")
    literals = ["postmaster@[198.51.100.7]", "POSTMASTER@[198.51.100.7]",
                "postmaster@[198.51.100.70]", "postmaster@[198.51.100.7].evil",
                "abuse@[IPv6:2001:db8::25]", "ABUSE@[ipv6:2001:DB8::25]",
                "abuse@[IPv6:2001:db8::26]", "<postmaster@[198.51.100.7]>"]
    for a in literals:
        add(a, "literal")
    utf8 = ["jörg@example.de", "JÖRG@EXAMPLE.DE", "Jörg@Example.DE", "jorg@example.de",
            "jörg@example.de.evil"]
    for a in utf8:
        add(a, "utf8")
    # Unlisted, unrelated addresses.
    for i in range(40):
        add("random%d.person@%s" % (rng.randrange(10**6), rng.choice(DOMAINS)), "unrelated")
    # Remove exact duplicates, keep order.
    seen, unique = set(), []
    for a, c in corpus:
        if a not in seen:
            seen.add(a)
            unique.append((a, c))
    return entries, unique


# ---------------------------------------------------------------------------------------
# Shared servers: one Redis, one compd-milter writing the map files, one rspamd reading them


class Stack:
    redis = milter = rspamd = None


STACK = Stack()


def mapctl(*args, input=None):
    r = h.mapctl(*args, redis=STACK.redis, input=input)
    return r


def mapctl_ok(*args, input=None):
    r = mapctl(*args, input=input)
    if r.returncode != 0:
        raise AssertionError("mapctl %s failed (exit %d):\n%s%s" % (
            " ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def map_file(name):
    return os.path.join(STACK.milter.map_dir, name)


def file_lines(name):
    try:
        with open(map_file(name), encoding="utf-8") as f:
            return [l for l in f.read().split("\n") if l and not l.startswith("#")]
    except OSError:
        return []


def need_stack():
    """Starts the shared servers on first use (tests that need no compd binary skip this)."""
    if STACK.rspamd is not None:
        return
    STACK.redis = h.RedisServer().start()
    try:
        STACK.milter = h.Milter.standard(STACK.redis).start()
        # Load the whole map before rspamd starts, so its first view is the full map.
        entries, _ = build_corpus()
        mapctl_ok("add", "-", input="\n".join(entries) + "\n")
        h.wait_for(lambda: len(file_lines("compd_rcpt_re.map")) == len(PATTERN_ENTRIES) and
                   len(file_lines("compd_rcpt.map")) == len(entries) - len(PATTERN_ENTRIES),
                   10, what="compd-milter writing both map files to %s" %
                   STACK.milter.map_dir)
        STACK.rspamd = rh.Rspamd(map_dir=STACK.milter.map_dir, redis=STACK.redis).start()
    except BaseException:
        tearDownModule()
        raise


class StackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need_stack()


def tearDownModule():
    for part in (STACK.rspamd, STACK.milter, STACK.redis):
        if part is not None:
            try:
                part.close()
            except Exception as e:
                print("closing %s failed: %s" % (type(part).__name__, e), file=sys.stderr)
    STACK.rspamd = STACK.milter = STACK.redis = None


def mapctl_test(addresses):
    """{input: {"listed": bool, "kind": ..., "entry": ...}} from `mapctl test --json`."""
    out = {}
    for i in range(0, len(addresses), 200):
        chunk = addresses[i:i + 200]
        r = mapctl("test", *chunk, "--json")
        # Exit 2 with results: some inputs are not addresses compd can parse (each has an
        # "error" in the JSON); anything else is a failure of mapctl itself.
        if r.returncode not in (0, 1, 2) or not r.stdout.strip():
            raise AssertionError("mapctl test failed (exit %d): %s" % (r.returncode, r.stderr))
        data = json.loads(r.stdout)
        for res in data["results"]:
            out[res["input"]] = res
    return out


def agree(compd, verdict):
    """True when rspamd's verdict means what compd's answer means."""
    if not compd.get("listed"):
        return not verdict.symbols
    if compd.get("kind") == "exact":
        return "COMPD_RCPT" in verdict.symbols
    return verdict.symbols == frozenset({"COMPD_RCPT_RE"})


def wait_until_listed(address, listed=True, timeout=10.0):
    return h.wait_for(lambda: STACK.rspamd.verdict(address).listed == listed, timeout,
                      interval=0.01, what="rspamd to say %s for %s" %
                      ("listed" if listed else "not listed", address))


# ---------------------------------------------------------------------------------------


class AgreementTest(StackTest):

    def test_rspamd_verdict_equals_mapctl_test_for_every_address(self):
        entries, corpus = build_corpus()
        corpus = [(a, c) for a, c in corpus if c != "utf8"]
        addresses = [a for a, _ in corpus]
        self.assertGreaterEqual(len(addresses), 500)
        compd = mapctl_test(addresses)
        disagreements, unparsable, counts, listed = [], [], {}, 0
        for addr, category in corpus:
            counts[category] = counts.get(category, 0) + 1
            answer = compd.get(addr)
            verdict = STACK.rspamd.verdict(addr)
            if answer is None:
                disagreements.append("%-40r %-16s mapctl: no answer" % (addr, category))
                continue
            if "error" in answer:
                # compd cannot parse it, so compd-milter cannot list it: rspamd must not either.
                unparsable.append("%r (%s)" % (addr, answer["error"]))
                answer = {"listed": False}
            listed += bool(answer["listed"])
            if not agree(answer, verdict):
                disagreements.append("%-40r %-16s mapctl: %s %s; rspamd: %s %s" % (
                    addr, category, answer.get("kind") or "not listed",
                    answer.get("entry", ""), sorted(verdict.symbols) or "not listed",
                    verdict.options))
            elif answer["listed"]:
                # A hit is rejected with the rule's message.
                self.assertEqual(verdict.action, "reject", addr)
                self.assertIn("(compd)", verdict.reply["messages"].get("smtp_message", ""))
        print("\nagreement: %d addresses (%d listed by compd) by category: %s" % (
            len(addresses), listed, ", ".join("%s %d" % kv for kv in sorted(counts.items()))),
            file=sys.stderr)
        if unparsable:
            print("not addresses for compd (count as not listed): %s" % ", ".join(unparsable),
                  file=sys.stderr)
        if disagreements:
            print("DISAGREEMENTS (%d):\n  %s" % (len(disagreements),
                                               "\n  ".join(disagreements)), file=sys.stderr)
        self.assertEqual(disagreements, [], "rspamd and mapctl test disagree")
        self.assertGreater(listed, 100)
        self.assertGreater(len(addresses) - listed, 100)

    def test_map_files_are_what_the_rules_expect(self):
        # Exact file: canonical lower-case, sorted, one `#` header line; patterns /re/flags.
        with open(map_file("compd_rcpt.map"), encoding="utf-8") as f:
            exact = f.read()
        lines = exact.split("\n")
        self.assertTrue(lines[0].startswith("#"))
        body = [l for l in lines[1:] if l]
        self.assertEqual(body, sorted(body))
        self.assertTrue(exact.endswith("\n"))
        for l in body:
            self.assertEqual(l, re.sub("[A-Z]", lambda m: m.group(0).lower(), l))
            self.assertNotRegex(l, r"\s")
        for l in file_lines("compd_rcpt_re.map"):
            self.assertRegex(l, r"^/.*/[imsu]*$")


class Utf8RecipientTest(StackTest):
    """The one measured difference: rspamd 3.4's SMTP address parser refuses an envelope
    recipient with any non-ASCII byte ("bad rcpt address") and scans the message without
    it, so no multimap rule can match an SMTPUTF8 recipient; compd-milter can."""

    def test_rspamd_cannot_see_utf8_recipients_compd_can(self):
        _, corpus = build_corpus()
        utf8 = [a for a, c in corpus if c == "utf8"]
        self.assertGreaterEqual(len(utf8), 8)
        compd = mapctl_test(utf8)
        listed_by_compd = [a for a in utf8 if compd[a].get("listed")]
        self.assertGreaterEqual(len(listed_by_compd), 5)  # jörg@..., café@... and variants
        for a in utf8:
            offset = STACK.rspamd.log_size()
            verdict = STACK.rspamd.verdict(a)
            self.assertFalse(verdict.listed, a)
            self.assertIn("bad rcpt address", STACK.rspamd.log_since(offset), a)
        print("\nUTF-8 recipients: compd lists %d of %d, rspamd sees none of them" % (
            len(listed_by_compd), len(utf8)), file=sys.stderr)


class FreshnessTest(StackTest):

    def measure(self, address, listed, *mapctl_args):
        t0 = time.monotonic()
        mapctl_ok(*mapctl_args)
        wait_until_listed(address, listed, timeout=10)
        return time.monotonic() - t0

    def test_mapctl_add_and_remove_reach_rspamd_within_2s(self):
        timings = []
        for i in range(3):
            addr = "fresh%d.%d@fresh.test" % (i, os.getpid())
            self.assertFalse(STACK.rspamd.verdict(addr).listed)
            timings.append(("add exact", self.measure(addr, True, "add", addr)))
            timings.append(("remove exact", self.measure(addr, False, "remove", addr)))
        pattern = r"/^fresh-re[0-9]+\.%d@fresh\.test$/i" % os.getpid()
        probe = "Fresh-RE42.%d@fresh.test" % os.getpid()
        timings.append(("add pattern", self.measure(probe, True, "add", pattern)))
        timings.append(("remove pattern", self.measure(probe, False, "remove", pattern)))
        print("\nfreshness (mapctl start to rspamd verdict): %s" % ", ".join(
            "%s %.3fs" % t for t in timings), file=sys.stderr)
        for what, seconds in timings:
            self.assertLess(seconds, FRESHNESS_LIMIT, what)

    def test_back_to_back_changes_all_arrive(self):
        # Two renames within the same second: rspamd must not miss the second one.
        a, b = "burst-a.%d@fresh.test" % os.getpid(), "burst-b.%d@fresh.test" % os.getpid()
        t0 = time.monotonic()
        mapctl_ok("add", a)
        mapctl_ok("add", b)
        wait_until_listed(a)
        wait_until_listed(b)
        self.assertLess(time.monotonic() - t0, FRESHNESS_LIMIT)
        mapctl_ok("remove", a, b)
        wait_until_listed(a, False)
        wait_until_listed(b, False)


class RecorderTest(StackTest):

    def events_since(self, last_id):
        return [json.loads(f["event"]) for eid, f in
                STACK.redis.stream("compd:events", "(" + last_id if last_id != "-" else "-")]

    def last_id(self):
        entries = STACK.redis.call("XREVRANGE", "compd:events", "+", "-", "COUNT", 1)
        return entries[0][0] if entries else "-"

    def test_hit_is_recorded_in_the_event_stream(self):
        start = self.last_id()
        msg = (b"From: Alice <alice@customer.example>\r\nTo: someone@example.test\r\n"
               b"Subject: ZYaeD, X\r\nMessage-ID: <abc.123@customer.example>\r\n\r\nhi\r\n")
        reply = STACK.rspamd.check(["<toewebvastsatw@gmx.com>", "<friend@example.org>"],
                                   message=msg, user="alice@customer.example",
                                   ip="79.10.109.221", helo="localhost",
                                   hostname="host-79-10-109-221.example.it",
                                   sender="alice@customer.example", queue_id="4Kx1Yz2abc")
        self.assertEqual(reply["action"], "reject")
        events = h.wait_for(lambda: self.events_since(start), 5,
                            what="an event from rspamd in compd:events")
        time.sleep(0.2)  # nothing else may follow: one listed recipient, one event
        events = self.events_since(start)
        self.assertEqual(len(events), 1, events)
        e = events[0]
        expected = {
            "type": "hit", "source": "rspamd", "account": "alice@customer.example",
            "client_ip": "79.10.109.221", "client_name": "host-79-10-109-221.example.it",
            "helo": "localhost", "sender": "alice@customer.example",
            "recipient": "toewebvastsatw@gmx.com", "where": "envelope",
            "entry": "toewebvastsatw@gmx.com", "entry_kind": "exact", "action": "reject",
            "queue_id": "4Kx1Yz2abc", "subject": "ZYaeD, X",
            "message_id": "<abc.123@customer.example>", "auth_type": "",
        }
        for k, v in expected.items():
            self.assertEqual(e.get(k), v, k)
        self.assertEqual(list(e), ["time", "type", "id", "host", "account", "auth_type",
                                   "client_ip", "client_name", "helo", "sender", "recipient",
                                   "where", "entry", "entry_kind", "action", "queue_id",
                                   "txn_id", "subject", "message_id", "source"])
        self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertTrue(e["id"] and e["txn_id"] and e["host"])
        # The per-account record, as compd's recorder keeps it.
        acct = STACK.redis.call("HGETALL", "compd:account:alice@customer.example")
        acct = dict(zip(acct[0::2], acct[1::2]))
        self.assertGreaterEqual(int(acct["hits"]), 1)
        self.assertEqual(acct["last_entry"], "toewebvastsatw@gmx.com")
        self.assertIsNotNone(STACK.redis.call("ZSCORE", "compd:accounts",
                                              "alice@customer.example"))

    def test_account_record_is_keyed_by_lower_case_login(self):
        # compd-milter keys the registry by the ASCII lower case of the login; rspamd's
        # hits must land in the same record, not in a second one per spelling.
        start = self.last_id()
        for user in ("Carol.Case@Customer.Example", "carol.case@customer.example"):
            STACK.rspamd.check(["<toewebvastsatw@gmx.com>"], user=user)
        events = h.wait_for(lambda: len(self.events_since(start)) >= 2 and
                            self.events_since(start), 5, what="two events from rspamd")
        self.assertEqual(sorted(e["account"] for e in events),
                         ["Carol.Case@Customer.Example", "carol.case@customer.example"])
        self.assertEqual(STACK.redis.call("EXISTS", "compd:account:Carol.Case@Customer.Example"),
                         0)
        acct = STACK.redis.call("HGETALL", "compd:account:carol.case@customer.example")
        acct = dict(zip(acct[0::2], acct[1::2]))
        self.assertEqual(int(acct["hits"]), 2)
        self.assertIsNone(STACK.redis.call("ZSCORE", "compd:accounts",
                                           "Carol.Case@Customer.Example"))

    def test_pattern_hit_names_the_pattern_and_ids_are_unique(self):
        start = self.last_id()
        for _ in range(2):
            # TEST123 does not match the case-sensitive /^test[0-9]{2,4}@trap\.test$/.
            STACK.rspamd.check(["test123@trap.test", "TEST123@trap.test",
                                "Anyone@Collector.example"], user="bob@customer.example")
        events = h.wait_for(lambda: len(self.events_since(start)) >= 4 and
                            self.events_since(start), 5, what="4 events")
        time.sleep(0.2)
        events = self.events_since(start)
        by_rcpt = {}
        for e in events:
            by_rcpt.setdefault(e["recipient"], []).append(e)
        self.assertEqual(sorted(by_rcpt), ["Anyone@Collector.example", "test123@trap.test"])
        self.assertEqual({e["entry"] for e in by_rcpt["test123@trap.test"]},
                         {r"/^test[0-9]{2,4}@trap\.test$/"})
        self.assertEqual({e["entry"] for e in by_rcpt["Anyone@Collector.example"]},
                         {r"/@collector\.example$/i"})
        self.assertEqual({e["entry_kind"] for e in events}, {"pattern"})
        self.assertEqual({e["account"] for e in events}, {"bob@customer.example"})
        self.assertEqual(len({e["id"] for e in events}), len(events))
        # Every id is also what mapctl and compd-milter use to drop duplicates.
        for e in events:
            self.assertEqual(STACK.redis.call("EXISTS", "compd:seen:" + e["id"]), 1)

    def test_unlisted_recipient_records_nothing(self):
        start = self.last_id()
        reply = STACK.rspamd.check(["nobody-listed@example.org"], user="carol@customer.example")
        self.assertEqual(reply["action"], "no action")
        time.sleep(0.3)
        self.assertEqual(self.events_since(start), [])


class ConsequencesTest(h.ServersTestCase):
    """A hit the rspamd plugin records has the consequences of one compd-milter sees: with
    lock_on_hit the account is locked (its next submission through Postfix+compd-milter is
    refused), the ticket hook runs once per quiet period, and `mapctl accounts show` says
    the same. One Redis, compd-milter (lock_on_hit, a hook program), Postfix and rspamd of
    their own: the shared stack's compd-milter runs without lock_on_hit."""

    LISTED = "test-probe@bad.example"
    LOCK_TEXT = "account suspended, contact support"
    USERS = {"alice@example.com": "pw-alice", "bob@example.com": "pw-bob"}

    @classmethod
    def start_servers(cls):
        cls.redis = cls.started(h.RedisServer().start())
        su.mapctl_add(cls.redis, cls.LISTED)
        cls.program = ah.HookProgram()
        cls.milter = cls.started(h.Milter.standard(
            cls.redis, extra=ah.lock_args(cls.LOCK_TEXT, cls.program)).start())
        cls.stack = cls.started(h.MailStack(users=cls.USERS,
                                            smtpd_milters=cls.milter.postfix_spec,
                                            milter_macros=ah.SASL_MACROS).start())
        h.wait_for(lambda: os.path.exists(os.path.join(cls.milter.map_dir, "compd_rcpt.map")),
                   10, what="compd-milter writing its map files")
        cls.rspamd = cls.started(rh.Rspamd(map_dir=cls.milter.map_dir, redis=cls.redis).start())

    def diag(self):
        return "\n--- compd-milter log\n%s\n--- rspamd log\n%s" % (
            h.tail(self.milter.log_path, 30), h.tail(self.rspamd.log_path, 15))

    def mapctl(self, *args):
        p = h.mapctl(*args, redis=self.redis)
        self.assertEqual(p.returncode, 0, "mapctl %s: %s%s" % (" ".join(args), p.stdout,
                                                               p.stderr))
        return p.stdout

    def show(self, account):
        return json.loads(self.mapctl("accounts", "show", account, "--json"))

    def wait_locked(self, account):
        def locked():
            # The hit's record is written just after the refusal: none yet is not yet.
            p = h.mapctl("accounts", "show", account, "--json", redis=self.redis)
            rec = json.loads(p.stdout) if p.returncode == 0 else {}
            return rec.get("state") == "locked" and rec
        try:
            return h.wait_for(locked, 10, what="%s to be locked" % account)
        except TimeoutError as e:
            self.fail("%s%s" % (e, self.diag()))

    def submit(self, user, to, **kw):
        return h.swaks(self.stack.submission_port, to, sender=user, user=user,
                       password=self.USERS[user], helo="client.example.test", **kw)

    def refused_at_mail(self, user):
        r = self.submit(user, "friend@fine.example", quit_after="RCPT")
        return r.code == 23 and any(l.startswith("550 5.7.1 " + self.LOCK_TEXT)
                                    for l in r.replies())

    def test_an_rspamd_hit_locks_and_opens_one_ticket_like_a_milter_hit(self):
        # compd-milter published its reaction when it started; rspamd's hits follow it.
        h.wait_for(lambda: self.redis.call("EXISTS", "compd:accounts:reaction"), 5,
                   what="compd-milter publishing its account reaction")
        self.assertFalse(self.refused_at_mail("alice@example.com"), self.diag())
        reply = self.rspamd.check(["<%s>" % self.LISTED], user="Alice@Example.com",
                                  ip="192.0.2.80")
        self.assertEqual(reply["action"], "reject")
        alice = self.wait_locked("alice@example.com")
        # The next submission through Postfix and compd-milter is refused at MAIL FROM.
        try:
            h.wait_for(lambda: self.refused_at_mail("alice@example.com"), 10,
                       what="alice@example.com refused at MAIL FROM")
        except TimeoutError as e:
            self.fail("%s%s" % (e, self.diag()))

        # The same hit seen by compd-milter, for bob: the records say the same.
        self.assertEqual(self.submit("bob@example.com", self.LISTED).code, 24)
        bob = self.wait_locked("bob@example.com")
        for k in ("state", "state_reason", "lock_expires", "hits", "recipients",
                  "last_entry", "last_recipient"):
            self.assertEqual(alice.get(k), bob.get(k), "%s: rspamd %r, compd-milter %r" % (
                k, alice.get(k), bob.get(k)))
        self.assertEqual(alice["state_reason"], "hit on %s; lock_on_hit" % self.LISTED)
        self.assertEqual(alice["client_ips"], {"192.0.2.80": 1})
        self.assertEqual(self.redis.call("EXISTS", "compd:account:Alice@Example.com"), 0)
        text = self.mapctl("accounts", "show", "alice@example.com")
        self.assertRegex(text, r"(?m)^state:?\s+locked")

        # One ticket each, delivered by compd-milter's hook runner; a release and a new
        # rspamd hit within the quiet period lock again without a second ticket.
        try:
            h.wait_for(lambda: self.program.docs_for("alice@example.com") and
                       self.program.docs_for("bob@example.com"), 10,
                       what="the tickets of alice and bob")
        except TimeoutError as e:
            self.fail("%s%s" % (e, self.diag()))
        self.mapctl("accounts", "release", "alice@example.com", "--reason", "reset")
        self.rspamd.check(["<%s>" % self.LISTED], user="alice@example.com")
        h.wait_for(lambda: self.show("alice@example.com")["hits"] == 2 and
                   self.show("alice@example.com")["state"] == "locked", 10,
                   what="the second hit locking alice again")
        time.sleep(1.5)  # longer than the runner's poll: a second ticket would be here now
        docs = self.program.docs_for("alice@example.com")
        self.assertEqual(len(docs), 1, docs)
        self.assertEqual(docs[0]["state"], "locked")
        self.assertEqual(docs[0]["event"]["source"], "rspamd")
        self.assertEqual(docs[0]["event"]["account"], "Alice@Example.com")


class ShippedConfigTest(unittest.TestCase):

    def test_shipped_files_pass_configtest_in_debians_stock_configuration(self):
        local = h.temp_dir("rspamd-local")
        rh.install_shipped_config(local)
        code, out = rh.configtest_stock(local)
        self.assertEqual(code, 0, out)
        self.assertIn("syntax OK", out)
        # The plugin is found in plugins.d and enabled by rspamd.conf.local's section.
        self.assertRegex(out, r"init lua module compd_recorder from \S*plugins\.d")
        self.assertRegex(out, r"added multimap rule: COMPD_RCPT \(rcpt\)")
        self.assertRegex(out, r"added multimap rule: COMPD_RCPT_RE \(rcpt\)")
        # (The temporary folder's name contains "compd"; look at everything else.)
        bad = [l for l in out.replace(local, "LOCAL_CONFDIR").splitlines()
               if re.search(r"compd|COMPD", l) and re.search(r"(?i)error|cannot|fail", l) and
               # multimap's verbose dump of its whole section when it has no Redis: benign
               "cannot load redis server from obj" not in l]
        self.assertEqual(bad, [], out)


class RedisAlternativeTest(StackTest):
    """rspamd-conf/alternatives/multimap-redis.conf does what its comments say."""

    def variant(self, n, redis):
        path = os.path.join(rh.rspamd_conf_dir(), "alternatives", "multimap-redis.conf")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        text = text.replace('"127.0.0.1:6379"', '"127.0.0.1:%d"' % redis.port)
        if n == 2:  # uncomment the selector variant in place of variant 1
            m = re.search(r"\n# COMPD_RCPT \{\n(?:# .*\n)+# \}\n", text)
            self.assertIsNotNone(m, "variant 2 not found")
            block = "\n".join(l[2:] for l in m.group(0).strip("\n").splitlines())
            text = re.sub(r"(?ms)^COMPD_RCPT \{.*?^\}\n", lambda _: block + "\n", text, 1)
        return text

    def test_hget_is_case_sensitive_and_the_selector_variant_is_not(self):
        mapctl_ok("add", "Victim.Redis@Example.COM")
        for n, upper_listed in ((1, False), (2, True)):
            with rh.Rspamd(multimap=self.variant(n, STACK.redis), recorder=False) as r:
                self.assertEqual(r.verdict("<victim.redis@example.com>").symbols,
                                 {"COMPD_RCPT"}, "variant %d" % n)
                self.assertEqual(r.verdict("<Victim.Redis@Example.COM>").listed, upper_listed,
                                 "variant %d" % n)
                self.assertFalse(r.verdict("<victim.redis@example.org>").listed)
        mapctl_ok("remove", "victim.redis@example.com")


class OperatorRuleHazardsTest(unittest.TestCase):
    """The rule from the mailop thread (regexp map of bare lines) on rspamd 3.4: the
    hazards docs/rspamd.md lists, measured."""

    RULE = """
COMPD_RCPT {
  type = "rcpt";
  header = "subject";
  filter = "email";
  map = "%s";
  symbol = "COMPD_RCPT";
  prefilter = true;
  action = "reject";
  regexp = true;
}
"""

    def test_bare_lines_mean_something_else(self):
        d = h.temp_dir("operator-map")
        path = os.path.join(d, "compd_rcpt.map")
        with open(path, "w") as f:
            f.write("a.b@x.com\nm.smith@example.com\nkv@x.com compromised\n"
                    "/^last@re\\.test$/")  # no final newline
        with rh.Rspamd(multimap=self.RULE % path, recorder=False) as r:
            def syms(a):
                return set((r.check([a]).get("symbols") or {}).keys())
            # Bare line = unanchored, case-sensitive regex.
            self.assertEqual(syms("a.b@x.com"), {"COMPD_RCPT"})
            self.assertEqual(syms("zzzaxb@x.com.evil"), {"COMPD_RCPT"})
            self.assertEqual(syms("A.B@X.COM"), set())
            # `m.smith@example.com` is the Perl-style regex `smith@example`.
            self.assertEqual(syms("johnsmith@example.org"), {"COMPD_RCPT"})
            # A value after whitespace becomes the symbol name.
            self.assertEqual(syms("kv@x.com"), {"compromised"})
            # A final /re/ line without a newline is dropped.
            self.assertEqual(syms("last@re.test"), set())
            # prefilter and header are accepted and ignored; the rule still rejects.
            self.assertEqual(r.check(["a.b@x.com"])["action"], "reject")


class SymlinkHazardTest(unittest.TestCase):
    """Why docs/rspamd.md says: point `map` at the real file, never at a symlink. rspamd
    watches file maps with libev's ev_stat, which lstat()s the path: a symlink's own
    attributes never change when its target is replaced by rename."""

    RULES = """
DIRECT {
  type = "rcpt"; filter = "email"; symbol = "DIRECT";
  map = "file://%(real)s";
}
VIA_LINK {
  type = "rcpt"; filter = "email"; symbol = "VIA_LINK";
  map = "file://%(link)s";
}
"""

    def test_renamed_target_of_a_symlink_is_never_reloaded(self):
        d = h.temp_dir("symlink-map")
        real, link = os.path.join(d, "real.map"), os.path.join(d, "link.map")

        def write(text):
            with open(real + ".tmp", "w") as f:
                f.write(text)
            os.rename(real + ".tmp", real)
        write("# map\nold@example.com\n")
        os.symlink(real, link)
        with rh.Rspamd(multimap=self.RULES % {"real": real, "link": link},
                       recorder=False) as r:
            def syms(a):
                return set((r.check([a]).get("symbols") or {}).keys())
            self.assertEqual(syms("old@example.com"), {"DIRECT", "VIA_LINK"})
            write("# map\nold@example.com\nnew@example.com\n")
            h.wait_for(lambda: "DIRECT" in syms("new@example.com"), 5,
                       what="the direct rule to see the new entry")
            time.sleep(3)  # far longer than the direct rule needed
            self.assertEqual(syms("new@example.com"), {"DIRECT"},
                             "rspamd reloaded a map behind a symlink: update docs/rspamd.md")


if __name__ == "__main__":
    h.main()
