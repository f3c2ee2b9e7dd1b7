#!/usr/bin/env python3
"""The Debian packages: built from the tree, installed with apt, used, upgraded, removed
and purged, the way an operator installs Postfix, rspamd or Redis.

- `dpkg-buildpackage -us -uc -b` in a copy of the tree (the tree stays clean): one
  build, unoptimized and without debug information (`noopt`, to keep the suite's time),
  -j of the machine's cores; lintian reports no errors;
- `apt-get install ./compd-milter_*.deb ./mapctl_*.deb`: user compd, its folders with
  their owners and modes, the conffile with the documented defaults, the unit (enabled,
  today's sandboxing), man pages, docs, rspamd snippets;
- the installed `compd-milter --check-config` and `mapctl --version`;
- the unit's ExecStart command line, run as user compd without systemd: with no Redis it
  serves an empty map and keeps trying; once the test Redis answers, it takes the map a
  mapctl wrote and refuses a message to a listed recipient sent through the milter
  protocol, and records it in /var/log/compd;
- an upgrade keeps the operator's edited conffile (dpkg keeps it silently when the
  package's copy did not change, and sets the package's aside as .dpkg-dist when it did);
- `apt-get remove` keeps config, data and user; `apt-get purge` removes them all.

The machine is left as found: the test refuses to start if compd is installed in any form
(packages, /usr/sbin/compd-milter, /etc/compd, the folders), and purges the packages at
the end even on failure. The other tests run $COMPD_BUILD_DIR's programs by absolute path,
so the installed ones shadow nothing; they are gone before the next test starts.

Needs root and dpkg-dev, debhelper, lintian (scripts/install-deps.sh test). The build is
the long step (minutes; ccache, when installed, makes a rebuild of the same tree fast).
Run: python3 tests/deb_test.py
"""

import fcntl
import glob
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
from install_test import parse_unit, values  # noqa: E402
from milter_client import MilterClient  # noqa: E402

PACKAGES = ("compd-milter", "mapctl")
# Paths the packages own or create, and that purge removes; none may exist beforehand.
SYSTEM_PATHS = ("/usr/sbin/compd-milter", "/usr/bin/mapctl", "/etc/compd", "/var/lib/compd",
                "/var/spool/compd", "/var/log/compd", "/lib/systemd/system/compd-milter.service")
FOLDERS = {"/var/lib/compd": 0o755, "/var/lib/compd/maps": 0o755, "/var/spool/compd": 0o750,
           "/var/log/compd": 0o750}
CONF = "/etc/compd/compd.conf"
UNIT = "/lib/systemd/system/compd-milter.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/compd-milter.service"
USER_MARKER = "/var/lib/compd/.user-created-by-package"
# The build runs in a fixed place so that ccache finds its objects again next time (the
# compiler's command line names the folder); the lock keeps two runs apart.
WORK = os.path.join(tempfile.gettempdir(), "compd-deb-test")
# Below the ctest timeout (tests/CMakeLists.txt), so that the test still cleans up.
BUILD_TIMEOUT = 1800
LISTED = "probe7@spammer.example"
ACCOUNT = "alice@customer.example"


def run(argv, check=True, timeout=600, env=None, input=None):
    r = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout, env=env, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError("`%s` failed (exit %d):\n%s" % (
            " ".join(map(str, argv)), r.returncode, r.stdout[-6000:]))
    return r


def apt_env():
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    env["PATH"] = env.get("PATH", "") + ":" + ":".join(h.SBIN_DIRS)
    return env


def package_status(name):
    """dpkg's status of a package ("install ok installed", "deinstall ok config-files"),
    or "" when dpkg does not know it."""
    r = run(["dpkg-query", "-W", "-f=${Status}", name], check=False)
    return r.stdout.strip() if r.returncode == 0 else ""


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def owner(path):
    st = os.stat(path)
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


def copy_tree(src, dst):
    """The source as git sees it (tracked and new files, not ignored ones such as build/),
    or, outside git, everything but build folders."""
    r = subprocess.run(["git", "-C", src, "ls-files", "-z", "--cached", "--others",
                        "--exclude-standard"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    if r.returncode == 0 and r.stdout:
        for rel in r.stdout.decode().split("\0"):
            if not rel or not os.path.lexists(os.path.join(src, rel)):
                continue  # deleted in the work tree
            os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
            shutil.copy2(os.path.join(src, rel), os.path.join(dst, rel), follow_symlinks=False)
    else:
        shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(
            "build", "build-*", ".git", "obj-*", "__pycache__"))


def tree_state(src):
    """What dpkg-buildpackage run in the tree would leave: files under debian/ that git does
    not track (debian/build, debian/tmp, ...; ignored ones too), and its output beside the
    tree."""
    r = subprocess.run(["git", "-C", src, "status", "--porcelain", "--ignored", "--", "debian"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       stdin=subprocess.DEVNULL, text=True)
    out = glob.glob(os.path.join(os.path.dirname(src), "compd*_*.*"))
    out += glob.glob(os.path.join(os.path.dirname(src), "mapctl_*.*"))
    return r.stdout, sorted(out)


def repack(deb, version, out_dir, conf_extra=None):
    """A copy of a built package with another version (and, for compd-milter, optionally a
    changed conffile): an upgrade without a second build."""
    root = os.path.join(out_dir, os.path.basename(deb) + ".d")
    shutil.rmtree(root, ignore_errors=True)
    run(["dpkg-deb", "-R", deb, root])
    control = os.path.join(root, "DEBIAN", "control")
    with open(control) as f:
        text = f.read()
    old = re.search(r"(?m)^Version: (.*)$", text).group(1)
    text = text.replace("Version: %s\n" % old, "Version: %s\n" % version)
    text = text.replace("(= %s)" % old, "(= %s)" % version)
    with open(control, "w") as f:
        f.write(text)
    if conf_extra:
        # dpkg compares conffiles by their contents (DEBIAN/md5sums leaves them out).
        with open(os.path.join(root, CONF.lstrip("/")), "a") as f:
            f.write(conf_extra)
    name = os.path.basename(deb).split("_")[0]
    out = os.path.join(out_dir, "%s_%s_%s" % (name, version, deb.rsplit("_", 1)[1]))
    run(["dpkg-deb", "--root-owner-group", "-b", root, out])
    return out


class DebPackageTest(unittest.TestCase):
    """One install's life, in order: the tests are named a_ to z_ because each continues
    from the state the one before left (unittest runs them sorted by name)."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise h.HarnessError("deb_test installs packages: run it as root")
        h.require_programs("redis-server", "redis-cli")
        missing = [p for p in ("dpkg-buildpackage", "dh", "lintian", "apt-get", "setpriv")
                   if not h.find_program(p)]
        if missing:
            raise h.HarnessError("not installed: %s (Debian packages dpkg-dev, debhelper, "
                                 "lintian; run scripts/install-deps.sh test)" % ", ".join(missing))
        os.makedirs(WORK, exist_ok=True)
        cls.lock = open(WORK + ".lock", "w")
        try:
            fcntl.flock(cls.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise h.HarnessError("another deb_test is running (%s.lock)" % WORK) from None
        found = [p for p in PACKAGES if package_status(p)]
        found += [p for p in SYSTEM_PATHS if os.path.lexists(p)]
        if found:
            raise h.HarnessError(
                "deb_test installs the compd packages system-wide and purges them, which "
                "deletes these paths; this machine already has: %s. Run it where compd is not "
                "installed (remove the packages, or move the paths away)" % ", ".join(found))
        cls.user_existed = user_exists("compd")
        cls.src = h.source_dir()
        cls.tree_before = tree_state(cls.src)
        try:
            cls.build_packages()
            cls.install()
        except BaseException:
            cls.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cleanup()

    @classmethod
    def cleanup(cls):
        """Purge whatever is left, even after a failure, so the machine is as found."""
        if any(package_status(p) for p in PACKAGES):
            r = run(["apt-get", "purge", "-y", "-q"] + list(PACKAGES), check=False,
                    env=apt_env())
            if r.returncode != 0:
                run(["dpkg", "--purge", "--force-all"] + list(PACKAGES), check=False,
                    env=apt_env())
        if not cls.user_existed and user_exists("compd"):
            run(["userdel", "compd"], check=False, env=apt_env())
        if not cls.user_existed and group_exists("compd"):
            run(["groupdel", "compd"], check=False, env=apt_env())
        if not h._keep_tmp():
            shutil.rmtree(WORK, ignore_errors=True)
        os.unlink(cls.lock.name)
        cls.lock.close()

    @classmethod
    def build_packages(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        with open(os.path.join(cls.src, "debian", "changelog")) as f:
            cls.version = re.match(r"\S+ \(([^)]+)\)", f.readline()).group(1)
        tree = os.path.join(WORK, "compd-" + cls.version)
        copy_tree(cls.src, tree)
        os.chmod(WORK, 0o755)  # apt's download user reads the .deb files from here
        env = dict(os.environ)
        # nocheck: the unit tests have their own ctest entry; noddebs: no debug packages.
        # noopt and no -g: what this test checks is the packaging (files, maintainer
        # scripts, lintian, the installed daemon), not the compiler's output, and an
        # optimized build with debug information took 12 minutes of the suite's 25 on a
        # 2-core machine with an empty compiler cache; unoptimized without -g it is a
        # fraction of that. debian/rules is the same either way.
        env["DEB_BUILD_OPTIONS"] = "nocheck noddebs noopt parallel=%d" % (os.cpu_count() or 1)
        env["DEB_CFLAGS_STRIP"] = env["DEB_CXXFLAGS_STRIP"] = "-g"
        if shutil.which("ccache"):
            # debhelper gives the build a HOME of its own, where ccache would start empty:
            # point it at the machine's cache and configuration.
            env["CMAKE_CXX_COMPILER_LAUNCHER"] = "ccache"
            env.setdefault("CCACHE_DIR", run(["ccache", "-k", "cache_dir"]).stdout.strip())
            conf = os.path.expanduser("~/.config/ccache/ccache.conf")
            if os.path.exists(conf):
                env.setdefault("CCACHE_CONFIGPATH", conf)
        started = time.monotonic()
        # A child of the harness: killed with the test, whatever kills it.
        log_path = os.path.join(WORK, "build.log")
        build = h._Child(["dpkg-buildpackage", "-us", "-uc", "-b"], log_path,
                         "dpkg-buildpackage", env=env, cwd=tree)
        try:
            code = build.proc.wait(BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = "timeout after %d s" % BUILD_TIMEOUT
        build.stop()
        if code != 0:
            raise AssertionError("dpkg-buildpackage failed (%s); the end of %s:\n%s" % (
                code, log_path, h.tail(log_path, 60)))
        print("deb_test: packages built in %.0f s" % (time.monotonic() - started),
              file=sys.stderr)
        cls.debs = {}
        for name in PACKAGES:
            (cls.debs[name],) = glob.glob(os.path.join(WORK, "%s_%s_*.deb" % (
                name, cls.version)))
            print("deb_test: %s %d bytes" % (os.path.basename(cls.debs[name]),
                                             os.path.getsize(cls.debs[name])), file=sys.stderr)
        (cls.changes,) = glob.glob(os.path.join(WORK, "compd_%s_*.changes" % cls.version))

    @classmethod
    def install(cls):
        r = run(["apt-get", "install", "-y", "-q"] + [cls.debs[p] for p in PACKAGES],
                env=apt_env(), timeout=900)
        cls.install_log = r.stdout

    def listing(self, package):
        return run(["dpkg-query", "-L", package]).stdout.split()

    # -- the build

    def test_a_lintian_reports_no_errors(self):
        r = run(["lintian", "--info", self.changes], check=False, timeout=900)
        tags = [l for l in r.stdout.split("\n") if re.match(r"[EWIPX]: ", l)]
        errors = [l for l in tags if l.startswith("E: ")]
        self.assertEqual(errors, [], r.stdout)
        for l in tags:
            print("deb_test: lintian %s" % l, file=sys.stderr)
        if not tags:
            print("deb_test: lintian: no tags", file=sys.stderr)
        # The tree is as before: the build ran in the copy.
        self.assertEqual(tree_state(self.src), self.tree_before)

    # -- the install

    def test_b_install_creates_user_folders_conffile_unit(self):
        for name in PACKAGES:
            self.assertEqual(package_status(name), "install ok installed")
        user = pwd.getpwnam("compd")
        self.assertLess(user.pw_uid, 1000, "compd is not a system user")
        self.assertEqual((user.pw_dir, user.pw_shell), ("/var/lib/compd", "/usr/sbin/nologin"))
        for path, mode in FOLDERS.items():
            self.assertTrue(os.path.isdir(path), "%s not created\n%s" % (path, self.install_log))
            self.assertEqual(owner(path), ("compd", "compd"), path)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), mode, path)
        self.assertEqual(os.path.exists(USER_MARKER), not self.user_existed)
        # The conffile: what the installed program prints as its example, every setting
        # commented out at its default; root's, readable (it holds no secret).
        conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "compd-milter"]).stdout
        self.assertRegex(conffiles, r"(?m)^ %s [0-9a-f]{32}$" % re.escape(CONF))
        example = run(["/usr/sbin/compd-milter", "--print-example-config"]).stdout
        with open(CONF) as f:
            self.assertEqual(f.read(), example)
        self.assertEqual(owner(CONF), ("root", "root"))
        self.assertEqual(stat.S_IMODE(os.stat(CONF).st_mode), 0o644)
        # The unit is today's (packaging/compd-milter.service.in with the package's paths:
        # the same sandboxing), and enabled: Debian starts services on install.
        with open(os.path.join(self.src, "packaging", "compd-milter.service.in")) as f:
            want = f.read().replace("@SBINDIR@", "/usr/sbin").replace("@SYSCONFDIR@", "/etc")
        with open(UNIT) as f:
            self.assertEqual(f.read(), want)
        self.assertEqual(os.readlink(WANTS), UNIT)
        # Docs, man pages, rspamd snippets, each in its package.
        milter_files, mapctl_files = self.listing("compd-milter"), self.listing("mapctl")
        for path in ("/usr/sbin/compd-milter", "/usr/share/man/man8/compd-milter.8.gz",
                     "/usr/share/man/man5/compd.conf.5.gz", "/usr/lib/sysusers.d/compd.conf",
                     "/usr/lib/tmpfiles.d/compd.conf",
                     "/usr/share/doc/compd-milter/README.md",
                     "/usr/share/doc/compd-milter/docs/operations.md",
                     "/usr/share/doc/compd-milter/compd.conf.example",
                     "/usr/share/doc/compd-milter/copyright",
                     "/usr/share/compd/rspamd/local.d/multimap.conf",
                     # generated by the build from its .lua.in, which is not shipped
                     "/usr/share/compd/rspamd/plugins.d/compd_recorder.lua"):
            self.assertIn(path, milter_files)
            self.assertTrue(os.path.isfile(path), path)
        self.assertEqual([p for p in milter_files if p.endswith(".in")], [])
        with open("/usr/share/compd/rspamd/plugins.d/compd_recorder.lua") as f:
            self.assertIn("compd_record.script = [", f.read())
        for path in ("/usr/bin/mapctl", "/usr/share/man/man1/mapctl.1.gz",
                     "/usr/share/doc/mapctl/copyright", "/usr/share/doc/mapctl/mapctl.md"):
            self.assertIn(path, mapctl_files)
        self.assertEqual([p for p in milter_files + mapctl_files if p.startswith("/usr/local")],
                         [])
        # The pages point at the documentation where this package put it.
        page = run(["man", "-P", "cat", "8", "compd-milter"],
                   env=dict(os.environ, MANWIDTH="200")).stdout
        self.assertIn("/usr/share/doc/compd-milter/docs", page)
        self.assertIn("--check-config", page)
        # compd-milter needs mapctl for operations; mapctl alone serves admin hosts.
        depends = run(["dpkg-query", "-W", "-f=${Depends}", "compd-milter"]).stdout
        self.assertIn("mapctl (= %s)" % self.version, depends)
        self.assertNotIn("compd-milter", run(["dpkg-query", "-W", "-f=${Depends}",
                                              "mapctl"]).stdout)

    def test_c_installed_programs_run(self):
        r = run(["/usr/sbin/compd-milter", "--check-config"], check=False)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("configuration OK", r.stdout)
        r = run(["/usr/bin/mapctl", "--version"], check=False)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn(self.version, r.stdout)

    # -- the daemon as the unit runs it

    def start_daemon(self, work):
        """The unit's ExecStart, as its User and Group with its UMask, without systemd."""
        svc = parse_unit(UNIT)["Service"]
        (exec_start,) = values(svc, "ExecStart")
        (umask,) = values(svc, "UMask")
        (user,), (group,) = values(svc, "User"), values(svc, "Group")
        argv = ["setpriv", "--reuid", user, "--regid", group, "--init-groups", "sh", "-c",
                'umask %s && exec "$@"' % umask, "sh"] + shlex.split(exec_start)
        log_path = os.path.join(work, "milter.log")
        return h._Child(argv, log_path, "compd-milter (the unit's command line)"), log_path

    def test_d_daemon_runs_as_compd_and_refuses_a_listed_recipient(self):
        work = h.temp_dir("deb")
        port = h.free_port()
        redis = h.RedisServer(port=h.free_port())  # not started yet: a fresh host
        # What an operator changes in the conffile: the milter socket (the default 8890 may
        # be taken here), Redis, and the map folder for rspamd the package prepared.
        with open(CONF, "a") as f:
            f.write("\n# edited by the operator\nsocket = inet:%d@127.0.0.1\n"
                    "redis_url = %s\nmap_dir = /var/lib/compd/maps\n"
                    "map_poll_interval = 1s\n" % (port, redis.url))
        milter, log_path = self.start_daemon(work)
        try:
            # No Redis answers: it listens anyway, with an empty map, and says so.
            h.wait_for(lambda: milter.check_alive("at start") or h.port_open(port),
                       timeout=20, what="the installed compd-milter listening without Redis")
            h.wait_for(lambda: "EMPTY map" in h.tail(log_path, 100), timeout=10,
                       what="the empty-map warning")
            self.assertEqual(self.submit(port), "c", h.tail(log_path))
            with redis:
                r = run(["/usr/bin/mapctl", "add", LISTED], check=False)  # reads compd.conf
                self.assertEqual(r.returncode, 0, r.stdout)
                exact = "/var/lib/compd/maps/compd_rcpt.map"
                h.wait_for(lambda: LISTED in h.tail(exact, 10**6), timeout=30,
                           what="the map from Redis, once it answers\n" + h.tail(log_path))
                self.assertEqual(owner(exact), ("compd", "compd"))
                self.assertEqual(self.submit(port), "y", h.tail(log_path))
                self.assertIn("550", self.last_text)
                alerts = "/var/log/compd/alerts.jsonl"
                h.wait_for(lambda: ACCOUNT in h.tail(alerts), timeout=10, what="the alert")
                hit = json.loads(h.tail(alerts, 1))
                self.assertEqual((hit["account"], hit["recipient"]), (ACCOUNT, LISTED))
                self.assertEqual(owner(alerts), ("compd", "compd"))
                self.assertEqual(stat.S_IMODE(os.stat(alerts).st_mode) & 0o007, 0)
                code = milter.stop()
                self.assertEqual(code, 0, h.tail(log_path))
        finally:
            milter.kill()

    def submit(self, port):
        """One authenticated message to the listed recipient; the reply to RCPT."""
        with MilterClient(port) as c:
            c.negotiate()
            c.connect("client.example", "203.0.113.9")
            c.helo("helo")
            c.macro("M", {"{auth_authen}": ACCOUNT})
            self.assertEqual(c.mail("<%s>" % ACCOUNT), "c")
            reply = c.rcpt("<%s>" % LISTED)
            self.last_text = c.last_text
            return reply

    # -- upgrade

    def test_e_upgrade_keeps_the_edited_conffile(self):
        with open(CONF) as f:
            edited = f.read()
        self.assertIn("# edited by the operator", edited)
        uid = pwd.getpwnam("compd").pw_uid
        out = os.path.join(WORK, "upgrade")
        os.makedirs(out, exist_ok=True)
        # The package's copy unchanged: dpkg keeps the edited file without asking.
        v1 = self.version + "+upgrade1"
        debs = [repack(self.debs[p], v1, out) for p in PACKAGES]
        run(["apt-get", "install", "-y", "-q"] + debs, env=apt_env(), timeout=900)
        self.assertEqual(package_status("compd-milter"), "install ok installed")
        self.assertIn(v1, run(["dpkg-query", "-W", "compd-milter"]).stdout)
        with open(CONF) as f:
            self.assertEqual(f.read(), edited)
        self.assertFalse(os.path.exists(CONF + ".dpkg-dist"))
        # The package's copy changed too: dpkg asks; the operator keeps theirs (confold),
        # and the package's new copy waits beside it.
        v2 = self.version + "+upgrade2"
        debs = [repack(self.debs["compd-milter"], v2, out, conf_extra="\n# new upstream\n"),
                repack(self.debs["mapctl"], v2, out)]
        r = run(["dpkg", "-i", "--force-confold"] + debs, env=apt_env())
        self.assertIn("compd.conf", r.stdout)
        with open(CONF) as f:
            self.assertEqual(f.read(), edited)
        with open(CONF + ".dpkg-dist") as f:
            self.assertIn("# new upstream", f.read())
        self.assertEqual(pwd.getpwnam("compd").pw_uid, uid)
        self.assertEqual(os.path.exists(USER_MARKER), not self.user_existed)

    # -- remove, purge

    def test_z_remove_keeps_config_and_data_purge_removes_them(self):
        files = self.listing("compd-milter") + self.listing("mapctl")
        run(["apt-get", "remove", "-y", "-q"] + list(PACKAGES), env=apt_env(), timeout=900)
        self.assertEqual(package_status("compd-milter"), "deinstall ok config-files")
        self.assertFalse(os.path.exists("/usr/sbin/compd-milter"))
        self.assertFalse(os.path.exists("/usr/bin/mapctl"))
        with open(CONF) as f:
            self.assertIn("# edited by the operator", f.read())
        for path in ("/var/lib/compd/maps/compd_rcpt.map", "/var/log/compd/alerts.jsonl",
                     "/var/spool/compd"):
            self.assertTrue(os.path.exists(path), "remove deleted %s" % path)
        self.assertTrue(user_exists("compd"))

        run(["apt-get", "purge", "-y", "-q"] + list(PACKAGES), env=apt_env(), timeout=900)
        for name in PACKAGES:
            self.assertIn(package_status(name), ("", "unknown ok not-installed"))
        left = [p for p in list(SYSTEM_PATHS) + [WANTS] if os.path.lexists(p)]
        left += [p for p in files if os.path.lexists(p) and not os.path.isdir(p)]
        self.assertEqual(left, [])
        # The user goes if the package created it, and only then.
        self.assertEqual(user_exists("compd"), self.user_existed)
        self.assertEqual(group_exists("compd"), self.user_existed)


if __name__ == "__main__":
    h.main()
