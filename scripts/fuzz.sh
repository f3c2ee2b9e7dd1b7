#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz with clang (ASan + UBSan, libstdc++ bounds
# assertions) and runs each one for SECONDS (default 30), one after the other.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 600 address_list
# Targets are the file names in tests/fuzz without .cc; default: all of them.
# The seeds in tests/fuzz/corpus/TARGET are read, never written: inputs libFuzzer finds
# interesting go to build/fuzz/corpus/TARGET, which is kept between runs. A crash, a
# violated property, a timeout or running out of memory is a finding: the input is saved
# under build/fuzz/artifacts/TARGET/, its path is printed and the exit status is 1.
# Environment: FUZZ_BUILD_DIR (build/fuzz), FUZZ_MAX_LEN (16384 bytes),
# FUZZ_TIMEOUT (10 s per input), FUZZ_RSS_MB (2048), JOBS (nproc) for the build,
# FUZZ_JOBS (nproc) targets run at once, FUZZ_BUILD_ONLY=1 to build the targets and run none.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

seconds=${1:-30}
shift || true
case $seconds in
  '' | *[!0-9]*)
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
    ;;
esac
build=${FUZZ_BUILD_DIR:-build/fuzz}
case $build in /*) ;; *) build=$PWD/$build ;; esac
max_len=${FUZZ_MAX_LEN:-16384}
timeout=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
jobs=${JOBS:-$(nproc)}

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in tests/fuzz/*.cc; do targets+=("$(basename "$f" .cc)"); done
fi
for t in "${targets[@]}"; do
  if [ ! -f "tests/fuzz/$t.cc" ]; then
    echo "fuzz: no target '$t' (expected tests/fuzz/$t.cc)" >&2
    exit 2
  fi
done

for tool in clang clang++; do
  if ! command -v "$tool" >/dev/null; then
    echo "fuzz: $tool not found: install the Debian packages clang and libclang-rt-14-dev" \
      "(scripts/install-deps.sh test)" >&2
    exit 2
  fi
done

echo "== fuzz: build (clang, libFuzzer + ASan + UBSan) in $build"
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCOMPD_FUZZ=ON -DCOMPD_WERROR=ON >/dev/null
cmake --build "$build" -j "$jobs" --target "${targets[@]/#/fuzz_}"
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

# Leaks are findings too; UB already aborts (-fno-sanitize-recover=all).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Targets that need a file (config) make it here, not in a /tmp shared with other tests.
export TMPDIR=$build/tmp
mkdir -p "$TMPDIR"

# One target: prints its result; status 1 on a finding.
run_target() {
  local t=$1 corpus artifacts seeds log before after new runs rc=0 status=0
  corpus=$build/corpus/$t
  artifacts=$build/artifacts/$t
  seeds=$src/tests/fuzz/corpus/$t
  mkdir -p "$corpus" "$artifacts" "$seeds"
  log=$build/fuzz_$t.log
  echo "== fuzz: $t for ${seconds}s (log: $log)"
  before=$(find "$artifacts" -type f | sort)
  "$build/fuzz_$t" -max_total_time="$seconds" -max_len="$max_len" -timeout="$timeout" \
    -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" "$seeds" >"$log" 2>&1 || rc=$?
  after=$(find "$artifacts" -type f | sort)
  new=$(comm -13 <(echo "$before") <(echo "$after") | sed '/^$/d')
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  if [ "$rc" -ne 0 ] || [ -n "$new" ]; then
    status=1
    grep -E -A1 'property violated' "$log" | head -20 >&2 || true
    grep -E 'ERROR: |runtime error|SUMMARY' "$log" | head -10 >&2 || true
    if [ -n "$new" ]; then
      while read -r f; do
        echo "fuzz: FINDING in $t: input saved as $f" >&2
        echo "      reproduce: $build/fuzz_$t $f" >&2
      done <<<"$new"
    else
      echo "fuzz: $t failed with status $rc and saved no input: see $log" >&2
    fi
  else
    echo "fuzz: $t: no finding in ${seconds}s, ${runs:-?} executions"
  fi
  return $status
}

# FUZZ_JOBS targets at a time (default: the cores; each libFuzzer process uses one).
fuzz_jobs=${FUZZ_JOBS:-$jobs}
status=0
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$fuzz_jobs" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  run_target "$t" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
