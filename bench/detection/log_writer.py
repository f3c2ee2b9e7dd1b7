"""What the Exim and Postfix log writers (exim_writer.py, postfix_writer.py) share: the
output file, the lines of a day's messages that fall after midnight (carried into the
next day's batch, so the file stays in time order), the ids of campaign and test
messages for the truth file, and one stable MX host per remote domain.

A writer's _write_message appends a message's (time, seq, text) lines to the day's list
and returns the next seq; it overrides _sort_key and _render when its lines sort or print
otherwise. simulate.py sets
login_of, auth_of and day_end on the writer.
"""

import random

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class LogWriter:
    def __init__(self, path, rng, local_domains):
        self.f = open(path, "w", encoding="utf-8", newline="\n")
        self.rng = rng
        self.local_domains = local_domains
        self.carry = []
        self.count = 0
        self.campaign_ids = {}
        self.test_ids = {}
        self.mx_cache = {}

    def _new_mx(self, domain, r):
        """(host name, address) of the domain's MX, drawn from r (seeded by the domain)."""
        return ("mx%d.%s" % (r.randint(0, 2), domain), "%d.%d.%d.%d" % (
            r.randint(24, 212), r.randint(0, 255), r.randint(0, 255), r.randint(1, 254)))

    def _mx(self, domain):
        mx = self.mx_cache.get(domain)
        if mx is None:
            mx = self.mx_cache[domain] = self._new_mx(domain, random.Random(domain))
        return mx

    def _noted(self, kind, comp, t, rcpts, message_id):
        """Counts a submission; a campaign (kind 2) or test message (kind 1) of compromise
        `comp` is remembered for the truth file."""
        if kind == 2:
            self.campaign_ids.setdefault(comp, []).append((t, message_id, len(rcpts)))
        elif kind == 1:
            self.test_ids.setdefault(comp, []).append((t, rcpts[0], message_id))
        self.count += 1

    def write_day(self, day, msgs):
        """Writes the day's messages (simulate.py's tuples) and what the day before
        carried over, in time order; lines after the day's end wait for the next day."""
        lines = self.carry
        self.carry = []
        seq = 0
        for m in msgs:
            seq = self._write_message(lines, seq, *m)
        self._flush(lines, day)

    def _write_message(self, lines, seq, t, ai, ip, name, helo, proto, sender, rcpts, size,
                       subject, has_id, kind, comp):
        raise NotImplementedError

    @staticmethod
    def _sort_key(line):
        return (line[0], line[1])

    def _render(self, line):
        return line[2]

    def _flush(self, lines, day):
        lines.sort(key=self._sort_key)
        end = self.day_end(day)
        out = []
        for x in lines:
            if x[0] >= end:
                self.carry.append(x)
            else:
                out.append(self._render(x))
        if out:
            self.f.write("\n".join(out))
            self.f.write("\n")

    def close(self):
        if self.carry:
            self.carry.sort(key=self._sort_key)
            self.f.write("\n".join(self._render(x) for x in self.carry) + "\n")
            self.carry = []
        self.f.close()
