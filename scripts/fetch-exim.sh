#!/usr/bin/env bash
# Makes Debian's Exim (exim4-daemon-heavy) available to the tests without installing it:
# the package conflicts with postfix, which the other tests need. Downloads
# exim4-daemon-heavy, exim4-base and exim4-config with `apt-get download`, unpacks them
# with `dpkg -x` into a cache folder, and prints the path of the exim4 binary on the last
# line of its output. Idempotent: a second run only prints the path.
#
# Also creates the Debian-exim system user the binary was built for (EXIM_USER), and
# checks that its shared libraries are installed (scripts/install-deps.sh test).
# Run as root. Usage: scripts/fetch-exim.sh [CACHE_DIR]  (default /var/cache/compd-test/exim)
set -euo pipefail
cache=${1:-${COMPD_EXIM_CACHE:-/var/cache/compd-test/exim}}
pkgs=(exim4-daemon-heavy exim4-base exim4-config)

die() {
  echo "fetch-exim: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (creates the Debian-exim user, writes $cache)"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # two tests starting at once unpack once

# A tree unpacked earlier serves (asking apt for the candidate version takes seconds).
version=$(cd "$cache" && ls -d -- */complete 2>/dev/null | sed 's,/complete$,,' | sort -V | tail -n 1 || true)
[ -n "$version" ] ||
  version=$(apt-cache policy exim4-daemon-heavy 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
  apt-get update -qq >/dev/null 2>&1 || true
  version=$(apt-cache policy exim4-daemon-heavy 2>/dev/null | awk '/Candidate:/ {print $2}')
fi
[ -n "$version" ] && [ "$version" != "(none)" ] ||
  die "apt knows no exim4-daemon-heavy package (is a Debian mirror in sources.list?)"
root="$cache/$version/root"

if [ ! -x "$root/usr/sbin/exim4" ] || [ ! -e "$cache/$version/complete" ]; then
  work=$(mktemp -d "$cache/.fetch-XXXXXX")
  trap 'rm -rf "$work"' EXIT
  download() {
    (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "${pkgs[@]}") >"$work/apt.log" 2>&1
  }
  if ! download; then
    apt-get update -qq >/dev/null 2>&1 || true  # stale package lists on a fresh machine
    download || die "apt-get download ${pkgs[*]} failed:
$(cat "$work/apt.log")"
  fi
  mkdir -p "$work/root"
  for deb in "$work"/*.deb; do
    dpkg -x "$deb" "$work/root" || die "dpkg -x $deb failed"
  done
  [ -x "$work/root/usr/sbin/exim4" ] || die "no usr/sbin/exim4 in the unpacked packages"
  rm -rf "$cache/$version"
  mkdir -p "$cache/$version"
  mv "$work/root" "$root"
  touch "$cache/$version/complete"
fi

# The binary refuses to run without its compiled-in user. Debian's exim4-base creates it
# the same way (a system user and group, home /var/spool/exim4, no login).
if ! id Debian-exim >/dev/null 2>&1; then
  getent group Debian-exim >/dev/null || groupadd --system Debian-exim
  useradd --system --gid Debian-exim --home-dir /var/spool/exim4 --no-create-home \
    --shell /usr/sbin/nologin Debian-exim || die "cannot create the Debian-exim user"
fi

missing=$(ldd "$root/usr/sbin/exim4" | awk '/not found/ {print $1}' | tr '\n' ' ')
[ -z "$missing" ] || die "exim4 needs shared libraries that are not installed: $missing
(run scripts/install-deps.sh test)"

echo "$root/usr/sbin/exim4"
