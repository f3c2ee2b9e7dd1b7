#!/bin/bash
# Entry point of the compd image: renders compd.conf from the environment, checks it, and
# runs compd-milter in the foreground (or another command, e.g. `mapctl stats`).
#
# Every setting of the table can be given as COMPD_<NAME IN CAPITALS>: COMPD_ACTION=monitor,
# COMPD_SOCKET=inet:8890@0.0.0.0, COMPD_MAP_DIR=/var/lib/compd/maps, ... An unknown COMPD_*
# variable is an error (a typo must not silently leave the milter rejecting).
# The rendered file is $COMPD_CONFIG_DIR/compd.conf (default /etc/compd/compd.conf, the
# path both programs read by default, so `docker compose exec compd-milter mapctl ...` sees
# the same settings). It holds, in this order (a later line wins):
#   1. the example config (every setting commented out, with its documentation),
#   2. $COMPD_LOCAL_CONFIG if that file exists (default $COMPD_CONFIG_DIR/local.conf,
#      mount your own settings there),
#   3. one line per COMPD_* variable, each after a comment naming the variable.
# Not settings, and never written to the file: COMPD_REDIS_PASSWORD (read by the programs
# from the environment), COMPD_CONFIG_DIR, COMPD_LOCAL_CONFIG, COMPD_MILTER_BIN.
#
# Arguments: none, or options (--print-config, --log-level debug, ...): run compd-milter
# with them; anything else: exec it as a command once the config is rendered.
# Exit status 2 with a message naming the variable when the configuration is invalid.
# tests/docker_test.py runs this script outside Docker with a temporary COMPD_CONFIG_DIR.
set -euo pipefail

milter=${COMPD_MILTER_BIN:-compd-milter}
config_dir=${COMPD_CONFIG_DIR:-/etc/compd}
local_config=${COMPD_LOCAL_CONFIG:-$config_dir/local.conf}
config=$config_dir/compd.conf

die() {
  echo "compd-entrypoint: $*" >&2
  exit 2
}

example=$("$milter" --print-example-config) || die "cannot run $milter --print-example-config"
# Setting names, from the example config's "#name = default" lines.
mapfile -t names < <(sed -n 's/^#\([a-z0-9_]*\) = .*/\1/p' <<<"$example")
[ ${#names[@]} -gt 0 ] || die "no settings found in $milter --print-example-config"

declare -A known=()
for name in "${names[@]}"; do
  known[COMPD_${name^^}]=$name
done

env_lines=""
while IFS= read -r var; do
  case $var in
    COMPD_REDIS_PASSWORD | COMPD_CONFIG_DIR | COMPD_LOCAL_CONFIG | COMPD_MILTER_BIN) continue ;;
  esac
  name=${known[$var]:-}
  [ -n "$name" ] || die "$var is not a compd setting (settings: $(printf 'COMPD_%s ' "${names[@]^^}"))"
  value=${!var}
  case $value in
    *$'\n'* | *$'\r'*) die "$var: the value must be one line" ;;
  esac
  env_lines+="# from the environment: $var"$'\n'"$name = $value"$'\n'
done < <(compgen -e | grep '^COMPD_' | sort)

mkdir -p "$config_dir"
tmp=$(mktemp "$config_dir/.compd.conf.XXXXXX")
trap 'rm -f "$tmp"' EXIT
{
  echo "# Rendered by compd-entrypoint at $(date -u +%Y-%m-%dT%H:%M:%SZ); do not edit here:"
  echo "# change the COMPD_* environment or $local_config instead."
  echo "$example"
  if [ -f "$local_config" ]; then
    echo
    echo "# ---- $local_config"
    cat "$local_config"
  fi
  echo
  echo "# ---- environment"
  printf '%s' "$env_lines"
} >"$tmp"
chmod 0640 "$tmp"
mv -f "$tmp" "$config"
trap - EXIT

# Check before starting, so a bad value is reported with where it came from.
if ! out=$("$milter" --check-config --config "$config" 2>&1); then
  line=$(sed -n "s|.*$config:\([0-9]*\):.*|\1|p" <<<"$out" | head -n1)
  origin=""
  if [ -n "$line" ] && [ "$line" -gt 1 ]; then
    origin=$(sed -n "$((line - 1))s/^# from the environment: //p" "$config")
  fi
  [ -n "$origin" ] && die "$origin: $out" || die "$out"
fi

if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
  exec "$milter" --foreground --config "$config" "$@"
fi
exec "$@"
