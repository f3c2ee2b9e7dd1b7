#!/usr/bin/env python3
"""Map freshness, snapshot rebuild and memory of compd-milter at several map sizes.

For each size (default 10,000, 100,000 and 1,000,000 exact entries, plus 1,000 patterns):
a fresh redis-server gets the map (pipelined HSETs, or `mapctl import`), compd-milter starts on a unix socket
with recording on and --map-dir, and then:
  - start-up: time from exec until a listed address is refused (map loaded and built);
  - freshness: a `milter_load --probe` client repeats MAIL+RCPT to a new address on one
    kept connection; the time from starting `mapctl add ADDRESS` until the milter
    refuses that address is the freshness (--repeat times, median and max);
  - rebuild: what compd-milter logs about building a snapshot, when it does (else the
    freshness, which contains the rebuild, stands for it);
  - bulk: the same for an add of 10,001 entries, too many for the change log, so the
    milter reads and compiles the whole map;
  - memory: VmRSS after start-up, after the small changes and after the bulk add, and
    VmHWM (the peak, which counts the old and the new snapshot living side by side during
    a swap).

    python3 bench/freshness.py [--sizes 10000,100000,1000000] [--patterns 1000]
        [--repeat 5] [--json FILE]
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402
from benchlib import h  # noqa: E402


# One more than MapStore::kLogMaxEntries: logged as "full", so read whole.
BULK = 10001


vm = b.vm_mb


def probe_flip(spec, address, change_argv, until="refused", timeout=60.0):
    """Starts a probe on `address`, runs change_argv once the probe is ready, and returns
    (seconds from starting the change to the flip, seconds the change command took)."""
    probe = subprocess.Popen([b.binary("milter_load"), "--socket", spec, "--probe", address,
                              "--probe-until", until, "--probe-timeout", str(timeout),
                              "--probe-interval-ms", "1"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = probe.stdout.readline().strip()
        if line != "ready":
            probe.wait(10)
            raise h.HarnessError("probe for %s did not start: %r %s" % (
                address, line, probe.stderr.read()))
        t0 = time.time()
        r = subprocess.run(change_argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120)
        t1 = time.time()
        if r.returncode != 0:
            raise h.HarnessError("%s failed (%d): %s%s" % (" ".join(change_argv),
                                                          r.returncode, r.stdout, r.stderr))
        out = probe.stdout.readline().strip()
        probe.wait(timeout + 10)
        if probe.returncode != 0 or not out:
            raise h.HarnessError("probe for %s: exit %s, %r %s" % (
                address, probe.returncode, out, probe.stderr.read()))
        return json.loads(out)["flipped_at"] - t0, t1 - t0
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()


def rebuild_lines(log_text):
    """Log lines of compd-milter that tell about loading/building a snapshot."""
    return [l for l in log_text.splitlines()
            if re.search(r"(snapshot|rebuil|map: loaded|NOT applied|change log|whole map)",
                         l, re.I)]


def one_size(size, patterns, repeat, work, load_via):
    res = {"entries": size, "patterns": patterns}
    with h.RedisServer() as redis:
        loaded = b.load_map(redis, size, patterns, via=load_via, tmpdir=work)
        res["import"] = loaded
        b.log("freshness: %d entries imported via %s in %.2f s" % (size, loaded["via"],
                                                                 loaded["seconds"]))
        spec = "unix:%s/compd-%d.sock" % (work, size)
        m = b.compd_milter(redis, spec, log_level="info")
        t0 = time.monotonic()
        m.start()
        pid = m.child.pid
        b.wait_enforced(m, spec, size)
        res["startup_s"] = time.monotonic() - t0
        res["rss_mb_loaded"] = vm(pid, "VmRSS")
        mapctl = [b.binary("mapctl"), "--redis", redis.url, "--prefix", "compd:"]
        fresh, cmd = [], []
        for k in range(repeat):
            addr = "fresh%d.size%d@new.example" % (k, size)
            f, c = probe_flip(spec, addr, mapctl + ["add", addr])
            fresh.append(f)
            cmd.append(c)
            b.log("freshness: %d entries: add #%d enforced after %.0f ms (mapctl took %.0f ms)"
                  % (size, k + 1, f * 1000, c * 1000))
            time.sleep(0.5)
        addr = "fresh0.size%d@new.example" % size
        f, c = probe_flip(spec, addr, mapctl + ["remove", addr], until="accepted")
        res["remove_s"] = f
        res["rss_mb_after_changes"] = vm(pid, "VmRSS")
        # A change too large for the change log (an import of 10,001 entries): the milter
        # reads and compiles the whole map again.
        bulk = os.path.join(work, "bulk-%d.txt" % size)
        with open(bulk, "w") as out:
            for k in range(BULK):
                out.write("bulk%d.size%d@new.example\n" % (k, size))
        addr = "bulk%d.size%d@new.example" % (BULK - 1, size)
        add_all = " ".join(shlex.quote(a) for a in mapctl + ["add", "-"])
        f, c = probe_flip(spec, addr, ["sh", "-c", add_all + " < " + shlex.quote(bulk)])
        res["bulk_s"], res["bulk_cmd_s"] = f, c
        b.log("freshness: %d entries: add of %d enforced after %.0f ms (mapctl took %.0f ms)"
              % (size, BULK, f * 1000, c * 1000))
        time.sleep(2)  # the files thread writes the new map meanwhile
        res["rss_mb_after_bulk"] = vm(pid, "VmRSS")
        res["freshness_s"] = fresh
        res["freshness_median_s"] = b.median(fresh)
        res["freshness_max_s"] = max(fresh)
        res["mapctl_add_median_s"] = b.median(cmd)
        res["hwm_mb"] = vm(pid, "VmHWM")
        res["milter_log"] = rebuild_lines(m.log())[-10:]
        res["milter_log_errors"] = [l for l in m.log().splitlines() if " error: " in l][-5:]
        m.close()
        res["snapshot"] = snapshot_bench(redis, os.path.join(work, "snapmaps-%d" % size))
    return res


def snapshot_bench(redis, map_dir, repeat=3):
    """The steps of MapWatcher alone, in a process of its own (see bench/snapshot_bench.cc):
    the median of `repeat` runs, plus the CPU Redis spent serving the reads."""
    os.makedirs(map_dir, exist_ok=True)
    c0 = b.cpu_seconds(redis.child.pid)
    r = subprocess.run([b.binary("snapshot_bench"), "--redis", redis.url, "--map-dir", map_dir,
                        "--repeat", str(repeat)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
    redis_cpu = b.cpu_seconds(redis.child.pid) - c0
    if r.returncode != 0:
        raise h.HarnessError("snapshot_bench failed: %s%s" % (r.stdout, r.stderr))
    runs = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    out = {k: b.median([x[k] for x in runs]) for k in
           ("read_ms", "read_cpu_ms", "build_ms", "build_cpu_ms", "full_ms", "full_cpu_ms",
            "files_ms", "apply_ms", "apply_cpu_ms", "apply_pattern_ms", "apply_full_overlay_ms",
            "compact_ms",
            "compact_cpu_ms", "load_meta_ms", "load_meta_cpu_ms", "rss_loaded_mb")}
    # Each repeat reads the map twice (without and with metadata).
    out["redis_cpu_ms_per_read"] = redis_cpu * 1000 / (2 * len(runs))
    out["hwm_mb"] = max(x["hwm_mb"] for x in runs)
    out["rss_mb"] = runs[-1]["rss_mb"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--patterns", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--load-via", default="redis", choices=("redis", "mapctl"),
                    help="how the map gets into Redis: pipelined HSETs, or `mapctl import` "
                    "(slower; bench/import_bench.sh measures import on its own)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    b.binary("compd-milter")
    b.binary("mapctl")
    work = h.temp_dir("freshness")
    results = [one_size(int(s), args.patterns, args.repeat, work, args.load_via)
               for s in args.sizes.split(",") if s]
    rows = [[r["entries"], "%.2f" % r["import"]["seconds"], "%.2f" % r["startup_s"],
             "%.0f" % (r["freshness_median_s"] * 1000), "%.0f" % (r["freshness_max_s"] * 1000),
             "%.0f" % (r["remove_s"] * 1000), "%.0f" % (r["bulk_s"] * 1000),
             "%.0f" % r["rss_mb_loaded"], "%.0f" % r["rss_mb_after_changes"],
             "%.0f" % r["rss_mb_after_bulk"], "%.0f" % r["hwm_mb"]] for r in results]
    print("\nMap freshness and memory of compd-milter (%d patterns besides the exact entries, "
          "%d changes per size)\n" % (args.patterns, args.repeat))
    print(b.table(rows, ["entries", "import s", "start-up s", "add->enforced ms (median)",
                         "max ms", "remove->accepted ms", "add %d->enforced ms" % BULK,
                         "RSS MB", "RSS after adds MB", "RSS after bulk MB", "peak MB"]))
    rows = []
    for r in results:
        sn = r["snapshot"]
        rows.append([r["entries"],
                     "%.2f (%.2f)" % (sn["apply_ms"], sn["apply_cpu_ms"]),
                     "%.0f" % sn["apply_pattern_ms"],
                     "%.0f" % sn["apply_full_overlay_ms"],
                     "%.0f (%.0f)" % (sn["read_ms"], sn["read_cpu_ms"]),
                     "%.0f (%.0f)" % (sn["build_ms"], sn["build_cpu_ms"]),
                     "%.0f (%.0f)" % (sn["full_ms"], sn["full_cpu_ms"]),
                     "%.0f (%.0f)" % (sn["compact_ms"], sn["compact_cpu_ms"]),
                     "%.0f" % sn["files_ms"],
                     "%.0f (%.0f)" % (sn["load_meta_ms"], sn["load_meta_cpu_ms"]),
                     "%.0f" % sn["redis_cpu_ms_per_read"],
                     "%.0f" % sn["rss_loaded_mb"], "%.0f" % sn["hwm_mb"]])
    print("\nThe steps of a map change (snapshot_bench, median of 3; wall ms, CPU ms in "
          "brackets)\n")
    print(b.table(rows, ["entries", "apply 1 exact", "apply 1 pattern",
                         "apply 1, largest overlay", "whole read (HKEYS)",
                         "build", "read+build", "compaction", "map files",
                         "old read (HGETALL)", "Redis CPU/read", "RSS MB", "peak MB"]))
    for r in results:
        if r["milter_log_errors"]:
            print("\ncompd-milter errors at %d entries:\n  %s" % (
                r["entries"], "\n  ".join(r["milter_log_errors"])))
        if r["milter_log"]:
            print("\ncompd-milter log at %d entries:\n  %s" % (r["entries"],
                                                           "\n  ".join(r["milter_log"])))
    if args.json:
        b.save_json(args.json, results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
