"""The simulated world's names and networks: people, customer domains, freemail providers,
residential ISPs with their reverse-DNS patterns, mobile carriers behind carrier-grade NAT,
and the seeded generator that draws addresses from them (Namer). Names and patterns only
look like real ones; addresses avoid private, shared (CGNAT) and documentation space.
"""

import datetime

from params import param

FIRST_NAMES = ("anna bernd carla david emma felix greta hans ida jonas karin lukas marie noah "
               "olga paul rita sven tina uwe vera walter yvonne zoe alice bob claire daniel "
               "elena frank george helen ian julia kevin laura mike nina oscar peter quentin "
               "rachel steve tom ursula victor wendy xavier yusuf marco giulia luca sofia "
               "pierre camille louis chloe jan eva piet sanne").split()
LAST_NAMES = ("mueller schmidt schneider fischer weber meyer wagner becker rossi russo bianchi "
              "martin bernard dubois moreau smith jones brown taylor wilson davies evans garcia "
              "lopez jansen devries bakker visser novak kowalski nielsen berg lindqvist "
              "murphy kelly walsh").split()
ROLES = "info contact office admin sales support billing team hello accounts booking".split()
SYL = ("ka ri mo ten lux ber gar vin sol tra nor del pan co mar fin sta ver lin ho ar el "
       "quin tor dex ma nu pe ro sa ti ve zu bo ly cri fen gal hal").split()
TLDS = (("com", 30), ("de", 15), ("fr", 8), ("co.uk", 8), ("nl", 6), ("it", 6), ("es", 4),
        ("org", 6), ("net", 6), ("io", 3), ("ch", 3), ("at", 3), ("com.au", 2))
FREEMAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "gmx.de", "web.de",
            "orange.fr", "libero.it", "icloud.com", "aol.com", "gmx.net", "t-online.de")
SPAMMER_FREEMAIL = ("gmx.com", "gmail.com", "mail.ru", "yandex.ru", "outlook.com", "aol.com",
                    "yahoo.com", "proton.me", "gmx.de", "inbox.lv")
TOPICS = ("invoice", "quote", "meeting tomorrow", "project update", "contract", "order",
          "delivery", "your request", "photos", "minutes", "schedule", "offer", "appointment",
          "documents", "question", "payment", "report", "newsletter", "agenda", "proposal",
          "Rechnung", "Angebot", "Termin", "devis", "facture", "rendez-vous", "fattura",
          "preventivo", "offerte", "factuur", "holiday", "dinner", "application", "training")
CAMPAIGN_SUBJECTS = ("Receipt for your payment", "Your PayPal receipt", "Invoice #{n}",
                     "Payment confirmation {n}", "Document shared with you", "Re: {t}",
                     "Order {n} shipped", "Statement of account", "Remittance advice {n}",
                     "{F} {L}", "{F} {L}", "{F} {L}", "Urgent: {t}", "Fwd: {t}")
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

# Residential ISPs: (reverse DNS pattern, country). {a}.{b}.{c}.{d} is the address.
ISPS = (
    ("p{hex}.dip0.t-ipconnect.de", "de"), ("ip{hexd}.dynamic.kabel-deutschland.de", "de"),
    ("{a}-{b}-{c}-{d}.dyn.vodafone-ip.de", "de"),
    ("lfbn-idf1-1-{n}-{d}.w{a}-{b}.abo.wanadoo.fr", "fr"), ("{hexd}.subs.proxad.net", "fr"),
    ("host-{a}-{b}-{c}-{d}.retail.telecomitalia.it", "it"),
    ("host{d}-{c}-{b}-{a}.range{a}-{b}.btcentralplus.com", "uk"),
    ("cpc{n}-lutn{m}-2-0-cust{d}.9-2.cable.virginm.net", "uk"),
    ("{a}-{b}-{c}-{d}.fixed.kpn.net", "nl"), ("{hex}.cable.dynamic.v4.ziggo.nl", "nl"),
    ("{d}.red-{a}-{b}-{c}.dynamicip.rima-tde.net", "es"),
    ("c-{a}-{b}-{c}-{d}.hsd1.ca.comcast.net", "us"), ("cpe-{a}-{b}-{c}-{d}.nyc.res.rr.com", "us"),
    ("pool-{a}-{b}-{c}-{d}.bstnma.fios.verizon.net", "us"),
    ("{a}-{b}-{c}-{d}.dsl.telesp.net.br", "br"), ("{d}.{c}.{b}.{a}.static.ip.fastweb.it", "it"),
    ("{a}-{b}-{c}-{d}.tpgi.com.au", "au"),
    ("abts-kk-dynamic-{d}.{c}.{b}.{a}.airtelbroadband.in", "in"),
    ("{a}.{b}.{c}.{d}.broad.xy.jx.dynamic.163data.com.cn", "cn"),
    ("{d}.{c}.{b}.{a}.donpac.ru", "ru"), ("{a}-{b}-{c}-{d}.netcologne.de", "de"),
    ("host-{a}-{b}-{c}-{d}.business.telecomitalia.it", "it"),
)
CARRIERS = (("ip-{a}-{b}-{c}-{d}.mobile.vodafone.de", "de"), (None, "fr"),
            ("{a}.{b}.{c}.{d}.mobile.3.co.uk", "uk"), ("ip-{a}-{b}-{c}-{d}.tmodns.net", "us"),
            (None, "it"), ("{a}-{b}-{c}-{d}.mobile.kpn.net", "nl"))


def weighted(rng, pairs):
    u = rng.random() * sum(w for _, w in pairs)
    for v, w in pairs:
        u -= w
        if u <= 0:
            return v
    return pairs[-1][0]


RESERVED_FIRST_OCTETS = (10, 100, 127, 169, 172, 192, 198, 203)


def public_ip(rng):
    """A random unicast address outside private, shared (CGNAT) and documentation space."""
    while True:
        a = rng.randint(24, 212)
        if a not in RESERVED_FIRST_OCTETS:
            return "%d.%d.%d.%d" % (a, rng.randint(0, 255), rng.randint(0, 255),
                                    rng.randint(1, 254))


def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc)


class Namer:
    """Addresses, names and networks, all drawn from one seeded generator."""

    def __init__(self, rng):
        self.rng = rng
        self.used_domains = set()
        self.isp_prefixes = []  # per ISP: list of /16 (a, b)
        taken = set()
        for _ in ISPS:
            pre = []
            while len(pre) < 6:
                p = (rng.randint(24, 223), rng.randint(0, 255))
                if p[0] in RESERVED_FIRST_OCTETS or p in taken:
                    continue
                taken.add(p)
                pre.append(p)
            self.isp_prefixes.append(pre)
        self.carrier_pools = []
        for ci, (pattern, _) in enumerate(CARRIERS):
            while True:
                p = (rng.randint(24, 223), rng.randint(0, 255))
                if p not in taken and p[0] not in RESERVED_FIRST_OCTETS:
                    taken.add(p)
                    break
            pool = []
            for _ in range(int(param("carrier_pool_size"))):
                ip = "%d.%d.%d.%d" % (p[0], p[1], rng.randint(0, 255), rng.randint(1, 254))
                pool.append((ip, self.rdns(pattern, ip) if pattern else None))
            self.carrier_pools.append(pool)

    def word(self, syl=(2, 3)):
        return "".join(self.rng.choice(SYL) for _ in range(self.rng.randint(*syl)))

    def domain(self):
        while True:
            d = "%s%s.%s" % (self.word(), self.rng.choice(("", "", "-" + self.word((1, 2)))),
                              weighted(self.rng, TLDS))
            if d not in self.used_domains:
                self.used_domains.add(d)
                return d

    def person_local(self):
        r = self.rng.random()
        f, l = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        if r < 0.4:
            return "%s.%s" % (f, l)
        if r < 0.6:
            return f
        if r < 0.75:
            return "%s%s" % (f[0], l)
        if r < 0.85:
            return "%s.%s%d" % (f, l, self.rng.randint(1, 99))
        return "%s%d" % (f, self.rng.randint(1, 9999))

    def external_address(self):
        if self.rng.random() < param("freemail_share"):
            # Freemail names are taken: most carry a number. Without one, independent draws
            # of anna.mueller@gmail.com would make unrelated customers share contacts far
            # more often than the shared pool says.
            return "%s.%s%d@%s" % (self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES),
                                   self.rng.randint(1, 99999), self.rng.choice(FREEMAIL))
        return "%s@%s" % (self.person_local(), self.domain())

    def rdns(self, pattern, ip):
        a, b, c, d = ip.split(".")
        n = (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
        return pattern.format(a=a, b=b, c=c, d=d, hex="%08X" % n, hexd="%08x" % n,
                              n=(n >> 4) % 997, m=n % 9)

    def isp_ip(self, isp, prefix=None):
        """(ip, rdns or None) in the ISP's address space (in /16 `prefix` when given)."""
        a, b = prefix or self.rng.choice(self.isp_prefixes[isp])
        ip = "%d.%d.%d.%d" % (a, b, self.rng.randint(0, 255), self.rng.randint(1, 254))
        if self.rng.random() < param("rdns_missing_share"):
            return ip, None
        return ip, self.rdns(ISPS[isp][0], ip)
