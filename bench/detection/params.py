"""Parameters of the simulated provider (bench/detection/simulate.py), each with where its
value comes from: "thread" is the mailop thread of April 2022 in the project's shared context,
"issue" the benchmark's brief, the rest published studies or stated assumptions. simulate.py
--set NAME=VALUE overrides one (the dict is shared by every module of the simulator).
"""

# name: (value, source). "thread" = /work/shared/context/mailop-2022-04-compromised-accounts.txt
PARAMS = {
    # --- provider ---
    "single_account_domain_share": (0.55, "assumption: small-business/personal hosting, most "
                                    "customer domains have one mailbox"),
    "domain_size_max": (40, "assumption: the largest customer domains of a shared host"),
    "new_account_share": (0.03, "assumption: accounts created during the scored window have no "
                          "history (about 3% growth a month)"),
    # --- daily volume: classes (share, median msgs per weekday, lognormal sigma) ---
    "class_quiet": ((0.30, 0.15, 0.7), "assumption: many mailboxes send a few mails a month"),
    "class_daily": ((0.12, 1.0, 0.0), "thread: 'only sent 1 email a day for the last year' "
                    "(a report or script at a fixed time, same network, same recipient)"),
    "class_regular": ((0.47, 4.0, 0.8), "assumption; heavy tail as in Ebel et al. 2002 "
                      "(scale-free e-mail networks) and Barabasi 2005 (bursty e-mail activity)"),
    "class_heavy": ((0.105, 30.0, 0.5), "assumption: sales/support mailboxes"),
    "class_bulk": ((0.005, 250.0, 0.8), "thread: 'a few' top senders dominate; notification "
                   "systems and newsletters sending from their own server all day"),
    "day_noise_sigma": (0.5, "assumption: day-to-day variation of an account's volume"),
    "business_share": (0.7, "assumption: hosting customers are mostly small businesses"),
    "weekend_factor_business": (0.12, "assumption; weekly rhythm as in Eckmann et al. 2004 (PNAS)"),
    "weekend_factor_personal": (0.85, "assumption"),
    "tz_offsets": (((1, 0.55), (0, 0.1), (-5, 0.2), (-8, 0.05), (2, 0.05), (10, 0.05)),
                   "assumption: a mostly European provider with American and Australian "
                   "customers (hours, weight)"),
    # --- recipients ---
    "rcpt_count_weights": (((1, 0.76), (2, 0.12), (3, 0.05), (4, 0.03), (6, 0.025),
                            (12, 0.015)), "assumption: most mail goes to one person"),
    "repeat_contact_share": (0.78, "assumption: most mail goes to an existing contact"),
    "shared_contact_share": (0.25, "assumption: of new contacts, the share that is a popular "
                             "address many unrelated customers mail (suppliers, banks, "
                             "authorities, big clients)"),
    "colleague_share": (0.12, "assumption: of new contacts, a colleague (same customer domain)"),
    "domain_contact_share": (0.25, "assumption: of new contacts, one a colleague already mails"),
    "shared_pool_per_account": (0.5, "assumption: popular external addresses per account"),
    "shared_pool_zipf": (1.0, "assumption: Zipf exponent of their popularity"),
    "initial_contacts": (8, "assumption: contacts from before the logs begin (plus 10 per "
                         "daily message)"),
    "freemail_share": (0.5, "assumption: share of external contacts at freemail providers"),
    # --- networks ---
    "home_networks": (((1, 0.5), (2, 0.35), (3, 0.15)), "assumption; issue: one to a few"),
    "ip_move_per_day": (0.04, "assumption: dynamic residential addresses change every few "
                        "weeks, within the ISP's /16"),
    "rdns_missing_share": (0.15, "assumption: client addresses without reverse DNS"),
    "mobile_share": (0.5, "assumption: accounts that also send from a phone"),
    "mobile_mail_share": (0.3, "assumption: of their mail, the share sent from the phone on "
                          "mobile data"),
    "carriers": (4, "assumption: mobile carriers among the customers"),
    "carrier_pool_size": (48, "assumption: public carrier-grade NAT addresses per carrier seen "
                          "at one provider; each is shared by many customers"),
    "webmail_share": (0.2, "assumption: accounts that sometimes use webmail (submits from "
                      "127.0.0.1)"),
    "webmail_mail_share": (0.3, "assumption: of their mail, the share sent via webmail"),
    "trip_per_day": (0.004, "assumption: about 1.5 trips a year"),
    "trip_days": ((2, 9), "assumption: trip length in days (uniform)"),
    "newsletter_per_day": (0.0006, "assumption: one-off legitimate bulk day (newsletter, "
                           "season's greetings) per account-day, from the usual network"),
    "newsletter_rcpts_median": (300, "assumption (lognormal, sigma 0.8, 60..3000)"),
    "benign_bounce_share": (0.01, "assumption: recipients of benign mail that bounce"),
    # --- compromises ---
    "compromises_per_10k_account_days": (4.0, "assumption chosen for statistical power, not a "
                                         "prevalence estimate (thread: 'an increase' in one "
                                         "week among 14,000 customers)"),
    "actors_per_compromise": (0.25, "assumption: spammer groups (each with its own habits)"),
    "fixed_address_actor_share": (0.5, "thread: 'Most of them use the same recipient email "
                                  "every time' vs the April 2022 wave: 'rarely to the same "
                                  "recipient. Rarely, but not never'"),
    "fresh_actor_reuse": (0.1, "thread: 'rarely ... but not never' (probability that a "
                          "fresh-address actor reuses one of its earlier addresses)"),
    "fixed_known_share": (0.7, "assumption: share of fixed-address actors whose address is in "
                          "the operator's map at the start (found in earlier compromises)"),
    "prehistory_known_fresh": (2, "assumption: earlier one-off test addresses per fresh actor "
                               "in the map (never used again unless reused)"),
    "skip_test_share": (0.2, "issue: 'some campaigns skip the test' (share assumed)"),
    "double_test_share": (0.1, "assumption: a second test message from another bot"),
    "test_helo_localhost": (0.7, "thread: both sample test messages used HELO localhost"),
    "test_size": ((600, 900), "thread: S=735 and S=691"),
    "delay_median_min": (40.0, "thread: 'minutes to hours later' (lognormal, sigma 1.2, "
                         "2 min .. 24 h)"),
    "fast_campaign_share": (0.6, "assumption; thread: caught 'instantly' vs 'intermittently "
                            "for about half a day'"),
    "fast_messages_median": (800, "assumption (lognormal, sigma 0.8, 100..6000)"),
    "fast_rate_per_min": ((2.0, 20.0), "assumption: campaign messages per minute (log-uniform)"),
    "slow_messages_median": (150, "assumption (lognormal, sigma 0.8, 20..1500)"),
    "slow_hours": ((6.0, 24.0), "thread: 'intermittently for about half a day' (uniform)"),
    "bots_median": (60, "thread: 'other residential IPs in various locations' (lognormal, "
                    "sigma 0.8, 5..600 distinct bots per campaign)"),
    "campaign_rcpt_weights": (((1, 0.7), (2, 0.1), (3, 0.08), (5, 0.07), (10, 0.05)),
                              "thread: one recipient in To:; assumption for the rest"),
    "campaign_bounce_share": (0.15, "assumption: harvested lists are stale"),
    "compromise_spread": ("uniform", "assumption: compromise start uniform over the window"),
}


def param(name):
    return PARAMS[name][0]
