#!/usr/bin/env python3
"""Simulated mail provider: MTA logs of N accounts over D days, some of them compromised.

Writes, into --out:
  mainlog (Exim 4.96) or maillog (Postfix 3.7)   what the MTA would have logged
  truth.json                                      who was compromised, when, which messages
  known_test_addresses.map                        rspamd map: test addresses known at the start

Deterministic for a seed: the same arguments give byte-identical files. Python 3 standard
library only. Every parameter is in PARAMS below with where its value comes from; change one
with --set name=value (for instance --set skip_test_share=0.5 --set carrier_pool_size=16).

The model (bench/detection/README.md says more):
  benign    heavy-tailed daily volume by account class, office hours and weekends in the
            account's time zone, 1-3 home networks whose dynamic address moves inside the
            ISP's /16, phones behind carrier NAT pools shared by every customer of the
            carrier, webmail, trips (a hotel network for a few days), one-off newsletter
            days from the usual network, contacts shared between unrelated customers and
            between colleagues of one customer domain, a few accounts created mid-window.
  compromise  a botnet logs in from residential networks the account never used; first one
            tiny test message (HELO localhost or similar, random-looking subject, no
            Message-ID) to the spammer's address (some spammers reuse theirs, some not),
            some skip the test; then, minutes to hours later, a campaign from many networks,
            fast or slow.
"""

import argparse
import bisect
import datetime
import json
import math
import os
import random
import sys

from params import PARAMS, param
from world import (ALNUM, CAMPAIGN_SUBJECTS, CARRIERS, FIRST_NAMES, FREEMAIL, ISPS,
                   LAST_NAMES, ROLES, SPAMMER_FREEMAIL, SYL, TOPICS, Namer, public_ip, utc,
                   weighted)


class Account:
    __slots__ = ("login", "domain", "dom_idx", "cls", "rate", "business", "tz", "homes",
                 "carrier", "mobile_share", "webmail_share", "pc_helo", "phone_helo", "auth",
                 "contacts", "created", "daily_rcpt", "daily_minute", "server", "subscribers",
                 "trip_until", "trip_net", "newsletter_list")


class Simulator:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        rng = self.rng
        self.namer = Namer(rng)
        self.day0 = int(datetime.datetime(*map(int, args.start.split("-")),
                                          tzinfo=datetime.timezone.utc).timestamp())
        self.warmup = args.warmup
        self.days = args.days
        self.first_day = -self.warmup
        self.provider = "mail.provider.example"
        self._make_customers()
        self._make_shared_pool()
        self._make_compromises()

    # --- population -------------------------------------------------------------------

    def _make_customers(self):
        rng, namer = self.rng, self.namer
        n = self.args.accounts
        self.accounts = []
        self.domains = []  # (name, [account idx], shared contact list)
        classes = [(k, param(k)) for k in ("class_quiet", "class_daily", "class_regular",
                                           "class_heavy", "class_bulk")]
        hours_b = [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 2, 6, 9, 9, 8, 5, 7, 8, 8, 7, 5, 3, 2,
                   1.5, 1.2, 0.8, 0.4]
        hours_p = [0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.5, 2.5, 3, 3, 3, 3.5, 3, 3, 3, 3, 3.5,
                   4.5, 5.5, 6, 5, 3, 1]
        self.hour_cum = {True: self._cum(hours_b), False: self._cum(hours_p)}
        while len(self.accounts) < n:
            if rng.random() < param("single_account_domain_share"):
                size = 1
            else:
                size = min(int(param("domain_size_max")), 2 + int(rng.paretovariate(1.3)) - 1)
            size = min(size, n - len(self.accounts))
            dname = namer.domain()
            didx = len(self.domains)
            members = []
            locals_used = set()
            business = rng.random() < param("business_share") or size > 1
            tz = weighted(rng, param("tz_offsets"))
            office = None
            if business and rng.random() < 0.7:
                office = rng.randrange(len(ISPS))
                office = (office, namer.isp_ip(office))
            for _ in range(size):
                a = Account()
                while True:
                    lp = rng.choice(ROLES) if (rng.random() < 0.3) else namer.person_local()
                    if lp not in locals_used:
                        locals_used.add(lp)
                        break
                a.login = "%s@%s" % (lp, dname)
                a.domain, a.dom_idx = dname, didx
                cname, (share, median, sigma) = weighted(
                    rng, [((k, v), v[0]) for k, v in classes])
                a.cls = cname[6:]
                a.rate = median * math.exp(rng.gauss(0, sigma)) if sigma else median
                a.business = business
                a.tz = tz
                a.homes = []
                for _ in range(weighted(rng, param("home_networks"))):
                    isp = rng.randrange(len(ISPS))
                    ip, name = namer.isp_ip(isp)
                    a.homes.append([isp, ip, name])
                if office and rng.random() < 0.8:
                    a.homes[0] = [office[0], office[1][0], office[1][1]]
                a.carrier = rng.randrange(len(CARRIERS)) if rng.random() < param(
                    "mobile_share") else None
                a.mobile_share = param("mobile_mail_share") * rng.uniform(0.3, 1.7)
                a.webmail_share = (param("webmail_mail_share") * rng.uniform(0.3, 1.7)
                                   if rng.random() < param("webmail_share") else 0.0)
                r = rng.random()
                if r < 0.45:
                    a.pc_helo = "DESKTOP-%s" % "".join(rng.choice(ALNUM[:26] + ALNUM[52:])
                                                       for _ in range(7))
                elif r < 0.7:
                    a.pc_helo = "[192.168.%d.%d]" % (rng.choice((0, 1, 1, 178, 2)),
                                                     rng.randint(2, 250))
                elif r < 0.85:
                    a.pc_helo = rng.choice(FIRST_NAMES).capitalize() + "s-MacBook-Pro.local"
                else:
                    a.pc_helo = "smtpclient.apple"
                a.phone_helo = rng.choice(("smtpclient.apple", "smtpclient.apple",
                                           "localhost", "[10.%d.%d.%d]" % (
                                               rng.randint(0, 255), rng.randint(0, 255),
                                               rng.randint(2, 250))))
                a.auth = "login" if rng.random() < 0.6 else "plain"
                a.contacts = []
                a.created = self.first_day
                if rng.random() < param("new_account_share"):
                    a.created = rng.randrange(0, max(1, self.days))
                a.daily_rcpt = None
                a.server = None
                a.subscribers = 0
                a.trip_until = -10**9
                a.trip_net = None
                a.newsletter_list = rng.randrange(1 << 30)
                if a.cls == "daily":
                    a.daily_rcpt = namer.external_address()
                    a.daily_minute = rng.randint(6 * 60, 9 * 60)
                if a.cls == "bulk":
                    isp = rng.randrange(len(ISPS))
                    ip = public_ip(rng)
                    host = "vps%d.%s" % (rng.randint(100, 99999), rng.choice(
                        ("hosteurope.de", "ovh.net", "contaboserver.net", "your-server.de",
                         "linode.com", "hetzner.cloud")))
                    a.server = (ip, host)
                    a.subscribers = int(a.rate * rng.uniform(5, 40))
                members.append(len(self.accounts))
                self.accounts.append(a)
            self.domains.append((dname, members, []))

    @staticmethod
    def _cum(weights):
        out, s = [], 0.0
        for w in weights:
            s += w
            out.append(s)
        return [x / s for x in out]

    def _make_shared_pool(self):
        rng, namer = self.rng, self.namer
        size = max(20, int(param("shared_pool_per_account") * len(self.accounts)))
        self.shared_pool = [namer.external_address() for _ in range(size)]
        zipf = param("shared_pool_zipf")
        self.shared_cum = self._cum([1.0 / (i + 1) ** zipf for i in range(size)])
        for a in self.accounts:
            k = int(param("initial_contacts") + 10 * a.rate * rng.random())
            for _ in range(min(k, 400)):
                a.contacts.append(self._new_contact(a))

    def _new_contact(self, a):
        rng = self.rng
        r = rng.random()
        dom = self.domains[a.dom_idx]
        if r < param("shared_contact_share"):
            return self.shared_pool[bisect.bisect_left(self.shared_cum, rng.random())]
        r -= param("shared_contact_share")
        if len(dom[1]) > 1:
            if r < param("colleague_share"):
                c = self.accounts[rng.choice(dom[1])].login
                if c != a.login:
                    return c
            r -= param("colleague_share")
            if r < param("domain_contact_share") and dom[2]:
                return rng.choice(dom[2])
        addr = self.namer.external_address()
        if len(dom[1]) > 1:
            dom[2].append(addr)
        return addr

    # --- compromises ------------------------------------------------------------------

    def _spammer_address(self):
        rng = self.rng
        local = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(
            rng.randint(8, 18)))
        if rng.random() < 0.3:
            local += str(rng.randint(1, 999))
        return "%s@%s" % (local, rng.choice(SPAMMER_FREEMAIL))

    def _make_compromises(self):
        rng = self.rng
        n_acc = len(self.accounts)
        expected = n_acc * self.days * param("compromises_per_10k_account_days") / 1e4
        count = max(1, int(round(expected)))
        n_actors = max(2, int(round(count * param("actors_per_compromise"))))
        self.actors = []
        self.known_map = []
        for i in range(n_actors):
            fixed = rng.random() < param("fixed_address_actor_share")
            act = {"id": i, "fixed": fixed, "addresses": [], "list_seed": rng.randrange(1 << 30)}
            if fixed:
                act["addresses"] = [self._spammer_address() for _ in range(rng.choice((1, 1, 2)))]
                if rng.random() < param("fixed_known_share"):
                    self.known_map.extend(act["addresses"])
            else:
                old = [self._spammer_address() for _ in range(int(param("prehistory_known_fresh")))]
                act["addresses"] = list(old)
                self.known_map.extend(old)
            self.actors.append(act)
        actor_cum = self._cum([1.0 / (i + 1) for i in range(n_actors)])
        candidates = [i for i, a in enumerate(self.accounts) if a.cls != "bulk"]
        victims = rng.sample(candidates, min(count, len(candidates)))
        self.compromises = []
        span = self.days * 86400
        for ci, v in enumerate(victims):
            acc = self.accounts[v]
            start_min = max(0, acc.created + 1) * 86400
            t0 = self.day0 + start_min + int(rng.random() * max(3600, span - start_min - 3 * 3600))
            actor = self.actors[bisect.bisect_left(actor_cum, rng.random())]
            comp = {"id": ci, "account": acc.login, "acct_idx": v, "actor": actor["id"],
                    "login_time": t0, "tests": [], "campaign": []}
            if rng.random() >= param("skip_test_share"):
                if actor["fixed"]:
                    addr = rng.choice(actor["addresses"])
                elif rng.random() < param("fresh_actor_reuse") and actor["addresses"]:
                    addr = rng.choice(actor["addresses"])
                else:
                    addr = self._spammer_address()
                    actor["addresses"].append(addr)
                n_tests = 2 if rng.random() < param("double_test_share") else 1
                t = t0
                for _ in range(n_tests):
                    comp["tests"].append((t, addr))
                    t += rng.randint(5, 600)
                delay = rng.lognormvariate(math.log(param("delay_median_min") * 60), 1.2)
                camp_start = t + int(min(24 * 3600, max(120, delay)))
            else:
                camp_start = t0
            comp["campaign_start"] = camp_start
            comp["fast"] = rng.random() < param("fast_campaign_share")
            self.compromises.append(comp)
        self.known_set = set(self.known_map)

    def _bot(self, acct):
        """A bot (ip, rdns, helo) outside the account's networks."""
        rng, namer = self.rng, self.namer
        own = {h[1].rsplit(".", 1)[0] for h in acct.homes}
        while True:
            if rng.random() < 0.12:
                ip = public_ip(rng)
                name = "mail.%s" % namer.domain()
            else:
                ip, name = namer.isp_ip(rng.randrange(len(ISPS)))
            if ip.rsplit(".", 1)[0] not in own:
                break
        r = rng.random()
        if r < 0.45:
            helo = "localhost"
        elif r < 0.7:
            helo = "WIN-%s" % "".join(rng.choice(ALNUM[:26] + ALNUM[52:]) for _ in range(11))
        elif r < 0.85:
            helo = "[%s]" % ip
        else:
            helo = name or ip
        return ip, name, helo

    # --- message generation ------------------------------------------------------------

    def _test_subject(self):
        rng = self.rng
        def tok(lo, hi):
            return "".join(rng.choice(ALNUM) for _ in range(rng.randint(lo, hi)))
        s = "%s, %s" % (tok(3, 6), tok(1, 6))
        if rng.random() < 0.6:
            s += " " + tok(0, 1)
        return s

    def _benign_subject(self):
        rng = self.rng
        t = rng.choice(TOPICS)
        r = rng.random()
        if r < 0.3:
            return "Re: " + t
        if r < 0.38:
            return rng.choice(("Fwd: ", "AW: ", "TR: ", "RE: ")) + t
        if r < 0.5:
            return "%s %d" % (t, rng.randint(100, 99999))
        return t[0].upper() + t[1:]

    def _rcpt_count(self, pairs):
        return weighted(self.rng, pairs)

    def _pick_contacts(self, a, n):
        rng = self.rng
        out = []
        for _ in range(n):
            if a.contacts and rng.random() < param("repeat_contact_share"):
                c = a.contacts[int(len(a.contacts) * rng.random() ** 2.5)]
            else:
                c = self._new_contact(a)
                a.contacts.append(c)
            if c not in out and c != a.login:
                out.append(c)
        return out or [self._new_contact(a)]

    def _client(self, a, day):
        """(ip, rdns, helo, proto) for a benign message of account a on `day`."""
        rng = self.rng
        r = rng.random()
        if r < a.webmail_share:
            return "127.0.0.1", "localhost", "webmail." + self.provider.split(".", 1)[1], "esmtpa"
        r = rng.random()
        if a.carrier is not None and r < a.mobile_share:
            ip, name = rng.choice(self.namer.carrier_pools[a.carrier])
            return ip, name, a.phone_helo, "esmtpsa"
        if a.trip_until >= day and rng.random() < 0.8:
            ip, name = a.trip_net
            return ip, name, a.pc_helo, "esmtpsa"
        h = a.homes[0] if (len(a.homes) == 1 or rng.random() < 0.65) else rng.choice(a.homes)
        helo = a.pc_helo if (a.carrier is None or rng.random() < 0.7) else a.phone_helo
        return h[1], h[2], helo, "esmtpsa"

    def _benign_day(self, ai, a, day, out):
        rng = self.rng
        if day < a.created:
            return
        ds = self.day0 + day * 86400
        weekday = utc(ds).weekday()
        weekend = weekday >= 5
        # dynamic addresses move inside the ISP /16
        for h in a.homes:
            if rng.random() < param("ip_move_per_day"):
                a16 = tuple(int(x) for x in h[1].split(".")[:2])
                h[1], h[2] = self.namer.isp_ip(h[0], a16)
        if a.trip_until < day and rng.random() < param("trip_per_day"):
            a.trip_until = day + rng.randint(*param("trip_days")) - 1
            a.trip_net = self.namer.isp_ip(rng.randrange(len(ISPS)))
        if a.cls == "daily":
            if (not weekend or not a.business) and rng.random() < 0.93:
                t = ds + (a.daily_minute - a.tz * 60) * 60 + rng.randint(0, 240)
                h = a.homes[0]
                out.append((t, ai, h[1], h[2], a.pc_helo, "esmtpsa", a.login, [a.daily_rcpt],
                            rng.randint(2000, 9000), "Daily report %s" % utc(ds).strftime(
                                "%Y-%m-%d"), True, 0, -1))
            return
        if a.cls == "bulk":
            n = int(rng.lognormvariate(math.log(a.rate), 0.3) * (0.6 if weekend else 1.0))
            ip, host = a.server
            for _ in range(n):
                t = ds + rng.randint(0, 86399)
                r = "sub%d.%d@%s" % (rng.randrange(a.subscribers), a.newsletter_list % 97,
                                     rng.choice(FREEMAIL))
                out.append((t, ai, ip, host, host, "esmtpsa", a.login, [r],
                            rng.randint(8000, 60000), "Your notification %d" % rng.randint(
                                1000, 99999), True, 0, -1))
            return
        factor = 1.0
        if weekend:
            factor = param("weekend_factor_business") if a.business else param(
                "weekend_factor_personal")
        lam = a.rate * factor * math.exp(rng.gauss(0, param("day_noise_sigma")) - 0.125)
        n = self._poisson(lam)
        cum = self.hour_cum[a.business]
        for _ in range(n):
            hour = bisect.bisect_left(cum, rng.random())
            t = ds + (hour - a.tz) * 3600 + rng.randint(0, 3599)
            ip, name, helo, proto = self._client(a, day)
            rcpts = self._pick_contacts(a, self._rcpt_count(param("rcpt_count_weights")))
            size = int(min(25e6, max(800, rng.lognormvariate(math.log(20000), 1.5))))
            out.append((t, ai, ip, name, helo, proto, a.login, rcpts, size,
                        self._benign_subject(), True, 0, -1))
        if rng.random() < param("newsletter_per_day") and not weekend:
            self._newsletter(ai, a, ds, out)

    def _newsletter(self, ai, a, ds, out):
        rng = self.rng
        n = int(min(3000, max(60, rng.lognormvariate(math.log(param(
            "newsletter_rcpts_median")), 0.8))))
        h = a.homes[0]
        t = ds + (rng.randint(9, 16) - a.tz) * 3600 + rng.randint(0, 3599)
        batch = 1 if rng.random() < 0.5 else rng.choice((20, 50, 100))
        subject = "Newsletter %s" % utc(ds).strftime("%B %Y")
        rng2 = random.Random(a.newsletter_list)  # the same list every time
        addrs = ["%s@%s" % ("%s.%s%d" % (rng2.choice(FIRST_NAMES), rng2.choice(LAST_NAMES),
                                          rng2.randint(1, 99)),
                            rng2.choice(FREEMAIL) if rng2.random() < 0.6 else
                            "%s.%s" % ("".join(rng2.choice(SYL) for _ in range(3)),
                                       rng2.choice(("com", "de", "fr", "net"))))
                 for _ in range(n)]
        for i in range(0, n, batch):
            t += rng.randint(1, 8) * (1 if batch == 1 else 5)
            out.append((t, ai, h[1], h[2], a.pc_helo, "esmtpsa", a.login, addrs[i:i + batch],
                        rng.randint(30000, 120000), subject, True, 0, -1))

    def _poisson(self, lam):
        rng = self.rng
        if lam <= 0:
            return 0
        if lam > 50:
            return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))
        L, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= rng.random()
            if p <= L:
                return k
            k += 1

    def _campaign(self, comp, out_by_day):
        rng = self.rng
        a = self.accounts[comp["acct_idx"]]
        ai = comp["acct_idx"]
        actor = self.actors[comp["actor"]]
        for t, addr in comp["tests"]:
            ip, name, helo = self._bot(a)
            if rng.random() < param("test_helo_localhost"):
                helo = "localhost"
            size = rng.randint(*param("test_size"))
            self._put(out_by_day, (t, ai, ip, name, helo, "esmtpsa", a.login, [addr], size,
                                   self._test_subject(), False, 1, comp["id"]))
        n_bots = int(min(600, max(5, rng.lognormvariate(math.log(param("bots_median")), 0.8))))
        bots = [self._bot(a) for _ in range(n_bots)]
        if comp["fast"]:
            m = int(min(6000, max(100, rng.lognormvariate(math.log(param(
                "fast_messages_median")), 0.8))))
            lo, hi = param("fast_rate_per_min")
            rate = math.exp(rng.uniform(math.log(lo), math.log(hi))) / 60.0
            times = []
            t = float(comp["campaign_start"])
            for _ in range(m):
                times.append(int(t))
                t += rng.expovariate(rate)
        else:
            m = int(min(1500, max(20, rng.lognormvariate(math.log(param(
                "slow_messages_median")), 0.8))))
            dur = rng.uniform(*param("slow_hours")) * 3600
            # intermittent: a few bursts spread over the duration
            bursts = sorted(rng.random() * dur for _ in range(rng.randint(3, 8)))
            bursts[0] = 0.0
            times = []
            for _ in range(m):
                b = rng.choice(bursts)
                times.append(int(comp["campaign_start"] + b + rng.expovariate(1 / 600.0)))
            times.sort()
        list_rng = random.Random(actor["list_seed"])
        list_size = 200000
        sender_alias = None
        if rng.random() < 0.1:
            sender_alias = "%s@%s" % (rng.choice(ROLES + ["engineering", "service"]), a.domain)
        for t in times:
            ip, name, helo = rng.choice(bots)
            n = weighted(rng, param("campaign_rcpt_weights"))
            rcpts = []
            for _ in range(n):
                k = rng.randrange(list_size)
                list_rng.seed(actor["list_seed"] * 1000003 + k)
                rcpts.append("%s%s@%s" % (list_rng.choice(FIRST_NAMES),
                                          list_rng.randint(1, 9999),
                                          list_rng.choice(FREEMAIL + ("netgate.com.uy",
                                                                      "mail01.example.net"))
                                          if list_rng.random() < 0.7 else
                                          "%s.%s" % ("".join(list_rng.choice(SYL)
                                                             for _ in range(3)),
                                                     list_rng.choice(("com", "net", "com.br",
                                                                      "co.uk", "de", "it")))))
            subj = rng.choice(CAMPAIGN_SUBJECTS).format(
                n=rng.randint(10000, 999999), t=rng.choice(TOPICS),
                F=rng.choice(FIRST_NAMES).capitalize(), L=rng.choice(LAST_NAMES).capitalize())
            sender = sender_alias or a.login
            size = int(min(2e6, max(3000, rng.lognormvariate(math.log(40000), 1.0))))
            self._put(out_by_day, (t, ai, ip, name, helo, "esmtpsa", sender, rcpts, size,
                                   subj, rng.random() < 0.5, 2, comp["id"]))

    def _put(self, out_by_day, msg):
        day = (msg[0] - self.day0) // 86400
        out_by_day.setdefault(day, []).append(msg)

    # --- driver -----------------------------------------------------------------------

    def run(self, writer):
        """Generates day by day, one day ahead: a local day spills into its UTC neighbours."""
        buckets = {}
        comps_by_day = {}
        for c in self.compromises:
            comps_by_day.setdefault((c["login_time"] - self.day0) // 86400, []).append(c)
        for gd in range(self.first_day, self.days + 1):
            if gd < self.days:
                for ai, a in enumerate(self.accounts):
                    today = []
                    self._benign_day(ai, a, gd, today)
                    for m in today:
                        self._put(buckets, m)
                for c in comps_by_day.get(gd, ()):
                    self._campaign(c, buckets)
            fd = gd - 1
            if fd >= self.first_day:
                cur = buckets.pop(fd, [])
                cur.sort(key=lambda m: (m[0], m[1]))
                writer.write_day(fd, cur)
            for d in [d for d in buckets if d <= fd]:
                del buckets[d]  # before the logs begin
        writer.close()

    def truth(self, writer):
        comps = []
        for c in self.compromises:
            msgs = writer.campaign_ids.get(c["id"], [])
            tests = writer.test_ids.get(c["id"], [])
            comps.append({
                "id": c["id"], "account": c["account"], "actor": c["actor"],
                "actor_reuses_address": self.actors[c["actor"]]["fixed"],
                "login_time": iso(c["login_time"]),
                "tests": [{"time": iso(t), "recipient": r, "queue_id": q,
                           "in_start_map": r in self.known_set} for t, r, q in tests],
                "campaign_start": iso(c["campaign_start"]),
                "campaign_style": "fast" if c["fast"] else "slow",
                "campaign_messages": len(msgs),
                "campaign": [[iso(t), q, n] for t, q, n in msgs],
            })
        accounts = [{"login": a.login, "domain": a.domain, "class": a.cls,
                     "created": iso(self.day0 + a.created * 86400)
                     if a.created > self.first_day else None}
                    for a in self.accounts]
        return {
            "format": self.args.format, "seed": self.args.seed,
            "generator": "bench/detection/simulate.py",
            "warmup_start": iso(self.day0 - self.warmup * 86400),
            "window_start": iso(self.day0), "window_end": iso(self.day0 + self.days * 86400),
            "accounts": accounts, "compromises": comps,
            "known_test_addresses": sorted(self.known_set),
            "params": {k: v[0] for k, v in PARAMS.items()},
            "messages_written": writer.count,
        }


def iso(t):
    return utc(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--accounts", type=int, default=5000)
    ap.add_argument("--days", type=int, default=14, help="scored window, days")
    ap.add_argument("--warmup", type=int, default=7, help="days of history before the window "
                    "(in the logs, not scored)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--format", choices=("exim", "postfix"), default="exim")
    ap.add_argument("--syslog-time", choices=("rfc3339", "traditional"), default="rfc3339",
                    help="Postfix only: timestamp style of the syslog daemon")
    ap.add_argument("--start", default="2026-03-02", help="first scored day (UTC), YYYY-MM-DD")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a parameter (JSON value), e.g. skip_test_share=0.5")
    ap.add_argument("--list-params", action="store_true", help="print the parameters and exit")
    args = ap.parse_args(argv)
    if args.list_params:
        for k, (v, src) in PARAMS.items():
            print("%-34s %-28s %s" % (k, json.dumps(v), src))
        return 0
    for s in args.set:
        if "=" not in s:
            ap.error("--set %s: expected NAME=VALUE" % s)
        k, v = s.split("=", 1)
        if k not in PARAMS:
            ap.error("--set %s: unknown parameter (see --list-params)" % k)
        try:
            val = json.loads(v)
        except ValueError:
            ap.error("--set %s: value is not JSON" % s)
        PARAMS[k] = (val, PARAMS[k][1] + " [overridden]")
    if args.accounts < 1 or args.days < 1 or args.warmup < 0:
        ap.error("--accounts and --days must be positive, --warmup not negative")
    os.makedirs(args.out, exist_ok=True)
    sim = Simulator(args)
    local_domains = {d[0] for d in sim.domains}
    logins = [a.login for a in sim.accounts]
    auths = [a.auth for a in sim.accounts]
    day_end = lambda day: sim.day0 + (day + 1) * 86400  # noqa: E731
    if args.format == "exim":
        from exim_writer import EximWriter
        writer = EximWriter(os.path.join(args.out, "mainlog"), random.Random(args.seed + 1),
                            sim.provider, local_domains)
    else:
        from postfix_writer import PostfixWriter
        writer = PostfixWriter(os.path.join(args.out, "maillog"), random.Random(args.seed + 1),
                               sim.provider, local_domains, args.syslog_time)
    writer.login_of = logins.__getitem__
    writer.auth_of = auths.__getitem__
    writer.day_end = day_end
    sim.run(writer)
    with open(os.path.join(args.out, "known_test_addresses.map"), "w") as f:
        f.write("# Test addresses known before the scored window (rspamd map: one address a "
                "line)\n")
        for addr in sorted(sim.known_set):
            f.write(addr + "\n")
    truth = sim.truth(writer)
    with open(os.path.join(args.out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=0, sort_keys=True)
    n_test = sum(1 for c in truth["compromises"] if c["tests"])
    print("simulate: %d accounts, %d+%d days, %d messages, %d compromises (%d with a test "
          "message, %d of those to a known address) -> %s" % (
              len(sim.accounts), args.warmup, args.days, writer.count, len(sim.compromises),
              n_test, sum(1 for c in truth["compromises"]
                          if any(t["in_start_map"] for t in c["tests"])), args.out),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
