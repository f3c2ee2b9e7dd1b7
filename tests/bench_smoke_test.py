#!/usr/bin/env python3
"""Smoke test of the benchmark tools: bench/milter_load drives bench/noop_milter through a
few hundred transactions and counts every reply. No timing is asserted (speed lives in
bench/, see docs/performance.md)."""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402

# What compd-milter negotiates, and so the no-op milter too: SMFIP_NOBODY, NOUNKNOWN and
# no replies for connect, HELO, headers, end of headers, unknown commands and body.
NEGOTIATED_PROTOCOL = 0x10 | 0x100 | 0x1000 | 0x2000 | 0x80 | 0x40000 | 0x20000 | 0x80000


class Noop:
    def __init__(self, spec, mode):
        self.spec = spec
        self.work = h.temp_dir("noop")
        self.child = h._Child([h.compd_binary("noop_milter"), "--socket", spec, "--mode", mode],
                              os.path.join(self.work, "noop.log"), "noop_milter")
        path = spec.split(":", 1)[1]
        h.wait_for(lambda: self.child.check_alive("starting") or h.unix_socket_open(path), 10,
                   what="noop_milter socket")

    def stop(self):
        return self.child.stop()


def load(spec, *args):
    r = subprocess.run([h.compd_binary("milter_load"), "--socket", spec, "--json"] +
                       [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError("milter_load exit %d: %s %s" % (r.returncode, r.stdout, r.stderr))
    return json.loads(r.stdout)


class BenchSmokeTest(unittest.TestCase):
    def setUp(self):
        self.dir = h.temp_dir("bench-smoke")

    def test_negotiated_noop_answers_mail_rcpt_data_eom_only(self):
        noop = Noop("unix:%s/noop.sock" % self.dir, "negotiated")
        try:
            out = load(noop.spec, "-c", 3, "-m", 100, "--rcpts-min", 1, "--rcpts-max", 3,
                       "--listed-share", 0.2, "--per-session", 10)
        finally:
            self.assertEqual(noop.stop(), 0)
        self.assertEqual(out["errors"], 0, out["first_error"])
        self.assertEqual(out["messages"], 300)
        self.assertEqual(out["sessions"], 30)
        neg = out["negotiated"]
        self.assertEqual(int(neg["protocol"], 16), NEGOTIATED_PROTOCOL)
        self.assertEqual(int(neg["actions"], 16), 0x20 | 0x100)  # QUARANTINE | SETSYMLIST
        self.assertEqual(neg["symlists"], {"envfrom": "i {auth_type} {auth_authen}",
                                           "envrcpt": "i", "eom": "i"})
        rcpts = out["recipients"]["listed"] + out["recipients"]["unlisted"]
        self.assertTrue(300 <= rcpts <= 900, rcpts)
        self.assertGreater(out["recipients"]["listed"], 0)
        self.assertEqual(out["recipients"]["listed_refused"], 0)
        # Negotiated-away stages get no reply; the rest get exactly one per event.
        self.assertEqual(out["replies"], {"mail": {"continue": 300}, "rcpt": {"continue": rcpts},
                                          "data": {"continue": 300}, "eom": {"continue": 300}})
        self.assertEqual(out["outcomes"], {"eom-continue": 300})
        self.assertEqual(out["latency_us"]["count"], 300)

    def test_plain_noop_answers_every_event(self):
        noop = Noop("unix:%s/plain.sock" % self.dir, "plain")
        try:
            out = load(noop.spec, "-c", 2, "-m", 50, "--rcpts-min", 2, "--rcpts-max", 2)
        finally:
            self.assertEqual(noop.stop(), 0)
        self.assertEqual(out["errors"], 0, out["first_error"])
        self.assertEqual(out["messages"], 100)
        self.assertEqual(out["sessions"], 100)  # one message per milter session by default
        # libmilter's defaults: every event is answered, except DATA, which it does not
        # even want without a DATA callback (SMFIP_NODATA).
        self.assertEqual(out["replies"], {
            "connect": {"continue": 100}, "helo": {"continue": 100},
            "mail": {"continue": 100}, "rcpt": {"continue": 200},
            "header": {"continue": 400}, "eoh": {"continue": 100},
            "body": {"continue": 100}, "eom": {"continue": 100}})

    def test_missing_milter_is_an_error_naming_the_socket(self):
        r = subprocess.run([h.compd_binary("milter_load"), "--socket",
                            "unix:%s/nothing.sock" % self.dir, "-m", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("nothing.sock", r.stderr)


if __name__ == "__main__":
    h.main()
