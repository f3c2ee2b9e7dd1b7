#!/usr/bin/env bash
# The whole test suite, from a fresh Debian bookworm machine, as root:
#   installs packages; builds everything once with -Wall -Wextra -Werror and with
#   AddressSanitizer + UndefinedBehaviorSanitizer; runs the unit tests and the integration
#   tests against real servers (redis-server, Postfix, Dovecot, swaks, rspamd, Exim, ...)
#   with those sanitized programs; runs each fuzz target briefly (its corpus first); runs
#   the concurrency tests under ThreadSanitizer.
# One sanitized build serves both the warnings and the tests: a separate plain build
# doubled the build time and tested programs the sanitizers never saw. Speed is measured
# by bench/, never here.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test

jobs=$(nproc)
fuzz_seconds=${COMPD_FUZZ_SECONDS:-10}
start=$SECONDS
stage() { echo "== $1 (at $((SECONDS - start)) s)"; }

stage "build (-Werror, ASan + UBSan)"
# -O0 (Debug): GCC 12 with ASan at -O1 and above reports -Wmaybe-uninitialized inside
# libstdc++'s <regex>, a known false positive. The optimizer's warnings are still errors
# in the ThreadSanitizer build below (clang, -O2, -Werror).
cmake -S . -B build/ci -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCOMPD_WERROR=ON -DCOMPD_SANITIZE=ON \
  >/dev/null
cmake --build build/ci -j "$jobs"

status=0
stage "all tests (unit + integration against real servers), under ASan + UBSan"
# halt_on_error: a sanitizer report in a daemon aborts it, so the test that drove it fails.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Two at a time: every test has its own servers, folders and free ports, and the longest
# (deb_test: a package build, several minutes) starts first so the others run beside it.
# Meanwhile the fuzz and ThreadSanitizer programs are built with what the tests leave
# idle (a third of the CPU: most tests wait on their servers), at idle priority so that no
# test waits for them. Their steps below then find them built; a build that failed here
# fails again there, with its errors.
idle=(nice -n 19)
if chrt --idle 0 true 2>/dev/null; then idle=(chrt --idle 0 nice -n 19); fi
"${idle[@]}" bash -c 'FUZZ_BUILD_ONLY=1 scripts/fuzz.sh && TSAN_BUILD_ONLY=1 scripts/tsan.sh' \
  </dev/null >build/ci/prebuild.log 2>&1 &
prebuild=$!
(cd build/ci && ctest --output-on-failure --timeout 900 -j 2) || status=1
stage "tests done; waiting for the fuzz and ThreadSanitizer builds (log: build/ci/prebuild.log)"
wait "$prebuild" || true
unset ASAN_OPTIONS UBSAN_OPTIONS

stage "fuzz targets, ${fuzz_seconds} s each (clang, libFuzzer + ASan + UBSan)"
scripts/fuzz.sh "$fuzz_seconds" || status=1

stage "concurrency tests under ThreadSanitizer"
scripts/tsan.sh || status=1
stage "done, status $status"
exit $status
