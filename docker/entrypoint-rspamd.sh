#!/bin/bash
# Entry point of the rspamd image: Debian's rspamd with compd's multimap rules reading the
# map files compd-milter writes to the shared volume, and the proxy worker speaking the
# milter protocol to Postfix. Renders $RSPAMD_ROOT/etc/rspamd/local.d/ and runs
# `rspamd -f` with LOCAL_CONFDIR pointing there (the stock /etc/rspamd config stays as is).
#
# Environment:
#   COMPD_MAP_DIR             where compd_rcpt.map and compd_rcpt_re.map are (default
#                             /var/lib/compd/maps: the compd-maps volume, read-only here)
#   COMPD_RSPAMD_CONF         compd's rspamd snippets, installed from rspamd-conf/
#                             (default /usr/share/compd/rspamd)
#   RSPAMD_REDIS_SERVERS      Redis for rspamd's own modules (default redis:6379)
#   RSPAMD_MILTER_LISTEN      proxy worker in milter mode, for Postfix (default *:11332)
#   RSPAMD_CONTROLLER_LISTEN  controller/web UI, also answers /ping (default *:11334)
#   RSPAMD_NORMAL_LISTEN      normal worker (default 127.0.0.1:11333)
#   RSPAMD_LOG                "console" (default, `docker compose logs`) or a file path
#   RSPAMD_USER               user the workers run as (default _rspamd)
#   RSPAMD_ROOT               prefix of the config, data and run folders (default empty);
#                             tests/docker_test.py runs this script outside Docker with a
#                             temporary folder here
# The map paths written in compd's snippets are rewritten to COMPD_MAP_DIR, so rspamd
# reads the very files the milter writes (see docs/rspamd.md: not through a symlink).
set -euo pipefail

root=${RSPAMD_ROOT:-}
map_dir=${COMPD_MAP_DIR:-/var/lib/compd/maps}
compd_conf=${COMPD_RSPAMD_CONF:-/usr/share/compd/rspamd}
redis_servers=${RSPAMD_REDIS_SERVERS:-redis:6379}
milter_listen=${RSPAMD_MILTER_LISTEN:-*:11332}
controller_listen=${RSPAMD_CONTROLLER_LISTEN:-*:11334}
normal_listen=${RSPAMD_NORMAL_LISTEN:-127.0.0.1:11333}
log=${RSPAMD_LOG:-console}
user=${RSPAMD_USER:-_rspamd}

local_confdir=$root/etc/rspamd
local_d=$local_confdir/local.d
db_dir=$root/var/lib/rspamd
run_dir=$root/run/rspamd
log_dir=$root/var/log/rspamd

die() {
  echo "rspamd-entrypoint: $*" >&2
  exit 2
}

[ -d "$compd_conf/local.d" ] ||
  die "no compd rspamd snippets in $compd_conf/local.d (set COMPD_RSPAMD_CONF to rspamd-conf/)"
case $map_dir in
  /*) ;;
  *) die "COMPD_MAP_DIR=$map_dir must be an absolute path" ;;
esac

mkdir -p "$local_d" "$db_dir" "$run_dir" "$log_dir"
chown "$user:$user" "$db_dir" "$run_dir" "$log_dir"

# compd's snippets, with their map paths pointed at the shared volume.
for f in "$compd_conf"/local.d/*; do
  [ -f "$f" ] || continue
  sed -E "s#\"[^\"]*/(compd_rcpt(_re)?\.map)\"#\"$map_dir/\1\"#g" "$f" >"$local_d/$(basename "$f")"
done
for f in "$compd_conf"/*.lua; do
  [ -f "$f" ] || continue
  cp "$f" "$local_confdir/$(basename "$f")"
done

cat >"$local_d/worker-proxy.inc" <<EOF
# Rendered by rspamd-entrypoint: Postfix talks to rspamd as a milter here.
bind_socket = "$milter_listen";
milter = yes;
timeout = 120s;
upstream "local" {
  default = yes;
  self_scan = yes;
}
EOF
cat >"$local_d/worker-controller.inc" <<EOF
# Rendered by rspamd-entrypoint. Not published by the compose file; set a password
# (rspamadm pw) in override.d/worker-controller.inc before exposing the web UI.
bind_socket = "$controller_listen";
EOF
cat >"$local_d/worker-normal.inc" <<EOF
# Rendered by rspamd-entrypoint. The proxy scans by itself (self_scan); this worker only
# serves local rspamc.
bind_socket = "$normal_listen";
EOF
cat >"$local_d/redis.conf" <<EOF
# Rendered by rspamd-entrypoint: Redis for rspamd's own modules.
servers = "$redis_servers";
EOF
if [ "$log" = console ]; then
  cat >"$local_d/logging.inc" <<EOF
# Rendered by rspamd-entrypoint.
type = "console";
level = "notice";
EOF
else
  cat >"$local_d/logging.inc" <<EOF
# Rendered by rspamd-entrypoint.
type = "file";
filename = "$log";
level = "notice";
EOF
fi

# GLib's option parser wants --var=NAME=VALUE as one word.
vars=("--var=LOCAL_CONFDIR=$local_confdir" "--var=DBDIR=$db_dir" "--var=RUNDIR=$run_dir"
  "--var=LOGDIR=$log_dir")
rspamadm "${vars[@]}" configtest -q -c /etc/rspamd/rspamd.conf ||
  die "rspamadm configtest failed for $local_confdir"
exec rspamd -f -u "$user" -g "$user" -c /etc/rspamd/rspamd.conf "${vars[@]}"
