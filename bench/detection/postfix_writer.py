"""Postfix 3.7 maillog lines for the simulated provider (bench/detection/simulate.py).

As Debian 12's rsyslog writes them (RFC 3339 timestamps with microseconds; --syslog-time
traditional gives `Mar  2 09:14:03`), for a submission service defined in master.cf as
`submission inet n - y - - smtpd -o syslog_name=postfix/submission ...`, with
`smtpd_tls_loglevel = 1` and one operator header check that logs the Subject
(`/^Subject:/ INFO` in header_checks): without it Postfix logs neither the subject nor the
HELO name of a submission. local_header_rewrite_clients includes permit_sasl_authenticated,
so cleanup adds a Message-ID when the client sent none. Local recipients go to Dovecot over
LMTP. Lines of different messages interleave as they would in a real log: deliveries come a
little after the arrival.
"""

from log_writer import ALNUM, LogWriter
from params import param

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


class PostfixWriter(LogWriter):
    def __init__(self, path, rng, provider, local_domains, syslog_time="rfc3339"):
        import datetime
        self._dt = datetime
        super().__init__(path, rng, local_domains)
        self.host = provider.split(".", 1)[0]
        self.myhostname = provider
        self.syslog_time = syslog_time
        self.counter = 0
        self.qmgr_pid = rng.randint(900, 2000)

    def ts(self, t):
        d = self._dt.datetime.fromtimestamp(t, self._dt.timezone.utc)
        if self.syslog_time == "traditional":
            return "%s %2d %s %s" % (MONTHS[d.month - 1], d.day, d.strftime("%H:%M:%S"),
                                     self.host)
        return "%s.%06d+00:00 %s" % (d.strftime("%Y-%m-%dT%H:%M:%S"), d.microsecond, self.host)

    def _qid(self, t):
        # Short queue ids: 5 hex digits of microseconds, then the inode number in hex.
        self.counter += 1
        usec = int((t - int(t)) * 1e6) & 0xFFFFF
        inode = (self.counter * 2654435761) & 0xFFFFFF
        return "%05X%X" % (usec, inode | 0x100000)

    def _write_message(self, lines, seq, t, ai, ip, name, helo, proto, sender, rcpts, size,
                       subject, has_id, kind, comp):
        rng = self.rng
        login = self.login_of(ai)
        t0 = t + rng.random() * 0.9
        qid = self._qid(t0)
        pid = rng.randint(3000, 4000000)
        client = "%s[%s]" % (name or "unknown", ip)
        svc = "postfix/submission/smtpd[%d]" % pid
        tls = proto != "esmtpa"
        ev = []
        ev.append((t0 - 0.3, "%s: connect from %s" % (svc, client)))
        if tls:
            ev.append((t0 - 0.25, "%s: Anonymous TLS connection established from %s: "
                       "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) "
                       "key-exchange X25519 server-signature RSA-PSS (2048 bits) "
                       "server-digest SHA256" % (svc, client)))
        ev.append((t0 - 0.1, "%s: %s: client=%s, sasl_method=%s, sasl_username=%s" % (
            svc, qid, client, "LOGIN" if kind else self.auth_of(ai).upper(), login)))
        cpid = rng.randint(3000, 4000000)
        ev.append((t0, "postfix/cleanup[%d]: %s: info: header Subject: %s from %s; "
                   "from=<%s> to=<%s> proto=ESMTP helo=<%s>" % (
                       cpid, qid, subject, client, sender, rcpts[0], helo)))
        if has_id:
            mid = "%016x@%s" % (rng.getrandbits(64), sender.split("@", 1)[1])
        else:
            d = self._dt.datetime.fromtimestamp(t0, self._dt.timezone.utc)
            mid = "%s.%s@%s" % (d.strftime("%Y%m%d%H%M%S"), qid, self.myhostname)
        ev.append((t0 + 0.01, "postfix/cleanup[%d]: %s: message-id=<%s>" % (cpid, qid, mid)))
        ev.append((t0 + 0.02, "postfix/qmgr[%d]: %s: from=<%s>, size=%d, nrcpt=%d "
                   "(queue active)" % (self.qmgr_pid, qid, sender, size, len(rcpts))))
        ncmd = 5 + len(rcpts) + (2 if tls else 0)
        ev.append((t0 + 0.05, "%s: disconnect from %s ehlo=%d%s auth=1 mail=1 rcpt=%d "
                   "data=1 quit=1 commands=%d" % (svc, client, 2 if tls else 1,
                                                  " starttls=1" if tls else "",
                                                  len(rcpts), ncmd)))
        td = t0 + 0.1
        bounced = []
        bounce_share = param("campaign_bounce_share" if kind == 2 else "benign_bounce_share")
        for r in rcpts:
            dom = r.split("@", 1)[1]
            td += rng.random() * 1.5
            delay = td - t0 + 0.3
            if dom in self.local_domains:
                ev.append((td, "postfix/lmtp[%d]: %s: to=<%s>, relay=%s[private/dovecot-lmtp], "
                           "delay=%.2f, delays=0.05/0.01/0.01/%.2f, dsn=2.0.0, status=sent "
                           "(250 2.0.0 <%s> %s Saved)" % (
                               rng.randint(3000, 4000000), qid, r, self.myhostname, delay,
                               max(0.01, delay - 0.07), r,
                               "".join(rng.choice(ALNUM) for _ in range(22)))))
                continue
            mxn, mxip = self._mx(dom)
            if rng.random() < bounce_share:
                ev.append((td, "postfix/smtp[%d]: %s: to=<%s>, relay=%s[%s]:25, delay=%.2f, "
                           "delays=0.05/0.01/%.2f/0.04, dsn=5.1.1, status=bounced (host "
                           "%s[%s] said: 550 5.1.1 <%s>: Recipient address rejected: User "
                           "unknown (in reply to RCPT TO command))" % (
                               rng.randint(3000, 4000000), qid, r, mxn, mxip, delay,
                               max(0.01, delay - 0.1), mxn, mxip, r)))
                bounced.append(r)
            else:
                ev.append((td, "postfix/smtp[%d]: %s: to=<%s>, relay=%s[%s]:25, delay=%.2f, "
                           "delays=0.05/0.01/%.2f/0.3, dsn=2.0.0, status=sent (250 2.0.0 "
                           "OK %d %s)" % (rng.randint(3000, 4000000), qid, r, mxn, mxip,
                                          delay, max(0.01, delay - 0.36), int(td),
                                          "".join(rng.choice(ALNUM) for _ in range(12)))))
        if bounced and sender.split("@", 1)[1] in self.local_domains:
            bq = self._qid(td + 0.1)
            ev.append((td + 0.1, "postfix/bounce[%d]: %s: sender non-delivery notification: "
                       "%s" % (rng.randint(3000, 4000000), qid, bq)))
            ev.append((td + 0.11, "postfix/cleanup[%d]: %s: message-id=<%s.%s@%s>" % (
                cpid, bq, "bounce", bq, self.myhostname)))
            ev.append((td + 0.12, "postfix/qmgr[%d]: %s: from=<>, size=%d, nrcpt=1 "
                       "(queue active)" % (self.qmgr_pid, bq, 2000 + size // 10)))
            ev.append((td + 0.2, "postfix/lmtp[%d]: %s: to=<%s>, relay=%s[private/"
                       "dovecot-lmtp], delay=0.1, delays=0.02/0.01/0.01/0.06, dsn=2.0.0, "
                       "status=sent (250 2.0.0 <%s> %s Saved)" % (
                           rng.randint(3000, 4000000), bq, sender, self.myhostname, sender,
                           "".join(rng.choice(ALNUM) for _ in range(22)))))
            ev.append((td + 0.21, "postfix/qmgr[%d]: %s: removed" % (self.qmgr_pid, bq)))
        ev.append((td + 0.01, "postfix/qmgr[%d]: %s: removed" % (self.qmgr_pid, qid)))
        for te, text in ev:
            lines.append((te, seq, text))
            seq += 1
        self._noted(kind, comp, t, rcpts, qid)
        return seq

    def _render(self, line):
        return "%s %s" % (self.ts(line[0]), line[2])
