#!/usr/bin/env bash
# Load benchmark: builds the release binary, generates and imports 1k, 100k and 1M questions,
# and measures import throughput, cold start, RSS, and requests/s with p50/p99 for GET by id
# (uniform ids, and a hot set: 90 % of requests to 1 % of the ids),
# list, search, suggest and quiz at concurrency 1, 16 and 64, a mixed 90/10 read/write run, and
# a bare axum JSON endpoint (the ceiling) in the same run. Prints a Markdown table and writes
# it to benches/results/load-<date>.md. Not part of CI (it takes 15–25 minutes). Quotas are off
# (KB_QUOTAS=off) and load shedding is raised out of the way (KB_MAX_EXPENSIVE=1024): this
# measures how much the server can do, not how it refuses.
#
#   benches/load.sh                 # all sizes
#   SIZES="1000 100000" DURATION=5 benches/load.sh
#   CRASH=1 benches/load.sh         # also the SIGKILL-mid-import test at 100k (release build)
#   KB_MMAP_MB=1024 benches/load.sh # the server reads the database through a memory map
#   PREBUILT=1 benches/load.sh      # use target/release as it is (e.g. built with
#                                   # `cargo build --profile bench`, symbols kept for perf)
#
# Needs wrk (apt-get install -y wrk; installed here when missing and apt-get is available).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"1000 100000 1000000"}
DURATION=${DURATION:-5}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
WORK=${WORK:-$(mktemp -d /tmp/kb-load.XXXXXX)}
KEY=bench-admin-key-of-at-least-32-characters
PORT=${PORT:-18180}
BARE_PORT=$((PORT + 1))
mkdir -p benches/results
OUT=benches/results/load-$(date -u +%Y-%m-%d).md

if ! command -v wrk >/dev/null; then
  apt-get install -y wrk >/dev/null
fi

if [ -z "${PREBUILT:-}" ]; then
  echo "== building (release)" >&2
  cargo build --release --locked -q --bin kb --example bare
fi
KB=target/release/kb
BARE=target/release/examples/bare

# to_ms: wrk's latency figure in milliseconds.
. benches/common.sh

# run_wrk NAME SCRIPT CONC PORT -> one table row
run_wrk() {
  local name=$1 script=$2 conc=$3 port=$4 threads
  threads=$(( conc < 2 ? 1 : 2 ))
  local out
  out=$(KB_N=$N KB_ADMIN_KEY=$KEY wrk -t"$threads" -c"$conc" -d"${DURATION}s" --latency \
    -s "benches/load/$script.lua" "http://127.0.0.1:$port" 2>&1)
  local rps p50 p99 errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
  p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  errors=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  echo "| $N | $name | $conc | $rps | $p50 | $p99 | ${errors:-0} |"
}

wait_ready() {
  local port=$1
  for _ in $(seq 1 2000); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.005
  done
  echo "kb did not become ready" >&2
  return 1
}

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
hwm_mb() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
anon_mb() { awk '/RssAnon/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

{
  echo "# kb load benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem/ {print $2}') GiB RAM, $(uname -sr)."
  echo "wrk ${DURATION}s per row; latencies in ms; 'non-2xx' counts errors."
  echo
} | tee "$OUT"

rows=()
summary=()
for N in $SIZES; do
  dir=$WORK/n$N
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "== $N questions: generating" >&2
  $KB gen --count "$N" --seed 1 -o "$dir/q.ndjson"
  echo "== $N questions: importing" >&2
  start=$(date +%s.%N)
  KB_NO_SEED=1 KB_LOG=warn $KB --data-dir "$dir/data" import "$dir/q.ndjson" >"$dir/import.txt"
  end=$(date +%s.%N)
  import_s=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}')
  import_rate=$(awk -v n="$N" -v a="$start" -v b="$end" 'BEGIN {printf "%.0f", n / (b - a)}')
  du_mb=$(du -sm "$dir/data" | cut -f1)

  echo "== $N questions: cold start" >&2
  start=$(date +%s%N)
  KB_QUOTAS=off KB_MAX_EXPENSIVE=1024 KB_MMAP_MB=${KB_MMAP_MB:-0} KB_DATA_DIR=$dir/data KB_BIND=127.0.0.1:$PORT KB_NO_SEED=1 KB_LOG=warn KB_ADMIN_KEY=$KEY \
    $KB >"$dir/kb.log" 2>&1 &
  pid=$!
  wait_ready "$PORT"
  end=$(date +%s%N)
  cold_ms=$(( (end - start) / 1000000 ))
  rss_start=$(rss_mb $pid)

  for scenario in get_by_id get_hot list search suggest quiz; do
    for c in $CONCURRENCY; do
      echo "== $N: $scenario c=$c" >&2
      rows+=("$(run_wrk "$scenario" "$scenario" "$c" "$PORT")")
    done
  done
  for c in $CONCURRENCY; do
    echo "== $N: bare c=$c" >&2
    $BARE 127.0.0.1:$BARE_PORT &
    bare=$!
    sleep 0.3
    rows+=("$(run_wrk "bare axum (ceiling)" bare "$c" "$BARE_PORT")")
    kill $bare
    wait $bare 2>/dev/null || true
  done
  rss_read=$(rss_mb $pid)
  anon_read=$(anon_mb $pid)
  for c in 16; do
    echo "== $N: mixed c=$c" >&2
    rows+=("$(run_wrk "mixed 90/10 read/write" mixed "$c" "$PORT")")
  done
  rss_end=$(rss_mb $pid)
  hwm=$(hwm_mb $pid)
  kill $pid
  wait $pid 2>/dev/null || true
  summary+=("| $N | $import_s | $import_rate | $du_mb | $cold_ms | $rss_start | $rss_read ($anon_read private) | $hwm |")
done

{
  echo "## Import, start and memory"
  echo
  echo "| questions | import s (incl. indexing) | questions/s | data dir MB | cold start ms (to /readyz) | RSS MB at start | RSS MB after reads | peak RSS MB (incl. writes) |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${summary[@]}"
  echo
  echo "## Requests"
  echo
  echo "| questions | endpoint | concurrency | requests/s | p50 ms | p99 ms | non-2xx |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee -a "$OUT"

if [ "${CRASH:-0}" = 1 ]; then
  echo "== crash test: SIGKILL in the middle of a 100k import (release build)" >&2
  KB_CRASH_IMPORT_N=100000 cargo test --release --locked --test api \
    a_sigkill_mid_import_then_the_same_import_again_equals_a_clean_import 2>&1 | tail -3 | tee -a "$OUT"
fi
rm -rf "$WORK"
echo "written to $OUT" >&2
