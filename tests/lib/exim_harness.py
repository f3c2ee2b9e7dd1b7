"""Exim and the policy protocol for the tests.

Exim: Debian's exim4-daemon-heavy conflicts with the postfix package the other tests need,
so scripts/fetch-exim.sh downloads it with `apt-get download`, unpacks it with `dpkg -x`
into a cache folder and creates the Debian-exim user; this module runs that script and a
private Exim daemon from the unpacked tree, in a temporary folder, on a loopback port,
with plaintext AUTH for test users and every message relayed to a harness SmtpSink.

The compd parts of its configuration are not written here: they are the blocks marked
`<!-- compd-exim: NAME -->` in docs/exim.md (main, rcpt, data, not_smtp), so the documented
snippets are exactly the ones the tests run.

PolicyClient speaks the policy protocol to compd-milter's policy listener.

Python 3 standard library only.
"""

import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compd_harness as h  # noqa: E402

EXIM_USER = "Debian-exim"
_exim_binary = None


def exim_binary():
    """Path of the unpacked exim4 binary; runs scripts/fetch-exim.sh once per process."""
    global _exim_binary
    if _exim_binary:
        return _exim_binary
    script = os.path.join(h.source_dir(), "scripts", "fetch-exim.sh")
    try:
        r = subprocess.run([script], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise h.HarnessError("cannot run %s: %s" % (script, e)) from None
    out = r.stdout.decode("utf-8", "replace").strip()
    path = out.splitlines()[-1] if out else ""
    if r.returncode != 0 or not os.access(path, os.X_OK):
        raise h.HarnessError("%s failed (exit %d):\n%s" % (script, r.returncode, out))
    _exim_binary = path
    return path


def doc_snippets(path=None):
    """{name: text} of the blocks marked <!-- compd-exim: NAME --> in docs/exim.md."""
    path = path or os.path.join(h.source_dir(), "docs", "exim.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    blocks = dict(re.findall(r"<!-- compd-exim: (\w+) -->\s*```[^\n]*\n(.*?)```", text, re.S))
    missing = {"main", "rcpt", "data", "not_smtp"} - set(blocks)
    if missing:
        raise h.HarnessError("%s lacks the snippet(s) %s" % (path, ", ".join(sorted(missing))))
    return blocks


class Exim(h._ChildService):
    """A private Exim daemon (`exim -C CONF -bdf -oX PORT`) on 127.0.0.1, as a child.

    Exim(relay_port, users, policy, dir=None, port=None)
      relay_port: where every message goes (a SmtpSink's port).
      users: {"alice@example.test": "secret"}: accepted by AUTH PLAIN and LOGIN
        (advertised to 127.0.0.0/8 without TLS: tests log in from many loopback addresses).
      policy: what ${readsocket} connects to (COMPD_SOCKET): a unix socket path or
        "inet:127.0.0.1:PORT".
    Relays for authenticated clients and, without AUTH, for 127.0.0.1. ACLs: the
    docs/exim.md snippets first, then accept. start() checks the configuration with -bV
    first; stop(); port; mainlog(), rejectlog(), wait_for_log(regex);
    sendmail(message, *rcpts, sender=...) submits through the non-SMTP path (as root).
    """

    def __init__(self, relay_port, users, policy, dir=None, port=None):
        self.binary = exim_binary()
        h.require_user(EXIM_USER, "exim4-base (created by scripts/fetch-exim.sh)")
        self.work = h._Workdir(dir, "exim")
        self.relay_port = relay_port
        self.users = dict(users)
        self.policy = policy
        self.port = port or h.free_port()
        self.conf_path = self.work.join("exim.conf")
        self.users_path = self.work.join("users")
        self.spool_dir = self.work.join("spool")
        self.log_dir = self.work.join("log")
        self.pid_path = self.work.join("exim.pid")
        self.out_path = self.work.join("exim.out")
        self.child = None

    def config(self):
        s = doc_snippets()
        main, n = re.subn(r"(?m)^COMPD_SOCKET\s*=.*$", "COMPD_SOCKET = " + self.policy, s["main"])
        if n != 1:
            raise h.HarnessError("docs/exim.md: the main snippet must define COMPD_SOCKET once")
        check = "${if eq{$auth%d}{${lookup{$auth%d}lsearch{%s}{$value}fail}}}"
        return """\
# Written by exim_harness: a test Exim on loopback, plaintext AUTH, all mail to a sink.
keep_environment =
primary_hostname = mx.compd.test
qualify_domain = compd.test
exim_path = {exim}
spool_directory = {spool}
log_file_path = {log}/%slog
log_selector = +received_recipients +subject +smtp_protocol_error +smtp_syntax_error \\
  +incoming_interface +incoming_port
local_interfaces = <; 127.0.0.1
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
auth_advertise_hosts = 127.0.0.0/8
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data
acl_not_smtp = acl_check_not_smtp

# --- docs/exim.md: main
{main}
begin acl

acl_check_rcpt:
# --- docs/exim.md: rcpt
{rcpt}
  accept  authenticated = *
  accept  hosts = 127.0.0.1
  deny    message = 550 5.7.1 relaying denied

acl_check_data:
# --- docs/exim.md: data
{data}
  accept

# --- docs/exim.md: not_smtp
{not_smtp}
begin routers

to_sink:
  driver = manualroute
  route_list = * 127.0.0.1 byname
  self = send
  transport = to_sink
  no_more

begin transports

to_sink:
  driver = smtp
  port = {sink_port}
  allow_localhost
  hosts_avoid_tls = *

begin retry

*  *  F,1m,2s

begin authenticators

plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = {plain_check}
  server_set_id = $auth2

login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = {login_check}
  server_set_id = $auth1
""".format(exim=self.binary, spool=self.spool_dir, log=self.log_dir, main=main,
           rcpt=s["rcpt"], data=s["data"], not_smtp=s["not_smtp"], sink_port=self.relay_port,
           plain_check=check % (3, 2, self.users_path),
           login_check=check % (2, 1, self.users_path))

    def _write(self):
        import pwd
        pw = pwd.getpwnam(EXIM_USER)
        for d in (self.spool_dir, self.log_dir):
            os.makedirs(d, exist_ok=True)
            os.chown(d, pw.pw_uid, pw.pw_gid)
            os.chmod(d, 0o750)
        with open(self.users_path, "w") as f:
            for name, password in self.users.items():
                if re.search(r"[\s:\"]", name + password):
                    raise h.HarnessError("test user %r: no blanks, colons or quotes" % name)
                f.write("%s: %s\n" % (name, password))
        os.chmod(self.users_path, 0o644)
        with open(self.conf_path, "w") as f:
            f.write(self.config())
        # Exim trusts a -C file only when root owns it and nobody else may write it.
        os.chmod(self.conf_path, 0o644)

    def _run(self, *args, input=None, timeout=30):
        return subprocess.run([self.binary, "-C", self.conf_path] + list(args), input=input,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)

    def check(self):
        """`exim -bV` on the configuration; raises HarnessError with Exim's complaint."""
        r = self._run("-bV")
        out = r.stdout.decode("utf-8", "replace")
        if r.returncode != 0 or "Configuration file is" not in out:
            raise h.HarnessError("exim -bV -C %s failed (exit %d):\n%s" %
                                 (self.conf_path, r.returncode, out))

    def start(self, timeout=10.0):
        if self.child and self.child.running():
            return self
        self._write()
        self.check()
        argv = [self.binary, "-C", self.conf_path, "-bdf", "-oX", str(self.port),
                "-oP", self.pid_path]
        self.child = h._Child(argv, self.out_path, "exim", cwd=self.work.path)

        def ready():
            self.child.check_alive("before listening (log: %s)" % self.mainlog_path)
            return h.port_open(self.port)
        try:
            h.wait_for(ready, timeout, what="exim on port %d" % self.port)
        except (TimeoutError, h.HarnessError) as e:
            self.stop()
            raise h.HarnessError("%s\n--- %s\n%s\n--- mainlog\n%s\n--- paniclog\n%s" % (
                e, self.out_path, h.tail(self.out_path), h.tail(self.mainlog_path),
                h.tail(self.paniclog_path))) from None
        return self

    # -- logs

    @property
    def mainlog_path(self):
        return os.path.join(self.log_dir, "mainlog")

    @property
    def rejectlog_path(self):
        return os.path.join(self.log_dir, "rejectlog")

    @property
    def paniclog_path(self):
        return os.path.join(self.log_dir, "paniclog")

    def mainlog(self):
        return h.tail(self.mainlog_path, 10**7)

    def rejectlog(self):
        return h.tail(self.rejectlog_path, 10**7)

    def logs(self):
        """The logs, for a failure message."""
        return "--- exim mainlog\n%s\n--- exim paniclog\n%s" % (
            h.tail(self.mainlog_path, 60), h.tail(self.paniclog_path, 20))

    def wait_for_log(self, pattern, timeout=10.0):
        rx = re.compile(pattern)
        return h.wait_for(lambda: rx.search(self.mainlog()), timeout,
                          what="exim mainlog line matching %r" % pattern)

    # -- local submission

    def sendmail(self, message, *recipients, sender="root@mx.compd.test", timeout=30):
        """Submits message (bytes/str) as `exim -odi -f SENDER -- RCPTS` (the non-SMTP path,
        acl_not_smtp; the caller's login is root). Returns (exit code, output)."""
        if isinstance(message, str):
            message = message.encode()
        r = self._run("-odi", "-oep", "-f", sender, "--", *recipients, input=message,
                      timeout=timeout)
        return r.returncode, r.stdout.decode("utf-8", "replace")


class PolicyClient:
    """One connection to a policy listener: request({...}) -> the action text.

    PolicyClient(address) with address ("127.0.0.1", port) or a unix socket path.
    send_raw(bytes) writes anything; read_reply() returns the next "action=..." line's
    text ("" when the server closed the connection first); closed() waits for EOF.
    """

    def __init__(self, address, timeout=10.0):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self.sock.close()

    @staticmethod
    def encode(attributes):
        lines = []
        for name, value in attributes.items():
            lines.append("%s=%s\n" % (name, value))
        return ("".join(lines) + "\n").encode("utf-8", "surrogateescape")

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_reply(self):
        while b"\n\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                rest, self.buf = self.buf, b""
                return rest.decode("utf-8", "replace")
            self.buf += chunk
        reply, self.buf = self.buf.split(b"\n\n", 1)
        text = reply.decode("utf-8", "replace")
        if not text.startswith("action="):
            raise AssertionError("not a policy answer: %r" % text)
        return text[len("action="):]

    def request(self, attributes):
        self.send_raw(self.encode(attributes))
        return self.read_reply()

    def closed(self, timeout=5.0):
        """True when the server closes the connection within timeout (data is discarded)."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self.sock.recv(65536):
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return False
