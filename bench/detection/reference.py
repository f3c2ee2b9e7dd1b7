#!/usr/bin/env python3
"""Reference detectors, run by the bench itself over the same logs compd replays.

Each writes its reactions as JSON lines (the replay contract: time, account, reaction,
signals) to OUT/reactions-NAME.jsonl, for score.py. One pass over the log feeds them all.

  thread        The thread's routine: rspamd rejects mail to a mapped test address and a
                cron job writes the hit to ALERT_RCPT.log; "Every morning I get up and I
                check /root/ALERT_RCPT.log and then open a ticket with the customer". A
                flag at the next 08:00 in the operator's time zone (MXroute is in Texas:
                UTC-6, an assumption) after a hit on the starting map.
  tripwire      compd's tripwire alone: a hit on the starting map flags the account at once
                (docs/accounts.md, lock_on_hit = no).
  tripwire-lock The same with lock_on_hit = yes: the hit locks.
  m365-default  Exchange Online service default: 10,000 recipients a day (Exchange Online
                limits, "Recipient rate limit"; the outbound spam policy's limits are 0 =
                service defaults), ActionWhenThresholdReached BlockUser -> lock.
  m365-policy   An outbound spam policy with the values of Microsoft's
                Set-HostedOutboundSpamFilterPolicy example: RecipientLimitExternalPerHour
                500, RecipientLimitInternalPerHour 1000, RecipientLimitPerDay 1000, BlockUser.
  alternc       AlternC smtpshaper defaults (src/usr/lib/alternc/smtpshaper.php): lock at 1000
                recipients in an hour, 5000 in a day, or 100 client addresses in a day
                (rolling windows; the limits are reached with >=).
  saslpolicyd   saslpolicyd's code defaults (sasl-policyd.pl): one record per policy request
                (per RCPT), reject while more than 10 client addresses or more than 100
                requests in the last hour -> lock.
  saslpolicyd-readme  The pattern its README describes: more than 1,000 messages from more
                than 30 addresses in one hour -> lock.
Times are the log's (seconds). Reactions are written at most once per account, detector and
UTC hour (the scorer needs the first one and the flagged account-days).
"""

import argparse
import collections
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import logparse  # noqa: E402

OPERATOR_TZ_HOURS = -6
OPERATOR_MORNING_HOUR = 8


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class Out:
    def __init__(self, path, name):
        self.f = open(path, "w")
        self.name = name
        self.seen = set()
        self.count = 0

    def react(self, t, account, reaction, signals, evidence=None):
        key = (account, reaction, t // 3600)
        if key in self.seen:
            return
        self.seen.add(key)
        self.count += 1
        self.f.write(json.dumps({"time": iso(t), "account": account, "reaction": reaction,
                                 "signals": signals, "evidence": evidence or {},
                                 "detector": self.name}) + "\n")


class Window:
    """Rolling sum and distinct count over the last `span` seconds, per account."""

    __slots__ = ("span", "q", "total", "distinct")

    def __init__(self, span):
        self.span = span
        self.q = collections.deque()
        self.total = 0
        self.distinct = collections.Counter()

    def add(self, t, n, key=None):
        q = self.q
        while q and q[0][0] <= t - self.span:
            _, n0, k0 = q.popleft()
            self.total -= n0
            if k0 is not None:
                self.distinct[k0] -= 1
                if not self.distinct[k0]:
                    del self.distinct[k0]
        q.append((t, n, key))
        self.total += n
        if key is not None:
            self.distinct[key] += 1


class MapHit:
    def __init__(self, out, known, reaction, delay_to_morning=False):
        self.out, self.known, self.reaction = out, known, reaction
        self.morning = delay_to_morning

    def observe(self, t, account, ip, helo, rcpts, local):
        for r in rcpts:
            if r.lower() in self.known:
                when = t
                if self.morning:
                    local_t = t + OPERATOR_TZ_HOURS * 3600
                    day = local_t - local_t % 86400
                    m = day + OPERATOR_MORNING_HOUR * 3600
                    if m <= local_t:
                        m += 86400
                    when = m - OPERATOR_TZ_HOURS * 3600
                self.out.react(when, account, self.reaction, ["hit"], {"recipient": r})
                return


class M365:
    def __init__(self, out, ext_hour, int_hour, per_day):
        self.out = out
        self.limits = (ext_hour, int_hour, per_day)
        self.state = {}

    def observe(self, t, account, ip, helo, rcpts, local):
        s = self.state.get(account)
        if s is None:
            s = self.state[account] = (Window(3600), Window(3600), Window(86400))
        n_int = sum(1 for r in rcpts if r.rsplit("@", 1)[-1].lower() in local)
        n_ext = len(rcpts) - n_int
        ext, inn, day = s
        ext.add(t, n_ext)
        inn.add(t, n_int)
        day.add(t, len(rcpts))
        eh, ih, pd = self.limits
        if (eh and ext.total > eh) or (ih and inn.total > ih) or (pd and day.total > pd):
            self.out.react(t, account, "lock", ["recipient_limit"],
                           {"external_hour": ext.total, "internal_hour": inn.total,
                            "day": day.total})


class AlternC:
    def __init__(self, out):
        self.out = out
        self.state = {}

    def observe(self, t, account, ip, helo, rcpts, local):
        s = self.state.get(account)
        if s is None:
            s = self.state[account] = (Window(3600), Window(86400))
        hour, day = s
        hour.add(t, len(rcpts))
        day.add(t, len(rcpts), ip)
        if hour.total >= 1000 or day.total >= 5000 or len(day.distinct) >= 100:
            self.out.react(t, account, "lock", ["smtpshaper"],
                           {"rcpts_hour": hour.total, "rcpts_day": day.total,
                            "ips_day": len(day.distinct)})


class SaslPolicyd:
    def __init__(self, out, max_ips, max_requests, per_message=False, both=False):
        self.out = out
        self.max_ips, self.max_requests = max_ips, max_requests
        self.per_message, self.both = per_message, both
        self.state = {}

    def observe(self, t, account, ip, helo, rcpts, local):
        w = self.state.get(account)
        if w is None:
            w = self.state[account] = Window(3600)
        w.add(t, 1 if self.per_message else len(rcpts), ip)
        over_ips = len(w.distinct) > self.max_ips
        over_n = w.total > self.max_requests
        if (over_ips and over_n) if self.both else (over_ips or over_n):
            self.out.react(t, account, "lock", ["saslpolicyd"],
                           {"requests_hour": w.total, "ips_hour": len(w.distinct)})


def run(fmt, logs, truth, outdir, year=None):
    known = {a.lower() for a in truth["known_test_addresses"]}
    local = {a["domain"].lower() for a in truth["accounts"]}
    outs, dets = [], []

    def det(name, make):
        o = Out(os.path.join(outdir, "reactions-%s.jsonl" % name), name)
        outs.append(o)
        dets.append(make(o))

    det("thread", lambda o: MapHit(o, known, "flag", delay_to_morning=True))
    det("tripwire", lambda o: MapHit(o, known, "flag"))
    det("tripwire-lock", lambda o: MapHit(o, known, "lock"))
    det("m365-default", lambda o: M365(o, 0, 0, 10000))
    det("m365-policy", lambda o: M365(o, 500, 1000, 1000))
    det("alternc", AlternC)
    det("saslpolicyd", lambda o: SaslPolicyd(o, 10, 100))
    det("saslpolicyd-readme", lambda o: SaslPolicyd(o, 30, 1000, per_message=True, both=True))
    n = 0
    for t, account, ip, helo, rcpts, _ in logparse.messages(fmt, logs, year):
        n += 1
        for d in dets:
            d.observe(t, account, ip, helo, rcpts, local)
    for o in outs:
        o.f.close()
    return n, {o.name: o.count for o in outs}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run the reference detectors over MTA logs.")
    ap.add_argument("--format", choices=("exim", "postfix"), required=True)
    ap.add_argument("--truth", required=True, help="truth.json from simulate.py (for the "
                    "starting map and the provider's own domains)")
    ap.add_argument("--out", required=True, help="folder for reactions-NAME.jsonl")
    ap.add_argument("logs", nargs="+")
    args = ap.parse_args(argv)
    with open(args.truth) as f:
        truth = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    year = int(truth["warmup_start"][:4])
    n, counts = run(args.format, args.logs, truth, args.out, year)
    print("reference: %d submissions read; reactions: %s" % (
        n, ", ".join("%s %d" % kv for kv in counts.items())), file=sys.stderr)
    if n == 0:
        print("reference: no authenticated submission found in %s" % " ".join(args.logs),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
