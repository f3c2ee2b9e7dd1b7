#!/usr/bin/env python3
"""Scores detectors' reactions against the simulator's ground truth.

A reactions file is JSON lines, one object per line with at least `time` (ISO 8601, UTC),
`account`, `reaction` (monitor | flag | lock | tempfail) and `signals`; lines without a
`reaction` (a summary) are skipped; anything else is an error naming file:line.

Per detector, over the scored window (warm-up reactions are ignored):
  caught<=N     share of compromises whose account got its first flag or lock at or after the
                compromise began (the first bot login: the test message, else the campaign)
                with at most N campaign messages out (default N = 10)
  median_out    median number of campaign messages out before that reaction (a message logged
                in the same second as the reaction counts as out; a compromise never caught
                counts all its campaign messages)
  before        share caught before the campaign's first message
  flagged/10k/d benign accounts with a flag or lock, per 10,000 accounts per day: distinct
                (account, UTC day) pairs over benign account-days (a compromised account is
                benign before its compromise began)
  locked/10k/d  the same for locks alone
  by signal     the benign flagged (and locked) rate per signal the reactions carried, printed
                under the table (a reaction with two signals counts for both)
and the same three catch figures for locks alone (lock_caught<=N, lock_median_out,
lock_before). tempfail and monitor count as neither.
"""

import argparse
import bisect
import datetime
import json
import os
import statistics
import sys

CATCH = ("flag", "lock")
KINDS = ("monitor", "flag", "lock", "tempfail")


def parse_time(s):
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    d = datetime.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d.timestamp()


class ScoreError(Exception):
    pass


def read_reactions(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                o = json.loads(line)
            except ValueError as e:
                raise ScoreError("%s:%d: not JSON (%s)" % (path, n, e)) from None
            if not isinstance(o, dict) or "reaction" not in o:
                continue
            for k in ("time", "account", "reaction"):
                if k not in o:
                    raise ScoreError("%s:%d: no %r" % (path, n, k))
            if o["reaction"] not in KINDS:
                raise ScoreError("%s:%d: reaction %r is not one of %s" % (
                    path, n, o["reaction"], "|".join(KINDS)))
            try:
                t = parse_time(o["time"])
            except (ValueError, TypeError, AttributeError):
                raise ScoreError("%s:%d: time %r is not ISO 8601" % (path, n, o["time"])) \
                    from None
            sig = o.get("signals") or ()
            if isinstance(sig, str):
                sig = (sig,)
            out.append((t, o["account"].lower(), o["reaction"], tuple(str(x) for x in sig)))
    out.sort()
    return out


def score(truth, reactions, max_out=10):
    w0 = parse_time(truth["window_start"])
    w1 = parse_time(truth["window_end"])
    days = (w1 - w0) / 86400.0
    accounts = {a["login"].lower(): a for a in truth["accounts"]}
    comp_start = {}
    comps = []
    for c in truth["compromises"]:
        start = parse_time(c["login_time"])
        times = sorted(parse_time(x[0]) for x in c["campaign"])
        comps.append((c["account"].lower(), start, parse_time(c["campaign_start"]), times))
        acc = c["account"].lower()
        comp_start[acc] = min(start, comp_start.get(acc, start))
    by_account = {}
    unknown = set()
    for t, acc, kind, signals in reactions:
        if t < w0 or t >= w1:
            continue
        if acc not in accounts:
            unknown.add(acc)
        by_account.setdefault(acc, []).append((t, kind, signals))

    def catches(kinds):
        outs, caught, before = [], 0, 0
        for acc, start, camp, times in comps:
            first = next((t for t, k, _ in by_account.get(acc, ()) if k in kinds and t >= start),
                         None)
            if first is None:
                outs.append(len(times))
                continue
            n_out = bisect.bisect_right(times, first)
            outs.append(n_out)
            if n_out <= max_out:
                caught += 1
            if first < camp:
                before += 1
        n = len(comps)
        return {"caught": caught / n if n else None,
                "median_out": statistics.median(outs) if outs else None,
                "before": before / n if n else None}

    # benign account-days
    benign_days = 0.0
    for acc, a in accounts.items():
        start = max(w0, parse_time(a["created"]) if a.get("created") else w0)
        end = min(w1, comp_start.get(acc, w1))
        if end > start:
            benign_days += (end - start) / 86400.0

    def benign_rate(kinds):
        pairs = set()
        for acc, evs in by_account.items():
            limit = comp_start.get(acc, w1)
            for t, k, _ in evs:
                if k in kinds and t < limit:
                    pairs.add((acc, int((t - w0) // 86400)))
        return 1e4 * len(pairs) / benign_days if benign_days else None, len(pairs)

    def benign_by_signal(kinds):
        # Which signal bothers innocent customers: per signal, the benign (account, day) pairs
        # with a reaction of these kinds that carried it (a reaction with two signals counts
        # for both, so the figures may add up to more than the total).
        pairs = {}
        for acc, evs in by_account.items():
            limit = comp_start.get(acc, w1)
            for t, k, signals in evs:
                if k in kinds and t < limit:
                    for sig in signals or ("(none)",):
                        pairs.setdefault(sig, set()).add((acc, int((t - w0) // 86400)))
        return {sig: round(1e4 * len(p) / benign_days, 2) if benign_days else None
                for sig, p in sorted(pairs.items())}

    any_catch = catches(CATCH)
    locks = catches(("lock",))
    flagged, flagged_n = benign_rate(CATCH)
    locked, locked_n = benign_rate(("lock",))
    return {
        "compromises": len(comps), "accounts": len(accounts), "days": days,
        "max_out": max_out,
        "caught": any_catch["caught"], "median_out": any_catch["median_out"],
        "before": any_catch["before"],
        "lock_caught": locks["caught"], "lock_median_out": locks["median_out"],
        "lock_before": locks["before"],
        "flagged_per_10k_day": flagged, "flagged_account_days": flagged_n,
        "locked_per_10k_day": locked, "locked_account_days": locked_n,
        "benign_account_days": benign_days,
        "flagged_by_signal": benign_by_signal(CATCH),
        "locked_by_signal": benign_by_signal(("lock",)),
        "unknown_accounts": len(unknown),
    }


def fmt(v, spec):
    return "-" if v is None else spec % v


def by_signal_text(d):
    return ", ".join("%s %.2f" % kv for kv in d.items()) or "none"


def table(rows, max_out=10):
    head = ("detector", "caught<=%d" % max_out, "median out", "before", "flagged/10k/d",
            "lock caught<=%d" % max_out, "lock median", "lock before", "locked/10k/d")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for name, s in rows:
        if s is None:
            lines.append("| %s | %s |" % (name, " | ".join(["MISSING"] * (len(head) - 1))))
            continue
        lines.append("| " + " | ".join((
            name, fmt(s["caught"], "%.2f"), fmt(s["median_out"], "%g"), fmt(s["before"], "%.2f"),
            fmt(s["flagged_per_10k_day"], "%.2f"), fmt(s["lock_caught"], "%.2f"),
            fmt(s["lock_median_out"], "%g"), fmt(s["lock_before"], "%.2f"),
            fmt(s["locked_per_10k_day"], "%.2f"))) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Score detectors' reactions against truth.json.")
    ap.add_argument("--truth", required=True)
    ap.add_argument("--max-out", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="one JSON object per detector")
    ap.add_argument("reactions", nargs="+", help="NAME=FILE or FILE (reactions-NAME.jsonl)")
    args = ap.parse_args(argv)
    try:
        with open(args.truth) as f:
            truth = json.load(f)
    except (OSError, ValueError) as e:
        print("score: %s: %s" % (args.truth, e), file=sys.stderr)
        return 1
    rows = []
    try:
        for spec in args.reactions:
            if "=" in spec:
                name, path = spec.split("=", 1)
            else:
                path = spec
                name = os.path.basename(spec)
                if name.startswith("reactions-"):
                    name = name[len("reactions-"):]
                name = name.rsplit(".", 1)[0]
            if not os.path.exists(path):
                rows.append((name, None))
                continue
            rows.append((name, score(truth, read_reactions(path), args.max_out)))
    except (OSError, ScoreError) as e:
        print("score: %s" % e, file=sys.stderr)
        return 1
    if args.json:
        for name, s in rows:
            print(json.dumps(dict(detector=name, **(s or {"missing": True})), sort_keys=True))
    else:
        c = truth["compromises"]
        print("%d accounts, %d scored days from %s, %d compromises (%d sent a test message), "
              "seed %s, %s format" % (len(truth["accounts"]), round(
                  (parse_time(truth["window_end"]) - parse_time(truth["window_start"])) / 86400),
                  truth["window_start"][:10], len(c), sum(1 for x in c if x["tests"]),
                  truth.get("seed"), truth.get("format")))
        print(table(rows, args.max_out))
        for name, s in rows:
            if s and (s["flagged_by_signal"] or s["locked_by_signal"]):
                print("%s benign per 10k/d by signal: flagged %s; locked %s" % (
                    name, by_signal_text(s["flagged_by_signal"]),
                    by_signal_text(s["locked_by_signal"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
