#!/usr/bin/env bash
# The main job on a fresh Debian bookworm machine, as root: install what is needed, build,
# make sure a Redis answers on 127.0.0.1:6379 (start one if none does), print the lines to
# add to Postfix, and run compd-milter in the foreground on inet:8890@127.0.0.1.
# Extra arguments go to compd-milter (e.g. --action monitor).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)"

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "run.sh: no Redis on 127.0.0.1:6379, starting one (data in /var/lib/compd-redis)"
  mkdir -p /var/lib/compd-redis
  redis-server --bind 127.0.0.1 --port 6379 --dir /var/lib/compd-redis --daemonize yes \
    --logfile /var/lib/compd-redis/redis.log
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

cat <<'MSG'
== compd-milter is starting on inet:8890@127.0.0.1. Add to Postfix main.cf:

    smtpd_milters = inet:127.0.0.1:8890
    milter_protocol = 6
    milter_default_action = accept

   (or only on the submission service in master.cf: -o smtpd_milters=inet:127.0.0.1:8890)
   then: postfix reload.  Manage the map with build/release/mapctl (add, list, test, ...);
   hits go to /var/log/compd/alerts.jsonl and the Redis stream compd:events.
   See docs/postfix.md. Stop with Ctrl-C.
MSG
exec build/release/compd-milter --foreground --socket inet:8890@127.0.0.1 \
  --redis redis://127.0.0.1:6379/0 --map-dir /var/lib/compd/maps \
  --alert-log /var/log/compd/alerts.jsonl --spool-dir /var/spool/compd "$@"
