#!/bin/bash
# Entry point of the rspamd image: Debian's rspamd with compd's multimap rules reading the
# map files compd-milter writes to the shared volume, and the proxy worker speaking the
# milter protocol to Postfix. Renders $RSPAMD_ROOT/etc/rspamd/local.d/ and runs
# `rspamd -f` with LOCAL_CONFDIR pointing there (the stock /etc/rspamd config stays as is).
#
# Environment:
#   COMPD_MAP_DIR             where compd_rcpt.map and compd_rcpt_re.map are (default
#                             /var/lib/compd/maps: the compd-maps volume, read-only here)
#   COMPD_RSPAMD_CONF         compd's rspamd snippets as `cmake --install` puts them:
#                             rspamd-conf/ with the generated plugins.d/compd_recorder.lua
#                             (default /usr/share/compd/rspamd)
#   RSPAMD_REDIS_SERVERS      Redis for rspamd's own modules and for compd_recorder,
#                             which writes rspamd's hits into compd's event stream
#                             (default redis:6379: the Redis compd-milter uses)
#   COMPD_PREFIX              compd's Redis key prefix (default compd:)
#   RSPAMD_COMPD_ACTION       what rspamd does by itself when a recipient is listed:
#                             reject (default), "soft reject" (4xx), or none (symbol only,
#                             for a monitor-mode rollout, see docs/operations.md)
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
prefix=${COMPD_PREFIX:-compd:}
compd_action=${RSPAMD_COMPD_ACTION:-reject}
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
# The multimap rules' own action (the `action = ...` lines of compd's rules).
case $compd_action in
  reject | "soft reject")
    action_sed="s/^([[:space:]]*action[[:space:]]*=[[:space:]]*)\"[^\"]*\"/\\1\"$compd_action\"/" ;;
  none) action_sed="/^[[:space:]]*action[[:space:]]*=/d" ;;
  *) die "RSPAMD_COMPD_ACTION=$compd_action: expected reject, \"soft reject\" or none" ;;
esac

mkdir -p "$local_d" "$local_confdir/override.d" "$local_confdir/plugins.d" "$db_dir" \
  "$run_dir" "$log_dir"
chown "$user:$user" "$db_dir" "$run_dir" "$log_dir"

# compd's snippets (rspamd-conf/ in the source tree, with the plugin the build generated):
# the multimap rules with their map paths pointed at the shared volume and their action
# set, the compd_recorder plugin (it runs compd-milter's record script), and
# the rspamd.conf.local section that turns the plugin on.
for f in "$compd_conf"/local.d/*; do
  [ -f "$f" ] || continue
  sed -E -e "s#\"(file://)?[^\"]*/(compd_rcpt(_re)?\.map)\"#\"\\1$map_dir/\\2\"#g" \
    -e "$action_sed" "$f" >"$local_d/$(basename "$f")"
done
for f in "$compd_conf"/plugins.d/*.lua; do
  [ -f "$f" ] || continue
  cp "$f" "$local_confdir/plugins.d/"
done
[ -f "$compd_conf/plugins.d/compd_recorder.lua" ] ||
  echo "rspamd-entrypoint: no plugins.d/compd_recorder.lua in $compd_conf (compd's build" \
    "generates it): rspamd's hits are not recorded" >&2
if [ -f "$compd_conf/rspamd.conf.local" ]; then
  cp "$compd_conf/rspamd.conf.local" "$local_confdir/rspamd.conf.local"
fi
cat >"$local_confdir/override.d/compd_recorder.conf" <<EOF
# Rendered by rspamd-entrypoint: compd_recorder writes to the Redis compd-milter uses.
servers = "$redis_servers";
prefix = "$prefix";
EOF

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
# Arguments: a command to run instead of rspamd once the config is rendered and checked
# (`docker compose run rspamd rspamadm configdump multimap`).
[ $# -eq 0 ] || exec "$@"
exec rspamd -f -u "$user" -g "$user" -c /etc/rspamd/rspamd.conf "${vars[@]}"
