#!/bin/bash
# Entry point of the postfix image: a submission-only Postfix (SASL through Dovecot) with
# compd-milter and rspamd as milters. Renders main.cf and master.cf and runs the master in
# the foreground (`postfix start-fg`; as PID 1 in a container it becomes `master -i`).
#
# Environment (defaults are the compose file's service names):
#   POSTFIX_MYHOSTNAME          myhostname (default: the container's host name)
#   POSTFIX_SUBMISSION_LISTEN   master.cf service for submission: PORT or ADDR:PORT (587)
#   POSTFIX_SASL_PATH           Dovecot auth (inet:dovecot:12345)
#   POSTFIX_MILTERS             smtpd_milters on submission, in order
#                               (inet:compd-milter:8890, inet:rspamd:11332); compd first,
#                               so a listed recipient is refused before content scanning
#   POSTFIX_RELAYHOST           relayhost (default empty: deliver by MX)
#   POSTFIX_TLS_CERT, POSTFIX_TLS_KEY  submission certificate (default: the image's
#                               snakeoil); AUTH is only offered after STARTTLS. Both empty:
#                               no TLS and AUTH in clear text (tests on loopback only)
#   POSTFIX_INET_PROTOCOLS      ipv4 (default), ipv6 or all
#   POSTFIX_MAILLOG             maillog_file (default /dev/stdout: `docker compose logs`)
#   POSTFIX_ROOT                prefix of config, queue and data folders (default empty);
#                               tests/docker_test.py runs this script outside Docker with a
#                               temporary folder here
#   POSTFIX_SYSLOG_NAME         syslog_name (default postfix)
# See docs/postfix.md for why each milter setting is what it is.
set -euo pipefail

root=${POSTFIX_ROOT:-}
myhostname=${POSTFIX_MYHOSTNAME:-$(hostname -f 2>/dev/null || hostname)}
submission=${POSTFIX_SUBMISSION_LISTEN:-587}
sasl_path=${POSTFIX_SASL_PATH:-inet:dovecot:12345}
milters=${POSTFIX_MILTERS:-inet:compd-milter:8890, inet:rspamd:11332}
relayhost=${POSTFIX_RELAYHOST:-}
tls_cert=${POSTFIX_TLS_CERT-/etc/ssl/certs/ssl-cert-snakeoil.pem}
tls_key=${POSTFIX_TLS_KEY-/etc/ssl/private/ssl-cert-snakeoil.key}
inet_protocols=${POSTFIX_INET_PROTOCOLS:-ipv4}
maillog=${POSTFIX_MAILLOG:-/dev/stdout}
syslog_name=${POSTFIX_SYSLOG_NAME:-postfix}

config_dir=$root/etc/postfix
queue_dir=$root/var/spool/postfix
data_dir=$root/var/lib/postfix

die() {
  echo "postfix-entrypoint: $*" >&2
  exit 2
}

case $myhostname in
  *.*) ;;
  *) die "POSTFIX_MYHOSTNAME=$myhostname: a fully qualified name is needed (mail.example.com)" ;;
esac
if [ -n "$tls_cert$tls_key" ]; then
  [ -r "$tls_cert" ] || die "POSTFIX_TLS_CERT=$tls_cert is not readable"
  [ -r "$tls_key" ] || die "POSTFIX_TLS_KEY=$tls_key is not readable"
  tls_level=may
  auth_only=yes
else
  echo "postfix-entrypoint: warning: no TLS certificate: AUTH is offered in clear text" >&2
  tls_level=none
  auth_only=no
fi

mkdir -p "$config_dir" "$queue_dir" "$data_dir"
chown postfix:postfix "$data_dir"
chmod 0700 "$data_dir"

# maillog_file must sit under one of maillog_file_prefixes.
case $maillog in
  /dev/stdout) log_prefixes=/dev/stdout ;;
  *)
    log_prefixes=$(dirname "$maillog")
    mkdir -p "$log_prefixes"
    ;;
esac

cat >"$config_dir/main.cf.tmp" <<EOF
# Rendered by postfix-entrypoint; change the POSTFIX_* environment instead.
compatibility_level = 3.6
queue_directory = $queue_dir
data_directory = $data_dir
myhostname = $myhostname
myorigin = \$myhostname
# Submission only: nothing is delivered locally.
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
inet_protocols = $inet_protocols
relayhost = $relayhost
biff = no
append_dot_mydomain = no
maillog_file = $maillog
maillog_file_prefixes = $log_prefixes
syslog_name = $syslog_name

smtpd_tls_cert_file = $tls_cert
smtpd_tls_key_file = $tls_key
smtpd_tls_security_level = $tls_level
smtp_tls_security_level = may
smtp_tls_CApath = /etc/ssl/certs

smtpd_sasl_type = dovecot
smtpd_sasl_path = $sasl_path
smtpd_sasl_security_options = noanonymous
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject

# Milters (docs/postfix.md): protocol 6, and mail flows if a filter is down: compd guards
# reputation, not delivery.
milter_protocol = 6
milter_default_action = accept
milter_connect_timeout = 10s
milter_command_timeout = 10s
milter_content_timeout = 30s
EOF

cat >"$config_dir/master.cf.tmp" <<EOF
# Rendered by postfix-entrypoint. No chroot: the container is the isolation.
$submission inet n - n - - smtpd
  -o syslog_name=$syslog_name/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=$auth_only
  -o smtpd_milters=$(tr -d ' ' <<<"$milters")
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

# Postfix programs wait while a config file is younger than a second (it might be half
# written); these are complete, so backdate them.
for f in main.cf master.cf; do
  touch -d '-10 seconds' "$config_dir/$f.tmp"
  mv -f "$config_dir/$f.tmp" "$config_dir/$f"
done

# Arguments: a command to run instead of Postfix once the config is rendered
# (`docker compose run postfix postconf -n`).
[ $# -eq 0 ] || exec "$@"
# start-fg runs the checks of `postfix check` first and refuses to start on a fatal one.
exec postfix -c "$config_dir" start-fg
