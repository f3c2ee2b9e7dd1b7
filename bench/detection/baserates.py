#!/usr/bin/env python3
"""Base rates for discovering new test addresses: how often unrelated customers mail the same
external address in benign traffic.

For every external recipient (not a provider domain) of a benign message in the scored window
(messages from the logs, minus the test and campaign messages named in truth.json), counts
  pairs      distinct (address, account A, account B) with A and B in different customer
             domains that both mailed the address within 1 hour / 1 day of each other
  first      the same, counting only each account's first mail to that address since the
             logs begin (warm-up included): what a "new recipient for this account, and for
             others too" rule would see
  addresses  addresses reached, within a day, by first mails from at least k unrelated
             customer domains (k = 2, 3, 5)
per day, and per day per 10,000 accounts. The same counts for the test messages themselves
(ground truth) show what such a rule could catch.
"""

import argparse
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import logparse  # noqa: E402
from score import parse_time  # noqa: E402

WINDOWS = (("1h", 3600), ("1d", 86400))


def run(fmt, logs, truth, year=None):
    w0, w1 = parse_time(truth["window_start"]), parse_time(truth["window_end"])
    domain_of = {a["login"].lower(): a["domain"].lower() for a in truth["accounts"]}
    local = set(domain_of.values())
    bad = set()
    test_ids = set()
    for c in truth["compromises"]:
        for t in c["tests"]:
            test_ids.add(t["queue_id"])
        for x in c["campaign"]:
            bad.add(x[1])
    seen = set()  # hashes of (account, address) pairs ever mailed
    # address -> {account: (last time, domain, first time in window or None, is_test)}:
    # one entry per account, so an address mailed all day by the same few customers costs
    # little; the last time is the closest earlier event, which decides "within the window".
    recent = collections.defaultdict(dict)
    pairs = {(w, f): set() for w, _ in WINDOWS for f in (False, True)}
    first_domains = collections.defaultdict(list)  # address -> [(t, domain)] first mails
    test_pairs = {(w, f): set() for w, _ in WINDOWS for f in (False, True)}
    for t, account, ip, helo, rcpts, qid in logparse.messages(fmt, logs, year):
        if qid in bad:
            continue
        acc = account.lower()
        dom = domain_of.get(acc, acc.rsplit("@", 1)[-1])
        is_test = qid in test_ids
        for r in rcpts:
            r = r.lower()
            if r.rsplit("@", 1)[-1] in local:
                continue
            key = hash((acc, r))
            first = key not in seen
            seen.add(key)
            if t < w0 or t >= w1:
                continue
            by_acc = recent[r]
            stale = []
            for acc2, (t2, dom2, first2, test2) in by_acc.items():
                if t - t2 > 86400:
                    stale.append(acc2)
                    continue
                if dom2 == dom or acc2 == acc:
                    continue
                pair = hash((r,) + tuple(sorted((acc, acc2))))
                target = test_pairs if (is_test and test2) else pairs
                both_first = first and first2 is not None and t - first2 <= 86400
                for w, span in WINDOWS:
                    if t - t2 <= span:
                        target[(w, False)].add(pair)
                    if both_first and t - first2 <= span:
                        target[(w, True)].add(pair)
            for acc2 in stale:
                del by_acc[acc2]
            prev = by_acc.get(acc)
            first_t = t if first else (prev[2] if prev else None)
            by_acc[acc] = (t, dom, first_t, is_test)
            if first and not is_test:
                first_domains[r].append((t, dom))
    # over the whole window: unrelated domains whose first mails reached the same address
    any_pairs = 0
    for evs in first_domains.values():
        d = len({x for _, x in evs})
        any_pairs += d * (d - 1) // 2
    test_use = collections.defaultdict(list)
    for c in truth["compromises"]:
        for x in c["tests"][:1]:
            test_use[x["recipient"].lower()].append(
                (parse_time(x["time"]), domain_of.get(c["account"].lower())))
    shared_tests = {r: sorted(v) for r, v in test_use.items() if len({d for _, d in v}) > 1}
    days = (w1 - w0) / 86400.0
    n_acc = len(truth["accounts"])
    per = lambda n: {"total": n, "per_day": n / days,  # noqa: E731
                     "per_day_per_10k_accounts": 1e4 * n / days / n_acc}
    out = {"accounts": n_acc, "days": days, "benign": {}, "tests": {}}
    for (w, f), s in pairs.items():
        out["benign"]["pairs_%s%s" % ("first_" if f else "", w)] = per(len(s))
    for (w, f), s in test_pairs.items():
        out["tests"]["pairs_%s%s" % ("first_" if f else "", w)] = len(s)
    out["benign"]["domain_pairs_first_window"] = per(any_pairs)
    out["tests"]["compromises_with_test"] = sum(len(v) for v in test_use.values())
    out["tests"]["addresses"] = len(test_use)
    out["tests"]["addresses_used_by_2_or_more_domains"] = len(shared_tests)
    gaps = sorted(v[i + 1][0] - v[i][0] for v in shared_tests.values()
                  for i in range(len(v) - 1))
    out["tests"]["reuse_gap_hours_median"] = gaps[len(gaps) // 2] / 3600 if gaps else None
    for k in (2, 3, 5):
        n = 0
        for evs in first_domains.values():
            if len(evs) < k:
                continue
            j = 0
            for i in range(len(evs)):
                while evs[i][0] - evs[j][0] > 86400:
                    j += 1
                if len({d for _, d in evs[j:i + 1]}) >= k:
                    n += 1
                    break
        out["benign"]["addresses_first_from_%d_domains_1d" % k] = per(n)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--format", choices=("exim", "postfix"), required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("logs", nargs="+")
    args = ap.parse_args(argv)
    with open(args.truth) as f:
        truth = json.load(f)
    out = run(args.format, args.logs, truth, int(truth["warmup_start"][:4]))
    print(json.dumps(out, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
