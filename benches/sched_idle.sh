#!/usr/bin/env bash
# Does a thread at the lowest CPU priority (SCHED_IDLE) that touches almost no memory (a pure
# arithmetic loop in Python) raise search p99 as a fit does? 5,000 generated questions, wrk
# search c=4 for 20 s with two such loops running and then without, three rounds. Needs a
# release build (cargo build --release) and wrk. Not part of CI. See docs/benchmarks.md#learners.
set -euo pipefail
cd "$(dirname "$0")/.."
KB=${CARGO_TARGET_DIR:-target}/release/kb
W=$(mktemp -d /tmp/kb-idle.XXXXXX)
$KB gen --count 5000 --seed 1 -o $W/q.ndjson
KB_NO_SEED=1 KB_LOG=warn $KB --data-dir $W/data import $W/q.ndjson >/dev/null
KB_QUOTAS=off KB_DATA_DIR=$W/data KB_BIND=127.0.0.1:18555 KB_NO_SEED=1 KB_LOG=warn $KB >$W/kb.log 2>&1 &
pid=$!
trap 'kill $pid; rm -rf $W' EXIT
for _ in $(seq 1 500); do curl -sf http://127.0.0.1:18555/readyz >/dev/null && break; sleep 0.05; done
wrk -t2 -c4 -d5s -s benches/load/search.lua http://127.0.0.1:18555 >/dev/null
p99() { wrk -t2 -c4 -d20s --latency -s benches/load/search.lua http://127.0.0.1:18555 | awk '$1=="99%"{print $2} /Requests\/sec/{print "rps", $2}' | tr '\n' ' '; }
for round in 1 2 3; do
  python3 -c '
import os, time
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
end = time.time() + 21
x = 0
while time.time() < end:
    for i in range(100000): x += i * i
' &
  b1=$!
  python3 -c '
import os, time
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
end = time.time() + 21
x = 0
while time.time() < end:
    for i in range(100000): x += i * i
' &
  b2=$!
  echo "round $round burner: $(p99)"
  wait $b1 $b2
  echo "round $round idle:   $(p99)"
done
