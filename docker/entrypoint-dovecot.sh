#!/bin/bash
# Entry point of the dovecot image: Dovecot for SASL only (no IMAP/POP3), so Postfix can
# authenticate submission clients. Renders $DOVECOT_ROOT/etc/dovecot/compd-sasl.conf and
# runs `dovecot -F` with it.
#
# Environment:
#   DOVECOT_AUTH_LISTEN  where Postfix reaches the auth service: inet:ADDR:PORT (default
#                        inet:*:12345, for smtpd_sasl_path = inet:dovecot:12345 on the
#                        compose network) or unix:/PATH
#   DOVECOT_USERS_FILE   passwd-file with the accounts (default
#                        $DOVECOT_ROOT/etc/dovecot/users): lines `user@domain:{SCHEME}hash`,
#                        e.g. from `doveadm pw -s SHA512-CRYPT`; {PLAIN}password for demos
#   DOVECOT_LOG          log file (default /dev/stderr, i.e. `docker compose logs`)
#   DOVECOT_ROOT         prefix of every path (default empty); tests/docker_test.py runs
#                        this script outside Docker with a temporary folder here
# The auth traffic between Postfix and Dovecot is not encrypted: keep DOVECOT_AUTH_LISTEN
# on a private network (the compose file's internal "backend" network) or a unix socket.
set -euo pipefail

root=${DOVECOT_ROOT:-}
listen=${DOVECOT_AUTH_LISTEN:-inet:*:12345}
users=${DOVECOT_USERS_FILE:-$root/etc/dovecot/users}
log=${DOVECOT_LOG:-/dev/stderr}
conf_dir=$root/etc/dovecot
conf=$conf_dir/compd-sasl.conf

die() {
  echo "dovecot-entrypoint: $*" >&2
  exit 2
}

[ -r "$users" ] || die "no users file at $users (mount one; lines user@domain:{SCHEME}hash)"

case $listen in
  inet:*)
    hostport=${listen#inet:}
    addr=${hostport%:*}
    port=${hostport##*:}
    [[ $port =~ ^[0-9]+$ ]] || die "DOVECOT_AUTH_LISTEN=$listen: expected inet:ADDR:PORT"
    listener="  inet_listener sasl {
    address = $addr
    port = $port
  }"
    ;;
  unix:/*)
    listener="  unix_listener ${listen#unix:} {
    mode = 0666
  }"
    ;;
  *) die "DOVECOT_AUTH_LISTEN=$listen: expected inet:ADDR:PORT or unix:/PATH" ;;
esac

mkdir -p "$conf_dir" "$root/run/dovecot" "$root/var/lib/dovecot"
cat >"$conf" <<EOF
# Rendered by dovecot-entrypoint: Dovecot for Postfix SASL only.
protocols =
base_dir = $root/run/dovecot
state_dir = $root/var/lib/dovecot
log_path = $log
info_log_path = $log
default_internal_user = dovecot
default_login_user = dovenull
ssl = no
auth_mechanisms = plain login
# Postfix decides when AUTH is allowed (smtpd_tls_auth_only = yes: only after STARTTLS);
# the plaintext here is the Postfix-to-Dovecot hop on the private network.
disable_plaintext_auth = no
auth_verbose = yes
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $users
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}
service auth {
$listener
}
EOF

# Arguments: a command to run instead of dovecot once the config is rendered.
[ $# -eq 0 ] || exec "$@"
exec dovecot -F -c "$conf"
