#!/usr/bin/env bash
# Discovery's precision and recall on the detection simulator (bench/detection), through
# mapctl replay (the same Discovery code as compd-milter):
#
#   bench/discovery/run.sh [--seed S] [--accounts N] [--days D] [-- simulate.py --set ...]
#
# Defaults stress discovery: 2,000 accounts, 7+14 days, 20 compromises per 10,000
# account-days and no fixed address known in advance (fixed_known_share=0), so more test
# addresses are shared and none is already in the map. Replays with discovery_test_points 5
# (the default) and 3 (looser) and prints score_candidates.py for each.
# Output in build/discovery-bench-S.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-${COMPD_BUILD_DIR:-$ROOT/build/dev}}
SEED=1 ACCOUNTS=2000 DAYS=14
EXTRA=(--set compromises_per_10k_account_days=20 --set fixed_known_share=0)
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) SEED=$2; shift 2 ;;
    --accounts) ACCOUNTS=$2; shift 2 ;;
    --days) DAYS=$2; shift 2 ;;
    --) shift; EXTRA+=("$@"); break ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
OUT=$ROOT/build/discovery-bench-$SEED
mkdir -p "$OUT"
python3 "$ROOT/bench/detection/simulate.py" --out "$OUT" --accounts "$ACCOUNTS" --days "$DAYS" \
  --warmup 7 --seed "$SEED" --format exim "${EXTRA[@]}" >&2
for points in 5 3; do
  "$BUILD/mapctl" replay --json --map "$OUT/known_test_addresses.map" \
    --discovery-test-points "$points" --candidates "$OUT/candidates-$points.jsonl" \
    "$OUT/mainlog" > "$OUT/reactions-$points.jsonl" 2> "$OUT/replay-$points.err"
  echo "== seed $SEED, discovery_test_points $points"
  python3 "$HERE/score_candidates.py" --truth "$OUT/truth.json" \
    --candidates "$OUT/candidates-$points.jsonl"
done
