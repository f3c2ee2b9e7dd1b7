"""Integration-test harness: real servers on loopback, in temporary folders, on free ports.

Every server runs as a child of the test (or, for Postfix, under a master daemon whose
process group is known) with stdin/stdout/stderr never inherited from the test, and is
always stopped: by its context manager, by an atexit hook, and, if the test process is
killed outright (e.g. a ctest timeout), by a small janitor process that watches the test's
pid and kills whatever is still registered.

Python 3 standard library only. Pieces:
  free_port(), wait_for(), HarnessError, require_programs()
  RedisServer     redis-server on a free TCP port and a unix socket, stop()/start() again
  SmtpSink        SMTP server in a thread that accepts and stores every message
  Dovecot         dovecot for SASL only (passwd-file users), auth socket for Postfix
  Postfix         a private Postfix instance relaying everything to a sink
  MailStack       SmtpSink + Dovecot + Postfix together
  swaks()         runs swaks, returns SwaksResult(code, transcript)
  miltertest()    runs a Lua miltertest script against a milter port
  Milter          the compd-milter binary as a child; mapctl() runs the mapctl binary
  main()          unittest runner for *_test.py files (closing line, non-zero exit on failure)

Set COMPD_KEEP_TMP=1 to keep the temporary folders (their paths are printed).
"""

import atexit
import contextlib
import email
import email.policy
import itertools
import json
import os
import pwd
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from collections import namedtuple

LOOPBACK = "127.0.0.1"

# Where each program comes from, so a missing one fails with an actionable message.
PACKAGES = {
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    "postfix": "postfix",
    "postconf": "postfix",
    "postqueue": "postfix",
    "sendmail": "postfix",
    "dovecot": "dovecot-core",
    "swaks": "swaks",
    "miltertest": "miltertest",
}
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class HarnessError(Exception):
    """A server could not be set up; the message says what and where to look."""


# ---------------------------------------------------------------------------------------
# Small helpers


def source_dir():
    env = os.environ.get("COMPD_SOURCE_DIR")
    if env:
        return os.path.abspath(env)
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def build_dir():
    env = os.environ.get("COMPD_BUILD_DIR")
    if env:
        return os.path.abspath(env)
    return os.path.join(source_dir(), "build")


def find_program(name):
    path = shutil.which(name)
    if path:
        return path
    for d in SBIN_DIRS:  # sbin is often not on a test runner's PATH
        candidate = os.path.join(d, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def require_programs(*names):
    """Returns {name: path}; raises HarnessError naming every missing program and package."""
    found, missing = {}, []
    for name in names:
        path = find_program(name)
        if path:
            found[name] = path
        else:
            missing.append(name)
    if missing:
        pkgs = sorted({PACKAGES.get(m, m) for m in missing})
        raise HarnessError(
            "required program(s) not installed: %s (Debian package(s): %s; run "
            "scripts/install-deps.sh test)" % (", ".join(missing), " ".join(pkgs)))
    return found


def require_user(name, package):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise HarnessError("system user %r does not exist (it comes with the Debian package %s; "
                           "run scripts/install-deps.sh test)" % (name, package)) from None


def free_port(host=LOOPBACK):
    """A TCP port that was free a moment ago (bind to port 0, read it back, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.05, what=None):
    """Polls predicate() until it returns something truthy, and returns that.

    Raises TimeoutError (naming `what`) if it never does within `timeout` seconds.
    Exceptions from predicate propagate (so a dead server fails fast, not by timeout).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" %
                               (timeout, what or getattr(predicate, "__name__", "condition")))
        time.sleep(interval)


def port_open(port, host=LOOPBACK, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def unix_socket_open(path, timeout=0.5):
    if not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def tail(path, lines=40):
    """The last lines of a text file, for error messages ("" if it does not exist)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


def _keep_tmp():
    return os.environ.get("COMPD_KEEP_TMP", "") not in ("", "0", "no")


class _Workdir:
    """A folder a component owns: the given one, or a fresh temporary one it removes."""

    def __init__(self, path, prefix):
        if path is None:
            self.path = tempfile.mkdtemp(prefix="compd-%s-" % prefix)
            self.owned = True
            # Removed at exit even if the test forgets, and by the janitor if it is killed.
            self.key = None if _keep_tmp() else _reaper.add(self.cleanup, "dir " + self.path)
        else:
            self.path = os.path.abspath(path)
            os.makedirs(self.path, exist_ok=True)
            self.owned = False
            self.key = None
        # Daemons drop privileges (postfix, dovecot, dovenull) and must reach their files.
        os.chmod(self.path, 0o755)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def cleanup(self):
        if not self.owned:
            return
        if _keep_tmp():
            print("compd_harness: kept %s" % self.path, file=sys.stderr)
            return
        shutil.rmtree(self.path, ignore_errors=True)
        if self.key is not None:
            _reaper.remove(self.key)
            self.key = None


def close_all(parts):
    """Closes (or stops) servers given in the order they started, last started first;
    None is skipped; a failure is printed, not raised, so the others still close. Every
    compd-milter is sent SIGTERM first: each takes up to 5 s to stop (libmilter's poll),
    so they stop at once rather than one after another."""
    parts = [p for p in parts if p is not None]
    for milter in parts:
        if isinstance(milter, Milter) and milter.running():
            milter.child.proc.send_signal(signal.SIGTERM)
    for part in reversed(parts):
        try:
            part.close() if hasattr(part, "close") else part.stop()
        except Exception as e:
            print("closing %s: %s" % (type(part).__name__, e), file=sys.stderr)


class ServersTestCase(unittest.TestCase):
    """A TestCase whose servers start once for the class: setUpClass calls the class's
    start_servers(), which registers each server it starts with cls.started(server); when
    that fails, and after the class, every registered server is closed, last first."""

    env = []

    @classmethod
    def start_servers(cls):
        raise NotImplementedError

    @classmethod
    def started(cls, server):
        cls.env.append(server)
        return server

    @classmethod
    def setUpClass(cls):
        cls.env = []
        try:
            cls.start_servers()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        close_all(cls.env)
        cls.env = []


def temp_dir(prefix="test"):
    """A fresh temporary folder (0755); removed at exit (kept with COMPD_KEEP_TMP=1)."""
    return _Workdir(None, prefix).path


# ---------------------------------------------------------------------------------------
# Process bookkeeping: atexit and a janitor for when the test process itself gets killed.

_JANITOR_CODE = r"""
import os, signal, subprocess, sys, time
parent, registry = int(sys.argv[1]), sys.argv[2]
def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
while alive(parent) and os.getppid() == parent:
    time.sleep(0.5)
try:
    lines = open(registry).read().split("\n")
except OSError:
    sys.exit(0)
pgids, postfix, dirs, done = [], [], [], set()
for line in lines:
    kind, _, arg = line.partition(" ")
    if kind == "pgid": pgids.append(int(arg))
    elif kind == "postfix": postfix.append(arg)
    elif kind == "dir": dirs.append(arg)
    elif kind == "done": done.add(arg)
    elif kind == "exit": sys.exit(0)
for d in postfix:
    if "postfix " + d in done: continue
    subprocess.run(["postfix", "-c", d, "abort"], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
for g in pgids:
    if "pgid %d" % g in done: continue
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
time.sleep(0.5)
import shutil
for d in dirs:
    if "dir " + d not in done: shutil.rmtree(d, ignore_errors=True)
try:
    os.unlink(registry)
except OSError:
    pass
"""


class _Reaper:
    """Registry of what this process started; cleaned at exit or by the janitor."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cleanups = {}  # key -> callable
        self.counter = itertools.count()
        self.registry = None
        self.janitor = None
        atexit.register(self.run_all)

    def _start_janitor(self):
        if self.janitor is not None:
            return
        fd, self.registry = tempfile.mkstemp(prefix="compd-janitor-")
        os.close(fd)
        env = dict(os.environ)
        env["PATH"] = env.get("PATH", "") + ":" + ":".join(SBIN_DIRS)
        self.janitor = subprocess.Popen(
            [sys.executable, "-c", _JANITOR_CODE, str(os.getpid()), self.registry],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, env=env)

    def _note(self, line):
        with open(self.registry, "a") as f:
            f.write(line + "\n")

    def add(self, cleanup, janitor_line=None):
        with self.lock:
            if janitor_line:
                self._start_janitor()
                self._note(janitor_line)
            key = next(self.counter)
            self.cleanups[key] = (cleanup, janitor_line)
            return key

    def remove(self, key):
        with self.lock:
            entry = self.cleanups.pop(key, None)
            if entry and entry[1] and self.registry:
                self._note("done " + entry[1])

    def run_all(self):
        with self.lock:
            items = sorted(self.cleanups.items(), reverse=True)
            self.cleanups.clear()
        for _, (cleanup, _) in items:
            try:
                cleanup()
            except Exception as e:  # keep cleaning the rest
                print("compd_harness: cleanup failed: %s" % e, file=sys.stderr)
        with self.lock:
            if self.janitor is not None:
                self._note("exit")
                try:
                    self.janitor.kill()
                    self.janitor.wait(5)
                except OSError:
                    pass
                self.janitor = None
                with contextlib.suppress(OSError):
                    os.unlink(self.registry)


_reaper = _Reaper()


def _kill_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _Child:
    """A daemon run as a child in its own process group, output to a log file."""

    def __init__(self, argv, log_path, name, env=None, cwd=None):
        self.name = name
        self.log_path = log_path
        log = open(log_path, "ab")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True, env=env, cwd=cwd,
                                         close_fds=True)
        except OSError as e:
            raise HarnessError("cannot start %s (%s): %s" % (name, argv[0], e)) from None
        finally:
            log.close()
        self.key = _reaper.add(self.kill, "pgid %d" % self.proc.pid)

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def check_alive(self, doing):
        code = self.proc.poll()
        if code is not None:
            raise HarnessError("%s exited with code %s %s; last lines of %s:\n%s" %
                               (self.name, code, doing, self.log_path, tail(self.log_path)))

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signals the process (SIGTERM by default), waits; SIGKILLs the group if needed.

        Returns the exit code of the main process. Any children left in its process group
        are killed too, so nothing keeps running after stop().
        """
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc, signal.SIGKILL)
                self.proc.wait(5)
        _kill_group(self.proc, signal.SIGKILL)  # stragglers in the group
        _reaper.remove(self.key)
        return self.proc.returncode

    def kill(self):
        _kill_group(self.proc, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.proc.wait(5)
        _reaper.remove(self.key)


class _Service:
    """Context-manager protocol shared by every server."""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self.stop()


class _ChildService(_Service):
    """A server that is one _Child (self.child, None when stopped) in a _Workdir
    (self.work): stop() sends SIGTERM and returns the exit code, close() also removes the
    folder."""

    child = None

    def stop(self, timeout=10.0):
        if not self.child:
            return None
        code = self.child.stop(signal.SIGTERM, timeout)
        self.child = None
        return code

    def close(self):
        self.stop()
        self.work.cleanup()

    def running(self):
        return bool(self.child and self.child.running())


# ---------------------------------------------------------------------------------------
# Redis


class RedisError(Exception):
    """An error reply from Redis (-ERR ...)."""


def _resp_encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        else:
            b = str(a).encode("utf-8")
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _resp_read(f):
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode("utf-8", "surrogateescape")
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [_resp_read(f) for _ in range(n)]
    raise ConnectionError("unexpected reply from redis: %r" % line)


class RedisServer(_ChildService):
    """redis-server on 127.0.0.1:PORT and DIR/redis.sock, no persistence, as a child.

    RedisServer(dir=None, port=None): dir is created if needed (a temporary one if None).
    start(); stop(save=False) (save=True does SHUTDOWN SAVE so start() reloads the data,
    like a Redis restart with persistence); start() again binds the same port.
    url, unix_url, port, unix_socket, log_path; call(*args) speaks RESP directly and returns
    str/int/list/None (raises RedisError, ConnectionError); cli(*args) runs redis-cli.
    """

    def __init__(self, dir=None, port=None):
        self.programs = require_programs("redis-server", "redis-cli")
        self.work = _Workdir(dir, "redis")
        self.port = port or free_port()
        self.unix_socket = self.work.join("redis.sock")
        self.log_path = self.work.join("redis.log")
        self.child = None

    @property
    def url(self):
        return "redis://%s:%d/0" % (LOOPBACK, self.port)

    @property
    def unix_url(self):
        return "unix://" + self.unix_socket

    def start(self, timeout=10.0):
        if self.child and self.child.running():
            return self
        argv = [self.programs["redis-server"], "--port", str(self.port), "--bind", LOOPBACK,
                "--unixsocket", self.unix_socket, "--unixsocketperm", "777",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", self.work.path, "--dbfilename", "dump.rdb", "--logfile", "",
                "--protected-mode", "yes"]
        self.child = _Child(argv, self.log_path, "redis-server")

        def ready():
            self.child.check_alive("during start-up")
            try:
                return self.call("PING") == "PONG"
            except (OSError, RedisError):
                return False  # not listening yet, or still loading the dump
        wait_for(ready, timeout, what="redis-server on port %d" % self.port)
        return self

    def stop(self, save=False, timeout=10.0):
        if not self.child:
            return
        if self.child.running():
            with contextlib.suppress(OSError, RedisError):
                self.call("SHUTDOWN", "SAVE" if save else "NOSAVE")
        self.child.stop(timeout=timeout)
        self.child = None

    def call(self, *args, timeout=5.0):
        with socket.create_connection((LOOPBACK, self.port), timeout=timeout) as s:
            s.sendall(_resp_encode(args))
            with s.makefile("rb") as f:
                try:
                    return _resp_read(f)
                except ConnectionError:
                    if args and str(args[0]).upper() == "SHUTDOWN":
                        return None
                    raise

    def stream(self, key, start="-", end="+"):
        """XRANGE key start end as a list of (id, {field: value})."""
        out = []
        for entry_id, fields in self.call("XRANGE", key, start, end) or []:
            out.append((entry_id, dict(zip(fields[0::2], fields[1::2]))))
        return out

    def cli(self, *args, check=True, input=None):
        """Runs `redis-cli -h 127.0.0.1 -p PORT ARGS...`; returns stdout without the last
        newline. Raises HarnessError if check and redis-cli fails or prints an error."""
        argv = [self.programs["redis-cli"], "-h", LOOPBACK, "-p", str(self.port)] + \
            [str(a) for a in args]
        r = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        out = r.stdout[:-1] if r.stdout.endswith("\n") else r.stdout
        if check and (r.returncode != 0 or out.startswith("(error)") or
                      out.startswith("ERR ")):
            raise HarnessError("redis-cli %s failed (exit %d): %s%s" %
                               (" ".join(argv[5:]), r.returncode, out, r.stderr))
        return out


# ---------------------------------------------------------------------------------------
# SMTP sink


class SinkMessage(namedtuple("SinkMessage", "index mail_from rcpts data helo path")):
    """One message the sink accepted. data is the raw bytes after DATA (dots unstuffed)."""

    @property
    def message(self):
        return email.message_from_bytes(self.data, policy=email.policy.default)

    @property
    def subject(self):
        return self.message.get("Subject")

    def header(self, name):
        return self.message.get_all(name) or []


class _SinkHandler(socketserver.StreamRequestHandler):
    timeout = 60

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self):
        sink = self.server.sink
        self.reply("220 sink.compd.test ESMTP compd test sink")
        helo, mail_from, rcpts = None, None, []
        while True:
            line = self.rfile.readline(1 << 16)
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = cmd.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                helo = arg
                self.wfile.write(b"250-sink.compd.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                                 b"250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n")
            elif verb == "HELO":
                helo = arg
                self.reply("250 sink.compd.test")
            elif verb == "MAIL":
                m = re.match(r"(?i)FROM:\s*<([^>]*)>", arg)
                if not m:
                    self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
                    continue
                mail_from, rcpts = m.group(1), []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                m = re.match(r"(?i)TO:\s*<([^>]*)>", arg)
                if mail_from is None or not m:
                    self.reply("503 5.5.1 Error: need MAIL command" if mail_from is None
                               else "501 5.5.4 Syntax: RCPT TO:<address>")
                    continue
                rcpts.append(m.group(1))
                self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                if mail_from is None or not rcpts:
                    self.reply("503 5.5.1 Error: need RCPT command")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                chunks = []
                while True:
                    dl = self.rfile.readline(1 << 20)
                    if not dl:
                        return
                    if dl in (b".\r\n", b".\n"):
                        break
                    if dl.startswith(b"."):
                        dl = dl[1:]
                    chunks.append(dl)
                msg = sink._store(mail_from, rcpts, b"".join(chunks), helo)
                self.reply("250 2.0.0 Ok: queued as SINK%d" % msg.index)
                mail_from, rcpts = None, []
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized")


class _SinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpSink(_Service):
    """An SMTP server in a thread that accepts every message and keeps it.

    SmtpSink(dir=None, port=None). start()/stop(); port; messages (a snapshot list of
    SinkMessage(index, mail_from, rcpts, data, helo, path)); wait_for_messages(n, timeout)
    returns the first n; wait_for_message(predicate, timeout) returns the first match;
    find(predicate) -> list; clear(). Each message is also written to DIR/N.eml and DIR/N.json.
    """

    def __init__(self, dir=None, port=None):
        self.work = _Workdir(dir, "sink")
        self.port = port or free_port()
        self._messages = []
        self._cond = threading.Condition()
        self._server = None
        self._thread = None

    def start(self):
        if self._server:
            return self
        self._server = _SinkServer((LOOPBACK, self.port), _SinkHandler)
        self._server.sink = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="smtp-sink",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def close(self):
        self.stop()
        self.work.cleanup()

    def _store(self, mail_from, rcpts, data, helo):
        with self._cond:
            index = len(self._messages) + 1
            path = self.work.join("%d.eml" % index)
            with open(path, "wb") as f:
                f.write(data)
            with open(self.work.join("%d.json" % index), "w") as f:
                json.dump({"mail_from": mail_from, "rcpts": rcpts, "helo": helo}, f)
            msg = SinkMessage(index, mail_from, list(rcpts), data, helo, path)
            self._messages.append(msg)
            self._cond.notify_all()
            return msg

    @property
    def messages(self):
        with self._cond:
            return list(self._messages)

    def find(self, predicate):
        return [m for m in self.messages if predicate(m)]

    def clear(self):
        with self._cond:
            self._messages.clear()

    def wait_for_messages(self, n, timeout=10.0):
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= n, timeout):
                raise TimeoutError("sink holds %d message(s) after %.1fs, expected %d" %
                                   (len(self._messages), timeout, n))
            return list(self._messages[:n])

    def wait_for_message(self, predicate, timeout=10.0, what="a matching message"):
        with self._cond:
            found = []

            def match():
                found[:] = [m for m in self._messages if predicate(m)]
                return bool(found)
            if not self._cond.wait_for(match, timeout):
                raise TimeoutError("no %s in the sink after %.1fs (it holds %d message(s))" %
                                   (what, timeout, len(self._messages)))
            return found[0]


# ---------------------------------------------------------------------------------------
# Dovecot (SASL only)


class Dovecot(_ChildService):
    """dovecot for SASL only: passwd-file users with {PLAIN} passwords, no protocols.

    Dovecot(users={"alice@example.test": "secret"}, dir=None). start()/stop();
    auth_socket (absolute path of the unix socket for Postfix's smtpd_sasl_path);
    add_user(name, password) (takes effect on the next login); log().
    """

    def __init__(self, users=None, dir=None):
        self.programs = require_programs("dovecot")
        require_user("dovecot", "dovecot-core")
        require_user("dovenull", "dovecot-core")
        self.work = _Workdir(dir, "dovecot")
        self.users = dict(users or {})
        self.conf_path = self.work.join("dovecot.conf")
        self.passwd_path = self.work.join("users")
        self.auth_socket = self.work.join("auth")
        self.log_path = self.work.join("dovecot.log")
        self.stdout_path = self.work.join("dovecot.out")
        self.child = None

    def _write_users(self):
        tmp = self.passwd_path + ".tmp"
        with open(tmp, "w") as f:
            for name, password in self.users.items():
                if ":" in name or ":" in password or "\n" in name + password:
                    raise HarnessError("test user %r: ':' and newlines are not allowed" % name)
                f.write("%s:{PLAIN}%s\n" % (name, password))
        os.chmod(tmp, 0o644)  # read by the auth process, which runs as user dovecot
        os.replace(tmp, self.passwd_path)

    def add_user(self, name, password):
        self.users[name] = password
        self._write_users()

    def _write_conf(self):
        w = self.work
        conf = """\
# Dovecot for SASL only (written by compd_harness).
protocols =
base_dir = {base}
state_dir = {state}
log_path = {log}
info_log_path = {log}
debug_log_path = {log}
default_internal_user = dovecot
default_login_user = dovenull
ssl = no
auth_mechanisms = plain login
disable_plaintext_auth = no
auth_failure_delay = 0
auth_verbose = yes
auth_cache_size = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}}
service auth {{
  unix_listener {sock} {{
    mode = 0666
  }}
}}
""".format(base=w.join("run"), state=w.join("state"), log=self.log_path,
           passwd=self.passwd_path, sock=self.auth_socket)
        with open(self.conf_path, "w") as f:
            f.write(conf)

    def start(self, timeout=15.0):
        if self.child and self.child.running():
            return self
        self._write_users()
        self._write_conf()
        for d in ("run", "state"):
            os.makedirs(self.work.join(d), exist_ok=True)
        self.child = _Child([self.programs["dovecot"], "-F", "-c", self.conf_path],
                            self.stdout_path, "dovecot")

        def ready():
            if not self.child.running():
                raise HarnessError("dovecot exited with code %s during start-up:\n%s\n%s" % (
                    self.child.proc.returncode, tail(self.stdout_path), tail(self.log_path)))
            return unix_socket_open(self.auth_socket)
        wait_for(ready, timeout, what="dovecot auth socket %s" % self.auth_socket)
        return self

    def stop(self, timeout=10.0):
        if self.child:
            # SIGTERM to the whole group: dovecot's master alone waits about a second for
            # its children; there is nothing to flush in a SASL-only instance.
            _kill_group(self.child.proc, signal.SIGTERM)
            self.child.stop(timeout=timeout)
            self.child = None

    def log(self):
        return tail(self.stdout_path, 10**6) + tail(self.log_path, 10**6)


# ---------------------------------------------------------------------------------------
# Postfix

_MASTER_CF_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

_instance_counter = itertools.count(1)


class Postfix(_Service):
    """A private Postfix instance on loopback that relays every message to relay_port.

    Postfix(relay_port, sasl_path=None, dir=None, submission_port=None, smtp_port=None,
            open_listener=True, smtpd_milters="", non_smtpd_milters="", milter_macros=None,
            main=None, myhostname="mx.compd.test", extra_submissions=())

    - submission_port: smtpd with SASL AUTH (Dovecot at sasl_path, plaintext allowed),
      recipients allowed only when authenticated (permit_sasl_authenticated, reject).
      Only set up when sasl_path is given.
    - smtp_port (if open_listener): smtpd without AUTH that relays for 127.0.0.0/8
      (permit_mynetworks, reject), for unauthenticated-submission tests.
    - extra_submissions: a list of {setting: value} overrides (e.g. {"smtpd_milters":
      "inet:127.0.0.1:PORT"}), one more submission service each, like the first but with
      `-o setting=value` added: one Postfix in front of several compd-milter nodes.
      Their ports are extra_submission_ports, in order.
    - smtpd_milters / non_smtpd_milters: e.g. "inet:127.0.0.1:PORT"; milter_protocol = 6,
      milter_default_action = accept (a milter that is down lets mail through).
    - milter_macros: {"mail": "i {auth_type} ...", "rcpt": ..., ...} -> milter_<k>_macros.
    - main: extra main.cf settings {name: value}, applied last.
    start()/stop(); log() is the maillog text; postconf(*args); sendmail(message_bytes,
    *recipients, sender=...) submits through the non-SMTP path; queue() lists the queue;
    flush(); wait_for_log(regex).
    """

    def __init__(self, relay_port, sasl_path=None, dir=None, submission_port=None,
                 smtp_port=None, open_listener=True, smtpd_milters="", non_smtpd_milters="",
                 milter_macros=None, main=None, myhostname="mx.compd.test",
                 extra_submissions=()):
        self.programs = require_programs("postfix", "postconf", "postqueue", "sendmail")
        require_user("postfix", "postfix")
        try:
            import grp
            grp.getgrnam("postdrop")
        except KeyError:
            raise HarnessError("group 'postdrop' does not exist (Debian package postfix)")
        self.work = _Workdir(dir, "postfix")
        self.relay_port = relay_port
        self.sasl_path = sasl_path
        self.submission_port = (submission_port or free_port()) if sasl_path else None
        self.smtp_port = (smtp_port or free_port()) if open_listener else None
        self.extra_submissions = [dict(o) for o in extra_submissions]
        if self.extra_submissions and not sasl_path:
            raise HarnessError("extra_submissions need sasl_path")
        self.extra_submission_ports = [free_port() for _ in self.extra_submissions]
        self.smtpd_milters = smtpd_milters
        self.non_smtpd_milters = non_smtpd_milters
        self.milter_macros = dict(milter_macros or {})
        self.extra_main = dict(main or {})
        self.myhostname = myhostname
        self.config_dir = self.work.join("etc")
        self.queue_dir = self.work.join("spool")
        self.data_dir = self.work.join("data")
        self.maillog = self.work.join("maillog")
        self.syslog_name = "postfix-compd-%d-%d" % (os.getpid(), next(_instance_counter))
        self.started = False
        self.key = None

    # -- configuration

    def main_cf(self):
        s = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "process_id_directory": "pid",
            "syslog_name": self.syslog_name,
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.work.path,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.myhostname,
            "mydomain": "compd.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "inet_interfaces": LOOPBACK,
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "local_transport": "error:5.1.1 local delivery is disabled",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "relayhost": "[%s]:%d" % (LOOPBACK, self.relay_port),
            "default_transport": "smtp",
            "relay_transport": "smtp",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "smtp_dns_support_level": "disabled",
            "smtpd_peername_lookup": "no",
            "smtpd_relay_restrictions": "permit_mynetworks, permit_sasl_authenticated, reject",
            "smtpd_recipient_restrictions": "",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtpd_error_sleep_time": "0",
            "milter_protocol": "6",
            "milter_default_action": "accept",
            "milter_connect_timeout": "5s",
            "milter_command_timeout": "10s",
            "milter_content_timeout": "30s",
            "smtpd_milters": self.smtpd_milters,
            "non_smtpd_milters": self.non_smtpd_milters,
        }
        if self.sasl_path:
            s.update({
                "smtpd_sasl_type": "dovecot",
                "smtpd_sasl_path": self.sasl_path,
                "smtpd_sasl_security_options": "noanonymous",
                "smtpd_sasl_tls_security_options": "noanonymous",
                "smtpd_tls_auth_only": "no",
                "broken_sasl_auth_clients": "yes",
            })
        for stage, macros in self.milter_macros.items():
            s["milter_%s_macros" % stage] = macros
        s.update(self.extra_main)
        return "".join("%s = %s\n" % (k, v) for k, v in s.items())

    def master_cf(self):
        lines = ["# Written by compd_harness. Everything runs unchrooted (chroot = n).\n"]
        submissions = [(self.submission_port, {})] if self.submission_port else []
        submissions += list(zip(self.extra_submission_ports, self.extra_submissions))
        for port, overrides in submissions:
            lines.append(
                "%s:%d inet n - n - - smtpd\n"
                "  -o syslog_name=%s/submission\n"
                "  -o smtpd_sasl_auth_enable=yes\n"
                "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n"
                "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n" %
                (LOOPBACK, port, self.syslog_name))
            lines.extend("  -o %s=%s\n" % (k, v) for k, v in overrides.items())
        if self.smtp_port:
            lines.append(
                "%s:%d inet n - n - - smtpd\n"
                "  -o syslog_name=%s/smtp\n"
                "  -o smtpd_sasl_auth_enable=no\n"
                "  -o smtpd_relay_restrictions=permit_mynetworks,reject\n"
                "  -o smtpd_recipient_restrictions=permit_mynetworks,reject\n" %
                (LOOPBACK, self.smtp_port, self.syslog_name))
        lines.append(_MASTER_CF_SERVICES)
        return "".join(lines)

    def _write_config(self):
        os.makedirs(self.config_dir, exist_ok=True)
        os.chmod(self.config_dir, 0o755)
        for d in (self.queue_dir, self.data_dir):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.queue_dir, 0o755)
        pf = pwd.getpwnam("postfix")
        os.chown(self.data_dir, pf.pw_uid, pf.pw_gid)
        os.chmod(self.data_dir, 0o700)
        past = time.time() - 10
        for name, text in (("main.cf", self.main_cf()), ("master.cf", self.master_cf())):
            path = os.path.join(self.config_dir, name)
            with open(path, "w") as f:
                f.write(text)
            # Postfix programs sleep (300 ms at a time) while a table file is younger than
            # one second, to avoid reading it half-written: backdate it.
            os.utime(path, (past, past))

    def _env(self):
        env = dict(os.environ)
        env["PATH"] = env.get("PATH", "") + ":" + ":".join(SBIN_DIRS)
        env.pop("MAIL_CONFIG", None)
        return env

    def _run(self, *args, check=True, timeout=60, input=None):
        r = subprocess.run(list(args), input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=None if input else subprocess.DEVNULL,
                           env=self._env(), timeout=timeout)
        out = r.stdout.decode("utf-8", "replace")
        if check and r.returncode != 0:
            raise HarnessError("`%s` failed (exit %d):\n%s\nmaillog:\n%s" % (
                " ".join(args), r.returncode, out, tail(self.maillog)))
        return out

    def postconf(self, *args):
        """Runs `postconf -c CONFIG_DIR ARGS...` and returns its output."""
        return self._run(self.programs["postconf"], "-c", self.config_dir, *args)

    def check(self):
        """Runs `postfix -c CONFIG_DIR check`; returns its output (warnings), "" if clean."""
        if not os.path.exists(os.path.join(self.config_dir, "main.cf")):
            self._write_config()
        return self._run(self.programs["postfix"], "-c", self.config_dir, "check").strip()

    # -- life cycle

    def master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def start(self, timeout=20.0):
        if self.started:
            return self
        self._write_config()
        # `postfix start` runs the checks of `postfix check` first (post-install
        # create-missing makes the queue directories with the right owners); its warnings
        # go to the maillog. check() runs them on their own.
        # The master daemon detaches and leads its own session: the janitor kills that
        # group if this test process dies before stop().
        self.key = _reaper.add(self.abort, "postfix " + self.config_dir)
        self._run(self.programs["postfix"], "-c", self.config_dir, "start")
        self.started = True
        ports = [p for p in [self.submission_port, self.smtp_port] + self.extra_submission_ports
                 if p]

        def ready():
            if not self.master_pid():
                raise HarnessError("postfix master is not running; maillog:\n%s" %
                                   tail(self.maillog))
            return all(port_open(p) for p in ports)
        wait_for(ready, timeout, what="postfix listeners on %s" % ports)
        return self

    def stop(self, timeout=20.0):
        """Stops the instance like `postfix stop` (SIGTERM to the master, which stops its
        children) without that script's one-second polling; SIGKILLs the group if needed."""
        if not self.started:
            return
        pid = self.master_pid()
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
            try:
                wait_for(lambda: not _pid_alive(pid), timeout, what="postfix master to exit")
            except TimeoutError:
                pass
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)  # master leads its session
        self.started = False
        if self.key is not None:
            _reaper.remove(self.key)
            self.key = None

    def abort(self):
        """Kills the whole instance at once (like `postfix abort`); queue files stay."""
        pid = self.master_pid()
        if pid:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                wait_for(lambda: not _pid_alive(pid), 5, what="postfix master to die")
        self.started = False
        if self.key is not None:
            _reaper.remove(self.key)
            self.key = None

    def close(self):
        # The folder is about to go: no need for the master's one-second graceful exit.
        self.abort()
        self.work.cleanup()

    # -- inspection

    def log(self):
        return tail(self.maillog, 10**7)

    def wait_for_log(self, pattern, timeout=10.0):
        """Waits until the maillog matches `pattern` (regex); returns the match."""
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log()), timeout,
                        what="maillog line matching %r" % pattern)

    def queue(self):
        """`postqueue -j` as a list of dicts (an empty list when the queue is empty)."""
        out = self._run(self.programs["postqueue"], "-c", self.config_dir, "-j")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def flush(self):
        self._run(self.programs["postqueue"], "-c", self.config_dir, "-f")

    def sendmail(self, message, *recipients, sender="root@mx.compd.test", timeout=30):
        """Submits message (bytes/str) through Postfix's sendmail (the non_smtpd path).

        Returns (exit code, output)."""
        if isinstance(message, str):
            message = message.encode()
        argv = [self.programs["sendmail"], "-C", self.config_dir, "-f", sender, "-i", "--"] + \
            list(recipients)
        r = subprocess.run(argv, input=message, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=self._env(), timeout=timeout)
        return r.returncode, r.stdout.decode("utf-8", "replace")


def _pid_alive(pid):
    """True while pid runs; a zombie counts as dead (PID 1 in a container may not reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


# ---------------------------------------------------------------------------------------
# A whole mail path


class MailStack(_Service):
    """SmtpSink + Dovecot + Postfix in one temporary folder, started and stopped together.

    MailStack(users={"alice@example.test": "secret"}, dir=None, **postfix_kwargs)
    (postfix_kwargs go to Postfix: smtpd_milters, non_smtpd_milters, milter_macros, main,
    open_listener, extra_submissions, ...). Attributes sink, dovecot, postfix,
    submission_port, smtp_port, dir.
    """

    def __init__(self, users=None, dir=None, **postfix_kwargs):
        self.work = _Workdir(dir, "mail")
        self.sink = SmtpSink(dir=self.work.join("sink"))
        self.dovecot = Dovecot(users=users, dir=self.work.join("dovecot"))
        self.postfix = Postfix(relay_port=self.sink.port, sasl_path=self.dovecot.auth_socket,
                               dir=self.work.join("postfix"), **postfix_kwargs)
        self.dir = self.work.path

    @property
    def submission_port(self):
        return self.postfix.submission_port

    @property
    def smtp_port(self):
        return self.postfix.smtp_port

    def start(self):
        try:
            self.sink.start()
            self.dovecot.start()
            self.postfix.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for part in (self.postfix, self.dovecot, self.sink):
            try:
                part.stop()
            except Exception as e:
                print("compd_harness: stopping %s failed: %s" % (type(part).__name__, e),
                      file=sys.stderr)

    def close(self):
        self.stop()
        self.work.cleanup()

    def logs(self):
        """Every log of the stack, for a failure message."""
        return "--- maillog\n%s\n--- dovecot\n%s" % (tail(self.postfix.maillog, 80),
                                                    tail(self.dovecot.log_path, 40))


# ---------------------------------------------------------------------------------------
# swaks


class SwaksResult(namedtuple("SwaksResult", "code transcript")):
    """swaks' exit code and its full transcript. Unpacks as (code, transcript).

    Exit codes worth asserting: 0 delivered, 23 MAIL refused, 24 every RCPT refused,
    25 DATA refused, 26 refused after the final dot, 28 AUTH failed.
    """

    def replies(self):
        """Server reply lines ("<~ 250 ..." / "<** 550 ...") without the marker."""
        return [re.sub(r"^<[~*]+\s?", "", l) for l in self.transcript.splitlines()
                if re.match(r"^<[~*]+", l)]


def swaks(port, to, sender="sender@example.test", server=LOOPBACK, user=None, password=None,
          auth="LOGIN", headers=(), subject=None, body=None, helo="client.example.test",
          quit_after=None, data=None, local_interface=None, extra=(), timeout=30):
    """Runs swaks against server:port and returns SwaksResult(code, transcript).

    to: an address or a list of them (one envelope, one RCPT each). headers: lines such as
    "To: a@x" or "Cc: b@y" (an existing header of that name is replaced). user/password
    switch on AUTH with mechanism `auth` (LOGIN or PLAIN). quit_after: e.g. "RCPT" to stop
    before DATA. local_interface: the client's source address (any 127.0.0.0/8 address
    reaches a server on 127.0.0.1, so tests can come from many client networks).
    extra: more raw swaks arguments.
    """
    prog = require_programs("swaks")["swaks"]
    if isinstance(to, str):
        to = [to]
    argv = [prog, "--server", server, "--port", str(port), "--from", sender,
            "--to", ",".join(to), "--helo", helo, "--timeout", "20"]
    if user is not None:
        argv += ["--auth", auth, "--auth-user", user, "--auth-password", password or ""]
    for h in headers:
        argv += ["--header", h]
    if subject is not None:
        argv += ["--h-Subject", subject]
    if body is not None:
        argv += ["--body", body]
    if data is not None:
        argv += ["--data", data]
    if quit_after:
        argv += ["--quit-after", quit_after]
    if local_interface:
        argv += ["--local-interface", local_interface]
    argv += list(extra)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return SwaksResult(r.returncode, r.stdout.decode("utf-8", "replace"))


# ---------------------------------------------------------------------------------------
# miltertest


def miltertest(script, port, defines=None, timeout=60):
    """Runs Debian's miltertest on a Lua script (text) against a milter on 127.0.0.1:port.

    The script sees the global `port` (a string) and every name in defines. Returns
    (exit code, output). Note: miltertest drops {auth_authen} unless mt.helo() is sent first.
    """
    prog = require_programs("miltertest")["miltertest"]
    fd, path = tempfile.mkstemp(prefix="compd-miltertest-", suffix=".lua")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(script)
        argv = [prog, "-v", "-D", "port=%d" % port]
        for k, v in (defines or {}).items():
            argv += ["-D", "%s=%s" % (k, v)]
        argv += ["-s", path]
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        return r.returncode, r.stdout.decode("utf-8", "replace")
    finally:
        os.unlink(path)


# ---------------------------------------------------------------------------------------
# compd binaries


def compd_binary(name):
    """Path of a compd program in the build folder ($COMPD_BUILD_DIR, default build/)."""
    path = os.path.join(build_dir(), name)
    if not os.access(path, os.X_OK):
        raise HarnessError("%s binary not found at %s (build it first: cmake -S . -B build -G "
                           "Ninja && ninja -C build; or set COMPD_BUILD_DIR)" % (name, path))
    return path


def mapctl(*args, redis=None, prefix=None, input=None, env=None, timeout=30):
    """Runs build/mapctl [--redis URL] [--prefix P] ARGS...; returns CompletedProcess (text)."""
    argv = [compd_binary("mapctl")]
    if redis is not None:
        argv += ["--redis", redis.url if isinstance(redis, RedisServer) else redis]
    if prefix is not None:
        argv += ["--prefix", prefix]
    argv += [str(a) for a in args]
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=full_env, timeout=timeout,
                          stdin=None if input is not None else subprocess.DEVNULL)


class Milter(_ChildService):
    """compd-milter as a child, output to a log file, stopped with SIGTERM.

    Milter(args=(), dir=None, port=None, binary=None, env=None, ready_timeout=10)
    args are passed as given. Unless args contain --socket, the harness adds
    `--socket inet:PORT@127.0.0.1` on a free port; unless they contain --foreground, it
    adds that. start() waits until the socket accepts connections (failing with the log if
    the process exits first); stop() sends SIGTERM and returns the exit code.
    port, postfix_spec ("inet:127.0.0.1:PORT", for smtpd_milters), log(), dir.

    Milter.standard(redis, dir=None, action="reject", prefix="compd:", extra=(), ...) builds
    the documented command line with --redis, --prefix, --alert-log DIR/alerts.jsonl,
    --spool-dir DIR/spool, --map-dir DIR/maps and --action; alerts() reads the alert log.
    With policy=True it also listens for Exim's policy requests on policy_port (loopback
    TCP, a free port), and start() waits for that listener too.
    """

    def __init__(self, args=(), dir=None, port=None, binary=None, env=None, ready_timeout=10.0):
        self.binary = binary or compd_binary("compd-milter")
        self.work = _Workdir(dir, "milter")
        self.args = [str(a) for a in args]
        self.port = port
        self.socket_path = None
        if not any(a == "--socket" or a.startswith("--socket=") for a in self.args):
            self.port = self.port or free_port()
            self.args = ["--socket", "inet:%d@%s" % (self.port, LOOPBACK)] + self.args
        else:
            spec = self._socket_arg()
            m = re.match(r"inet:(\d+)@", spec)
            if m:
                self.port = int(m.group(1))
            elif spec.startswith(("unix:", "local:")):
                self.socket_path = spec.split(":", 1)[1]
        if "--foreground" not in self.args:
            self.args = ["--foreground"] + self.args
        self.env = env
        self.ready_timeout = ready_timeout
        self.log_path = self.work.join("milter.log")
        self.alert_log = None
        self.spool_dir = None
        self.map_dir = None
        self.policy_port = None
        self.child = None

    def _socket_arg(self):
        for i, a in enumerate(self.args):
            if a == "--socket" and i + 1 < len(self.args):
                return self.args[i + 1]
            if a.startswith("--socket="):
                return a.split("=", 1)[1]
        return ""

    @classmethod
    def standard(cls, redis, dir=None, action="reject", prefix="compd:", extra=(),
                 policy=False, **kwargs):
        kwargs["binary"] = kwargs.get("binary") or compd_binary("compd-milter")
        work = _Workdir(dir, "milter")
        alert_log = work.join("alerts.jsonl")
        spool, maps = work.join("spool"), work.join("maps")
        os.makedirs(spool, exist_ok=True)
        os.makedirs(maps, exist_ok=True)
        url = redis.url if isinstance(redis, RedisServer) else redis
        args = ["--redis", url, "--prefix", prefix, "--alert-log", alert_log,
                "--spool-dir", spool, "--map-dir", maps, "--action", action] + list(extra)
        policy_port = free_port() if policy else None
        if policy_port:
            args += ["--policy-socket", "inet:%d" % policy_port]
        m = cls(args, dir=work.path, **kwargs)
        m.work = work
        m.alert_log, m.spool_dir, m.map_dir = alert_log, spool, maps
        m.policy_port = policy_port
        return m

    @property
    def postfix_spec(self):
        if self.port:
            return "inet:%s:%d" % (LOOPBACK, self.port)
        return "unix:" + self.socket_path

    @property
    def argv(self):
        return [self.binary] + self.args

    def start(self):
        if self.child and self.child.running():
            return self
        env = dict(os.environ)
        env.update(self.env or {})
        # The socket is bound before the map is loaded (as root, before privileges drop),
        # so an open port does not mean ready: "listening on" is logged once it serves. A
        # restarted milter appends to the same log, so only what this start wrote counts.
        log_start = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        quiet = any(self.argv[i] == "--log-level" and self.argv[i + 1] in ("warning", "error")
                    for i in range(len(self.argv) - 1))
        self.child = _Child(self.argv, self.log_path, "compd-milter", env=env,
                            cwd=self.work.path)

        def serving():
            if quiet:
                return True
            with open(self.log_path, "rb") as f:
                f.seek(log_start)
                return b" listening on " in f.read()

        def ready():
            self.child.check_alive("before accepting connections (command: %s)" %
                                   " ".join(self.argv))
            if self.policy_port and not port_open(self.policy_port):
                return False
            if self.port:
                return port_open(self.port) and serving()
            return unix_socket_open(self.socket_path) and serving()
        try:
            wait_for(ready, self.ready_timeout, what="compd-milter socket %s%s" % (
                self.port or self.socket_path,
                " and policy listener %d" % self.policy_port if self.policy_port else ""))
        except TimeoutError as e:
            self.child.stop()
            raise HarnessError("%s; last lines of %s:\n%s" %
                               (e, self.log_path, tail(self.log_path))) from None
        return self

    def log(self):
        return tail(self.log_path, 10**6)

    def alerts(self):
        """The alert log as a list of dicts ([] if it does not exist yet)."""
        if not self.alert_log or not os.path.exists(self.alert_log):
            return []
        out = []
        with open(self.alert_log, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        out.append(json.loads(line))
                    except ValueError as e:
                        raise AssertionError("%s:%d: not JSON (%s): %r" %
                                             (self.alert_log, n, e, line)) from None
        return out


# ---------------------------------------------------------------------------------------
# Runner


def main(argv=None):
    """unittest.main for a *_test.py file: verbose, a closing line, exit 1 on failure.

    SIGTERM/SIGINT become exceptions so context managers and atexit stop every server.
    """
    import unittest

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    name = os.path.basename(sys.argv[0])
    start = time.monotonic()
    prog = unittest.main(module="__main__", argv=argv, exit=False, verbosity=2)
    result = prog.result
    ok = result.wasSuccessful() and result.testsRun > 0
    sys.stdout.flush()
    sys.stderr.write("%s: %s (%d tests, %d failures, %d errors, %d skipped, %.1fs)\n" % (
        name, "OK" if ok else "FAILED", result.testsRun, len(result.failures),
        len(result.errors), len(result.skipped), time.monotonic() - start))
    sys.stderr.flush()
    _reaper.run_all()
    sys.exit(0 if ok else 1)
