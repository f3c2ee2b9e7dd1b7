#!/usr/bin/env python3
"""mapctl against a real redis-server.

Each test class starts its own redis-server (free loopback port plus a unix socket, in a
temporary folder, no persistence, output to a log file there) and stops it afterwards; the
server gets SIGTERM if this process dies without cleaning up (a ctest timeout). The fixture
is local rather than tests/lib's because it needs `requirepass`.
The mapctl binary is $COMPD_BUILD_DIR/mapctl (default: build/mapctl).
Python 3 standard library only.
"""
import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))
import compd_harness as h  # noqa: E402


def find_mapctl():
    build = os.environ.get("COMPD_BUILD_DIR", "build")
    for base in (os.getcwd(), REPO):
        path = os.path.join(base, build, "mapctl")
        if os.path.exists(path):
            return os.path.abspath(path)
    sys.exit("mapctl not found under %s; set COMPD_BUILD_DIR" % build)


MAPCTL = find_mapctl()

for program in ("redis-server", "redis-cli"):
    if shutil.which(program) is None:
        sys.exit("%s not installed (Debian packages redis-server and redis-tools; run "
                 "scripts/install-deps.sh test)" % program)


def die_with_parent():
    """In the child before exec: SIGTERM when this test process dies (PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


free_port = h.free_port
RespError = h.RedisError


class Resp:
    """A minimal RESP2 client: enough for checks and for SUBSCRIBE."""

    def __init__(self, port=None, path=None, password=None, timeout=5):
        if path:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(timeout)
            self.sock.connect(path)
        else:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        if password:
            self.call("AUTH", password)

    def close(self):
        self.file.close()
        self.sock.close()

    def send(self, *args):
        self.sock.sendall(h._resp_encode(args))

    def read(self):
        return h._resp_read(self.file)

    def call(self, *args):
        self.send(*args)
        return self.read()


class RedisServer:
    def __init__(self, password=None):
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="compd-mapctl-test-")
        self.port = free_port()
        self.socket = os.path.join(self.dir, "redis.sock")
        self.log_path = os.path.join(self.dir, "redis.log")
        self.proc = None

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--unixsocket", self.socket, "--unixsocketperm", "700",
                "--save", "", "--appendonly", "no", "--dir", self.dir]
        if self.password:
            args += ["--requirepass", self.password]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)
        deadline = time.time() + 10
        while True:
            try:
                r = Resp(self.port, password=self.password)
                r.call("PING")
                r.close()
                return
            except (OSError, RespError):
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start; see " + self.log_path)
                time.sleep(0.05)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def client(self):
        return Resp(self.port, password=self.password)


class MapctlCase(unittest.TestCase):
    password = None

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer(cls.password)
        cls.redis.start()
        cls.tmp = tempfile.mkdtemp(prefix="compd-mapctl-files-")
        cls.empty_conf = os.path.join(cls.tmp, "empty.conf")
        open(cls.empty_conf, "w").close()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.r = self.redis.client()
        self.r.call("FLUSHALL")

    def tearDown(self):
        self.r.close()

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("COMPD_") and k != "SUDO_USER"}
        env["SUDO_USER"] = "tester"
        env.update(extra)
        return env

    def mapctl(self, *args, stdin=None, redis=True, config=True, env=None):
        """Runs mapctl against this class's server, isolated from /etc/compd/compd.conf."""
        argv = [MAPCTL]
        if config:
            argv += ["--config", self.empty_conf]
        if redis:
            argv += ["--redis", self.redis.url]
        argv += list(args)
        return subprocess.run(argv, input=stdin, capture_output=True, text=True,
                              env=env if env is not None else self.env(), timeout=120)

    def ok(self, *args, **kw):
        p = self.mapctl(*args, **kw)
        self.assertEqual(p.returncode, 0, "stdout:\n%s\nstderr:\n%s" % (p.stdout, p.stderr))
        return p

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    @staticmethod
    def read(path):
        with open(path) as f:
            return f.read()

    def exact(self):
        return sorted(self.r.call("HKEYS", "compd:map:exact"))

    def patterns(self):
        return sorted(self.r.call("HKEYS", "compd:map:re"))

    def version(self):
        v = self.r.call("GET", "compd:map:version")
        return int(v) if v is not None else 0

    def assert_nothing_written(self):
        self.assertEqual(self.r.call("KEYS", "compd:*"), [])


class HelpTest(MapctlCase):
    def test_help_lists_commands_exit_codes_and_examples(self):
        p = self.ok("--help", redis=False, config=False)
        for cmd in ("add", "remove", "list", "test", "import", "export", "lint", "stats"):
            self.assertIn(cmd, p.stdout)
            sub = self.ok(cmd, "--help", redis=False, config=False)
            self.assertIn("Examples:", sub.stdout, cmd)
            self.assertIn("mapctl " + cmd, sub.stdout, cmd)
        self.assertIn("Exit status", p.stdout)
        self.assertIn("COMPD_REDIS_PASSWORD", p.stdout)

    def test_usage_error_is_exit_2(self):
        p = self.mapctl()
        self.assertEqual(p.returncode, 2)
        p = self.mapctl("list", "--kind", "bogus")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--kind", p.stderr)


class AddRemoveTest(MapctlCase):
    def test_add_exact_is_canonical_and_redis_cli_finds_it(self):
        p = self.ok("add", "<Foo.Bar@Example.COM>", "--note", "ticket 17")
        self.assertIn("added", p.stdout)
        self.assertIn("foo.bar@example.com", p.stdout)
        # rspamd's redis:// multimap does a plain HGET of the canonical address.
        out = subprocess.run(["redis-cli", "-p", str(self.redis.port), "HGET",
                              "compd:map:exact", "foo.bar@example.com"],
                             capture_output=True, text=True, check=True).stdout
        meta = json.loads(out)
        self.assertEqual(meta["added_by"], "tester")
        self.assertEqual(meta["note"], "ticket 17")
        self.assertEqual(meta["source"], "mapctl")
        self.assertLess(abs(meta["added_at"] - time.time()), 60)
        self.assertEqual(self.version(), 1)

    def test_add_pattern_normalises_flags(self):
        self.ok("add", "/^probe[0-9]+@mail\\.example$/ii")
        self.assertEqual(self.patterns(), ["/^probe[0-9]+@mail\\.example$/i"])
        self.assertEqual(self.exact(), [])

    def test_add_existing_is_a_noop_that_says_so(self):
        self.ok("add", "a@x.example")
        p = self.ok("add", "A@X.example")
        self.assertIn("exists", p.stdout)
        self.assertIn("already in the map", p.stdout)
        self.assertEqual(self.version(), 1)

    def test_add_invalid_address_names_entry_and_writes_nothing(self):
        p = self.mapctl("add", "good@x.example", "john smith")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout, "")
        lines = p.stderr.splitlines()
        self.assertEqual(lines[0], "mapctl: 'john smith': not an address: contains whitespace")
        self.assertEqual(lines[-1], "mapctl: nothing written: 1 invalid entry")
        self.assert_nothing_written()

    def test_add_bad_regex_and_flag_all_reported(self):
        p = self.mapctl("add", "/(a/", "ok@x.example", "/a/x")
        self.assertEqual(p.returncode, 2)
        self.assertIn("mapctl: '/(a/': invalid regex", p.stderr)
        self.assertIn("mapctl: '/a/x': flag 'x' is not supported (use i, m, s, u)", p.stderr)
        self.assertIn("nothing written: 2 invalid entries", p.stderr)
        self.assert_nothing_written()

    def test_add_from_stdin(self):
        p = self.ok("add", "-", "--note", "batch",
                    stdin="# a comment\n\none@x.example\n  Two@X.example \r\n/^t/\n")
        self.assertEqual(self.exact(), ["one@x.example", "two@x.example"])
        self.assertEqual(self.patterns(), ["/^t/"])
        self.assertIn("3 added", p.stdout)
        self.assertEqual(self.version(), 1)

    def test_add_from_stdin_invalid_line_names_line(self):
        p = self.mapctl("add", "-", stdin="one@x.example\n\nbad entry\n")
        self.assertEqual(p.returncode, 2)
        self.assertIn("mapctl: <stdin>:3: 'bad entry': not an address", p.stderr)
        self.assert_nothing_written()

    def test_remove_reports_missing_and_removes_the_rest(self):
        self.ok("add", "a@x.example", "b@x.example", "/^c/")
        p = self.mapctl("remove", "A@X.example", "missing@x.example", "/^c/")
        self.assertEqual(p.returncode, 1)
        self.assertIn("mapctl: not in the map: missing@x.example", p.stderr)
        self.assertIn("2 removed, 1 not found", p.stdout)
        self.assertEqual(self.exact(), ["b@x.example"])
        self.assertEqual(self.patterns(), [])
        self.assertEqual(self.version(), 2)

    def test_remove_from_stdin(self):
        self.ok("add", "a@x.example", "b@x.example", "c@x.example")
        p = self.ok("remove", "-", "c@x.example", stdin="A@x.example\n# not this\nb@x.example\n")
        self.assertIn("3 removed, 0 not found", p.stdout)
        self.assertEqual(self.exact(), [])

    def test_added_by_without_sudo_is_the_login_name(self):
        env = self.env()
        del env["SUDO_USER"]
        self.ok("add", "who@x.example", env=env)
        meta = json.loads(self.r.call("HGET", "compd:map:exact", "who@x.example"))
        names = {pwd.getpwuid(os.getuid()).pw_name}
        try:
            names.add(os.getlogin())
        except OSError:
            pass  # no controlling terminal: mapctl falls back to the uid's name too
        self.assertIn(meta["added_by"], names)

    def test_remove_nothing_there_does_not_bump_version(self):
        self.ok("add", "a@x.example")
        p = self.mapctl("remove", "zz@x.example")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(self.version(), 1)

    def test_remove_invalid_removes_nothing(self):
        self.ok("add", "a@x.example")
        p = self.mapctl("remove", "a@x.example", "/(/")
        self.assertEqual(p.returncode, 2)
        self.assertIn("'/(/': invalid regex", p.stderr)
        self.assertEqual(self.exact(), ["a@x.example"])
        self.assertEqual(self.version(), 1)

    def test_version_bump_and_publish(self):
        sub = self.redis.client()
        try:
            sub.send("SUBSCRIBE", "compd:map:changes")
            self.assertEqual(sub.read()[0], "subscribe")
            self.ok("add", "a@x.example")
            self.assertEqual(sub.read(), ["message", "compd:map:changes", "1"])
            self.ok("add", "a@x.example")  # no change: no version, no message
            sub.send("PING")
            self.assertEqual(sub.read(), ["pong", ""])
            self.ok("remove", "a@x.example")
            self.assertEqual(sub.read(), ["message", "compd:map:changes", "2"])
        finally:
            sub.close()
        changed = self.r.call("HGETALL", "compd:map:changed")
        changed = dict(zip(changed[::2], changed[1::2]))
        self.assertEqual(changed["op"], "remove")
        self.assertEqual(changed["by"], "tester")
        self.assertEqual(changed["version"], "2")
        self.assertLess(abs(int(changed["at"]) - time.time()), 60)


class ListTestStatsTest(MapctlCase):
    def setUp(self):
        super().setUp()
        self.ok("add", "alice@spam.example", "bob@other.example", "/^probe[0-9]+@/i",
                "--note", "n1")

    def test_list_human_is_aligned(self):
        p = self.ok("list")
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 4)
        self.assertTrue(lines[0].startswith("ENTRY"))
        col = lines[0].index("KIND")
        for line in lines[1:]:
            self.assertIn(line[col:col + 7], ("exact  ", "pattern"))
        self.assertIn("tester", lines[1])

    def test_list_json_and_filters(self):
        data = json.loads(self.ok("list", "--json").stdout)
        self.assertEqual(data["version"], 1)
        self.assertEqual([e["entry"] for e in data["entries"]],
                         ["alice@spam.example", "bob@other.example", "/^probe[0-9]+@/i"])
        e = data["entries"][0]
        self.assertEqual((e["kind"], e["added_by"], e["note"], e["source"]),
                         ("exact", "tester", "n1", "mapctl"))
        data = json.loads(self.ok("--json", "list", "--kind", "pattern").stdout)
        self.assertEqual([e["entry"] for e in data["entries"]], ["/^probe[0-9]+@/i"])
        data = json.loads(self.ok("list", "--contains", "SPAM", "--json").stdout)
        self.assertEqual([e["entry"] for e in data["entries"]], ["alice@spam.example"])

    def test_test_exact_pattern_and_none(self):
        p = self.mapctl("test", "<Alice@Spam.Example>", "Probe12@x.example", "nobody@x.example")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [line.split() for line in p.stdout.splitlines()]
        self.assertEqual(rows[0], ["<Alice@Spam.Example>", "listed", "exact",
                                   "alice@spam.example"])
        self.assertEqual(rows[1], ["Probe12@x.example", "listed", "pattern", "/^probe[0-9]+@/i"])
        self.assertEqual(rows[2], ["nobody@x.example", "not", "listed"])
        p = self.mapctl("test", "nobody@x.example")
        self.assertEqual(p.returncode, 1)

    def test_test_uses_the_canonicalisation_settings(self):
        self.ok("add", "jdoe@gmail.com", "user@x.example")
        self.assertEqual(self.mapctl("test", "J.Doe@gmail.com", "user+tag@x.example")
                         .returncode, 1)
        p = self.mapctl("--canon-gmail-dots", "yes", "test", "J.Doe@gmail.com")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("jdoe@gmail.com", p.stdout)
        conf = self.write("canon.conf", "canon_strip_subaddress = yes\n")
        p = self.mapctl("--config", conf, "test", "user+tag@x.example", config=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_test_json(self):
        p = self.mapctl("test", "--json", "bob@other.example", "x@y.example")
        self.assertEqual(p.returncode, 0)
        res = json.loads(p.stdout)["results"]
        self.assertEqual(res[0]["listed"], True)
        self.assertEqual(res[0]["entry"], "bob@other.example")
        self.assertEqual(res[1], {"input": "x@y.example", "address": "x@y.example",
                                  "listed": False})

    def test_test_invalid_address_is_error(self):
        p = self.mapctl("test", "alice@spam.example", "<>")
        self.assertEqual(p.returncode, 2)
        self.assertIn("mapctl: '<>':", p.stderr)

    def test_stats(self):
        p = self.ok("stats")
        self.assertRegex(p.stdout, r"exact entries\s+2\n")
        self.assertRegex(p.stdout, r"patterns\s+1\n")
        self.assertRegex(p.stdout, r"version\s+1\n")
        self.assertRegex(p.stdout, r"last change\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ add by tester")
        data = json.loads(self.ok("stats", "--json").stdout)
        self.assertEqual((data["exact"], data["patterns"], data["version"]), (2, 1, 1))
        self.assertEqual((data["changed_op"], data["changed_by"]), ("add", "tester"))

    def test_pattern_in_redis_that_is_invalid_is_reported_not_matched(self):
        self.r.call("HSET", "compd:map:re", "/(/", "{}")
        self.r.call("HSET", "compd:map:exact", "Upper@X.example", "{}")
        p = self.mapctl("test", "upper@x.example")
        self.assertEqual(p.returncode, 1)
        self.assertIn("warning: skipped compd:map:re: '/(/'", p.stderr)
        self.assertIn("not in canonical", p.stderr)


class RedisDownTest(MapctlCase):
    """A store that cannot be reached is an error (exit 2), never "not listed"."""

    def test_every_command_fails_clearly(self):
        dead = "redis://127.0.0.1:%d/0" % free_port()
        path = self.write("down.map", "a@x.example\n")
        for args in (["add", "a@x.example"], ["remove", "a@x.example"], ["list"],
                     ["test", "a@x.example"], ["import", path, "--apply"], ["export"],
                     ["stats"]):
            p = self.mapctl("--redis", dead, *args, redis=False)
            self.assertEqual(p.returncode, 2, args)
            self.assertNotIn("not listed", p.stdout + p.stderr)
            self.assertEqual(p.stdout, "", args)
            self.assertIn("cannot connect", p.stderr, args)
            self.assertIn("127.0.0.1", p.stderr, args)

    def test_bad_url_is_error(self):
        p = self.mapctl("--redis", "http://x", "stats", redis=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("redis URL 'http://x'", p.stderr)


class ImportExportTest(MapctlCase):
    REGEXP_MAP = ("# old rspamd map\n"
                  "Victim@Example.com\n"
                  "/^probe[0-9]+@mail\\.example$/i\n"
                  "/^probe[0-9]+@mail\\.example$/i\n"
                  "third@example.com\n")

    def test_dry_run_shows_diff_and_writes_nothing(self):
        path = self.write("bad_rcpt.map", self.REGEXP_MAP)
        p = self.ok("import", path)
        self.assertIn(path + ": read as a regexp map", p.stdout)
        self.assertIn("+  /^probe[0-9]+@mail\\.example$/i  %s:3" % path, p.stdout)
        self.assertIn("victim@example.com", p.stdout)
        self.assertIn("%s:2: " % path, p.stdout)  # the bare line's hazard / meaning change
        self.assertIn("%s:4: " % path, p.stdout)  # the duplicate
        self.assertIn("3 to add, 0 to remove, 0 unchanged", p.stdout)
        self.assertIn("dry run: nothing written", p.stdout)
        self.assert_nothing_written()

    def test_apply_writes_with_import_source(self):
        path = self.write("bad_rcpt.map", self.REGEXP_MAP)
        p = self.ok("import", path, "--apply")
        self.assertIn("applied: map version 1 (3 added, 0 removed)", p.stdout)
        self.assertEqual(self.exact(), ["third@example.com", "victim@example.com"])
        meta = json.loads(self.r.call("HGET", "compd:map:exact", "victim@example.com"))
        self.assertEqual(meta["source"], "import:%s:2" % path)
        self.assertEqual(meta["added_by"], "tester")
        data = json.loads(self.ok("import", path, "--json").stdout)
        self.assertEqual((len(data["add"]), data["unchanged"], data["applied"]), (0, 3, False))
        self.assertTrue(any(m["line"] == 2 and m["change"] for m in data["meaning_changes"]))

    def test_kind_choice_by_name_and_flag(self):
        path = self.write("compd_rcpt.map", "a@x.example\n")
        p = self.ok("import", path)
        self.assertIn("read as a plain map (file named compd_rcpt.map", p.stdout)
        p = self.ok("import", path, "--kind", "regexp")
        self.assertIn("read as a regexp map (--kind regexp)", p.stdout)

    def test_errors_block_apply_unless_skip_invalid(self):
        path = self.write("broken.map", "good@x.example\n/(unclosed/\n/^ok$/\n")
        p = self.mapctl("import", path, "--apply")
        self.assertEqual(p.returncode, 2)
        self.assertIn("%s:2: " % path, p.stdout)
        self.assertIn("nothing written: 1 error in the input", p.stderr)
        self.assert_nothing_written()
        p = self.ok("import", path, "--apply", "--skip-invalid")
        self.assertEqual(self.exact(), ["good@x.example"])
        self.assertEqual(self.patterns(), ["/^ok$/"])

    def test_replace_makes_map_equal_and_keeps_metadata(self):
        self.ok("add", "keep@x.example", "gone@x.example", "--note", "original")
        before = self.r.call("HGET", "compd:map:exact", "keep@x.example")
        path = self.write("compd_rcpt.map", "keep@x.example\nnew@x.example\n")
        p = self.ok("import", path, "--replace")
        self.assertIn("-  gone@x.example", p.stdout)
        self.assertIn("1 to add, 1 to remove, 1 unchanged", p.stdout)
        self.assertEqual(self.version(), 1)
        self.ok("import", path, "--replace", "--apply")
        self.assertEqual(self.exact(), ["keep@x.example", "new@x.example"])
        self.assertEqual(self.r.call("HGET", "compd:map:exact", "keep@x.example"), before)
        self.assertEqual(self.version(), 2)

    def test_replace_refuses_to_empty_the_map(self):
        self.ok("add", "keep@x.example")
        path = self.write("empty.map", "# nothing here\n")
        p = self.mapctl("import", path, "--replace", "--apply")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--replace would empty the map", p.stderr)
        self.assertEqual(self.exact(), ["keep@x.example"])
        self.assertEqual(self.version(), 1)

    def test_round_trip_import_export_import(self):
        path = self.write("bad_rcpt.map", self.REGEXP_MAP)
        self.ok("import", path, "--apply")
        self.ok("add", "/^x.*@y\\.example$/ims", "Z@Y.example")
        out = os.path.join(self.tmp, "export")
        os.makedirs(out, exist_ok=True)
        p = self.ok("export", "--dir", out)
        self.assertIn("compd_rcpt.map (3 exact entries)", p.stdout)
        self.assertEqual(sorted(os.listdir(out)), ["compd_rcpt.map", "compd_rcpt_re.map"])
        exact_file = os.path.join(out, "compd_rcpt.map")
        re_file = os.path.join(out, "compd_rcpt_re.map")
        for f in (exact_file, re_file):
            self.assertTrue(self.read(f).endswith("\n"))
        lines = [l for l in self.read(exact_file).splitlines() if not l.startswith("#")]
        self.assertEqual(lines, ["third@example.com", "victim@example.com", "z@y.example"])
        p = self.ok("import", exact_file, re_file)
        self.assertIn("0 to add, 0 to remove, 5 unchanged", p.stdout)
        p = self.ok("import", exact_file, re_file, "--replace", "--apply")
        self.assertIn("(0 added, 0 removed)", p.stdout)
        self.assertEqual(self.version(), 2)
        # A fresh map filled from the export equals the old one.
        before = self.ok("list", "--json").stdout
        self.r.call("FLUSHALL")
        self.ok("import", exact_file, re_file, "--apply")
        entries = lambda s: [e["entry"] for e in json.loads(s)["entries"]]
        self.assertEqual(entries(self.ok("list", "--json").stdout), entries(before))

    def test_export_to_stdout_has_both_files(self):
        self.ok("add", "a@x.example", "/^b/")
        p = self.ok("export")
        self.assertIn("# ==> compd_rcpt.map <==\n", p.stdout)
        self.assertIn("# ==> compd_rcpt_re.map <==\n", p.stdout)
        first, second = p.stdout.split("# ==> compd_rcpt_re.map <==\n")
        self.assertIn("\na@x.example\n", first)
        self.assertIn("/^b/\n", second)

    def test_export_to_missing_dir_fails(self):
        p = self.mapctl("export", "--dir", os.path.join(self.tmp, "no", "such"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("no/such", p.stderr)

    def test_import_missing_file(self):
        p = self.mapctl("import", os.path.join(self.tmp, "nope.map"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("nope.map", p.stderr)

    def test_large_import_is_one_atomic_change(self):
        # Larger than one script call (50,000 entries): staged, still one version.
        n = 60000
        path = self.write("compd_rcpt.map",
                          "".join("user%d@bulk.example\n" % i for i in range(n)))
        sub = self.redis.client()
        try:
            sub.send("SUBSCRIBE", "compd:map:changes")
            sub.read()
            p = self.ok("import", path, "--apply", "--json")
            self.assertEqual(json.loads(p.stdout)["version"], 1)
            self.assertEqual(sub.read(), ["message", "compd:map:changes", "1"])
            sub.send("PING")
            self.assertEqual(sub.read(), ["pong", ""])
        finally:
            sub.close()
        self.assertEqual(self.r.call("HLEN", "compd:map:exact"), n)
        self.assertEqual(self.r.call("KEYS", "compd:map:staging:*"), [])
        self.assertEqual(self.version(), 1)


class LintTest(MapctlCase):
    def lint(self, text, *extra, name="x.map"):
        # No Redis: point at a closed port to prove lint never connects.
        dead = "redis://127.0.0.1:%d/0" % free_port()
        return self.mapctl("--redis", dead, "lint", self.write(name, text), *extra, redis=False)

    def test_clean(self):
        p = self.lint("/^a@x\\.example$/\n")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("1 entry, 0 errors, 0 warnings", p.stdout)

    def test_warnings_only(self):
        p = self.lint("a@x.example\n")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"x\.map:1: warning: ")

    def test_errors(self):
        p = self.lint("/^a$/\n/(b/\n")
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stdout, r"x\.map:2: error: ")
        data = json.loads(self.lint("/^a$/\n/(b/\n", "--json").stdout)
        hz = data["files"][0]["hazards"]
        self.assertTrue(any(h["line"] == 2 and h["severity"] == "error" for h in hz))

    def test_plain_kind(self):
        p = self.lint("a@x.example\nb@x.example\n", "--kind", "plain")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("read as a plain map (--kind plain)", p.stdout)

    def test_missing_file(self):
        p = self.mapctl("lint", os.path.join(self.tmp, "absent.map"), redis=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("absent.map", p.stderr)


class ConnectionTest(MapctlCase):
    def test_unix_socket(self):
        url = "unix://" + self.redis.socket
        self.ok("--redis", url, "add", "sock@x.example", redis=False)
        self.assertEqual(self.exact(), ["sock@x.example"])
        p = self.ok("--redis", url, "stats", redis=False)
        self.assertIn("unix://" + self.redis.socket, p.stdout)

    def test_prefix_isolation(self):
        self.ok("--prefix", "tenant1:", "add", "a@x.example")
        self.ok("--prefix", "tenant2:", "add", "b@x.example")
        data = json.loads(self.ok("--prefix", "tenant1:", "list", "--json").stdout)
        self.assertEqual([e["entry"] for e in data["entries"]], ["a@x.example"])
        self.assertEqual(self.r.call("HKEYS", "tenant2:map:exact"), ["b@x.example"])
        self.assertEqual(self.r.call("KEYS", "compd:*"), [])
        p = self.mapctl("--prefix", "tenant2:", "test", "a@x.example")
        self.assertEqual(p.returncode, 1)

    def test_config_file_and_environment(self):
        conf = self.write("compd.conf", "redis_url = %s\nprefix = fromconf:\n" % self.redis.url)
        self.ok("--config", conf, "add", "c@x.example", redis=False, config=False)
        self.assertEqual(self.r.call("HKEYS", "fromconf:map:exact"), ["c@x.example"])
        env = self.env(COMPD_REDIS_URL="unix://" + self.redis.socket)
        self.ok("add", "d@x.example", redis=False, env=env)
        self.assertEqual(self.exact(), ["d@x.example"])
        p = self.mapctl("--config", os.path.join(self.tmp, "missing.conf"), "stats",
                        config=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("missing.conf", p.stderr)


class PasswordTest(MapctlCase):
    password = "s3cret-pw"

    def test_password_from_env_file_and_refused_in_url(self):
        for args in (["stats"], ["add", "pw@x.example"]):
            p = self.mapctl(*args)
            self.assertEqual(p.returncode, 2)
            self.assertIn("authentication required; set COMPD_REDIS_PASSWORD", p.stderr)
        self.assertEqual(self.exact(), [])
        self.ok("add", "pw@x.example", env=self.env(COMPD_REDIS_PASSWORD=self.password))
        self.assertEqual(self.exact(), ["pw@x.example"])
        pwfile = self.write("pw", self.password + "\n")
        conf = self.write("pw.conf", "redis_password_file = %s\n" % pwfile)
        self.ok("--config", conf, "stats", config=False)
        p = self.mapctl("--redis", "redis://default:%s@127.0.0.1:%d/0"
                        % (self.password, self.redis.port), "stats", redis=False,
                        env=self.env(COMPD_REDIS_PASSWORD=self.password))
        self.assertEqual(p.returncode, 2)
        self.assertIn("a password in the URL is refused", p.stderr)
        self.assertNotIn(self.password, p.stderr)

    def test_wrong_password(self):
        p = self.mapctl("stats", env=self.env(COMPD_REDIS_PASSWORD="wrong"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("authentication failed", p.stderr)
        self.assertNotIn("wrong", p.stderr)


def main():
    """unittest.main with the closing line the other integration tests print."""
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit("killed by signal %d" % signum))
    start = time.monotonic()
    result = unittest.main(exit=False, verbosity=2).result
    ok = result.wasSuccessful() and result.testsRun > 0
    sys.stdout.flush()
    sys.stderr.write("%s: %s (%d tests, %d failures, %d errors, %.1fs)\n" % (
        os.path.basename(sys.argv[0]), "OK" if ok else "FAILED", result.testsRun,
        len(result.failures), len(result.errors), time.monotonic() - start))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
