#!/usr/bin/env python3
"""compd-milter's memory across whole-map re-reads: does it give back what a re-read takes?

A fresh Redis with the map (default 1,000,000 exact entries and 1,000 patterns), compd-milter
(bench build) on a unix socket with recording and --map-dir on; then --rounds changes too
large for the change log (`mapctl add -` / `mapctl remove -` of 10,001 entries in turn), so
each makes the milter read and compile the whole map again while the old snapshot keeps
serving. VmRSS is sampled every 0.5 s; printed: after start-up, the highest and the last
sample of each round, and VmHWM (the peak) at the end.

    python3 bench/memory.py [--entries 1000000] [--patterns 1000] [--rounds 3] [--json FILE]
"""

import argparse
import os
import shlex
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402
from benchlib import h  # noqa: E402

BULK = 10001  # one more than MapStore::kLogMaxEntries: read whole


vm = b.vm_mb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=1000000)
    ap.add_argument("--patterns", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    work = h.temp_dir("memory")
    res = {"entries": args.entries, "patterns": args.patterns, "rounds": []}
    with h.RedisServer() as redis:
        b.load_map(redis, args.entries, args.patterns, via="redis")
        spec = "unix:%s/compd.sock" % work
        m = b.compd_milter(redis, spec, log_level="info")
        m.start()
        pid = m.child.pid
        b.wait_enforced(m, spec, args.entries)
        time.sleep(2)  # the first map files are written
        res["rss_mb_loaded"] = vm(pid, "VmRSS")
        res["hwm_mb_loaded"] = vm(pid, "VmHWM")
        bulk = os.path.join(work, "bulk.txt")
        with open(bulk, "w") as f:
            for k in range(BULK):
                f.write("memory%d@bulk.example\n" % k)
        mapctl = [b.binary("mapctl"), "--redis", redis.url, "--prefix", "compd:"]
        for rnd in range(args.rounds):
            verb = "add" if rnd % 2 == 0 else "remove"
            cmd = " ".join(shlex.quote(a) for a in mapctl + [verb, "-"])
            subprocess.run(cmd + " < " + shlex.quote(bulk), shell=True, check=True,
                           stdout=subprocess.DEVNULL)
            samples = []
            for _ in range(8):
                time.sleep(0.5)
                samples.append(vm(pid, "VmRSS"))
            res["rounds"].append({"change": "%s %d" % (verb, BULK), "rss_mb_max": max(samples),
                                  "rss_mb_last": samples[-1]})
            b.log("memory: round %d (%s %d): RSS up to %.0f MB, then %.0f MB" % (
                rnd + 1, verb, BULK, max(samples), samples[-1]))
        res["hwm_mb"] = vm(pid, "VmHWM")
        m.close()
    print("\ncompd-milter memory at %d exact entries + %d patterns, %d whole re-reads\n" % (
        args.entries, args.patterns, args.rounds))
    rows = [["after start-up", "%.0f" % res["rss_mb_loaded"], "%.0f" % res["hwm_mb_loaded"]]]
    for i, r in enumerate(res["rounds"]):
        rows.append(["re-read %d (%s), highest sample / after" % (i + 1, r["change"]),
                     "%.0f / %.0f" % (r["rss_mb_max"], r["rss_mb_last"]), ""])
    rows.append(["end", "", "%.0f" % res["hwm_mb"]])
    print(b.table(rows, ["when", "RSS MB", "peak (VmHWM) MB"]))
    if args.json:
        b.save_json(args.json, results=res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
