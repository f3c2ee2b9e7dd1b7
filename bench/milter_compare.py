#!/usr/bin/env python3
"""Milter throughput: bench/milter_load against compd-milter, the no-op libmilter milter
that negotiates the same protocol steps (the ceiling), and rspamd's milter proxy with only
compd's multimap rules, in interleaved runs (A B C A B C ...), over a unix socket and TCP.

Also the no-op milter with libmilter's defaults ("plain": every step answered but DATA,
which shows the Nagle/delayed-ACK stall over TCP). compd-milter runs with the map loaded into Redis (default 1,000,000 exact entries and
1,000 patterns) and recording on (Redis events, per-account records, the alert log). Each
run is `milter_load -c CONNECTIONS -d SECONDS` with one message per milter session, as
Postfix opens one milter connection per SMTP session. Server CPU per message is read from
/proc/PID/stat (utime+stime) before and after each run (rspamd: its whole process tree).

    python3 bench/milter_compare.py [--duration 5] [--rounds 3] [--connections 10]
        [--entries 1000000] [--patterns 1000] [--listed-share 0.01]
        [--headers 4] [--body-bytes 400] [--extra="--flag value ..."]
        [--transports unix,tcp] [--servers compd,noop,rspamd] [--json FILE]
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402
from benchlib import h  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=10)
    ap.add_argument("--per-session", type=int, default=1)
    ap.add_argument("--entries", type=int, default=1000000)
    ap.add_argument("--patterns", type=int, default=1000)
    ap.add_argument("--load-via", default="redis", choices=("redis", "mapctl"),
                    help="how the map gets into Redis (mapctl import is slower; its time is "
                    "measured by bench/freshness.py)")
    ap.add_argument("--listed-share", type=float, default=0.01,
                    help="share of recipients that are listed (each one is a recorded hit)")
    ap.add_argument("--headers", type=int, default=4,
                    help="header fields per message (milter_load --headers)")
    ap.add_argument("--body-bytes", type=int, default=400,
                    help="body size (sent only to a milter that asks for the body)")
    ap.add_argument("--extra", default="",
                    help="more compd-milter flags, space-separated (settings to compare)")
    ap.add_argument("--transports", default="unix,tcp")
    ap.add_argument("--servers", default="compd,noop,plain,rspamd",
                    help="compd, noop (negotiated like compd), plain (libmilter defaults, "
                    "no DATA reply), rspamd")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    transports = [t for t in args.transports.split(",") if t]
    wanted = [s for s in args.servers.split(",") if s]
    if "compd" in wanted and not b.compd_available():
        b.log("milter_compare: %s/compd-milter not built; skipping compd" % b.build_dir())
        wanted.remove("compd")
    if "rspamd" in wanted and not b.Rspamd.installed():
        b.log("milter_compare: rspamd not installed; skipping it")
        wanted.remove("rspamd")
    work = h.temp_dir("milter-compare")
    servers, targets = [], {}  # targets: "compd-unix" -> (spec, pid, tree)
    try:
        redis = None
        if "compd" in wanted or "rspamd" in wanted:
            redis = h.RedisServer().start()
            servers.append(redis)
            b.log("milter_compare: loading %d entries, %d patterns" % (args.entries,
                                                                      args.patterns))
            loaded = b.load_map(redis, args.entries, args.patterns, via=args.load_via,
                                tmpdir=work)
            b.log("milter_compare: loaded via %s in %.1f s" % (loaded["via"], loaded["seconds"]))
        map_dir = None
        for t in transports:
            spec = lambda name: b.milter_socket(work, name, t)  # noqa: E731
            if "compd" in wanted:
                m = b.compd_milter(redis, spec("compd-" + t), extra=args.extra.split()).start()
                servers.append(m)
                map_dir = map_dir or m.map_dir
                b.wait_enforced(m, m_spec(m), args.entries)
                targets["compd-" + t] = (m_spec(m), m.child.pid, False)
            if "noop" in wanted:
                s = spec("noop-" + t)
                n = b.NoopMilter(s).start()
                servers.append(n)
                targets["noop-" + t] = (s, n.pid, False)
            if "plain" in wanted:  # libmilter's defaults: the TCP stall, for reference
                s = spec("plain-" + t)
                n = b.NoopMilter(s, "plain").start()
                servers.append(n)
                targets["plain-" + t] = (s, n.pid, False)
        if "rspamd" in wanted:
            rs = b.Rspamd.on_maps(map_dir, work, args.entries, args.patterns)
            servers.append(rs)
            for t in transports:
                targets["rspamd-" + t] = (rs.tcp_spec if t == "tcp" else rs.unix_spec, rs.pid,
                                          True)

        order = [s + "-" + t for t in transports for s in ("compd", "noop", "plain", "rspamd")
                 if s + "-" + t in targets]
        load_args = ["-c", args.connections, "-d", args.duration, "--per-session",
                     args.per_session, "--listed-share", args.listed_share,
                     "--listed-count", args.entries, "--headers", args.headers,
                     "--body-bytes", args.body_bytes]
        b.log("milter_compare: warm-up")
        for name in order:
            b.milter_load(targets[name][0], "-c", args.connections, "-d", 1, "--per-session",
                          args.per_session)
        runs = {name: [] for name in order}
        for rnd in range(args.rounds):
            for name in (order if rnd % 2 == 0 else list(reversed(order))):
                spec, pid, tree = targets[name]
                c0 = b.cpu_seconds(pid, tree)
                r = b.milter_load(spec, *load_args)
                c1 = b.cpu_seconds(pid, tree)
                r["server_cpu_us_per_msg"] = (c1 - c0) * 1e6 / max(1, r["messages"])
                r["server_rss_mb"] = b.rss_mb(pid, tree)
                r["loadavg"] = b.loadavg()
                runs[name].append(r)
                b.log("milter_compare: round %d %-12s %7.0f msg/s, p99 %6.0f us, server %5.0f "
                      "us/msg, errors %d (load %.1f)" % (
                          rnd + 1, name, r["msgs_per_s"], r["latency_us"]["p99"],
                          r["server_cpu_us_per_msg"], r["errors"], r["loadavg"]))

        summary = {}
        rows = []
        for name in order:
            rs_ = runs[name]
            med = lambda f: b.median([f(r) for r in rs_])
            s = summary[name] = {
                "msgs_per_s": med(lambda r: r["msgs_per_s"]),
                "rates": [r["msgs_per_s"] for r in rs_],
                "p50_us": med(lambda r: r["latency_us"]["p50"]),
                "p99_us": med(lambda r: r["latency_us"]["p99"]),
                "p999_us": med(lambda r: r["latency_us"]["p999"]),
                "server_cpu_us_per_msg": med(lambda r: r["server_cpu_us_per_msg"]),
                "client_cpu_us_per_msg": med(lambda r: r["client_cpu_us_per_msg"]),
                "server_rss_mb": max(r["server_rss_mb"] for r in rs_),
                "errors": sum(r["errors"] for r in rs_),
                "replies": rs_[-1]["replies"],
                "recipients": rs_[-1]["recipients"],
                "negotiated": rs_[-1]["negotiated"],
            }
            rows.append([name, "%.0f" % s["msgs_per_s"],
                         "%.0f-%.0f" % (min(s["rates"]), max(s["rates"])),
                         "%.0f" % s["p50_us"], "%.0f" % s["p99_us"], "%.0f" % s["p999_us"],
                         "%.0f" % s["server_cpu_us_per_msg"], "%.0f" % s["server_rss_mb"],
                         s["errors"]])
        print("\nMilter throughput: milter_load -c %d, %.0f s per run, %d rounds (median), "
              "%d message(s) per session, listed share %.3f, %d entries + %d patterns, "
              "%d header fields, %d-byte body\n" % (
                  args.connections, args.duration, args.rounds, args.per_session,
                  args.listed_share, args.entries, args.patterns, args.headers,
                  args.body_bytes))
        print(b.table(rows, ["server", "msg/s", "range", "p50 us", "p99 us", "p99.9 us",
                             "server CPU us/msg", "RSS MB", "errors"]))
        ratios = {}
        print()
        for t in transports:
            for other in ("noop", "rspamd"):
                a, o = "compd-" + t, other + "-" + t
                if a in summary and o in summary:
                    thr = summary[a]["msgs_per_s"] / summary[o]["msgs_per_s"]
                    cpu = (summary[a]["server_cpu_us_per_msg"] /
                           max(1e-9, summary[o]["server_cpu_us_per_msg"]))
                    ratios["%s/%s" % (a, o)] = {"throughput": thr, "server_cpu": cpu}
                    print("%s vs %s: throughput %.2f, server CPU per message %.2f" % (
                        a, o, thr, cpu))
            a, o = "noop-" + t, "rspamd-" + t
            if a in summary and o in summary:
                thr = summary[a]["msgs_per_s"] / summary[o]["msgs_per_s"]
                ratios["%s/%s" % (a, o)] = {"throughput": thr}
                print("%s vs %s: throughput %.2f" % (a, o, thr))
        for name in order:
            print("%s replies: %s; recipients %s; negotiated protocol %s" % (
                name, json.dumps(summary[name]["replies"]),
                json.dumps(summary[name]["recipients"]), summary[name]["negotiated"]["protocol"]))
        if args.json:
            b.save_json(args.json, args=vars(args), summary=summary, ratios=ratios, runs=runs)
        return 0 if all(s["errors"] == 0 for s in summary.values()) else 1
    finally:
        for s in reversed(servers):
            try:
                s.close()
            except Exception as e:
                b.log("milter_compare: stopping %s: %s" % (type(s).__name__, e))


def m_spec(m):
    """The socket spec compd-milter was started with."""
    return m._socket_arg()


if __name__ == "__main__":
    sys.exit(main())
