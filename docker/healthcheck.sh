#!/bin/bash
# Health checks of the compose services: healthcheck.sh milter|postfix|dovecot|rspamd.
# Exit 0 when the service answers, 1 (with a reason on stderr) when it does not.
# Each check reads the same environment as the service's entry point, so it probes the
# address that service was told to listen on. tests/docker_test.py runs these outside
# Docker against the services it starts with the entry points.
set -uo pipefail

fail() {
  echo "healthcheck: $*" >&2
  exit 1
}

# tcp_open HOST PORT: a TCP connection succeeds within 3 seconds (bash's /dev/tcp).
tcp_open() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# A listen address as the services take it ("*:11334", "0.0.0.0:587", "587",
# "127.0.0.1:2525") to the address a local client connects to.
local_host() {
  case $1 in
    *:*) local h=${1%:*}; h=${h#[}; h=${h%]}
         case $h in "*" | "0.0.0.0" | "" | "::") echo 127.0.0.1 ;; *) echo "$h" ;; esac ;;
    *) echo 127.0.0.1 ;;
  esac
}
local_port() { echo "${1##*:}"; }

check_milter() {
  local milter=${COMPD_MILTER_BIN:-compd-milter}
  local config=${COMPD_CONFIG_DIR:-/etc/compd}/compd.conf
  local socket
  socket=$("$milter" --print-config --config "$config" 2>/dev/null |
    sed -n 's/^socket *= *\([^ ]*\).*/\1/p') || true
  [ -n "$socket" ] || fail "cannot read the socket setting from $config"
  case $socket in
    inet:* | inet6:*)
      local port=${socket#*:}; port=${port%%@*}
      local addr=${socket#*@}
      case $addr in 0.0.0.0 | "::" | "[::]") addr=127.0.0.1 ;; esac
      addr=${addr#[}; addr=${addr%]}
      tcp_open "$addr" "$port" || fail "compd-milter does not accept connections on $socket"
      ;;
    unix:* | local:*)
      local path=${socket#*:}
      [ -S "$path" ] || fail "no unix socket at $path"
      ;;
    *) fail "unknown socket spec $socket" ;;
  esac
}

check_postfix() {
  local root=${POSTFIX_ROOT:-}
  local listen=${POSTFIX_SUBMISSION_LISTEN:-587}
  postfix -c "$root/etc/postfix" status >/dev/null 2>&1 || fail "postfix master is not running"
  tcp_open "$(local_host "$listen")" "$(local_port "$listen")" ||
    fail "postfix submission does not accept connections on $listen"
}

check_dovecot() {
  local listen=${DOVECOT_AUTH_LISTEN:-inet:*:12345}
  case $listen in
    inet:*)
      listen=${listen#inet:}
      tcp_open "$(local_host "$listen")" "$(local_port "$listen")" ||
        fail "dovecot auth does not accept connections on $listen"
      ;;
    unix:*)
      [ -S "${listen#unix:}" ] || fail "no dovecot auth socket at ${listen#unix:}"
      ;;
    *) fail "DOVECOT_AUTH_LISTEN must be inet:ADDR:PORT or unix:/PATH" ;;
  esac
}

check_rspamd() {
  local listen=${RSPAMD_CONTROLLER_LISTEN:-*:11334}
  local host port reply
  host=$(local_host "$listen")
  port=$(local_port "$listen")
  # The controller answers GET /ping with "pong" without a password.
  reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET /ping HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3
    cat <&3' _ "$host" "$port" 2>/dev/null) || fail "rspamd controller not reachable on $listen"
  grep -q pong <<<"$reply" || fail "rspamd controller on $listen did not answer pong"
  tcp_open "$(local_host "${RSPAMD_MILTER_LISTEN:-*:11332}")" \
    "$(local_port "${RSPAMD_MILTER_LISTEN:-*:11332}")" ||
    fail "rspamd milter proxy does not accept connections on ${RSPAMD_MILTER_LISTEN:-*:11332}"
}

case ${1:-} in
  milter) check_milter ;;
  postfix) check_postfix ;;
  dovecot) check_dovecot ;;
  rspamd) check_rspamd ;;
  *) fail "usage: healthcheck.sh milter|postfix|dovecot|rspamd" ;;
esac
exit 0
