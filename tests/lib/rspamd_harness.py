"""rspamd (Debian's package) on loopback, in a temporary folder, for compd's tests and bench.

Built on compd_harness (same process bookkeeping: the child is stopped by the context
manager, at exit, and by the janitor if the test process is killed outright).

    import compd_harness as h, rspamd_harness as rh
    with h.RedisServer() as redis, h.Milter.standard(redis) as milter, \
         rh.Rspamd(map_dir=milter.map_dir, redis=redis) as rspamd:
        v = rspamd.verdict("<listed@example.test>")
        v.listed, v.symbols, v.action

The configuration is minimal on purpose (fast, deterministic, no network):
  - only two Lua plugins are loaded: Debian's multimap.lua and compd's recorder as the
    build generates it (BUILD/rspamd-conf/plugins.d/compd_recorder.lua); no C modules
    (`filters = ""`), no rules file but `global_functions`, no statistics, no Redis except
    the recorder's, DNS pointed at a closed loopback port;
  - the multimap rules are the shipped rspamd-conf/local.d/multimap.conf, with its one
    folder `/var/lib/compd/maps` replaced by `map_dir` (or `multimap=` text for other tests);
  - the recorder's settings are the shipped rspamd-conf/local.d/compd_recorder.conf with the
    `servers` and `prefix` lines pointed at the test's Redis;
  - a normal worker and a controller worker, each on a free loopback port. The controller
    matters: without one, the normal worker also plays "primary controller" and then reloads
    a changed file map only after a random 0-4 s delay (rspamd 3.4's jitter for active maps);
    with one, a renamed file is reloaded within tens of milliseconds (inotify via libev);
  - `url_tld` is a three-line file instead of the 9,600-suffix public suffix list: compiling
    that list is what makes a cold rspamd 3.4 start take ~14 s (Hyperscan), and recipient
    matching never looks at it. With it, a cold start takes about 1 s, so no cache folder
    has to survive between runs: Hyperscan's cache (`hs_cache_dir`) lives in the temporary
    folder unless `hs_cache_dir=` names another one (the benchmark passes a fresh one so a
    reload never reads a cached database);
  - logging to DIR/rspamd.log at info level with microseconds (`log_usec`), which the
    benchmark parses for reload times.

rspamd refuses to run workers as root; as root the harness passes `-i` (insecure), which is
fine for a test on loopback.
"""

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import namedtuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compd_harness as h  # noqa: E402

LOOPBACK = h.LOOPBACK
SHIPPED_MAP_DIR = "/var/lib/compd/maps"
COMPD_SYMBOLS = ("COMPD_RCPT", "COMPD_RCPT_RE")
DEBIAN_PLUGINS = "/usr/share/rspamd/plugins"

# A message with nothing in it that a minimal rspamd would look at.
DEFAULT_MESSAGE = (b"From: sender@example.test\r\nTo: someone@example.test\r\n"
                   b"Subject: compd test\r\nMessage-ID: <compd-test@example.test>\r\n"
                   b"\r\nhello\r\n")


def rspamd_conf_dir():
    """The shipped rspamd-conf/ folder of the source tree."""
    return os.path.join(h.source_dir(), "rspamd-conf")


def built_plugin():
    """The rspamd plugin compd's build generates from rspamd-conf/plugins.d/*.lua.in."""
    path = os.path.join(h.build_dir(), "rspamd-conf", "plugins.d", "compd_recorder.lua")
    if not os.path.exists(path):
        raise h.HarnessError("%s is missing: build compd first (it is made with compd_dist)"
                             % path)
    return path


def require_rspamd():
    """{name: path} for rspamd, rspamc and rspamadm; HarnessError naming the package."""
    found, missing = {}, []
    for name in ("rspamd", "rspamc", "rspamadm"):
        path = h.find_program(name)
        if path:
            found[name] = path
        else:
            missing.append(name)
    if missing or not os.path.exists(os.path.join(DEBIAN_PLUGINS, "multimap.lua")):
        raise h.HarnessError(
            "rspamd is not installed (missing: %s; Debian package: rspamd; run "
            "scripts/install-deps.sh test)" % (", ".join(missing) or DEBIAN_PLUGINS))
    return found


def rspamd_version():
    """"3.4" for `Rspamd daemon version 3.4`."""
    prog = require_rspamd()["rspamd"]
    out = subprocess.run([prog, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=30).stdout
    m = re.search(r"version\s+(\S+)", out)
    return m.group(1) if m else "unknown"


def _ucl_string(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def shipped_multimap(map_dir):
    """The shipped local.d/multimap.conf with its map folder replaced by `map_dir`."""
    with open(os.path.join(rspamd_conf_dir(), "local.d", "multimap.conf")) as f:
        text = f.read()
    if text.count("file://" + SHIPPED_MAP_DIR + "/") != 2:
        raise h.HarnessError("rspamd-conf/local.d/multimap.conf no longer names %s twice as "
                             "file://%s/...; update rspamd_harness.py" %
                             (SHIPPED_MAP_DIR, SHIPPED_MAP_DIR))
    return text.replace("file://" + SHIPPED_MAP_DIR + "/",
                        "file://" + os.path.abspath(map_dir) + "/")


def shipped_recorder_settings(redis_server, prefix):
    """The shipped local.d/compd_recorder.conf pointed at `redis_server` (host:port)."""
    with open(os.path.join(rspamd_conf_dir(), "local.d", "compd_recorder.conf")) as f:
        text = f.read()
    text, n_servers = re.subn(r'(?m)^servers\s*=.*$', "servers = %s;" %
                              _ucl_string(redis_server), text)
    text, n_prefix = re.subn(r'(?m)^prefix\s*=.*$', "prefix = %s;" % _ucl_string(prefix), text)
    if n_servers != 1 or n_prefix != 1:
        raise h.HarnessError("rspamd-conf/local.d/compd_recorder.conf must have exactly one "
                             "`servers = ...;` and one `prefix = ...;` line at the start of a "
                             "line; update rspamd_harness.py")
    return text


Verdict = namedtuple("Verdict", "symbols action options reply")
Verdict.listed = property(lambda v: bool(v.symbols))
Verdict.__doc__ = """rspamd's answer for one message, reduced to compd's rules.

symbols: frozenset of the COMPD_* symbols that fired; action: rspamd's action ("reject",
"no action", ...); options: {symbol: [option, ...]}; reply: the whole /checkv2 JSON."""


class Rspamd(h._ChildService):
    """rspamd -f with a generated minimal configuration, as a child; see the module doc.

    Rspamd(map_dir=None, dir=None, redis=None, prefix="compd:", multimap=None,
           recorder=True, controller=True, map_watch_interval=None, hs_cache_dir=None,
           extra_options="", extra_config="", ready_timeout=60)
      map_dir: folder with compd_rcpt.map and compd_rcpt_re.map (the shipped rules read it).
      redis: a compd_harness.RedisServer (or "host:port") for the recorder; None: no Redis.
      multimap: rules text to use instead of the shipped file (inside `multimap { }`).
      recorder: load compd_recorder.lua with the shipped settings.
      map_watch_interval: e.g. "0.5s" (options.map_watch_interval); None keeps rspamd's
        default (5 min, with file maps watched through inotify).
    Attributes: port, controller_port, dir, log_path, conf_path.
    """

    def __init__(self, map_dir=None, dir=None, redis=None, prefix="compd:", multimap=None,
                 recorder=True, controller=True, map_watch_interval=None, hs_cache_dir=None,
                 extra_options="", extra_config="", ready_timeout=60.0):
        self.programs = require_rspamd()
        self.work = h._Workdir(dir, "rspamd")
        self.dir = self.work.path
        self.map_dir = os.path.abspath(map_dir) if map_dir else None
        self.redis = redis
        self.prefix = prefix
        self.port = h.free_port()
        self.controller_port = h.free_port() if controller else None
        self.log_path = self.work.join("rspamd.log")
        self.conf_path = self.work.join("rspamd.conf")
        self.hs_cache_dir = hs_cache_dir or self.work.join("hs_cache")
        self.ready_timeout = ready_timeout
        self.child = None
        if multimap is None:
            if not self.map_dir:
                raise ValueError("Rspamd needs map_dir (for the shipped rules) or multimap=")
            multimap = shipped_multimap(self.map_dir)
        self._write_config(multimap, recorder, map_watch_interval, extra_options, extra_config)

    # -- configuration -------------------------------------------------------------------

    def _write_config(self, multimap, recorder, map_watch_interval, extra_options,
                      extra_config):
        j = self.work.join
        os.makedirs(self.hs_cache_dir, exist_ok=True)
        plugins = j("plugins")
        os.makedirs(plugins, exist_ok=True)
        os.symlink(os.path.join(DEBIAN_PLUGINS, "multimap.lua"), j("plugins", "multimap.lua"))
        if recorder:
            os.symlink(built_plugin(), j("plugins", "compd_recorder.lua"))
        with open(j("rules.lua"), "w") as f:
            # What the stock rspamd.lua does first; multimap needs its globals.
            f.write('require "global_functions" ()\n')
        with open(j("tld.dat"), "w") as f:
            f.write("com\nnet\ntest\n")
        with open(j("multimap.conf"), "w") as f:
            f.write(multimap)

        redis_addr = None
        if self.redis is not None:
            redis_addr = ("%s:%d" % (LOOPBACK, self.redis.port)
                          if isinstance(self.redis, h.RedisServer) else str(self.redis))
        recorder_section = ""
        if recorder:
            settings = (shipped_recorder_settings(redis_addr, self.prefix) if redis_addr
                        else "prefix = %s;\n" % _ucl_string(self.prefix))
            with open(j("compd_recorder.conf"), "w") as f:
                f.write(settings)
            recorder_section = 'compd_recorder {\n  .include %s\n}\n' % _ucl_string(
                j("compd_recorder.conf"))

        watch = ""
        if map_watch_interval:
            watch = "  map_watch_interval = %s;\n" % map_watch_interval
        controller = ""
        if self.controller_port:
            controller = ('worker "controller" {\n  bind_socket = "%s:%d";\n  count = 1;\n'
                          '  secure_ip = ["127.0.0.1"];\n}\n' %
                          (LOOPBACK, self.controller_port))
        q = _ucl_string
        conf = """# Generated by tests/lib/rspamd_harness.py
options {
  pidfile = %(pid)s;
  filters = "";
  explicit_modules = [];
  hs_cache_dir = %(hs)s;
  cache_file = %(cache)s;
  dynamic_conf = %(dyn)s;
  history_file = %(hist)s;
  control_socket = %(ctl)s;
  stats_file = %(stats)s;
  tempdir = %(tmp)s;
  url_tld = %(tld)s;
  local_addrs = [];
  dns {
    nameserver = ["127.0.0.1:1"];
    timeout = 0.1s;
    retransmits = 0;
  }
%(watch)s%(extra_options)s}
logging {
  type = "file";
  filename = %(log)s;
  level = "info";
  log_usec = true;
}
worker "normal" {
  bind_socket = "%(lo)s:%(port)d";
  count = 1;
  mime = true;
}
%(controller)sactions {
  reject = 15;
  add_header = 6;
  greylist = 4;
}
modules {
  path = %(plugins)s;
}
lua = %(rules)s;
multimap {
  .include %(multimap)s
}
%(recorder)s%(extra_config)s""" % dict(
            pid=q(j("rspamd.pid")), hs=q(self.hs_cache_dir), cache=q(j("symbols.cache")),
            dyn=q(j("dynamic_conf")), hist=q(j("history")),
            ctl=q(j("rspamd.sock") + " mode=0600"), stats=q(j("stats.ucl")), tmp=q(self.dir),
            tld=q(j("tld.dat")), watch=watch, extra_options=extra_options,
            log=q(self.log_path), lo=LOOPBACK, port=self.port, controller=controller,
            plugins=q(plugins), rules=q(j("rules.lua")), multimap=q(j("multimap.conf")),
            recorder=recorder_section, extra_config=extra_config)
        with open(self.conf_path, "w") as f:
            f.write(conf)

    # -- process -------------------------------------------------------------------------

    @property
    def argv(self):
        argv = [self.programs["rspamd"], "-f", "-c", self.conf_path]
        if os.geteuid() == 0:
            argv.append("-i")  # rspamd refuses to run workers as root otherwise
        return argv

    def _ping(self, port):
        try:
            c = http.client.HTTPConnection(LOOPBACK, port, timeout=1)
            c.request("GET", "/ping")
            ok = c.getresponse().read().strip() == b"pong"
            c.close()
            return ok
        except OSError:
            return False

    def start(self):
        if self.child and self.child.running():
            return self
        self.child = h._Child(self.argv, self.work.join("rspamd.out"), "rspamd",
                              cwd=self.dir)

        def ready():
            self.child.check_alive("during start-up (log: %s)" % self.log_path)
            if not self._ping(self.port):
                return False
            return self.controller_port is None or self._ping(self.controller_port)
        try:
            h.wait_for(ready, self.ready_timeout, interval=0.05,
                       what="rspamd on port %d" % self.port)
        except (TimeoutError, h.HarnessError) as e:
            self.stop()
            raise h.HarnessError("%s\n--- %s\n%s\n--- stdout/stderr\n%s" % (
                e, self.log_path, h.tail(self.log_path, 60),
                h.tail(self.work.join("rspamd.out"), 20))) from None
        return self

    # -- scanning ------------------------------------------------------------------------

    def check(self, rcpts=(), message=DEFAULT_MESSAGE, user=None, ip=None, helo=None,
              hostname=None, sender=None, queue_id=None, timeout=30.0):
        """POST /checkv2 with one `Rcpt:` header per recipient; returns the JSON reply.

        Recipients are passed as an MTA passes RCPT TO (`<a@b>` or bare); str values are
        sent as UTF-8 bytes, so SMTPUTF8 addresses reach rspamd unchanged.
        """
        headers = []
        for r in ([rcpts] if isinstance(rcpts, (str, bytes)) else rcpts):
            headers.append(("Rcpt", r))
        for name, value in (("User", user), ("IP", ip), ("Helo", helo),
                            ("Hostname", hostname), ("From", sender),
                            ("Queue-Id", queue_id)):
            if value is not None:
                headers.append((name, value))
        body = message if isinstance(message, bytes) else message.encode("utf-8")
        c = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
        try:
            c.putrequest("POST", "/checkv2", skip_accept_encoding=True)
            for name, value in headers:
                c.putheader(name, value.encode("utf-8") if isinstance(value, str) else value)
            c.putheader("Content-Length", str(len(body)))
            c.endheaders(body)
            resp = c.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise h.HarnessError("rspamd /checkv2 answered %d: %r" % (resp.status, data))
            return json.loads(data.decode("utf-8", "replace"))
        finally:
            c.close()

    def verdict(self, rcpt, **kwargs):
        """Verdict for a message to the one recipient `rcpt`."""
        reply = self.check([rcpt], **kwargs)
        symbols = reply.get("symbols") or {}
        found = frozenset(s for s in COMPD_SYMBOLS if s in symbols)
        options = {s: list(symbols[s].get("options") or []) for s in found}
        return Verdict(found, reply.get("action"), options, reply)

    # -- logs ----------------------------------------------------------------------------

    def log(self):
        return h.tail(self.log_path, 10**7)

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_for_log(self, pattern, timeout=10.0, since=0):
        """Waits until the log (from byte offset `since`) matches `pattern`; returns the match."""
        rx = re.compile(pattern)

        def found():
            self.child.check_alive("while waiting for %r in its log" % pattern)
            return rx.search(self.log_since(since))
        return h.wait_for(found, timeout, interval=0.05, what="%r in %s" % (pattern,
                                                                          self.log_path))


# Timestamps as rspamd writes them with log_usec: `2026-11-26 19:02:08.70730 #6359(normal)`.
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) #(\d+)\((\w+)\)")


def log_time(line):
    """Seconds since the epoch (local time, as rspamd logs) of one log line, or None."""
    m = LOG_LINE.match(line)
    if not m:
        return None
    stamp = m.group(1)
    whole, _, frac = stamp.partition(".")
    t = time.mktime(time.strptime(whole, "%Y-%m-%d %H:%M:%S"))
    return t + (float("0." + frac) if frac else 0.0)


def configtest_stock(local_confdir):
    """`rspamadm -v --var=LOCAL_CONFDIR=DIR configtest -c /etc/rspamd/rspamd.conf`.

    Returns (exit code, verbose output). Runs Debian's stock configuration with compd's files in
    `local_confdir`, which is how an operator installs them.
    """
    prog = require_rspamd()["rspamadm"]
    r = subprocess.run([prog, "-v", "--var=LOCAL_CONFDIR=%s" % local_confdir, "configtest",
                        "-c", "/etc/rspamd/rspamd.conf"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=120)
    return r.returncode, r.stdout


def install_shipped_config(dest):
    """Copies rspamd-conf/ into `dest` as an operator would into /etc/rspamd from
    /usr/share/compd/rspamd: the built plugin in place of its template."""
    shutil.copytree(rspamd_conf_dir(), dest, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.in"))
    shutil.copy(built_plugin(), os.path.join(dest, "plugins.d", "compd_recorder.lua"))
    return dest
