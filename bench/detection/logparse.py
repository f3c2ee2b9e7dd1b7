"""Authenticated submissions read back from an Exim mainlog or a Postfix maillog.

Only what the reference detectors and the base-rate report need, as tuples
(time: int Unix seconds, account, client_ip, helo, recipients: list, queue_id), in log order
(Exim: the `<=` line; Postfix: when qmgr removes the message, timed at its `client=` line).
Messages without a login (bounces, local submissions) are skipped. Python standard library;
streaming, so a month of a large provider fits in memory.
"""

import calendar
import gzip
import time


def _open(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


class _DayClock:
    """'YYYY-MM-DD' -> Unix seconds of its midnight UTC, cached."""

    def __init__(self):
        self.cache = {}

    def day(self, ymd):
        v = self.cache.get(ymd)
        if v is None:
            v = calendar.timegm(time.strptime(ymd, "%Y-%m-%d"))
            self.cache[ymd] = v
        return v


def exim_messages(paths):
    clock = _DayClock()
    for path in paths:
        with _open(path) as f:
            for line in f:
                if line.find(" <= ", 20, 50) < 0:
                    continue
                a = line.find(" A=")
                if a < 0:
                    continue
                colon = line.find(":", a)
                end = line.find(" ", a + 3)
                if colon < 0 or end < 0 or colon > end:
                    continue
                account = line[colon + 1:end]
                if account.startswith('"') and account.endswith('"'):
                    account = account[1:-1]
                h = line.find(" H=")
                ip, helo = "", ""
                if 0 <= h < a:
                    lb = line.find(" [", h)
                    rb = line.find("]", lb)
                    ip = line[lb + 2:rb]
                    lp = line.find(" (", h, lb + 1)
                    if line[h + 3] == "(":
                        helo = line[h + 4:line.find(") [", h)]
                    elif 0 <= lp < lb:
                        helo = line[lp + 2:line.find(") [", lp)]
                    else:
                        helo = line[h + 3:lb]
                fo = line.rfind(" for ")
                rcpts = line[fo + 5:].split() if fo > a else []
                t = clock.day(line[:10]) + int(line[11:13]) * 3600 + int(line[14:16]) * 60 + \
                    int(line[17:19])
                qid = line[20:line.find(" ", 20)]
                yield t, account, ip, helo, rcpts, qid


def _syslog_time(clock, line, year):
    if line[4] == "-":  # 2026-03-02T09:14:03.123456+00:00 (offsets other than +00:00 honoured)
        t = clock.day(line[:10]) + int(line[11:13]) * 3600 + int(line[14:16]) * 60 + \
            int(line[17:19])
        sp = line.find(" ")
        tz = line[sp - 6:sp]
        if tz[0] in "+-" and tz[3] == ":":
            off = int(tz[1:3]) * 3600 + int(tz[4:6]) * 60
            t -= off if tz[0] == "+" else -off
        return t, sp + 1
    # Mar  2 09:14:03 (no year: syslog's traditional format)
    mon = "JanFebMarAprMayJunJulAugSepOctNovDec".index(line[:3]) // 3 + 1
    t = clock.day("%04d-%02d-%02d" % (year, mon, int(line[4:6]))) + int(line[7:9]) * 3600 + \
        int(line[10:12]) * 60 + int(line[13:15])
    return t, 16


def postfix_messages(paths, year=None):
    clock = _DayClock()
    year = year or time.gmtime().tm_year
    open_msgs = {}
    for path in paths:
        with _open(path) as f:
            for line in f:
                p = line.find(" postfix/")
                if p < 0:
                    continue
                colon = line.find(": ", p)
                if colon < 0:
                    continue
                rest = line[colon + 2:]
                qend = rest.find(": ")
                if qend <= 0:
                    continue
                qid = rest[:qend]
                body = rest[qend + 2:]
                if body.startswith("client="):
                    u = body.find("sasl_username=")
                    if u < 0:
                        continue
                    t, _ = _syslog_time(clock, line, year)
                    lb = body.find("[")
                    rb = body.find("]", lb)
                    open_msgs[qid] = [t, body[u + 14:].strip(), body[lb + 1:rb], "", []]
                    continue
                m = open_msgs.get(qid)
                if m is None:
                    continue
                if body.startswith("to=<"):
                    r = body[4:body.find(">")]
                    if r not in m[4]:
                        m[4].append(r)
                elif body.startswith("info: header Subject:"):
                    hp = body.rfind(" helo=<")
                    if hp >= 0:
                        m[3] = body[hp + 7:body.rfind(">")]
                elif body.startswith("removed"):
                    del open_msgs[qid]
                    yield m[0], m[1], m[2], m[3], m[4], qid


def messages(fmt, paths, year=None):
    if fmt == "exim":
        return exim_messages(paths)
    if fmt == "postfix":
        return postfix_messages(paths, year)
    raise ValueError("unknown log format %r (exim or postfix)" % fmt)
