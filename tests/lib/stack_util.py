"""Steps the integration tests share around a stack of test servers.

add_listed     lists exact addresses in the map the way mapctl does (one atomic change)
stream_events  the events in the Redis stream, decoded, optionally of one type
milter_diag    compd-milter's and the mail stack's logs, for a failure message
test_account   an account named after the running test, so tests never share records

Python 3 standard library only.
"""

import json
import time

import compd_harness as h

_ADD_EXACT = """
    for i, a in ipairs(ARGV) do redis.call('HSET', KEYS[1], a, KEYS[4]) end
    local v = redis.call('INCR', KEYS[2])
    redis.call('PUBLISH', KEYS[3], v)
    return v"""


def add_listed(redis, *addresses, source="test", prefix="compd:"):
    """Adds exact entries (lower-cased) straight into Redis: one atomic change that
    bumps the map version and publishes it, so watchers reload once. Returns the version."""
    meta = json.dumps({"added_at": int(time.time()), "added_by": "test", "note": "",
                       "source": source})
    return redis.call("EVAL", _ADD_EXACT, 4, prefix + "map:exact", prefix + "map:version",
                      prefix + "map:changes", meta, *[a.lower() for a in addresses])


def stream_events(redis, prefix="compd:", type_=None):
    """Every event in PREFIX events, oldest first, as dicts; only `type_` ones if given."""
    events = [json.loads(f["event"]) for _, f in redis.stream(prefix + "events")]
    return [e for e in events if type_ is None or e.get("type") == type_]


def milter_diag(milter, stack):
    """Logs for a failure message; either part may be missing."""
    return "\n--- compd-milter log\n%s\n%s" % (
        h.tail(milter.log_path, 40) if milter else "",
        stack.logs() if stack else "")


def test_account(test):
    """`<test method name>@customer.example` for a unittest.TestCase."""
    return "%s@customer.example" % test.id().split(".")[-1]
