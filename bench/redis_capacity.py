#!/usr/bin/env python3
"""Redis cost of compd per 1,000 authenticated messages per second: CPU, commands and memory.

A fresh redis-server and compd-milter with every feature that writes to Redis on (events
with their account records, volume counters, anomaly detection), driven by
bench/milter_load with authenticated senders (--accounts distinct accounts, --listed-share
of recipients listed, so that share of messages are hits and become events). Redis' own
INFO (cpu, commandstats, memory) is read before and after the run: its CPU seconds per
second of load and per message, commands per message, and the memory the run left behind
per account (one hour and one day of counters) and per event.

    python3 bench/redis_capacity.py [--duration 20] [--connections 4] [--accounts 10000]
        [--listed-share 0.01] [--json FILE]

Set COMPD_BENCH_BUILD=build/dev to use a debug build (the milter is slower, Redis' cost per
message is the same).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402
from benchlib import h  # noqa: E402


LISTED = 1000  # map entries; the load's listed recipients are among them (hits)


def info(redis, section):
    out = {}
    for line in redis.call("INFO", section).splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def redis_cpu(redis):
    i = info(redis, "cpu")
    return float(i["used_cpu_user"]) + float(i["used_cpu_sys"])


def command_calls(redis):
    total = 0
    for k, v in info(redis, "commandstats").items():
        fields = dict(x.split("=") for x in v.split(","))
        total += int(fields["calls"])
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--listed-share", type=float, default=0.01)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    with h.RedisServer() as redis:
        b.load_map(redis, LISTED, 10)
        spec = "inet:%d@127.0.0.1" % h.free_port()
        milter = b.compd_milter(redis, spec)
        with milter:
            b.wait_socket(spec, milter.child)
            # Warm-up: scripts loaded, connections open, the first counters written.
            b.milter_load(spec, "-c", 2, "-d", 2, "--accounts", args.accounts,
                          "--listed-share", args.listed_share, "--listed-count", LISTED)
            time.sleep(2)
            mem0 = int(info(redis, "memory")["used_memory"])
            events0 = redis.call("XLEN", "compd:events")
            cpu0, calls0, t0 = redis_cpu(redis), command_calls(redis), time.monotonic()
            load = b.milter_load(spec, "-c", args.connections, "-d", args.duration,
                                 "--accounts", args.accounts,
                                 "--listed-share", args.listed_share,
                                 "--listed-count", LISTED)
            time.sleep(2.5)  # the last volume flush (volume_flush_interval 1s)
            seconds = time.monotonic() - t0
            cpu, calls = redis_cpu(redis) - cpu0, command_calls(redis) - calls0
            mem = int(info(redis, "memory")["used_memory"]) - mem0
            events = redis.call("XLEN", "compd:events") - events0
            keys = redis.call("DBSIZE")
    msgs = load["messages"]
    rate = load["msgs_per_s"]
    cores = cpu / seconds
    res = {
        "machine": b.machine(), "loadavg": b.loadavg(), "messages": msgs,
        "msgs_per_s": rate, "redis_cpu_s": cpu, "redis_cores_at_rate": cores,
        "redis_cpu_us_per_msg": cpu * 1e6 / msgs if msgs else 0,
        "redis_cores_per_1000_msgs_per_s": cpu / msgs * 1000 if msgs else 0,
        "redis_commands_per_msg": calls / msgs if msgs else 0,
        "memory_growth_bytes": mem, "events": events, "keys": keys,
        "accounts": args.accounts, "listed_share": args.listed_share,
    }
    b.log("messages %d at %.0f msg/s; Redis CPU %.2f s = %.1f us/msg = %.3f cores per 1,000 "
          "msg/s; %.2f commands/msg; memory +%.1f MB (%d events, %d keys, %d accounts); "
          "load average %s" %
          (msgs, rate, cpu, res["redis_cpu_us_per_msg"],
           res["redis_cores_per_1000_msgs_per_s"], res["redis_commands_per_msg"],
           mem / 1e6, events, keys, args.accounts, res["loadavg"]))
    if args.json:
        b.save_json(args.json, **res)


if __name__ == "__main__":
    main()
