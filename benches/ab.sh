#!/usr/bin/env bash
# Two kb binaries on the same data directory, alternating, c=16, 5 s per row: requests/s and
# p99 for the probes, GET by id (one id, uniform ids, hot set), list, search, suggest and quiz,
# then RSS. For before/after comparisons on a machine whose speed drifts between runs.
#
#   benches/ab.sh OLD_KB NEW_KB DATA_DIR [ROUNDS]
#
# DATA_DIR holds a kb data directory (e.g. `kb gen --count 100000 | kb --data-dir D import -`);
# N (default 100000) is its number of questions. Extra settings pass through the environment
# (KB_CACHE_MB=0 compares the store reads alone). Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
old=$1 new=$2 data=$3 rounds=${4:-2}
N=${N:-100000}
PORT=${PORT:-18180}
KEY=bench-admin-key-of-at-least-32-characters
for round in $(seq 1 "$rounds"); do
  for which in old new; do
    bin=${!which}
    KB_QUOTAS=${KB_QUOTAS:-off} KB_MAX_EXPENSIVE=1024 KB_DATA_DIR=$data KB_BIND=127.0.0.1:$PORT \
      KB_NO_SEED=1 KB_LOG=warn KB_ADMIN_KEY=$KEY "$bin" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 400); do
      curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
      sleep 0.05
    done
    line="$which, round $round:"
    for s in ${SCENARIOS:-healthz get_one get_by_id get_hot list search suggest quiz}; do
      out=$(KB_N=$N wrk -t2 -c16 -d5s --latency -s "benches/load/$s.lua" "http://127.0.0.1:$PORT")
      rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
      p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
      line="$line $s=$rps/$p99"
    done
    rss=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
    echo "$line rss=${rss}MB"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  done
done
