#!/usr/bin/env bash
# Detection benchmark in one command: simulate a provider, replay its logs with compd
# (mapctl replay), run the reference detectors on the same logs, score everything against
# the ground truth and print the table. Python 3 standard library plus the compd build.
#
#   bench/detection/run.sh                       # 5,000 accounts, 7+14 days, seed 1, Exim
#   bench/detection/run.sh --big                 # 14,000 accounts, 14+30 days
#   bench/detection/run.sh --seed 2 --format postfix --baserates
#   bench/detection/run.sh --accounts 300 --days 3 -- --set skip_test_share=0.5
#
# Options: --accounts N --days D --warmup W --seed S --format exim|postfix --out DIR
#          --big --baserates; anything after -- goes to simulate.py (e.g. --set NAME=VALUE).
# Environment: BUILD (default $COMPD_BUILD_DIR or build/dev) holds mapctl;
#          COMPD_REPLAY_ARGS adds arguments to mapctl for the compd row (e.g. "--config
#          compd.conf"); COMPD_LOCK_ARGS (default "--config bench/detection/lock.conf",
#          the lock settings docs/detection.md recommends) is what the second row,
#          compd-lock, is replayed with instead; set it to "" to leave that row out.
# Output in DIR (default build/detection-bench): the logs, truth.json, the starting map,
# reactions-NAME.jsonl per detector, table.md and scores.jsonl.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-${COMPD_BUILD_DIR:-$ROOT/build/dev}}
ACCOUNTS=5000 DAYS=14 WARMUP=7 SEED=1 FORMAT=exim OUT=$ROOT/build/detection-bench
BASERATES=no
COMPD_LOCK_ARGS=${COMPD_LOCK_ARGS-"--config $HERE/lock.conf"}
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --accounts) ACCOUNTS=$2; shift 2 ;;
    --days) DAYS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --format) FORMAT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --big) ACCOUNTS=14000 DAYS=30 WARMUP=14; shift ;;
    --baserates) BASERATES=yes; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "run.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
case "$FORMAT" in
  exim) LOG=$OUT/mainlog ;;
  postfix) LOG=$OUT/maillog ;;
  *) echo "run.sh: --format must be exim or postfix" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
rm -f "$OUT"/reactions-*.jsonl
step() { echo "== $* ($(date -u +%H:%M:%S))" >&2; }

step "simulate: $ACCOUNTS accounts, $WARMUP+$DAYS days, seed $SEED, $FORMAT"
python3 "$HERE/simulate.py" --out "$OUT" --accounts "$ACCOUNTS" --days "$DAYS" \
  --warmup "$WARMUP" --seed "$SEED" --format "$FORMAT" "${EXTRA[@]}"

step "reference detectors"
python3 "$HERE/reference.py" --format "$FORMAT" --truth "$OUT/truth.json" --out "$OUT" "$LOG"

COMPD=missing
MAPCTL=$BUILD/mapctl
replay() {  # replay NAME ARGS...: reactions-NAME.jsonl, or a loud failure
  local name=$1
  shift
  step "compd: mapctl replay ($name)"
  # shellcheck disable=SC2068
  if "$MAPCTL" $@ replay --json --format "$FORMAT" --map "$OUT/known_test_addresses.map" \
      "$LOG" >"$OUT/reactions-$name.jsonl" 2>"$OUT/$name-replay.stderr"; then
    tail -n 1 "$OUT/$name-replay.stderr" >&2 || true
    return 0
  fi
  rm -f "$OUT/reactions-$name.jsonl"
  echo "run.sh: mapctl replay ($name) FAILED; its stderr ($OUT/$name-replay.stderr):" >&2
  tail -n 20 "$OUT/$name-replay.stderr" >&2 || true
  return 1
}
if [ -x "$MAPCTL" ] && "$MAPCTL" replay --help >/dev/null 2>&1; then
  COMPD=ok
  replay compd ${COMPD_REPLAY_ARGS:-} || COMPD=failed
  if [ -n "${COMPD_LOCK_ARGS:-}" ]; then
    replay compd-lock ${COMPD_LOCK_ARGS} || COMPD=failed
  fi
fi
if [ "$COMPD" != ok ]; then
  cat >&2 <<EOF

######################################################################################
#  THE COMPD ROW IS MISSING: $MAPCTL replay is $([ "$COMPD" = failed ] && echo "FAILING" || echo "not available")
#  (build mapctl with the replay command, or set BUILD=). Reference rows only.
######################################################################################

EOF
fi

step "score"
ROWS=("compd=$OUT/reactions-compd.jsonl")
[ -n "${COMPD_LOCK_ARGS:-}" ] && ROWS+=("compd-lock=$OUT/reactions-compd-lock.jsonl")
for d in thread tripwire tripwire-lock m365-default m365-policy alternc saslpolicyd \
         saslpolicyd-readme; do
  ROWS+=("$d=$OUT/reactions-$d.jsonl")
done
python3 "$HERE/score.py" --truth "$OUT/truth.json" "${ROWS[@]}" | tee "$OUT/table.md"
python3 "$HERE/score.py" --json --truth "$OUT/truth.json" "${ROWS[@]}" >"$OUT/scores.jsonl"

if [ "$BASERATES" = yes ]; then
  step "base rates for discovery"
  python3 "$HERE/baserates.py" --format "$FORMAT" --truth "$OUT/truth.json" "$LOG" \
    | tee "$OUT/baserates.json"
fi
step "done: $OUT"
[ "$COMPD" = ok ] || exit 3
