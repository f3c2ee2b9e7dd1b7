#!/usr/bin/env bash
# The whole test suite, from a fresh Debian bookworm machine, as root:
#   installs packages, builds with -Wall -Wextra -Werror, runs unit and integration tests
#   (real redis-server, Postfix, Dovecot, swaks, ...), then builds again with
#   AddressSanitizer + UndefinedBehaviorSanitizer and runs the unit tests under them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test

jobs=$(nproc)
echo "== build (-Werror)"
cmake -S . -B build/ci -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOMPD_WERROR=ON >/dev/null
cmake --build build/ci -j "$jobs"

echo "== build (ASan + UBSan)"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCOMPD_WERROR=ON \
  -DCOMPD_SANITIZE=ON >/dev/null
cmake --build build/asan -j "$jobs" --target compd_tests

status=0
echo "== unit tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build/asan/compd_tests || status=1

echo "== all tests (unit + integration against real servers)"
(cd build/ci && ctest --output-on-failure --timeout 900) || status=1

echo "== fuzz targets, 30 s each (clang, libFuzzer + ASan + UBSan)"
scripts/fuzz.sh 30 || status=1

echo "== concurrency tests under ThreadSanitizer"
scripts/tsan.sh || status=1
exit $status
