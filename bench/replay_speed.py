#!/usr/bin/env python3
"""Replay speed: writes a synthetic Exim mainlog (N messages of 2,000 accounts over 30 days,
every signal's features present) and times `mapctl replay --no-map` on it.

    python3 bench/replay_speed.py --mapctl build/release/mapctl --messages 500000
Prints messages/s as mapctl's summary reports it (reading, parsing and the engine, one core).
"""
import argparse, os, random, subprocess, sys, tempfile, time

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mapctl", default="build/dev/mapctl")
    ap.add_argument("--messages", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    t0 = 1764547200
    span = 30 * 86400
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "mainlog")
        with open(path, "w") as f:
            for i in range(a.messages):
                t = t0 + span * i // a.messages
                acct = "user%d@customer%d.example" % (rnd.randrange(2000), rnd.randrange(50))
                ip = "%d.%d.%d.%d" % (rnd.choice([203, 198, 79, 85]), rnd.randrange(4),
                                      rnd.randrange(256), 1 + rnd.randrange(250))
                helo = rnd.choice(["laptop.home.example", "localhost", "DESKTOP-1"])
                subj = rnd.choice(["Re: dinner", "ZYaeD, X", "Invoice 42"])
                mid = "%06d-%06d-AA" % (i // 1000000, i % 1000000)
                ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
                f.write('%s %s <= %s H=(%s) [%s] P=esmtpsa A=login:%s S=%d T="%s" from <%s> for r%d@ext%d.example\n'
                        % (ts, mid, acct, helo, ip, acct, 500 + rnd.randrange(5000), subj, acct,
                           rnd.randrange(100), rnd.randrange(10)))
        r = subprocess.run([a.mapctl, "replay", "--no-map", "--json", path],
                           env=dict(os.environ, TZ="UTC"), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        sys.stdout.write(r.stderr)
        return r.returncode

if __name__ == "__main__":
    sys.exit(main())
