#!/usr/bin/env python3
"""The installed tree works: `cmake --install` into a temporary prefix, then use only what
was installed.

- the layout: programs, config, unit, sysusers/tmpfiles snippets, man pages, docs;
- the installed example config is what the installed compd-milter prints, has every
  setting of the table, and passes `--check-config`; a bad value in it is refused with
  file:line;
- docs/configuration.md (in the tree and installed) equals `compd-milter --print-reference`;
- the systemd unit: keys parse and carry the hardening we promise; ExecStart names the
  installed binary and config and works (with --check-config appended); `systemd-analyze
  verify` when systemd-analyze exists; sysusers.d/tmpfiles.d applied to a temporary root;
- the man pages render without warnings and list every setting and flag;
- the installed compd-milter runs with the installed config against a real Redis, and
  the installed mapctl reads the same config.

Needs a built tree ($COMPD_BUILD_DIR, default build/). Run: python3 tests/install_test.py
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402


def run(argv, check=True, env=None, timeout=60, input=None):
    r = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, env=env, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError("`%s` failed (exit %d):\n%s%s" % (
            " ".join(map(str, argv)), r.returncode, r.stdout, r.stderr))
    return r


def parse_unit(path):
    """A systemd unit as {section: [(key, value), ...]}; duplicate keys are kept in order.

    Follows systemd.syntax(7): comments start with # or ;, sections in brackets,
    key=value with whitespace around '=' ignored, a trailing backslash continues a line.
    Raises AssertionError naming path:line on anything else."""
    sections, current = {}, None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        n, line = i + 1, lines[i].strip()
        i += 1
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[([A-Za-z]+)\]", line)
        if m:
            current = sections.setdefault(m.group(1), [])
            continue
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9]*)\s*=\s*(.*)", line)
        if not m or current is None:
            raise AssertionError("%s:%d: not a key=value line in a section: %r" % (path, n, line))
        current.append((m.group(1), m.group(2)))
    return sections


def values(section, key):
    return [v for k, v in section if k == key]


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.build = h.build_dir()
        cls.src = h.source_dir()
        for name in ("compd-milter", "mapctl"):
            h.compd_binary(name)  # a clear error if the tree is not built
        cls.prefix = os.path.join(h.temp_dir("install"), "prefix")
        r = run(["cmake", "--install", cls.build, "--prefix", cls.prefix], check=False)
        if r.returncode != 0:
            raise AssertionError("cmake --install failed (exit %d). Build first (ninja -C %s)"
                                 ":\n%s%s" % (r.returncode, cls.build, r.stdout, r.stderr))
        cls.install_log = r.stdout
        p = cls.prefix
        cls.milter = os.path.join(p, "sbin", "compd-milter")
        cls.mapctl = os.path.join(p, "bin", "mapctl")
        cls.conf = os.path.join(p, "etc", "compd", "compd.conf")
        cls.unit = os.path.join(p, "lib", "systemd", "system", "compd-milter.service")
        cls.doc = os.path.join(p, "share", "doc", "compd")
        cls.man = os.path.join(p, "share", "man")

    def settings(self):
        """Setting names from the installed program's example config."""
        example = run([self.milter, "--print-example-config"]).stdout
        names = re.findall(r"(?m)^#([a-z0-9_]+) = ", example)
        self.assertGreater(len(names), 10, example)
        return names

    # -- layout

    def test_layout(self):
        expect = {
            "sbin/compd-milter": 0o755, "bin/mapctl": 0o755,
            "etc/compd/compd.conf": None,
            "lib/systemd/system/compd-milter.service": None,
            "lib/sysusers.d/compd.conf": None, "lib/tmpfiles.d/compd.conf": None,
            "share/man/man8/compd-milter.8": None, "share/man/man1/mapctl.1": None,
            "share/man/man5/compd.conf.5": None,
            "share/doc/compd/compd.conf.example": None,
            "share/doc/compd/README.md": None, "share/doc/compd/docs/README.md": None,
            "share/doc/compd/docs/configuration.md": None,
            "share/doc/compd/docs/operations.md": None, "share/doc/compd/docs/overview.md": None,
            "share/doc/compd/docker/README.md": None,
        }
        for rel, mode in expect.items():
            path = os.path.join(self.prefix, rel)
            self.assertTrue(os.path.isfile(path), "not installed: %s\n%s" % (
                rel, self.install_log))
            if mode:
                self.assertTrue(os.access(path, os.X_OK), "%s is not executable" % rel)
        # Nothing escaped the prefix (e.g. an absolute /etc destination).
        self.assertNotRegex(self.install_log, r"Installing: (?!%s)" % re.escape(self.prefix))
        r = run([self.milter, "--version"], check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("compd-milter", r.stdout)

    def test_reinstall_keeps_an_edited_config(self):
        with open(self.conf, "a") as f:
            f.write("\n# edited by the operator\naction = monitor\n")
        try:
            r = run(["cmake", "--install", self.build, "--prefix", self.prefix])
            self.assertIn("Keeping", r.stdout)
            with open(self.conf) as f:
                self.assertIn("# edited by the operator", f.read())
        finally:
            shutil.copy(os.path.join(self.doc, "compd.conf.example"), self.conf)

    # -- example config

    def test_installed_example_config_is_valid_and_complete(self):
        example = run([self.milter, "--print-example-config"]).stdout
        with open(self.conf) as f:
            installed = f.read()
        with open(os.path.join(self.doc, "compd.conf.example")) as f:
            self.assertEqual(f.read(), example)
        self.assertEqual(installed, example)
        r = run([self.milter, "--check-config", "--config", self.conf], check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Every setting is in the file, commented out at its default: --print-config of
        # the file shows each at its default.
        dump = run([self.milter, "--print-config", "--config", self.conf],
                   env=self.clean_env()).stdout
        for name in self.settings():
            self.assertRegex(installed, r"(?m)^#%s = " % name)
            self.assertRegex(dump, r"(?m)^%s\s*=.*#\s*default$" % name)

    def test_a_bad_value_in_the_installed_config_names_file_and_line(self):
        conf = os.path.join(h.temp_dir("conf"), "compd.conf")
        with open(self.conf) as f:
            lines = f.read().split("\n")
        n = next(i for i, l in enumerate(lines) if l.startswith("#action = "))
        lines[n] = "action = rejct"
        with open(conf, "w") as f:
            f.write("\n".join(lines))
        r = run([self.milter, "--check-config", "--config", conf], check=False)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("%s:%d:" % (conf, n + 1), r.stderr)
        self.assertIn("rejct", r.stderr)
        # Uncommenting a setting at a valid value works and shows where it came from.
        lines[n] = "action = monitor"
        with open(conf, "w") as f:
            f.write("\n".join(lines))
        dump = run([self.milter, "--print-config", "--config", conf],
                   env=self.clean_env()).stdout
        self.assertRegex(dump, r"(?m)^action\s*= monitor\s+# %s:%d$" % (re.escape(conf), n + 1))

    # -- generated reference

    def test_configuration_reference_matches_the_settings_table(self):
        reference = run([self.milter, "--print-reference"]).stdout
        with open(os.path.join(self.src, "docs", "configuration.md")) as f:
            in_tree = f.read()
        self.assertEqual(
            in_tree, reference,
            "docs/configuration.md is out of date; run `ninja -C build regen-docs`")
        with open(os.path.join(self.doc, "docs", "configuration.md")) as f:
            self.assertEqual(f.read(), reference)
        for name in self.settings():
            self.assertIn("`%s`" % name, reference)

    # -- systemd

    def test_unit_keys(self):
        unit = parse_unit(self.unit)
        self.assertEqual(set(unit), {"Unit", "Service", "Install"})
        svc = unit["Service"]
        want = {
            "Type": "simple", "User": "compd", "Group": "compd",
            "RuntimeDirectory": "compd", "StateDirectory": "compd", "LogsDirectory": "compd",
            "ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
            "ProtectHome": "yes", "CapabilityBoundingSet": "",
            "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
            "SystemCallFilter": "@system-service",
            "ExecReload": "/bin/kill -USR1 $MAINPID", "Restart": "on-failure",
        }
        for key, value in want.items():
            self.assertIn(value, values(svc, key), "%s=%s missing in %s" % (key, value, self.unit))
        self.assertIn("/var/spool/compd", values(svc, "ReadWritePaths"))
        self.assertEqual(values(unit["Install"], "WantedBy"), ["multi-user.target"])
        # Every key is one systemd knows (a typo would be ignored with a warning only).
        known = set("""Type ExecStart ExecReload KillSignal TimeoutStopSec Restart RestartSec
            User Group UMask RuntimeDirectory RuntimeDirectoryMode StateDirectory
            StateDirectoryMode LogsDirectory LogsDirectoryMode ReadWritePaths NoNewPrivileges
            ProtectSystem ProtectHome PrivateTmp PrivateDevices ProtectKernelTunables
            ProtectKernelModules ProtectKernelLogs ProtectControlGroups ProtectClock
            ProtectHostname ProtectProc RestrictNamespaces RestrictRealtime RestrictSUIDSGID
            LockPersonality MemoryDenyWriteExecute RemoveIPC CapabilityBoundingSet
            AmbientCapabilities RestrictAddressFamilies SystemCallArchitectures
            SystemCallFilter SystemCallErrorNumber""".split())
        self.assertEqual({k for k, _ in svc} - known, set())

    def test_unit_execstart_runs_the_installed_binary_with_the_installed_config(self):
        svc = parse_unit(self.unit)["Service"]
        (exec_start,) = values(svc, "ExecStart")
        argv = shlex.split(exec_start)
        self.assertEqual(argv[0], self.milter)
        self.assertIn("--foreground", argv)
        self.assertEqual(argv[argv.index("--config") + 1], self.conf)
        r = run(argv + ["--check-config"], check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        if not analyze:
            self.skipTest("systemd-analyze is not installed (Debian package systemd); the "
                          "unit's keys are still checked by test_unit_keys")
        # MANPATH lets verify resolve Documentation=man:... against the installed pages.
        env = dict(os.environ, MANPATH=self.man + ":")
        r = run([analyze, "verify", self.unit], check=False, env=env)
        out = (r.stdout + r.stderr).strip()
        self.assertEqual(r.returncode, 0, out)
        self.assertEqual(out, "", "systemd-analyze verify warns:\n" + out)

    def test_sysusers_and_tmpfiles_create_user_and_spool(self):
        sysusers, tmpfiles = shutil.which("systemd-sysusers"), shutil.which("systemd-tmpfiles")
        if not (sysusers and tmpfiles):
            self.skipTest("systemd-sysusers/systemd-tmpfiles not installed (Debian package "
                          "systemd)")
        root = h.temp_dir("sysroot")
        os.makedirs(os.path.join(root, "etc"))
        run([sysusers, "--root=" + root, os.path.join(self.prefix, "lib/sysusers.d/compd.conf")])
        with open(os.path.join(root, "etc", "passwd")) as f:
            m = re.search(r"(?m)^compd:x:(\d+):(\d+):[^:]*:/var/lib/compd:/usr/sbin/nologin$",
                          f.read())
        self.assertTrue(m, "user compd not created by sysusers.d/compd.conf")
        run([tmpfiles, "--root=" + root, "--create",
             os.path.join(self.prefix, "lib/tmpfiles.d/compd.conf")])
        ids = (int(m.group(1)), int(m.group(2)))
        for rel, mode in (("var/spool/compd", 0o750), ("var/lib/compd/maps", 0o755)):
            st = os.stat(os.path.join(root, rel))
            self.assertEqual((st.st_uid, st.st_gid), ids, rel)
            self.assertEqual(st.st_mode & 0o777, mode, rel)

    # -- man pages

    def test_man_pages_render_and_are_complete(self):
        groff = shutil.which("groff")
        if not groff:
            self.skipTest("groff is not installed (Debian package groff-base); the pages' "
                          "content is still checked")
        pages = {n: os.path.join(self.man, "man%s" % n[-1], n)
                 for n in ("compd-milter.8", "mapctl.1", "compd.conf.5")}
        text = {}
        for name, path in pages.items():
            r = run([groff, "-man", "-ww", "-z", path], check=False)
            self.assertEqual((r.returncode, r.stderr), (0, ""), "%s: groff warns" % name)
            r = run([groff, "-man", "-Tascii", "-P-c", "-P-b", "-P-u", path],
                    env=dict(os.environ, GROFF_NO_SGR="1"))
            text[name] = r.stdout
        for setting in self.settings():
            self.assertIn(setting, text["compd.conf.5"])
            self.assertIn("--" + setting.replace("_", "-"), text["compd-milter.8"])
        for flag in ("--check-config", "--print-config", "--print-example-config",
                     "--print-reference", "--foreground", "SIGUSR1"):
            self.assertIn(flag, text["compd-milter.8"])
        commands = re.findall(r"(?m)^\s{2,}([a-z]+)\s{2,}\S", run([self.mapctl, "--help"]).stdout
                              .split("ubcommands:")[-1])
        self.assertTrue(commands, "no subcommands in mapctl --help")
        for c in commands:
            self.assertIn("mapctl %s" % c, text["mapctl.1"])

    # -- the installed programs at work

    @staticmethod
    def clean_env():
        """The environment without settings, so only the files under test count."""
        return {k: v for k, v in os.environ.items()
                if not (k.startswith("COMPD_REDIS") or k == "COMPD_PREFIX")}

    def config_for(self, redis, work, extra=""):
        """The installed compd.conf with the places a test may write, as an operator would
        edit it."""
        conf = os.path.join(work, "compd.conf")
        with open(self.conf) as f:
            text = f.read()
        text += "\n# test settings\nredis_url = %s\nalert_log = %s\nspool_dir = %s\n" \
                "map_dir = %s\n%s" % (redis.url, os.path.join(work, "alerts.jsonl"),
                                      os.path.join(work, "spool"), os.path.join(work, "maps"),
                                      extra)
        with open(conf, "w") as f:
            f.write(text)
        return conf

    def test_installed_milter_and_mapctl_work_with_the_installed_config(self):
        with h.RedisServer() as redis:
            work = h.temp_dir("installed")
            conf = self.config_for(redis, work)
            env = self.clean_env()
            r = run([self.mapctl, "--config", conf, "add", "probe7@spammer.example"],
                    check=False, env=env)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = run([self.mapctl, "--config", conf, "test", "Probe7@Spammer.Example"],
                    check=False, env=env)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = run([self.mapctl, "--config", conf, "test", "someone@example.org"],
                    check=False, env=env)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            with h.Milter(["--config", conf], binary=self.milter, env=env,
                          dir=os.path.join(work, "milter")) as milter:
                exact = os.path.join(work, "maps", "compd_rcpt.map")
                h.wait_for(lambda: os.path.exists(exact) and
                           "probe7@spammer.example" in h.tail(exact, 10**6),
                           timeout=10, what="map file from the installed milter")
                code = milter.stop()
                self.assertEqual(code, 0, milter.log())


if __name__ == "__main__":
    h.main()
