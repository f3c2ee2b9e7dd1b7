#!/usr/bin/env bash
# Installs what compd needs from Debian's packages. Usage: install-deps.sh [build|package|test]
#   build:   compilers and libraries to build compd-milter and mapctl, plus redis-server
#   package: build + Debian's packaging tools (dpkg-buildpackage -us -uc -b, README)
#   test:    package + the real servers and clients the test suite drives
set -euo pipefail
what=${1:-build}
export DEBIAN_FRONTEND=noninteractive

# zlib1g-dev: mapctl replay and history import read rotated MTA logs (mainlog.1.gz).
build_pkgs=(build-essential cmake ninja-build pkg-config
  libmilter-dev libhiredis-dev libre2-dev nlohmann-json3-dev libcli11-dev catch2
  libcpp-httplib-dev zlib1g-dev redis-server redis-tools python3)
# debhelper (with dh_installsysusers) and dpkg-dev build the .deb files from debian/;
# lintian checks them (tests/deb_test.py). No fakeroot: debian/control says
# Rules-Requires-Root: no.
package_pkgs=(debhelper dpkg-dev lintian)
# openssl and libnet-ssleay-perl: tests/docker_test.py sends through STARTTLS (swaks --tls).
# chromium: tests/dashboard_test.py renders the dashboard headless.
# clang and libclang-rt-14-dev (libFuzzer, sanitizer runtimes): scripts/fuzz.sh, scripts/tsan.sh.
test_pkgs=(postfix swaks dovecot-core miltertest clang libclang-rt-14-dev openssl
  libnet-ssleay-perl rspamd chromium
  # Shared libraries of exim4-daemon-heavy, which tests/exim_test.py unpacks with
  # scripts/fetch-exim.sh (the package itself conflicts with postfix).
  libdb5.3 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libldap-2.5-0 libmariadb3 libnsl2
  libpam0g libpcre2-8-0 libperl5.36 libpq5 libsasl2-2 libspf2-2 libsqlite3-0 libcrypt1)

case "$what" in
  build) pkgs=("${build_pkgs[@]}") ;;
  package) pkgs=("${build_pkgs[@]}" "${package_pkgs[@]}") ;;
  test) pkgs=("${build_pkgs[@]}" "${package_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: install-deps.sh [build|package|test]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # Postfix must install without configuring or starting a system instance: the tests
  # run their own instances in temporary folders.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
