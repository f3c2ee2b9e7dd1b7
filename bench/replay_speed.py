#!/usr/bin/env python3
"""Replay speed: `mapctl replay` on a synthetic Exim mainlog with every signal on, timed.

    python3 bench/replay_speed.py --mapctl build/rel/mapctl --messages 1000000

The log (not timed) is what Exim 4.96 writes with +received_recipients +subject: per
message an arrival line (`<=` with H=(helo) [ip], A=, S=, T="subject", for ...), one `=>`
delivery line per recipient and `Completed`; one message in ten is unauthenticated. It is
a month of 14,000 accounts (--accounts), each with a home network and a second one it uses
now and then, 1 to 3 recipients, mostly its own correspondents; one account in 500 is
compromised once (a test message with HELO localhost and a random subject, to a listed
address or a freemail one, then mail from four networks it never used, in one minute), so
test_message, new_networks and hit fire; a map of 10,000 addresses (--map-size) turns the
hit signal on. Discovery runs
as it does by default.

It reports messages per second of CPU time of the mapctl process (reading, parsing, the
engine, discovery, the JSON of the reactions to /dev/null), and the wall time and the load
average (the machine may be shared: CPU time is the figure to compare). --keep DIR keeps
the log and map there (and reuses them when they exist with the same parameters).
docs/performance.md ("Replay") has the figures.
"""
import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time


def write_inputs(path, map_path, a):
    rnd = random.Random(a.seed)
    t0 = 1764547200  # 2025-12-01T00:00:00Z
    span = 30 * 86400
    accounts = ["user%d@customer%d.example" % (i, i % 700) for i in range(a.accounts)]
    home = [(rnd.choice([79, 85, 93, 188, 217]), rnd.randrange(256), rnd.randrange(256))
            for _ in accounts]
    away = [(rnd.choice([31, 46, 176]), rnd.randrange(256), rnd.randrange(256))
            for _ in accounts]
    helos = ["laptop.home.example", "DESKTOP-%d", "[192.168.1.%d]", "iPhone", "pc%d.lan"]
    subjects = ["Re: dinner on Friday", "Invoice 2025-%d", "Minutes of the meeting",
                "Fwd: photos", "Order confirmation %d", "Question about the offer"]
    listed = ["drop%d@collector%d.example" % (i, i % 97) for i in range(a.map_size)]
    with open(map_path, "w") as f:
        for addr in listed:
            f.write(addr + "\n")
    # Each compromised account gets one burst at a random point of the month: a test
    # message (HELO localhost, random subject, one recipient: half of them listed), then
    # mail from four networks it never used, within the same minute.
    bursts = {rnd.randrange(a.messages): k
              for k in rnd.sample(range(a.accounts), max(1, a.accounts // 500))}
    n = 0
    with open(path, "w", buffering=1 << 20) as f:
        def message(ts, mid, acct, helo, ip, size, subj, rcpts):
            f.write('%s %s <= %s H=(%s) [%s]:%d P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 '
                    'CV=no A=login:%s S=%d id=%s@pc.example T="%s" from <%s> for %s\n'
                    % (ts, mid, acct, helo, ip, 40000 + rnd.randrange(20000), acct, size,
                       mid, subj, acct, " ".join(rcpts)))
            for r in rcpts:
                f.write("%s %s => %s R=dnslookup T=remote_smtp H=mx.partner.example "
                        "[198.51.100.%d] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes "
                        "C=\"250 2.0.0 Ok: queued\"\n" % (ts, mid, r, 1 + rnd.randrange(250)))
            f.write("%s %s Completed\n" % (ts, mid))

        for i in range(a.messages):
            t = t0 + span * i // a.messages
            ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
            mid = "1%s-%06d-AA" % (base62(i // 1000000, 5), i % 1000000)
            if i in bursts:
                k = bursts[i]
                for j in range(5):
                    net = (rnd.randrange(1, 223), rnd.randrange(256), rnd.randrange(256))
                    ip = "%d.%d.%d.%d" % (net + (1 + rnd.randrange(250),))
                    bid = "1%s-%06d-B%d" % (base62(i // 1000000, 5), i % 1000000, j)
                    if j == 0:
                        rcpt = (rnd.choice(listed) if rnd.random() < 0.5 else
                                "x%d@freemail.example" % rnd.randrange(10**6))
                        message(ts, bid, accounts[k], "localhost", ip, 700, "ZYaeD, X", [rcpt])
                    else:
                        message(ts, bid, accounts[k], "DESKTOP-%d" % j, ip, 3000,
                                "Important notice", ["v%d@victims.example" % rnd.randrange(10**6)
                                                     for _ in range(3)])
                    n += 1
            k = rnd.randrange(a.accounts)
            acct = accounts[k]
            if rnd.random() < 0.1:  # inbound, no account: counted and skipped
                f.write('%s %s <= news@list%d.example H=mail.list.example [192.0.2.%d] '
                        'P=esmtps S=%d T="Newsletter" from <news@list.example> for %s\n'
                        % (ts, mid, k % 50, 1 + k % 250, 20000, acct))
                f.write("%s %s => %s R=local_user T=dovecot_lmtp\n" % (ts, mid, acct))
                f.write("%s %s Completed\n" % (ts, mid))
                continue
            net = home[k] if rnd.random() < 0.9 else away[k]
            helo = rnd.choice(helos)
            if "%d" in helo:
                helo = helo % (k % 200)
            subj = rnd.choice(subjects)
            if "%d" in subj:
                subj = subj % rnd.randrange(1000)
            rcpts = ["c%d@partner%d.example" % (rnd.randrange(20), (k + j) % 3000)
                     for j in range(rnd.choice([1, 1, 1, 2, 2, 3]))]
            ip = "%d.%d.%d.%d" % (net + (1 + rnd.randrange(250),))
            message(ts, mid, acct, helo, ip, 1500 + rnd.randrange(60000), subj, rcpts)
            n += 1
    return n


def base62(n, width):
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(width):
        out = digits[n % 62] + out
        n //= 62
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mapctl", default="build/rel/mapctl")
    ap.add_argument("--messages", type=int, default=1000000)
    ap.add_argument("--accounts", type=int, default=14000)
    ap.add_argument("--map-size", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="keep (and reuse) the log and map in this folder")
    ap.add_argument("--perf", action="store_true", help="run under perf record (perf.data)")
    a = ap.parse_args()
    d = a.keep or tempfile.mkdtemp(prefix="replay-speed-")
    os.makedirs(d, exist_ok=True)
    stem = "mainlog-%d-%d-%d-%d" % (a.messages, a.accounts, a.map_size, a.seed)
    path, map_path = os.path.join(d, stem), os.path.join(d, stem + ".map")
    try:
        if not (a.keep and os.path.exists(path) and os.path.exists(map_path)):
            write_inputs(path + ".tmp", map_path, a)
            os.rename(path + ".tmp", path)
        argv = [a.mapctl, "replay", "--json", "--map", map_path, path]
        if a.perf:
            argv = ["perf", "record", "-g", "-o", "perf.data", "--"] + argv
        load_before = os.getloadavg()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        r = subprocess.run(argv, env=dict(os.environ, TZ="UTC"), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if r.returncode != 0:
            sys.stderr.write(r.stderr)
            return r.returncode
        summary = json.loads(r.stderr.strip().splitlines()[-1])["summary"]
        msgs = summary["messages"]
        print(json.dumps(summary))
        print("log: %s, %.0f MB, %d lines, %d authenticated messages of %d accounts"
              % (path, os.path.getsize(path) / 1e6, summary["lines"], msgs,
                 summary["accounts"]))
        print("reactions: %d %s" % (summary["reactions"], summary["by_signal"]))
        print("CPU %.2f s: %.0f messages/s per CPU second; wall %.2f s (%.0f/s); "
              "load average %.2f before, %.2f after; peak RSS %.0f MB"
              % (cpu, msgs / cpu, wall, msgs / wall, load_before[0], os.getloadavg()[0],
                 after.ru_maxrss / 1024))
        print("command: %s" % " ".join(argv))
        return 0
    finally:
        if not a.keep:
            for p in (path, map_path):
                if os.path.exists(p):
                    os.remove(p)
            os.rmdir(d)


if __name__ == "__main__":
    sys.exit(main())
