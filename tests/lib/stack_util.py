"""Steps the integration tests share around a stack of test servers.

add_listed     lists exact addresses in the map the way mapctl does (one atomic change)
close_all      closes every part of a stack, reporting instead of raising, so all close
milter_diag    compd-milter's and the mail stack's logs, for a failure message
test_account   an account named after the running test, so tests never share records

Python 3 standard library only.
"""

import json
import sys
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


def close_all(parts):
    """Closes each part that is there, in the order given; a failure is printed, not
    raised, so the parts after it still close."""
    for part in parts:
        if part is None:
            continue
        try:
            part.close()
        except Exception as e:
            print("closing %s: %s" % (type(part).__name__, e), file=sys.stderr)


def milter_diag(milter, stack):
    """Logs for a failure message; either part may be missing."""
    return "\n--- compd-milter log\n%s\n%s" % (
        h.tail(milter.log_path, 40) if milter else "",
        stack.logs() if stack else "")


def test_account(test):
    """`<test method name>@customer.example` for a unittest.TestCase."""
    return "%s@customer.example" % test.id().split(".")[-1]
