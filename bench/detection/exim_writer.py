"""Exim 4.96 mainlog lines for the simulated provider (bench/detection/simulate.py).

log_selector = +subject +received_recipients +received_sender: the two sample lines in the
thread carry `from <...>` after T=, which is +received_sender. Message ids are 4.96's
(1nh9qH-0008OE-RW: base-62 time, pid, fraction); the server clock is UTC. Local recipients
go to Dovecot over LMTP; a bounced recipient of a local sender produces Exim's own bounce
message (`<= <> R=parent U=Debian-exim P=local`), which has no A= and is no submission.
"""

import datetime
import zlib

from log_writer import ALNUM, LogWriter
from params import param

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def b62(n, width):
    out = []
    for _ in range(width):
        out.append(B62[n % 62])
        n //= 62
    return "".join(reversed(out))


def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc)


class EximWriter(LogWriter):
    TLS = ("TLS1.3:TLS_AES_256_GCM_SHA384:256", "TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256",
           "TLS1.2:ECDHE-ECDSA-AES128-GCM-SHA256:128", "TLS1.3:TLS_AES_128_GCM_SHA256:128")

    def __init__(self, path, rng, provider, local_domains):
        super().__init__(path, rng, local_domains)
        self.used = set()
        self.used_sec = None

    def _id(self, t):
        if t != self.used_sec:
            self.used, self.used_sec = set(), t
        while True:
            mid = "%s-%s-%s" % (b62(t, 6), b62(self.rng.randrange(1000, 4194304), 6),
                                b62(self.rng.randrange(2000), 2))
            if mid not in self.used:
                self.used.add(mid)
                return mid

    def _new_mx(self, domain, r):
        if domain in ("gmail.com",):
            return ("gmail-smtp-in.l.google.com", "142.250.%d.%d" % (r.randint(0, 255),
                                                                      r.randint(1, 254)))
        return super()._new_mx(domain, r)

    @staticmethod
    def ts(t):
        return utc(int(t)).strftime("%Y-%m-%d %H:%M:%S")

    @staticmethod
    def quote(s):
        return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')

    def _write_message(self, lines, seq, t, ai, ip, name, helo, proto, sender, rcpts, size,
                       subject, has_id, kind, comp):
        rng = self.rng
        mid = self._id(t - rng.randint(0, 1))
        login = self.login_of(ai)
        if name is None:
            host = "(%s) [%s]" % (helo, ip)
        elif helo == name:
            host = "%s [%s]" % (name, ip)
        else:
            host = "%s (%s) [%s]" % (name, helo, ip)
        tls = ""
        if proto != "esmtpa":  # the client's TLS library decides the cipher
            tls = " X=%s CV=no" % self.TLS[zlib.crc32(helo.encode()) % 4]
        msgid = ""
        if has_id:
            msgid = " id=%s@%s" % ("%016x" % rng.getrandbits(64),
                                   sender.split("@", 1)[1] if rng.random() < 0.6
                                   else "mail.gmail.com")
        auth = "login" if kind else self.auth_of(ai)  # bots: AUTH LOGIN, as in the thread
        lines.append((t, seq, "%s %s <= %s H=%s P=%s%s A=%s:%s S=%d%s T=%s from <%s> for %s" % (
            self.ts(t), mid, sender, host, proto, tls, auth, login, size, msgid,
            self.quote(subject), sender, " ".join(rcpts))))
        seq += 1
        self._noted(kind, comp, t, rcpts, mid)
        td = t + rng.random() * 3
        bounced = []
        bounce_share = param("campaign_bounce_share" if kind == 2 else "benign_bounce_share")
        for r in rcpts:
            dom = r.split("@", 1)[1]
            td += rng.random() * 0.5
            if dom in self.local_domains:
                line = ("%s %s => %s R=virtual_user T=dovecot_lmtp "
                        "C=\"250 2.0.0 <%s> %s Saved\"") % (
                    self.ts(td), mid, r, r, "".join(rng.choice(ALNUM) for _ in range(22)))
            else:
                mxn, mxip = self._mx(dom)
                if rng.random() < bounce_share:
                    line = ("%s %s ** %s R=dnslookup T=remote_smtp H=%s [%s]: SMTP error "
                            "from remote mail server after RCPT TO:<%s>: 550 5.1.1 <%s>: "
                            "Recipient address rejected: User unknown" % (
                                self.ts(td), mid, r, mxn, mxip, r, r))
                    bounced.append(r)
                else:
                    line = ("%s %s => %s R=dnslookup T=remote_smtp H=%s [%s] X=%s CV=yes "
                            "C=\"250 2.0.0 OK %d %s\"" % (
                                self.ts(td), mid, r, mxn, mxip, self.TLS[0],
                                int(td), "".join(rng.choice(ALNUM) for _ in range(12))))
            lines.append((td, seq, line))
            seq += 1
        if bounced and sender.split("@", 1)[1] in self.local_domains:
            bid = self._id(int(td))
            lines.append((td, seq, "%s %s <= <> R=%s U=Debian-exim P=local S=%d "
                          "T=\"Mail delivery failed: returning message to sender\" "
                          "from <> for %s" % (self.ts(td), bid, mid, 2000 + size // 10,
                                              sender)))
            lines.append((td + 0.2, seq + 1, "%s %s => %s R=virtual_user T=dovecot_lmtp "
                          "C=\"250 2.0.0 <%s> %s Saved\"" % (
                              self.ts(td + 0.2), bid, sender, sender,
                              "".join(rng.choice(ALNUM) for _ in range(22)))))
            lines.append((td + 0.2, seq + 2, "%s %s Completed" % (self.ts(td + 0.2), bid)))
            seq += 3
        lines.append((td, seq, "%s %s Completed" % (self.ts(td), mid)))
        seq += 1
        return seq

    @staticmethod
    def _sort_key(line):
        return (int(line[0]), line[1])  # the log has whole seconds
