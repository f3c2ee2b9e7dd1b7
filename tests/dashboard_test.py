#!/usr/bin/env python3
"""Volume counters, anomalies and the dashboard, end to end.

One environment for all cases: redis-server, compd-milter with its HTTP listener on
loopback, Postfix + Dovecot + sink. Users submit through Postfix (swaks, and smtplib for the
600-message burst); we assert what an operator sees: the counters in Redis, `mapctl top`
and `mapctl anomalies`, anomaly events in the stream, the JSON API, /metrics, HTTP 401s,
and the dashboard page rendered by headless Chromium (screenshot + DOM).

Seeded straight into Redis, in the key format of core/watch/include/compd/watch/volume.h:
  - yearly@customer.example sent one message a day for the past 365 days
    (hashes compd:vol:m:<YYYYMM>:<account>, field DD = "messages recipients networks");
  - the previous hour's top senders (zsets compd:vol:h:<YYYYMMDDHH>:msgs / :rcpts), so the
    "last hour" column has known accounts.

COMPD_DASHBOARD_SCREENSHOT=/path/shot.png keeps the screenshot there.
"""

import base64
import concurrent.futures
import html.parser
import http.client
import json
import os
import re
import shutil
import smtplib
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import compd_harness as h  # noqa: E402
import stack_util as su  # noqa: E402

PREFIX = "compd:"
MILTER_MACROS = {
    "mail": "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
}
WEB_USER, WEB_PASSWORD = "abuse", "wall-monitor-pw"
TOKEN = "tok-5f1c0a9e7b2d4c3a8e6f"
LISTED = "collector@bad.example"
ALICE, BOB, YEARLY, LEAKY, ROAMER = ("alice@customer.example", "bob@customer.example",
                                     "yearly@customer.example", "leaky@customer.example",
                                     "roamer@customer.example")
LAST_HOUR_ONLY = "lasthour@customer.example"
USERS = {a: "pw-" + a.split("@")[0] for a in (ALICE, BOB, YEARLY, LEAKY, ROAMER)}
BURST = 600


def hour_id(t):
    return time.strftime("%Y%m%d%H", time.gmtime(t))


def day_id(t):
    return time.strftime("%Y%m%d", time.gmtime(t))


def hour_start(t):
    return int(t) // 3600 * 3600


def seed_year(redis, account, now):
    """One message a day on each of the 365 days before today."""
    today = int(now) // 86400 * 86400
    for i in range(365, 0, -1):
        d = day_id(today - i * 86400)
        redis.call("HSET", month_key(d, account), d[6:], "1 1 1")


def month_key(day, account):
    return PREFIX + "vol:m:%s:%s" % (day[:6], account)


def day_counts(redis, account, day):
    """(messages, recipients, networks) of one day, from the month hash."""
    v = redis.call("HGET", month_key(day, account), day[6:])
    return tuple(int(x) for x in v.split()) if v else None


def seed_last_hour(redis, now):
    h1 = hour_id(hour_start(now) - 3600)
    for account, n in ((LAST_HOUR_ONLY, 42), (ALICE, 5)):
        redis.call("ZADD", PREFIX + "vol:h:%s:msgs" % h1, n, account)
        redis.call("ZADD", PREFIX + "vol:h:%s:rcpts" % h1, 2 * n, account)


def seed_week_ago(redis, now):
    """The platform's messages per hour a week ago: an office-hours wave, so the wall page's
    platform chart has last week's area to draw this week's line against."""
    base = hour_start(now) - 7 * 86400
    for i in range(50):
        t = base - i * 3600
        hour = time.gmtime(t).tm_hour
        n = 400 if 8 <= hour < 18 else 60
        redis.call("HSET", PREFIX + "vol:t:%s" % hour_id(t), "m", n, "r", n)


def score(redis, key, member):
    v = redis.call("ZSCORE", key, member)
    return 0 if v is None else int(float(v))


def hour_count(redis, account, hours, kind="msgs"):
    return sum(score(redis, PREFIX + "vol:h:%s:%s" % (hid, kind), account) for hid in hours)


def send_burst(port, user, password, count, workers=4, source=None):
    """`count` messages in `workers` SMTP sessions (one AUTH each); returns how many Postfix
    accepted."""
    def session(n):
        sent = 0
        with smtplib.SMTP("127.0.0.1", port, timeout=30,
                          source_address=(source, 0) if source else None) as s:
            s.login(user, password)
            for i in range(n):
                msg = ("From: %s\r\nTo: friend@remote.example\r\nSubject: burst %d\r\n\r\n"
                       "hello\r\n" % (user, i))
                s.sendmail(user, ["friend@remote.example"], msg)
                sent += 1
        return sent
    shares = [count // workers + (1 if i < count % workers else 0) for i in range(workers)]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(session, [n for n in shares if n]))


def http_get(port, path, auth=None, timeout=10):
    """(status, headers dict of lists, body text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {}
    if auth:
        headers["Authorization"] = auth
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    body = r.read().decode("utf-8", "replace")
    hs = {}
    for k, v in r.getheaders():
        hs.setdefault(k.lower(), []).append(v)
    c.close()
    return r.status, hs, body


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


METRIC_LINE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)\})? (-?[0-9.eE+]+|NaN|[+-]Inf)$')


def parse_metrics(text):
    """Strict Prometheus text format reader: every sample belongs to a declared family."""
    types, samples = {}, {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("# HELP "):
            continue
        m = re.match(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|"
                     r"untyped)$", line)
        if m:
            if m.group(1) in types:
                raise AssertionError("line %d: TYPE of %s twice" % (n, m.group(1)))
            types[m.group(1)] = m.group(2)
            continue
        m = METRIC_LINE.match(line)
        if not m:
            raise AssertionError("line %d is not a sample: %r" % (n, line))
        if m.group(1) not in types:
            raise AssertionError("line %d: %s has no TYPE" % (n, m.group(1)))
        series = line.rsplit(" ", 1)[0]
        if series in samples:
            raise AssertionError("line %d: %s twice" % (n, series))
        samples[series] = float(m.group(4))
    return types, samples


class ColumnParser(html.parser.HTMLParser):
    """data-account rows per dashboard section (this-hour, last-hour, ...)."""

    def __init__(self):
        super().__init__()
        self.section = None
        self.rows = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "id" in a:
            self.section = a["id"]
            self.rows.setdefault(self.section, [])
        if tag == "tr" and "data-account" in a and self.section:
            self.rows[self.section].append((a["data-account"], a.get("class") or ""))


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError("%s is not a PNG" % path)
    return struct.unpack(">II", head[16:24])


def chromium(*args, timeout=90):
    prog = shutil.which("chromium") or shutil.which("chromium-browser")
    if not prog:
        raise h.HarnessError("chromium not found: install the Debian package chromium "
                             "(scripts/install-deps.sh test)")
    profile = tempfile.mkdtemp(prefix="compd-chromium-")
    try:
        argv = [prog, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--user-data-dir=" + profile] + list(args)
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Env(su.MilterStack):
    def start(self):
        self.dir = h.temp_dir("dashboard")  # removed at exit by the harness
        # Seeded "last hour" data must stay the last hour for the whole test.
        remaining = 3600 - time.time() % 3600
        if remaining < 120:
            time.sleep(remaining + 1)
        self.t0 = time.time()
        self.redis = h.RedisServer().start()
        su.add_listed(self.redis, LISTED, source="dashboard_test", prefix=PREFIX)
        seed_year(self.redis, YEARLY, self.t0)
        seed_last_hour(self.redis, self.t0)
        seed_week_ago(self.redis, self.t0)

        r = h.mapctl("dashboard-user", WEB_USER, input=WEB_PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
        self.users_file = os.path.join(self.dir, "dashboard.users")
        with open(self.users_file, "w") as f:
            f.write("# written by dashboard_test\n" + r.stdout)
        self.token_file = os.path.join(self.dir, "dashboard.token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(self.users_file, 0o600)
        os.chmod(self.token_file, 0o600)

        self.http_port = h.free_port()
        self.milter = h.Milter.standard(
            self.redis, action="reject", prefix=PREFIX,
            extra=["--http-listen", "127.0.0.1:%d" % self.http_port,
                   "--http-users-file", self.users_file,
                   "--http-token-file", self.token_file,
                   "--volume-flush-interval", "200ms",
                   "--dashboard-refresh", "5s"])
        self.milter.start()
        h.wait_for(lambda: h.port_open(self.http_port), 10, what="dashboard listener")
        self.stack = h.MailStack(users=USERS, smtpd_milters=self.milter.postfix_spec,
                                 milter_macros=MILTER_MACROS)
        self.stack.start()

    def hours(self):
        """Hour ids from the start of the test until now (normally one)."""
        return sorted({hour_id(t) for t in range(int(self.t0), int(time.time()) + 1, 600)} |
                      {hour_id(time.time())})


ENV = su.ModuleStack(Env)
setUpModule, tearDownModule = ENV.set_up, ENV.tear_down


class DashboardTest(unittest.TestCase):
    maxDiff = None

    def swaks(self, user, to, **kw):
        return h.swaks(ENV.stack.submission_port, to, sender=user, user=user,
                       password=USERS[user], **kw)

    def test_a_counts_after_known_messages(self):
        for i in range(3):
            rcpts = ["r1@remote.example", "r2@remote.example"] if i == 0 else "r1@remote.example"
            r = self.swaks(ALICE, rcpts, subject="alice %d" % i)
            self.assertEqual(r.code, 0, r.transcript)
        r = self.swaks(BOB, "r3@remote.example", subject="bob")
        self.assertEqual(r.code, 0, r.transcript)
        # A refused recipient is not counted; the accepted one is.
        r = self.swaks(BOB, ["r4@remote.example", LISTED], headers=["To: r4@remote.example"])
        self.assertEqual(r.code, 0, r.transcript)

        def counted():
            return (hour_count(ENV.redis, ALICE, ENV.hours()) == 3 and
                    hour_count(ENV.redis, BOB, ENV.hours()) == 2)
        h.wait_for(counted, 10, what="counters in Redis" + ENV.diag())
        self.assertEqual(hour_count(ENV.redis, ALICE, ENV.hours(), "rcpts"), 4)
        self.assertEqual(hour_count(ENV.redis, BOB, ENV.hours(), "rcpts"), 2)
        today = day_id(time.time())
        self.assertEqual(day_counts(ENV.redis, ALICE, today), (3, 4, 1))
        ttl = ENV.redis.call("TTL", PREFIX + "vol:h:%s:msgs" % hour_id(time.time()))
        self.assertTrue(48 * 3600 < ttl <= 49 * 3600, ttl)

        r = h.mapctl("top", "--json", redis=ENV.redis, prefix=PREFIX)
        self.assertEqual(r.returncode, 0, r.stderr)
        top = json.loads(r.stdout)
        this = {row["account"]: row for row in top["this_hour"]["rows"]}
        self.assertEqual(this[ALICE]["messages"], 3)
        self.assertEqual(this[ALICE]["recipients"], 4)
        self.assertEqual(this[ALICE]["previous"], 5)
        self.assertEqual(this[ALICE]["change"], -2)
        self.assertFalse(this[ALICE]["new_to_top"])
        self.assertTrue(this[BOB]["new_to_top"])
        last = [row["account"] for row in top["last_hour"]["rows"]]
        self.assertEqual(last, [LAST_HOUR_ONLY, ALICE])

        r = h.mapctl("top", "--n", "15", redis=ENV.redis, prefix=PREFIX)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertIn("THIS HOUR", lines[0])
        self.assertIn("LAST HOUR", lines[0])
        self.assertGreater(lines[0].index("LAST HOUR"), lines[0].index("THIS HOUR"))
        alice = next(l for l in lines if l.startswith(ALICE))
        self.assertRegex(alice, r"^alice@customer\.example\s+3\s+-2\s+lasthour@customer\.example"
                                r" \*\s+42\s+new$")

    def test_b_a_year_of_one_a_day_then_600(self):
        start = time.monotonic()
        sent = send_burst(ENV.stack.submission_port, YEARLY, USERS[YEARLY], BURST)
        self.assertEqual(sent, BURST)
        h.wait_for(lambda: hour_count(ENV.redis, YEARLY, ENV.hours()) == BURST, 20,
                   what="600 counted" + ENV.diag())
        took = time.monotonic() - start

        def raised():
            return {e["rule"] for e in su.stream_events(ENV.redis, type_="anomaly")
                    if e["account"] == YEARLY} >= {"hour_volume", "day_volume"}
        h.wait_for(raised, 10, what="anomaly events" + ENV.diag())
        time.sleep(1)  # further flushes must not raise them again
        events = [e for e in su.stream_events(ENV.redis, type_="anomaly")
                  if e["account"] == YEARLY]
        self.assertEqual(sorted(e["rule"] for e in events), ["day_volume", "hour_volume"],
                         events)
        for e in events:
            self.assertEqual(e["baseline"], "1", e)
            self.assertGreater(int(e["value"]), float(e["threshold"]), e)
            self.assertEqual(e["source"], "volume")
            self.assertIn("365 days", e["detail"])
            self.assertEqual(e["threshold"], "100" if e["rule"] == "day_volume" else "50")
        # Anomalies are not hits: the account record stays clean.
        self.assertIsNone(ENV.redis.call("HGET", PREFIX + "account:" + YEARLY, "hits"))
        # ... and they are in the alert log like every event.
        self.assertTrue(any(a.get("type") == "anomaly" and a.get("account") == YEARLY
                            for a in ENV.milter.alerts()))

        r = h.mapctl("anomalies", "--since", "1h", "--json", redis=ENV.redis, prefix=PREFIX)
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = json.loads(r.stdout)["anomalies"]
        self.assertEqual(sorted(e["rule"] for e in listed if e["account"] == YEARLY),
                         ["day_volume", "hour_volume"])
        r = h.mapctl("anomalies", redis=ENV.redis, prefix=PREFIX)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"yearly@customer\.example\s+hour_volume\s+\d{4}-\d\d-\d\dT\d\d"
                                   r"\s+\d+\s+50\s+1\s")
        print("\n  %d messages through Postfix in %.1fs" % (BURST, took), file=sys.stderr)

    def test_c_many_client_networks(self):
        # One message from each of 12 loopback /24s, as a botnet logging in would.
        for n in range(1, 13):
            sent = send_burst(ENV.stack.submission_port, ROAMER, USERS[ROAMER], 1, workers=1,
                              source="127.0.%d.1" % n)
            self.assertEqual(sent, 1)

        def raised():
            return [e for e in su.stream_events(ENV.redis, type_="anomaly")
                    if e["account"] == ROAMER and e["rule"] == "networks"]
        h.wait_for(raised, 10, what="networks anomaly" + ENV.diag())
        e = raised()[0]
        self.assertEqual(e["threshold"], "10")
        self.assertGreater(int(e["value"]), 10)
        # The anomaly may be raised before the last messages are counted.
        h.wait_for(lambda: day_counts(ENV.redis, ROAMER, day_id(time.time())) == (12, 12, 12),
                   10, what="12 messages from 12 networks in the day's counts")

    def test_d_http_needs_credentials(self):
        for path in ("/", "/api/top", "/api/anomalies", "/nonexistent"):
            status, headers, _ = http_get(ENV.http_port, path)
            self.assertEqual(status, 401, path)
            challenges = headers.get("www-authenticate", [])
            self.assertTrue(any(c.startswith("Basic ") for c in challenges), challenges)
        for bad in (basic(WEB_USER, "wrong"), basic("nobody", WEB_PASSWORD),
                    "Bearer " + TOKEN + "x", "Bearer"):
            status, _, _ = http_get(ENV.http_port, "/api/top", auth=bad)
            self.assertEqual(status, 401, bad)
        status, headers, body = http_get(ENV.http_port, "/", auth=basic(WEB_USER, WEB_PASSWORD))
        self.assertEqual(status, 200, body)
        self.assertIn("text/html", headers["content-type"][0])
        self.assertIn("default-src 'none'", headers["content-security-policy"][0])
        self.assertEqual(headers["cache-control"], ["no-store"])
        self.assertNotIn("<script", body)
        status, _, _ = http_get(ENV.http_port, "/nonexistent", auth="Bearer " + TOKEN)
        self.assertEqual(status, 404)

    def test_e_api(self):
        r = self.swaks(LEAKY, LISTED, headers=["To: friend@remote.example"])
        self.assertEqual(r.code, 24, r.transcript)  # the listed recipient was refused
        h.wait_for(lambda: any(e["account"] == LEAKY
                               for e in su.stream_events(ENV.redis, type_="hit")),
                   10, what="hit in the stream")
        auth = "Bearer " + TOKEN
        time.sleep(1.2)  # past the dashboard's one-second cache
        status, _, body = http_get(ENV.http_port, "/api/top", auth=auth)
        self.assertEqual(status, 200, body)
        top = json.loads(body)["top"]
        this = [row["account"] for row in top["this_hour"]["rows"]]
        self.assertIn(ALICE, this)
        self.assertEqual(top["last_hour"]["rows"][0]["account"], LAST_HOUR_ONLY)
        status, _, body = http_get(ENV.http_port, "/api/hits", auth=auth)
        self.assertEqual(status, 200, body)
        hits = json.loads(body)["hits"]
        self.assertEqual(hits[0]["account"], LEAKY)
        self.assertEqual(hits[0]["recipient"], LISTED)
        status, _, body = http_get(ENV.http_port, "/api/accounts", auth=auth)
        self.assertIn(LEAKY, [a["account"] for a in json.loads(body)["accounts"]])
        status, _, body = http_get(ENV.http_port, "/api/map", auth=auth)
        m = json.loads(body)["map"]
        self.assertEqual((m["exact"], m["source"]), (1, "redis"))
        self.assertGreaterEqual(m["version"], 1)
        status, _, body = http_get(ENV.http_port, "/api/anomalies",
                                   auth=basic(WEB_USER, WEB_PASSWORD))
        self.assertEqual(status, 200, body)
        self.assertIn(YEARLY, {e["account"] for e in json.loads(body)["anomalies"]})

    def test_f_metrics(self):
        status, headers, body = http_get(ENV.http_port, "/metrics")  # no metrics token set
        self.assertEqual(status, 200, body)
        self.assertTrue(headers["content-type"][0].startswith("text/plain; version=0.0.4"))
        types, s = parse_metrics(body)
        self.assertEqual(types["compd_hits_total"], "counter")
        self.assertGreaterEqual(s["compd_messages_total"], 3 + 2 + BURST)
        self.assertGreaterEqual(s['compd_recipients_checked_total{where="envelope"}'],
                                4 + 2 + BURST)
        self.assertGreaterEqual(s['compd_hits_total{where="envelope",action="reject"}'], 2)
        self.assertEqual(s['compd_map_entries{kind="exact"}'], 1)
        self.assertGreaterEqual(s["compd_map_version"], 1)
        self.assertGreaterEqual(s["compd_map_age_seconds"], 0)
        self.assertEqual(s["compd_spool_depth"], 0)
        self.assertEqual(s['compd_redis_errors_total{component="volume"}'], 0)
        self.assertGreaterEqual(s["compd_anomalies_total"], 3)

    def test_g_dashboard_in_chromium(self):
        time.sleep(1.2)
        keep = os.environ.get("COMPD_DASHBOARD_SCREENSHOT")
        shot = keep or os.path.join(ENV.dir, "dashboard.png")
        url = "http://%s:%s@127.0.0.1:%d/" % (WEB_USER, WEB_PASSWORD, ENV.http_port)
        r = chromium("--hide-scrollbars", "--window-size=1600,1000", "--screenshot=" + shot, url)
        self.assertEqual(r.returncode, 0, r.stderr.decode("utf-8", "replace")[-2000:])
        self.assertEqual(png_size(shot), (1600, 1000))
        self.assertGreater(os.path.getsize(shot), 20000)  # not a blank page
        r = chromium("--dump-dom", url)
        self.assertEqual(r.returncode, 0, r.stderr.decode("utf-8", "replace")[-2000:])
        dom = r.stdout.decode("utf-8", "replace")
        p = ColumnParser()
        p.feed(dom)
        this = dict(p.rows.get("this-hour", []))
        last = dict(p.rows.get("last-hour", []))
        self.assertEqual(list(this)[0], YEARLY, dom[:3000])
        self.assertIn("anomaly", this[YEARLY])
        self.assertIn("new", this[YEARLY])
        for account in (ALICE, BOB, ROAMER):
            self.assertIn(account, this)
        self.assertNotIn("new", this[ALICE])
        self.assertEqual(list(last), [LAST_HOUR_ONLY, ALICE])
        self.assertIn(LEAKY, dom)          # recent hit and flagged account panels
        self.assertIn(LISTED, dom)
        self.assertIn("map v", dom)
        # Without credentials the browser gets the 401 page, not the dashboard.
        r = chromium("--dump-dom", "http://127.0.0.1:%d/" % ENV.http_port)
        self.assertNotIn(YEARLY, r.stdout.decode("utf-8", "replace"))

    def test_h_wall_page_shapes_at_two_screen_sizes(self):
        time.sleep(1.2)
        url = "http://%s:%s@127.0.0.1:%d/" % (WEB_USER, WEB_PASSWORD, ENV.http_port)
        keep = os.environ.get("COMPD_DASHBOARD_SCREENSHOT_DIR")
        for w, hgt in ((1920, 1080), (1366, 768)):
            shot = os.path.join(keep or ENV.dir, "wall-%dx%d.png" % (w, hgt))
            r = chromium("--hide-scrollbars", "--window-size=%d,%d" % (w, hgt),
                         "--screenshot=" + shot, url)
            self.assertEqual(r.returncode, 0, r.stderr.decode("utf-8", "replace")[-2000:])
            self.assertEqual(png_size(shot), (w, hgt))
            self.assertGreater(os.path.getsize(shot), 20000)
        r = chromium("--window-size=1920,1080", "--dump-dom", url)
        dom = r.stdout.decode("utf-8", "replace")
        # The year of one mail a day that sent 600 this hour: its current hour is a red bar
        # above its usual busy day, in the this-hour column.
        this_hour = dom[dom.index('id="this-hour"'):dom.index('id="last-hour"')]
        row = re.search(r'<tr[^>]*data-account="%s".*?</tr>' % re.escape(YEARLY), this_hour,
                        re.S)
        self.assertIsNotNone(row, this_hour[:3000])
        self.assertIn('class="bar over now"', row.group(0))
        self.assertIn('class="band"', row.group(0))
        self.assertRegex(row.group(0), r"<title>\d+ this hour; usual busy day 1;")
        # A steady sender stays inside its band: no red.
        alice = re.search(r'<tr[^>]*data-account="%s".*?</tr>' % re.escape(ALICE), this_hour,
                          re.S)
        self.assertNotIn("over", alice.group(0))
        # The platform: this week's line against the seeded week-ago hours.
        platform = dom[dom.index('id="platform"'):dom.index('id="this-hour"')]
        self.assertIn('class="thisweek"', platform)
        self.assertIn('class="lastweek"', platform)
        self.assertIn("a week earlier", platform)
        trends = json.loads(http_get(ENV.http_port, "/api/trends", auth="Bearer " + TOKEN)[2])
        hours = trends["trends"]["accounts"][YEARLY]["hours"]
        self.assertEqual(len(hours), 48)
        self.assertGreaterEqual(hours[-1], BURST)
        self.assertEqual(trends["trends"]["platform"]["week_ago"][-1],
                         400 if 8 <= time.gmtime().tm_hour < 18 else 60)

    def test_i_wall_page_with_no_data_at_all(self):
        with h.RedisServer() as redis:
            port = h.free_port()
            milter = h.Milter.standard(
                redis, action="reject", prefix=PREFIX,
                extra=["--http-listen", "127.0.0.1:%d" % port,
                       "--http-users-file", ENV.users_file])
            with milter:
                h.wait_for(lambda: h.port_open(port), 10, what="dashboard listener")
                url = "http://%s:%s@127.0.0.1:%d/" % (WEB_USER, WEB_PASSWORD, port)
                shot = os.path.join(ENV.dir, "wall-empty.png")
                r = chromium("--hide-scrollbars", "--window-size=1920,1080",
                             "--screenshot=" + shot, url)
                self.assertEqual(r.returncode, 0, r.stderr.decode("utf-8", "replace")[-2000:])
                self.assertEqual(png_size(shot), (1920, 1080))
                dom = chromium("--dump-dom", url).stdout.decode("utf-8", "replace")
                self.assertIn("no authenticated mail", dom)
                self.assertIn("no week-old counts yet", dom)
                self.assertNotIn('class="error"', dom)


if __name__ == "__main__":
    h.main()
