#!/usr/bin/env bash
# Import benchmark: 100,000 exact entries into a loopback Redis, end to end with
# `mapctl import --apply` (read + validate the file, diff against the map, one atomic
# change), then the MapStore paths alone (build/import_bench).
#
#   bench/import_bench.sh [BUILD_DIR] [N]     (default: build, 100000)
# Build with -DCMAKE_BUILD_TYPE=Release for figures worth recording. Starts its own
# redis-server on a free port in a temporary folder (no persistence) and stops it.
set -euo pipefail
build=${1:-build}
n=${2:-100000}
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
  >"$tmp/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.05
done
url=redis://127.0.0.1:$port/0
python3 -c "
import sys
with open('$tmp/bulk.map', 'w') as f:
    for i in range($n):
        f.write('test%d@bulk%d.example\n' % (i, i % 997))
"
conf=$tmp/empty.conf
: >"$conf"
redis_cpu() {  # seconds of CPU redis-server has used so far
  redis-cli -p "$port" info cpu | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.3f", s}'
}

# Wall time, plus the CPU time of mapctl and of redis-server: on a machine shared with other
# work the wall time mostly measures waiting for a core; the CPU sum is what the import
# costs and about what it takes on an idle machine.
run() {  # run LABEL ARGS...
  local label=$1
  shift
  local start end cpu0 cpu1
  cpu0=$(redis_cpu)
  start=$(date +%s%N)
  /usr/bin/time -f "%U %S" -o "$tmp/time" "$build/mapctl" --config "$conf" --redis "$url" "$@" \
    >"$tmp/out" 2>&1
  end=$(date +%s%N)
  cpu1=$(redis_cpu)
  read -r user sys <"$tmp/time"
  awk -v l="$label" -v w=$(((end - start) / 1000000)) -v u="$user" -v s="$sys" \
    -v r0="$cpu0" -v r1="$cpu1" 'BEGIN {
      printf "%-44s wall %5d ms   mapctl cpu %5.0f ms   redis cpu %5.0f ms\n",
             l, w, (u + s) * 1000, (r1 - r0) * 1000 }'
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
run "import --apply, $n entries, empty map" import "$tmp/bulk.map" --kind plain --apply
tail -1 "$tmp/out"
run "import --apply again (nothing changes)" import "$tmp/bulk.map" --kind plain --apply
run "import dry run ($n unchanged)" import "$tmp/bulk.map" --kind plain
run "export --dir" export --dir "$tmp"
run "test one address" test test5@bulk5.example
redis-cli -p "$port" flushall >/dev/null
"$build/import_bench" --redis "$url" "$n"
