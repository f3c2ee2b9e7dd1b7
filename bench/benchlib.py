"""Pieces shared by the benchmark drivers in bench/ (Python 3 standard library only).

Servers come from the test harness (tests/lib/compd_harness.py: RedisServer, Postfix,
Milter, free_port, ...), so every process started here is stopped at exit, or by the
harness' janitor if the driver is killed. Benchmarks use an optimised build: by default
build/bench (bench/run_all.sh configures it with CMAKE_BUILD_TYPE=Release); set
COMPD_BENCH_BUILD to use another folder.
"""

import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))
import compd_harness as h  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
LISTED = "trap{n}@listed.example"
UNLISTED = "user{n}@example.net"


def build_dir():
    return os.path.abspath(os.environ.get("COMPD_BENCH_BUILD") or os.path.join(SRC, "build", "bench"))


def binary(name, required=True):
    path = os.path.join(build_dir(), name)
    if os.access(path, os.X_OK):
        return path
    if required:
        raise h.HarnessError("%s not found in %s (run bench/run_all.sh, or build it: cmake -S . -B "
                             "build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C "
                             "build/bench %s)" % (name, build_dir(), name))
    return None


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# /proc


def _stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid, tree=False):
    """utime+stime of pid (and, with tree, of every descendant alive now), in seconds."""
    pids = [pid] + (descendants(pid) if tree else [])
    total = 0
    for p in pids:
        try:
            f = _stat_fields(p)
            total += int(f[11]) + int(f[12])  # utime, stime (fields 14 and 15)
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def descendants(pid):
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                children.setdefault(int(_stat_fields(int(d))[1]), []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def rss_mb(pid, tree=False):
    total = 0
    for p in [pid] + (descendants(pid) if tree else []):
        try:
            with open("/proc/%d/status" % p) as f:
                m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
                total += int(m.group(1)) if m else 0
        except OSError:
            pass
    return total / 1024.0


def vm_mb(pid, field):
    """VmRSS, VmHWM, ... of a process, in MB (0 when absent)."""
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"^%s:\s+(\d+) kB" % field, f.read(), re.M)
    return int(m.group(1)) / 1024.0 if m else 0.0


def save_json(path, **results):
    """Writes `results` to `path` with the machine and the date, as every benchmark does."""
    with open(path, "w") as f:
        json.dump(dict({"machine": machine(), "date": time.strftime("%Y-%m-%d")}, **results),
                  f, indent=2)


def machine():
    model = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
        m = re.search(r"^Model name:\s+(.*)$", out, re.M)
        if m:
            model = m.group(1).strip()
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "loadavg": " ".join(load)}


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def median(xs):
    return statistics.median(xs) if xs else 0.0


# ---------------------------------------------------------------------------------------
# Milters


class _BenchService(h._Service):
    """A server the benchmarks start: one child process and a work folder."""

    @property
    def pid(self):
        return self.child.pid

    def stop(self):
        if self.child:
            self.child.stop()
            self.child = None

    def close(self):
        self.stop()
        self.work.cleanup()


class NoopMilter(_BenchService):
    """bench/noop_milter on `spec` (inet:PORT@127.0.0.1 or unix:PATH), mode negotiated,
    plain or plain-data."""

    def __init__(self, spec, mode="negotiated"):
        self.spec, self.mode = spec, mode
        self.work = h._Workdir(None, "noop")
        self.child = None

    def start(self):
        self.child = h._Child([binary("noop_milter"), "--socket", self.spec, "--mode", self.mode],
                              self.work.join("noop.log"), "noop_milter")
        wait_socket(self.spec, self.child)
        return self


class Rspamd(_BenchService):
    """rspamd 3.4's milter proxy in self-scan mode with only compd's multimap rules
    (bench/rspamd/rspamd.conf), reading the map files in map_dir; listens on TCP and on a
    unix socket."""

    def __init__(self, map_dir, port=None):
        self.map_dir = map_dir
        self.port = port or h.free_port()
        self.work = h._Workdir(None, "rspamd")
        self.sock = self.work.join("proxy.sock")
        self.child = None

    @staticmethod
    def installed():
        return h.find_program("rspamd") is not None

    @classmethod
    def on_maps(cls, map_dir, work, exact, patterns):
        """Started on the map files a compd-milter writes to map_dir; with map_dir None (no
        compd-milter in the run), on files of `exact` and `patterns` entries written to
        WORK/maps."""
        if map_dir is None:
            map_dir = os.path.join(work, "maps")
            write_map_files(map_dir, exact, patterns)
        h.wait_for(lambda: os.path.exists(os.path.join(map_dir, "compd_rcpt.map")), 120,
                   what="compd map files for rspamd")
        return cls(map_dir).start()

    @property
    def tcp_spec(self):
        return "inet:%d@127.0.0.1" % self.port

    @property
    def unix_spec(self):
        return "unix:" + self.sock

    def start(self, timeout=180):
        conf = os.path.join(SRC, "bench", "rspamd")
        for d in ("run", "db", "log"):
            os.makedirs(self.work.join(d), exist_ok=True)
            shutil.chown(self.work.join(d), "_rspamd", "_rspamd")
        argv = [h.find_program("rspamd"), "-f", "-i", "-u", "_rspamd", "-g", "_rspamd",
                "-c", os.path.join(conf, "rspamd.conf"),
                "--var", "RUNDIR=" + self.work.join("run"),
                "--var", "DBDIR=" + self.work.join("db"),
                "--var", "LOGDIR=" + self.work.join("log"),
                "--var", "MAPDIR=" + self.map_dir,
                "--var", "PROXY_BIND=127.0.0.1:%d" % self.port,
                "--var", "PROXY_UNIX=%s mode=0666" % self.sock,
                "--var", "BENCHCONF=" + conf]
        self.child = h._Child(argv, self.work.join("rspamd.out"), "rspamd")
        # rspamd takes a while to start on a busy 2-core machine (Lua, maps, hyperscan).
        wait_socket(self.tcp_spec, self.child, timeout)
        wait_socket(self.unix_spec, self.child, timeout)
        return self


def wait_socket(spec, child, timeout=30):
    def ready():
        child.check_alive("before listening on %s" % spec)
        if spec.startswith("unix:"):
            return h.unix_socket_open(spec[5:])
        port = int(re.match(r"inet:(\d+)@", spec).group(1))
        return h.port_open(port)
    h.wait_for(ready, timeout, what=spec)


def milter_socket(work, name, transport):
    """A libmilter socket spec for a milter under test: WORK/NAME.sock, or a free loopback
    TCP port."""
    if transport == "unix":
        return "unix:%s/%s.sock" % (work, name)
    return "inet:%d@127.0.0.1" % h.free_port()


def postfix_spec(spec):
    """libmilter socket spec -> Postfix's smtpd_milters form."""
    m = re.match(r"inet:(\d+)@(.*)$", spec)
    return "inet:%s:%s" % (m.group(2), m.group(1)) if m else spec


def _offers(name, word):
    """True if the built program exists and its --help mentions `word` (not a stub)."""
    path = binary(name, required=False)
    if not path:
        return False
    r = subprocess.run([path, "--help"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=30)
    return word in r.stdout


def compd_available():
    return _offers("compd-milter", "--socket")


def mapctl_available():
    return _offers("mapctl", "import")


def compd_milter(redis, spec, extra=(), log_level="warning", env=None):
    """compd-milter (bench build) on spec with recording on (Redis events, alert log), the
    map files written for rspamd; not started yet."""
    args = ["--socket", spec, "--log-level", log_level]
    if spec.startswith("unix:"):
        args += ["--socket-mode", "0666"]
    return h.Milter.standard(redis, binary=binary("compd-milter"), extra=args + list(extra),
                             ready_timeout=120, env=env)


# ---------------------------------------------------------------------------------------
# The map


def pattern_entry(n):
    # Listed patterns that never match the generator's unlisted addresses, yet make the
    # pattern set run on every recipient. All are valid for RE2 and Hyperscan.
    return "/^spamtest[0-9]*\\.%d@(mx|mail)\\.pattern%d\\.example$/i" % (n, n)


def write_map_files(dir, exact, patterns):
    """compd_rcpt.map (exact addresses) and compd_rcpt_re.map (patterns) in `dir`, the
    files compd-milter writes for rspamd and `mapctl import` reads."""
    os.makedirs(dir, exist_ok=True)
    with open(os.path.join(dir, "compd_rcpt.map"), "w") as f:
        for n in range(exact):
            f.write(LISTED.replace("{n}", str(n)) + "\n")
    with open(os.path.join(dir, "compd_rcpt_re.map"), "w") as f:
        for n in range(patterns):
            f.write(pattern_entry(n) + "\n")
    return [os.path.join(dir, "compd_rcpt.map"), os.path.join(dir, "compd_rcpt_re.map")]


def load_map(redis, exact, patterns, prefix="compd:", via="auto", tmpdir=None):
    """Puts `exact` addresses (trap0..@listed.example) and `patterns` patterns into Redis.

    via "mapctl" runs `mapctl import compd_rcpt.map compd_rcpt_re.map --apply` (timed: that
    is the operator's import path), "redis" pipelines HSETs directly in MapStore's key
    layout, "auto" prefers mapctl. Returns {"via", "seconds"}."""
    if via == "auto":
        via = "mapctl" if mapctl_available() else "redis"
    t0 = time.monotonic()
    if via == "mapctl":
        files = write_map_files(os.path.join(tmpdir or h.temp_dir("map"), "import"), exact,
                                patterns)
        t0 = time.monotonic()
        # The dry-run diff it prints (one line per entry) is part of what import costs.
        r = subprocess.run(
            [binary("mapctl"), "--redis", redis.url, "--prefix", prefix, "import"] + files +
            ["--apply"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, timeout=900)
        if r.returncode != 0:
            raise h.HarnessError("mapctl import failed (%d): %s" % (r.returncode, r.stderr))
    else:
        _hset_pipeline(redis, prefix, exact, patterns)
    seconds = time.monotonic() - t0
    got = redis.call("HLEN", prefix + "map:exact"), redis.call("HLEN", prefix + "map:re")
    if got != (exact, patterns):
        raise h.HarnessError("map load via %s: Redis holds %s exact and %s patterns, expected "
                             "%d and %d" % (via, got[0], got[1], exact, patterns))
    return {"via": via, "seconds": seconds}


def _hset_pipeline(redis, prefix, exact, patterns, batch=5000):
    meta = json.dumps({"added_at": int(time.time()), "added_by": "bench", "note": "",
                       "source": "bench"})
    with socket.create_connection(("127.0.0.1", redis.port), timeout=120) as s:
        f = s.makefile("rb")
        sent = 0

        def send(args):
            nonlocal sent
            s.sendall(h._resp_encode(args))
            sent += 1

        for start in range(0, exact, batch):
            args = ["HSET", prefix + "map:exact"]
            for n in range(start, min(exact, start + batch)):
                args += [LISTED.replace("{n}", str(n)), meta]
            send(args)
        if patterns:
            args = ["HSET", prefix + "map:re"]
            for n in range(patterns):
                args += [pattern_entry(n), meta]
            send(args)
        send(["INCR", prefix + "map:version"])
        for _ in range(sent):
            h._resp_read(f)
    # What an import too big for the change log leaves (see MapStore): the version's id in
    # map:changed and a "full" record, so later changes are applied from the log.
    version = redis.call("GET", prefix + "map:version")
    state_id = "%d.%06d" % (int(time.time()), int(time.time() * 1e6) % 1000000)
    redis.call("HSET", prefix + "map:changed", "at", int(time.time()), "by", "bench",
               "op", "import", "version", version, "id", state_id)
    redis.call("RPUSH", prefix + "map:log", "compd1 %s %s full\n" % (version, state_id))
    redis.call("PUBLISH", prefix + "map:changes", version)


# ---------------------------------------------------------------------------------------
# The load generator


def milter_load(spec, *args, timeout=600):
    """Runs milter_load --json against spec; returns its JSON (raises on failure)."""
    argv = [binary("milter_load"), "--socket", spec, "--json"] + [str(a) for a in args]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise h.HarnessError("milter_load %s failed (exit %d): %s %s" % (
            spec, r.returncode, r.stdout[-2000:], r.stderr[-2000:])) from None
    return out


def table(rows, headers):
    """Markdown table."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def wait_enforced(milter, spec, listed_count, timeout=600):
    """Waits until compd-milter refuses a listed recipient (its map is loaded and built).

    compd-milter binds its socket before it loads the map, so until then a connection
    waits in the listen queue; probe with a short timeout and keep trying."""
    def ready():
        milter.child.check_alive("while loading the map")
        try:
            r = milter_load(spec, "-c", 1, "-m", 1, "--rcpts-max", 1, "--listed-share", 1,
                            "--listed-count", listed_count, "--timeout-ms", 2000)
        except h.HarnessError:
            return False
        return r["recipients"]["listed_refused"] == 1
    h.wait_for(ready, timeout, interval=0.05, what="compd-milter to enforce the map")

