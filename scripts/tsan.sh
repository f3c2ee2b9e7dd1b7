#!/usr/bin/env bash
# Builds the unit tests with ThreadSanitizer (-DCOMPD_TSAN=ON) and runs the ones tagged for
# concurrency; any ThreadSanitizer report fails the run.
#   scripts/tsan.sh [CATCH2-TEST-SPEC]     default: the tags in TSAN_TAGS
# Tags (Catch2 test spec, ',' = or): the Redis client, the tripwire, the matcher and its
# snapshot swap (map_watcher), the event writer queue (recorder) and the spool replay; a new
# test that shares data across threads and fits none of them should carry [concurrency].
# When no test carries one yet, the whole unit suite runs under TSan instead, so the build
# and the suppressions stay exercised.
# Environment: TSAN_BUILD_DIR (build/tsan), TSAN_CXX (clang++ if present, else g++),
# TSAN_TAGS, JOBS (nproc) for the build, TSAN_BUILD_ONLY=1 to build and run nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${TSAN_BUILD_DIR:-build/tsan}
tags=${TSAN_TAGS:-[redis],[tripwire],[matcher],[map_watcher],[recorder],[spool],[concurrency]}
spec=${1:-$tags}
jobs=${JOBS:-$(nproc)}
if [ -n "${TSAN_CXX:-}" ]; then
  cxx=$TSAN_CXX
elif command -v clang++ >/dev/null; then
  cxx=clang++
else
  cxx=g++
fi

echo "== tsan: build ($cxx, ThreadSanitizer) in $build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DCOMPD_TSAN=ON -DCOMPD_WERROR=ON >/dev/null
cmake --build "$build" -j "$jobs" --target compd_tests
[ "${TSAN_BUILD_ONLY:-0}" = 1 ] && exit 0

# halt_on_error: the first race fails the test run with its report, instead of a pile of
# follow-on reports; exitcode is what a report at exit turns into.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:history_size=4:exitcode=66}

# Catch2 v2 lists matching test names one per line and exits with their number.
count=$({ "$build/compd_tests" --list-test-names-only "$spec" || true; } | sed '/^$/d' | wc -l)
args=("$spec")
if [ "$count" -eq 0 ]; then
  echo "tsan: no unit test matches $spec yet; running the whole unit suite under TSan"
  args=()
else
  echo "== tsan: $count test case(s) matching $spec"
fi

log=$build/tsan.log
set +e
"$build/compd_tests" "${args[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if grep -q 'WARNING: ThreadSanitizer' "$log"; then
  echo "tsan: FAILED: ThreadSanitizer report(s) above (log: $log)" >&2
  exit 1
fi
if [ "$rc" -ne 0 ]; then
  echo "tsan: FAILED: compd_tests exited with status $rc (log: $log)" >&2
  exit 1
fi
echo "tsan: OK, no ThreadSanitizer report"
