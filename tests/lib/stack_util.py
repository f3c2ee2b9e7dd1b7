"""Steps the integration tests share around a stack of test servers.

add_listed     lists exact addresses (and patterns) the way mapctl does (one atomic change)
mapctl_add     lists entries with the real `mapctl add`, failing with its output
stream_events  the events in the Redis stream, decoded, optionally of one type
milter_diag    compd-milter's and the mail stack's logs, for a failure message
MilterStack    redis-server + compd-milter + MailStack that a subclass starts, closed as one
ModuleStack    one such stack for a whole test module (setUpModule / tearDownModule)
customer       NAME@customer.example; customer_users: {account: "pw-NAME"} for names
test_account   an account named after the running test, so tests never share records
account_signals  the detection signal events of one account in the stream
signal_evidence  one signal's evidence from a signal event (a JSON string or a dict)
DetectWaits    TestCase mixin: signals, wait_signal, wait_state of a customer account

Python 3 standard library only.
"""

import json
import time

import compd_harness as h

# ARGV: meta, the number of exact entries, the exact entries, then the patterns.
_ADD_ENTRIES = """
    local n = tonumber(ARGV[2])
    for i = 3, #ARGV do
      redis.call('HSET', i <= 2 + n and KEYS[1] or KEYS[4], ARGV[i], ARGV[1])
    end
    local v = redis.call('INCR', KEYS[2])
    redis.call('PUBLISH', KEYS[3], v)
    return v"""


def add_listed(redis, *addresses, patterns=(), source="test", prefix="compd:"):
    """Adds exact entries (lower-cased) and /regex/ patterns straight into Redis: one
    atomic change that bumps the map version and publishes it, so watchers reload once.
    Returns the version."""
    meta = json.dumps({"added_at": int(time.time()), "added_by": "test", "note": "",
                       "source": source})
    return redis.call("EVAL", _ADD_ENTRIES, 4, prefix + "map:exact", prefix + "map:version",
                      prefix + "map:changes", prefix + "map:re", meta, len(addresses),
                      *[a.lower() for a in addresses], *patterns)


def mapctl_add(redis, *entries, prefix="compd:"):
    """`mapctl add ENTRY...` against redis; an AssertionError with mapctl's output if it
    fails."""
    p = h.mapctl("add", *entries, redis=redis, prefix=prefix)
    if p.returncode != 0:
        raise AssertionError("mapctl add %s: exit %d\n%s%s" % (" ".join(entries), p.returncode,
                                                               p.stdout, p.stderr))
    return p


def stream_events(redis, prefix="compd:", type_=None):
    """Every event in PREFIX events, oldest first, as dicts; only `type_` ones if given."""
    events = [json.loads(f["event"]) for _, f in redis.stream(prefix + "events")]
    return [e for e in events if type_ is None or e.get("type") == type_]


def milter_diag(milter, stack):
    """Logs for a failure message; either part may be missing."""
    return "\n--- compd-milter log\n%s\n%s" % (
        h.tail(milter.log_path, 40) if milter else "",
        stack.logs() if stack else "")


class MilterStack:
    """redis, milter and stack (a MailStack) that the subclass's start(*args) starts; when
    start fails, whatever it started is closed before the error goes on."""

    redis = milter = stack = None

    def __init__(self, *args):
        try:
            self.start(*args)
        except BaseException:
            self.close()
            raise

    def start(self, *args):
        raise NotImplementedError

    def close(self):
        h.close_all((self.redis, self.milter, self.stack))

    def diag(self):
        return milter_diag(self.milter, self.stack)


class ModuleStack:
    """One stack shared by a module's tests: `ENV = ModuleStack(Env)` and
    `setUpModule, tearDownModule = ENV.set_up, ENV.tear_down`; ENV.x then reads the
    started Env's x."""

    def __init__(self, factory):
        self._factory = factory
        self._env = None

    def set_up(self):
        self._env = self._factory()

    def tear_down(self):
        if self._env is not None:
            self._env.close()
            self._env = None

    def __getattr__(self, name):
        if name.startswith("_") or self._env is None:
            raise AttributeError("%s (the module's stack is not started)" % name)
        return getattr(self._env, name)


def customer(name):
    return "%s@customer.example" % name


# The node settings of the live detection tests: their clients are loopback addresses
# (127.N.0.1 as networks), so none may be the provider's own; test messages flag, new
# networks lock, and a locked account gets a text the tests recognise.
DETECT_LOCK_TEXT = "account suspended by compd"
# What their customers' mail looks like: a laptop's HELO, a friend outside; and the thread's
# credential test (its subject, to a gmx-like outside address).
DETECT_HELO = "laptop.customer.example"
DETECT_TEST_SUBJECT = "ZYaeD, X "
DETECT_TEST_RCPT = "toewebvastsatw@gmx.example"
DETECT_FRIEND = "friend@fine.example"
DETECT_NODE_ARGS = [
    "--own-networks", "192.168.0.0/16",
    "--reaction-test-message", "flag",
    "--reaction-new-networks", "lock",
    "--lock-reply", "550",
    "--lock-text", DETECT_LOCK_TEXT,
]


def customer_users(names):
    """{NAME@customer.example: "pw-NAME"} for MailStack(users=...)."""
    return {customer(n): "pw-%s" % n for n in names}


def test_account(test):
    """`<test method name>@customer.example` for a unittest.TestCase."""
    return customer(test.id().split(".")[-1])


def account_signals(redis, account, prefix="compd:"):
    """The `signal` events of `account` in the stream, oldest first."""
    return [e for e in stream_events(redis, prefix, "signal") if e.get("account") == account]


def signal_evidence(event, signal_name):
    """The evidence `signal_name` left in a signal event (stored as JSON text or a dict)."""
    ev = event["evidence"]
    ev = json.loads(ev) if isinstance(ev, str) else ev
    return ev[signal_name]


class DetectWaits:
    """For a TestCase with self.redis, self.diag() and the class's PREFIX (default compd:);
    names are customer(name)."""

    PREFIX = "compd:"

    def mapctl(self, *args):
        p = h.mapctl(*args, redis=self.redis, prefix=self.PREFIX)
        self.assertEqual(p.returncode, 0, "mapctl %s: %s%s" % (" ".join(args), p.stdout,
                                                               p.stderr))
        return p.stdout

    def show(self, name):
        """The account's record; {} while it has none."""
        p = h.mapctl("accounts", "show", customer(name), "--json", redis=self.redis,
                     prefix=self.PREFIX)
        if p.returncode != 0 and "no record" in p.stderr + p.stdout:
            return {}
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return json.loads(p.stdout)

    def known_groups(self, name):
        return self.redis.call("HKEYS", self.PREFIX + "detect:groups:" + customer(name)) or []

    def wait_known(self, name, *nets):
        """Until the account's network groups 127.N.0.0/16 are in Redis (a node wrote them)."""
        want = {"127.%d.0.0/16" % n for n in nets}
        try:
            h.wait_for(lambda: want <= set(self.known_groups(name)), 5,
                       what="groups %s of %s in Redis" % (sorted(want), customer(name)))
        except TimeoutError as e:
            self.fail("%s; known: %s%s" % (e, self.known_groups(name), self.diag()))

    def signals(self, name):
        return account_signals(self.redis, customer(name), self.PREFIX)

    def wait_signal(self, name, rule, timeout=5):
        """The first `rule` signal of the account, waiting up to `timeout` s for it."""
        try:
            return h.wait_for(lambda: [e for e in self.signals(name) if e["rule"] == rule],
                              timeout, what="a %s signal for %s" % (rule, customer(name)))[0]
        except TimeoutError as e:
            self.fail("%s; signals: %s%s" % (e, self.signals(name), self.diag()))

    def wait_state(self, name, state, timeout=5):
        """The account's record once its state is `state`."""
        try:
            return h.wait_for(lambda: self.show(name).get("state") == state and self.show(name),
                              timeout, what="%s to be %s" % (customer(name), state))
        except TimeoutError as e:
            self.fail("%s; record: %s; signals: %s%s" % (e, self.show(name), self.signals(name),
                                                          self.diag()))
