#!/usr/bin/env python3
"""End to end through Postfix: Postfix's own smtp-source against a private Postfix 3.7,
with one smtpd listener per milter set-up, measured in interleaved rounds.

Each listener relays for loopback without AUTH (like the harness' smtp_port) and has its
own `-o smtpd_milters=...`; `milter_macro_defaults` gives every session an
{auth_authen}, so compd-milter checks it like an authenticated submission. Accepted mail
goes to Postfix's discard(8) transport and `in_flow_delay = 0`, so what is measured is the
SMTP path (smtpd, cleanup, milter), not a delivery agent competing for the two CPUs.

Set-ups ("variants"): none; noop-unix, noop-tcp (bench/noop_milter negotiating like
compd-milter); noop-plain-tcp, noop-plain-unix (libmilter defaults: no DATA reply, the
Nagle/delayed-ACK stall over TCP); compd-unix, compd-tcp (compd-milter with the map loaded,
recording on) when build/bench/compd-milter exists; rspamd-tcp, rspamd-unix (rspamd's
milter proxy with only compd's multimap rules) when rspamd is installed.

    python3 bench/e2e_postfix.py [--messages 1500] [--sessions 10] [--rounds 3]
        [--variants none,noop-tcp,...] [--entries 1000000] [--patterns 1000] [--json FILE]
"""

import argparse
import json
import os
import smtplib
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402
from benchlib import h  # noqa: E402

SMTP_SOURCE = "/usr/sbin/smtp-source"


class BenchPostfix(h.Postfix):
    """The harness' private Postfix plus one open smtpd listener per variant."""

    def __init__(self, listeners, **kw):
        self.listeners = listeners  # name -> (port, smtpd_milters)
        super().__init__(**kw)

    def master_cf(self):
        lines = [super().master_cf()]
        for name, (port, milters) in self.listeners.items():
            lines.append(
                "%s:%d inet n - n - - smtpd\n"
                "  -o syslog_name=%s/%s\n"
                "  -o smtpd_sasl_auth_enable=no\n"
                "  -o smtpd_relay_restrictions=permit_mynetworks,reject\n"
                "  -o smtpd_recipient_restrictions=permit_mynetworks,reject\n"
                "  -o { smtpd_milters = %s }\n" % (h.LOOPBACK, port, self.syslog_name, name,
                                                   milters))
        return "".join(lines)

    def start(self, timeout=30.0):
        super().start(timeout)
        h.wait_for(lambda: all(h.port_open(p) for p, _ in self.listeners.values()), timeout,
                   what="bench listeners")
        return self


def smtp_source(port, messages, sessions, size):
    argv = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(size),
            "-f", "bench@example.com", "-t", "rcpt@example.net", "-N", "-M", "client.bench.test",
            "-S", "e2e bench", "127.0.0.1:%d" % port]
    t0 = time.monotonic()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=900)
    secs = time.monotonic() - t0
    if r.returncode != 0:
        raise h.HarnessError("smtp-source to port %d failed (exit %d): %s" % (
            port, r.returncode, r.stdout[-2000:]))
    return secs


def expect_refusal(port, rcpt):
    """A listed recipient through this listener must be refused (proves the milter is in
    the path; milter_default_action = accept would hide a broken milter)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("check.bench.test")
        s.mail("bench@example.com")
        code, msg = s.rcpt(rcpt)
        if code < 500:  # rspamd refuses at end of message
            s.rcpt("ok@example.net")
            try:
                code, msg = s.data(b"Subject: check\r\nTo: <%s>\r\n\r\ncheck\r\n" %
                                   rcpt.encode())
            except smtplib.SMTPDataError as e:
                code, msg = e.smtp_code, e.smtp_error
            return (None, "accepted") if code < 400 else (code, msg.decode())
        return code, msg.decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1500, help="messages per measurement")
    ap.add_argument("--sessions", type=int, default=10, help="parallel SMTP sessions")
    ap.add_argument("--size", type=int, default=2000, help="smtp-source payload bytes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default="", help="comma-separated subset (default: all)")
    ap.add_argument("--entries", type=int, default=1000000, help="exact entries for compd")
    ap.add_argument("--patterns", type=int, default=1000)
    ap.add_argument("--load-via", default="redis", choices=("redis", "mapctl"),
                    help="how the map gets into Redis (mapctl import is slower; its time is "
                    "measured by bench/freshness.py)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    if not os.access(SMTP_SOURCE, os.X_OK):
        raise h.HarnessError("%s missing (Debian package postfix)" % SMTP_SOURCE)
    want = set(filter(None, args.variants.split(",")))
    pick = lambda v: not want or v in want
    work = h.temp_dir("e2e")
    servers = []  # stopped in reverse order
    milter_pids = {}  # variant -> (pid, tree)
    milters = {}  # variant -> smtpd_milters value
    checks = {}  # variant -> listed recipient that must be refused
    try:
        milters["none"] = ""
        for mode, suffix in (("negotiated", ""), ("plain", "-plain")):
            for transport in ("unix", "tcp"):
                name = "noop%s-%s" % (suffix, transport)
                if not pick(name):
                    continue
                spec = b.milter_socket(work, name, transport)
                m = b.NoopMilter(spec, mode).start()
                servers.append(m)
                milters[name] = b.postfix_spec(spec)
                milter_pids[name] = (m.pid, False)

        need_compd = b.compd_available() and (pick("compd-unix") or pick("compd-tcp"))
        need_rspamd = b.Rspamd.installed() and (pick("rspamd-tcp") or pick("rspamd-unix"))
        if need_compd or need_rspamd:
            redis = h.RedisServer().start()
            servers.append(redis)
            b.log("e2e: loading %d entries and %d patterns" % (args.entries, args.patterns))
            loaded = b.load_map(redis, args.entries, args.patterns, via=args.load_via,
                                tmpdir=work)
            b.log("e2e: map loaded via %s in %.1f s" % (loaded["via"], loaded["seconds"]))
        map_dir = None
        if need_compd:
            for transport in ("unix", "tcp"):
                name = "compd-" + transport
                if not pick(name):
                    continue
                spec = b.milter_socket(work, name, transport)
                m = b.compd_milter(redis, spec).start()
                servers.append(m)
                b.wait_enforced(m, spec, args.entries)
                milters[name] = b.postfix_spec(spec)
                milter_pids[name] = (m.child.pid, False)
                checks[name] = b.LISTED.replace("{n}", "7")
                map_dir = map_dir or m.map_dir
        if need_rspamd:
            rs = b.Rspamd.on_maps(map_dir, work, args.entries, args.patterns)
            servers.append(rs)
            for transport, spec in (("tcp", rs.tcp_spec), ("unix", rs.unix_spec)):
                name = "rspamd-" + transport
                if pick(name):
                    milters[name] = b.postfix_spec(spec)
                    milter_pids[name] = (rs.pid, True)
                    checks[name] = b.LISTED.replace("{n}", "7")

        variants = [v for v in milters if pick(v)]
        listeners = {v: (h.free_port(), milters[v]) for v in variants}
        pf = BenchPostfix(listeners, relay_port=h.free_port(), open_listener=False, main={
            "default_transport": "discard:benchmark",
            "relay_transport": "discard:benchmark",
            "in_flow_delay": "0",
            "milter_macro_defaults": "{auth_authen}=bench@example.com, {auth_type}=PLAIN",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_message_rate_limit": "0",
        }, dir=os.path.join(work, "postfix"))
        pf.start()
        servers.append(pf)

        for v, rcpt in checks.items():
            code, text = expect_refusal(listeners[v][0], rcpt)
            if code is None or code < 500:
                raise h.HarnessError("%s: listed %s was not refused (%s %s); maillog:\n%s" % (
                    v, rcpt, code, text, h.tail(pf.maillog)))
            b.log("e2e: %s refuses a listed recipient: %s %s" % (v, code, text.strip()[:70]))

        b.log("e2e: warm-up")
        for v in variants:
            smtp_source(listeners[v][0], max(50, args.sessions * 5), args.sessions, args.size)

        results = {v: {"rates": [], "cpu_us": []} for v in variants}
        for rnd in range(args.rounds):
            order = variants if rnd % 2 == 0 else list(reversed(variants))
            for v in order:
                pid, tree = milter_pids.get(v, (None, False))
                c0 = b.cpu_seconds(pid, tree) if pid else 0
                secs = smtp_source(listeners[v][0], args.messages, args.sessions, args.size)
                c1 = b.cpu_seconds(pid, tree) if pid else 0
                rate = args.messages / secs
                results[v]["rates"].append(rate)
                results[v]["cpu_us"].append((c1 - c0) * 1e6 / args.messages if pid else 0)
                b.log("e2e: round %d %-16s %7.0f msg/s (load %.1f)" % (rnd + 1, v, rate,
                                                                      b.loadavg()))
        errors = [l for l in pf.log().splitlines() if "milter" in l and
                  ("warning" in l or "error" in l)]

        base = b.median(results["none"]["rates"]) if "none" in results else 0
        rows, out = [], {"machine": b.machine(), "date": time.strftime("%Y-%m-%d"),
                         "messages": args.messages, "sessions": args.sessions,
                         "size": args.size, "rounds": args.rounds, "entries": args.entries,
                         "patterns": args.patterns, "variants": {},
                         "milter_warnings": errors[:20]}
        for v in variants:
            rates = results[v]["rates"]
            med = b.median(rates)
            cost = base / med if base and med else 0
            cpu = b.median(results[v]["cpu_us"])
            out["variants"][v] = {"msgs_per_s": med, "rates": rates, "cost_vs_none": cost,
                                  "milter_cpu_us_per_msg": cpu}
            rows.append([v, "%.0f" % med, "%.0f-%.0f" % (min(rates), max(rates)),
                         "%.2f" % cost if cost else "-", "%.0f" % cpu if cpu else "-"])
        print("\nEnd to end through Postfix: smtp-source -s %d, %d messages per run, %d rounds "
              "(median)\n" % (args.sessions, args.messages, args.rounds))
        print(b.table(rows, ["set-up", "msg/s", "range", "cost vs none", "milter CPU us/msg"]))
        for pair in (("compd-tcp", "rspamd-tcp"), ("compd-unix", "rspamd-unix"),
                     ("compd-tcp", "noop-tcp"), ("compd-unix", "noop-unix")):
            if all(p in out["variants"] for p in pair):
                r = out["variants"][pair[0]]["msgs_per_s"] / out["variants"][pair[1]]["msgs_per_s"]
                out["ratio_%s_vs_%s" % pair] = r
                print("%s / %s throughput: %.2f" % (pair[0], pair[1], r))
        if errors:
            print("\nmilter warnings in the maillog (first %d):\n%s" % (len(errors[:20]),
                                                                      "\n".join(errors[:20])))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=2)
        return 0
    finally:
        for s in reversed(servers):
            try:
                s.close()
            except Exception as e:  # keep stopping the rest
                b.log("e2e: stopping %s: %s" % (type(s).__name__, e))


if __name__ == "__main__":
    sys.exit(main())
