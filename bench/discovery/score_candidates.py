#!/usr/bin/env python3
"""Precision and recall of discovery's candidates against the simulator's ground truth.

  score_candidates.py --truth DIR/truth.json --candidates candidates.jsonl [--json]

A candidate is right when its recipient is a test address some compromised account used
(truth.json `compromises[].tests[].recipient`). Recall is over the test addresses that
could be discovered: used by accounts of at least two customer domains in the logs and not
in the starting map (a listed address is a hit, not news). Accounts behind candidates are
right when compromised at the time of their sighting. Python 3 standard library only.
"""
import argparse
import json
from datetime import datetime


def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--truth", required=True)
    ap.add_argument("--candidates", required=True)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    truth = json.load(open(a.truth))
    start_map = {x.lower() for x in truth.get("known_test_addresses", [])}
    login = {}
    users = {}  # test recipient -> {domain: first time}
    for c in truth["compromises"]:
        acct = c["account"].lower()
        if c.get("login_time"):
            login[acct] = min(login.get(acct, 1e18), ts(c["login_time"]))
        for t in c.get("tests", []):
            r = t["recipient"].lower()
            d = acct.split("@")[-1]
            users.setdefault(r, {}).setdefault(d, ts(t["time"]))
    tests = set(users)
    discoverable = {r for r, ds in users.items() if len(ds) >= 2 and r not in start_map}
    cands = [json.loads(line) for line in open(a.candidates) if line.strip()]
    found = {c["recipient"] for c in cands}
    right = [c for c in cands if c["recipient"] in tests]
    acc_right = acc_wrong = 0
    for c in cands:
        for s in c["sightings"]:
            acct = s["account"].lower()
            if acct in login and ts(s["time"]) >= login[acct] - 1:
                acc_right += 1
            else:
                acc_wrong += 1
    days = (ts(truth["window_end"]) - ts(truth["warmup_start"])) / 86400
    out = {
        "candidates": len(cands),
        "right": len(right),
        "precision": round(len(right) / len(cands), 3) if cands else None,
        "test_addresses": len(tests),
        "discoverable": len(discoverable),
        "discovered": len(discoverable & found),
        "recall": round(len(discoverable & found) / len(discoverable), 3) if discoverable else None,
        "accounts_compromised": acc_right,
        "accounts_benign": acc_wrong,
        "false_candidates_per_day": round((len(cands) - len(right)) / days, 3),
        "missed": sorted(discoverable - found),
        "wrong": [c["recipient"] for c in cands if c["recipient"] not in tests][:20],
    }
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
