#!/usr/bin/env python3
"""How long rspamd 3.4 takes to reload compd's map, exact file versus one regexp map.

For each size N it writes N random addresses the way compd-milter does (compd_rcpt.map:
canonical lower-case, sorted, a `#` header line, renamed into place) and, separately, the
same N addresses as one anchored regexp map (compd_rcpt_re.map lines `/^local@domain$/i`,
which is what a hand-kept regexp map holds when it is done right). It starts rspamd with the
shipped rules (tests/lib/rspamd_harness.py: normal + controller worker, fresh Hyperscan
cache), then replaces the file with N+1 entries several times and measures:

  start      rspamd start until both workers answer /ping (the main process loads and
             compiles the maps before it forks the workers)
  reload     start of writing the new file (temp file, fsync, rename, as compd-milter
             does) until a scan gives the verdict of the new entry
  load       the normal worker's own time to read the changed file, from its log
  stall      the longest time any scan took while the reload ran (a second client scans
             a non-listed address in a loop): scanning blocks while a worker compiles
  compile    Hyperscan's own compile time of the map, from rspamd's log (regexp only)

Usage (from the source tree, as root or a user that may run rspamd):
  python3 bench/rspamd_reload_bench.py                 # 1k, 10k, 100k, both kinds
  python3 bench/rspamd_reload_bench.py --sizes 100000 --kinds exact --reloads 5
  python3 bench/rspamd_reload_bench.py --kinds regexp --sizes 1000,10000 --timeout 900

Prints a Markdown table (the one in docs/performance.md). Not a test: figures depend on the
machine; nothing is asserted.
"""

import argparse
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
os.environ.setdefault("COMPD_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..")))
import compd_harness as h  # noqa: E402
import rspamd_harness as rh  # noqa: E402

HEADER_EXACT = "# compd exact recipients (rspamd plain map); written by compd, do not edit\n"
HEADER_RE = "# compd recipient patterns (rspamd regexp map); written by compd, do not edit\n"


def addresses(n, seed=1):
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    domains = ["example.com", "example.org", "gmx.com", "web.de", "mail.example.net",
               "netgate.com.uy", "customer%d.example"]
    out = set()
    while len(out) < n:
        local = "".join(rng.choice(alphabet) for _ in range(rng.randint(5, 14)))
        if rng.random() < 0.3:
            local += "." + "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 6)))
        d = rng.choice(domains)
        if "%d" in d:
            d = d % rng.randrange(1000)
        out.add("%s@%s" % (local, d))
    return sorted(out)


def anchored(addr):
    return "/^%s$/i" % re.sub(r"([.+\[\]\\^$|?*(){}/-])", r"\\\1", addr)


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def write_maps(map_dir, kind, addrs):
    exact = HEADER_EXACT + ("".join(a + "\n" for a in addrs) if kind == "exact" else "")
    pats = HEADER_RE + ("".join(anchored(a) + "\n" for a in sorted(addrs))
                        if kind == "regexp" else "")
    # Patterns first, like compd-milter writes both files: each rename is a reload.
    write_atomically(os.path.join(map_dir, "compd_rcpt_re.map"), pats)
    write_atomically(os.path.join(map_dir, "compd_rcpt.map"), exact)


class Scanner(threading.Thread):
    """Scans a non-listed address in a loop; records (start, duration) of each scan."""

    def __init__(self, rspamd):
        super().__init__(daemon=True)
        self.rspamd = rspamd
        self.samples = []
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            t0 = time.monotonic()
            try:
                self.rspamd.check(["<never.listed@bench.invalid>"], timeout=3600)
            except Exception:
                pass
            self.samples.append((t0, time.monotonic() - t0))
            time.sleep(0.005)

    def worst(self, since, until):
        d = [dur for t0, dur in self.samples if t0 + dur >= since and t0 <= until]
        return max(d) if d else 0.0


def compile_ms(log_text):
    """Hyperscan compile times (ms) rspamd logged for compd_rcpt_re.map."""
    return [float(m.group(1)) for m in re.finditer(
        r"hyperscan compiled \d+ regular expressions from \S*compd_rcpt_re\.map in "
        r"([\d.]+) ms", log_text)]


def load_seconds(log_text, kind):
    """How long the normal worker spent loading the changed file, from its own log lines:
    `rereading map file .../F` to `read hash of N elements` / `read regexp list of N`."""
    name = "compd_rcpt.map" if kind == "exact" else "compd_rcpt_re.map"
    done = "read hash of" if kind == "exact" else "read regexp list of"
    start, out = None, []
    for line in log_text.splitlines():
        if "(normal)" not in line:
            continue
        if "rereading map file" in line and line.rstrip().endswith("/" + name):
            start = rh.log_time(line)
        elif start is not None and done in line and (kind == "regexp" or name in line):
            # (rspamd names the file in "read hash of ... from F", not in "read regexp list")
            out.append(rh.log_time(line) - start)
            start = None
    return out


def run_one(kind, n, reloads, timeout):
    addrs = addresses(n + reloads)
    base, extra = addrs[:n], addrs[n:]
    # Not under /tmp/compd-*: a run takes many minutes, and other jobs on a shared machine
    # sweep their own stale compd-* folders.
    work = tempfile.mkdtemp(prefix="rspamd-reload-bench-")
    try:
        return run_in(work, kind, n, base, extra, timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_in(work, kind, n, base, extra, timeout):
    map_dir = os.path.join(work, "maps")
    os.makedirs(map_dir)
    write_maps(map_dir, kind, base)
    t0 = time.monotonic()
    r = rh.Rspamd(map_dir=map_dir, recorder=False, dir=os.path.join(work, "rspamd"),
                  hs_cache_dir=os.path.join(work, "hs_cache"), ready_timeout=timeout)
    r.start()
    start = time.monotonic() - t0
    result = {"kind": kind, "n": n, "start": start, "reload": [], "stall": [],
              "compile": [], "load": []}
    try:
        probe = base[len(base) // 2]
        assert r.verdict(probe).listed, "probe %s not listed after start" % probe
        scanner = Scanner(r)
        scanner.start()
        time.sleep(0.3)
        current = list(base)
        for new in extra:
            current.append(new)
            log_offset = r.log_size()
            t_write = time.monotonic()
            write_maps(map_dir, kind, sorted(current))
            h.wait_for(lambda: r.verdict(new, timeout=timeout).listed, timeout, interval=0.01,
                       what="rspamd to list %s" % new)
            t_done = time.monotonic()
            result["reload"].append(t_done - t_write)
            time.sleep(0.3)  # let the controller's reload finish too
            result["stall"].append(scanner.worst(t_write, time.monotonic()))
            log_text = r.log_since(log_offset)
            result["compile"] += compile_ms(log_text)
            result["load"] += load_seconds(log_text, kind)
        scanner.stop_flag.set()
        scanner.join(timeout)
    finally:
        r.close()
    return result


def fmt_s(x):
    return "%.3f s" % x if x < 10 else "%.1f s" % x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--kinds", default="exact,regexp")
    ap.add_argument("--reloads", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="give up on one start or reload after this many seconds")
    args = ap.parse_args()
    print("rspamd %s, %d CPUs, %d reloads per row" % (rh.rspamd_version(), os.cpu_count(),
                                                     args.reloads), file=sys.stderr)
    rows = []
    for kind in args.kinds.split(","):
        for n in [int(s) for s in args.sizes.split(",")]:
            print("%s %d ..." % (kind, n), file=sys.stderr, flush=True)
            try:
                res = run_one(kind, n, args.reloads, args.timeout)
            except Exception as e:  # report and go on with the other rows
                print("  failed: %s" % e, file=sys.stderr)
                rows.append("| %s | %d | failed: %s | | | | |" % (kind, n, str(e)[:80]))
                continue
            comp = ("%.0f ms" % statistics.median(res["compile"])) if res["compile"] else "-"
            load = fmt_s(statistics.median(res["load"])) if res["load"] else "-"
            row = "| %s | %d | %s | %s | %s | %s | %s |" % (
                kind, n, fmt_s(res["start"]), fmt_s(statistics.median(res["reload"])), load,
                fmt_s(max(res["stall"])), comp)
            print("  " + row, file=sys.stderr, flush=True)
            rows.append(row)
    print("| map | entries | start | reload (median) | worker load (median) | "
          "worst scan during reload | Hyperscan compile (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
