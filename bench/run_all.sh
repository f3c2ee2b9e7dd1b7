#!/usr/bin/env bash
# Runs every compd benchmark in one go (as root: Postfix and rspamd drop to their users):
#   1. the core benchmarks: every bench/*_bench.cc binary (matcher, import, ...);
#   2. milter throughput: compd-milter vs the no-op libmilter milter vs rspamd's milter
#      proxy, driven by bench/milter_load (bench/milter_compare.py);
#   3. end to end through Postfix with smtp-source (bench/e2e_postfix.py);
#   4. map freshness, snapshot rebuild and RSS at 10k/100k/1M entries (bench/freshness.py),
#      and memory across whole-map re-reads (bench/memory.py);
#   5. Redis CPU, commands and memory per authenticated message (bench/redis_capacity.py).
# Results (text and JSON) go to $COMPD_BENCH_OUT (default build/bench/results); figures
# and how to read them: docs/performance.md.
#
#   bench/run_all.sh            # everything, about 10 minutes on 2 cores
#   bench/run_all.sh quick      # smaller map and shorter runs, a few minutes
#   bench/run_all.sh milter e2e # only some parts: core milter e2e freshness
set -euo pipefail
cd "$(dirname "$0")/.."

export COMPD_BENCH_BUILD=${COMPD_BENCH_BUILD:-$PWD/build/bench}
OUT=${COMPD_BENCH_OUT:-$COMPD_BENCH_BUILD/results}
QUICK=no
PARTS=()
for a in "$@"; do
  case "$a" in
    quick) QUICK=yes ;;
    core|milter|e2e|freshness) PARTS+=("$a") ;;
    *) echo "usage: $0 [quick] [core] [milter] [e2e] [freshness]" >&2; exit 2 ;;
  esac
done
[ ${#PARTS[@]} -eq 0 ] && PARTS=(core milter e2e freshness)
want() { [[ " ${PARTS[*]} " == *" $1 "* ]]; }

mkdir -p "$OUT"
cmake -S . -B "$COMPD_BENCH_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$COMPD_BENCH_BUILD" -j2 >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }

if [ "$QUICK" = yes ]; then
  ENTRIES=100000; SIZES=10000,100000; ROUNDS=2; DURATION=3; MESSAGES=800; REPEAT=3
else
  ENTRIES=1000000; SIZES=10000,100000,1000000; ROUNDS=3; DURATION=5; MESSAGES=1500; REPEAT=5
fi

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) cores"
  echo "kernel: $(uname -r); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "build: $COMPD_BENCH_BUILD (Release); git: $(git describe --always --dirty 2>/dev/null)"
} | tee "$OUT/machine.txt"

if want core; then
  for b in "$COMPD_BENCH_BUILD"/*_bench; do
    name=$(basename "$b")
    [ -x "$b" ] || continue
    [ "$name" = snapshot_bench ] && continue  # needs a loaded Redis: run by freshness.py
    echo "== $name"
    if [ -x "bench/$name.sh" ]; then  # a wrapper that sets up what the benchmark needs
      timeout 900 "bench/$name.sh" "$COMPD_BENCH_BUILD" | tee "$OUT/$name.txt"
    elif [ "$QUICK" = yes ]; then
      timeout 900 "$b" quick | tee "$OUT/$name.txt"
    else
      timeout 900 "$b" | tee "$OUT/$name.txt"
    fi
  done
fi
if want milter; then
  echo "== milter throughput"
  python3 bench/milter_compare.py --entries "$ENTRIES" --rounds "$ROUNDS" \
    --duration "$DURATION" --json "$OUT/milter_compare.json" | tee "$OUT/milter_compare.txt"
fi
if want e2e; then
  echo "== end to end through Postfix"
  python3 bench/e2e_postfix.py --entries "$ENTRIES" --rounds "$ROUNDS" --messages "$MESSAGES" \
    --json "$OUT/e2e_postfix.json" | tee "$OUT/e2e_postfix.txt"
fi
if want freshness; then
  # Captured first: with pipefail, `grep -q` closing the pipe early would fail the test.
  milter_help=$("$COMPD_BENCH_BUILD/compd-milter" --help 2>&1 || true)
  mapctl_help=$("$COMPD_BENCH_BUILD/mapctl" --help 2>&1 || true)
  if grep -q -- --socket <<<"$milter_help" && grep -q import <<<"$mapctl_help"; then
    echo "== map freshness, rebuild, memory"
    python3 bench/freshness.py --sizes "$SIZES" --repeat "$REPEAT" \
      --json "$OUT/freshness.json" | tee "$OUT/freshness.txt"
    echo "== memory across whole-map re-reads"
    python3 bench/memory.py --entries "$ENTRIES" --json "$OUT/memory.json" |
      tee "$OUT/memory.txt"
    echo "== Redis cost per authenticated message"
    python3 bench/redis_capacity.py --json "$OUT/redis_capacity.json" 2>&1 |
      tee "$OUT/redis_capacity.txt"
  else
    echo "== freshness skipped: compd-milter or mapctl not built" >&2
  fi
fi
echo "results in $OUT"
