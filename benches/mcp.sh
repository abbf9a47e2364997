#!/usr/bin/env bash
# An MCP search round trip against a REST search of the same queries ([docs/mcp.md](../docs/mcp.md)):
# at N questions (100k by default), wrk POSTs `tools/call search_questions` to /mcp
# (benches/load/mcp_search.lua) and GETs /api/v1/search (benches/load/search.lua), the same ten
# queries, limit 10, at concurrency 1 and 16. The two alternate ROUNDS times on one server so
# the machine's drift falls on both; each row gives the medians of the rounds and the cost as
# the median of the rounds' MCP/REST ratios. Writes benches/results/mcp-<date>.md. Not part
# of CI. Quotas are off (KB_QUOTAS=off) and the bound on concurrent searches raised
# (KB_MAX_EXPENSIVE=1024) so no request is refused.
#
#   benches/mcp.sh
#   N=1000 DURATION=3 ROUNDS=1 benches/mcp.sh   # a quick look
#   PREBUILT=1 benches/mcp.sh                   # use the release binary as it is
#
# Honours CARGO_TARGET_DIR. Needs wrk (apt-get install -y wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-"1 16"}
WORK=${WORK:-$(mktemp -d /tmp/kb-mcp.XXXXXX)}
PORT=${PORT:-18290}
TARGET=${CARGO_TARGET_DIR:-target}
mkdir -p benches/results
OUT=benches/results/mcp-${DATE:-$(date -u +%Y-%m-%d)}.md

if [ -z "${PREBUILT:-}" ]; then
  echo "== building (release)" >&2
  cargo build --release --locked -q --bin kb
fi
KB=$TARGET/release/kb
. benches/common.sh

wait_ready() {
  for _ in $(seq 1 20000); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0
    sleep 0.01
  done
  echo "kb did not become ready" >&2
  return 1
}

# run SCRIPT CONC -> "rps p50 p99 failures"
run() {
  local script=$1 conc=$2 threads out
  threads=$(( conc < 2 ? 1 : 2 ))
  out=$(wrk -t"$threads" -c"$conc" -d"${DURATION}s" --latency -s "benches/load/$script.lua" \
    "http://127.0.0.1:$PORT" 2>&1)
  local rps p50 p99 non2xx tool
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
  p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  tool=$(echo "$out" | awk '/^TOOL_ERRORS/ {s += $2} END {print s + 0}')
  echo "$rps $p50 $p99 $(( ${non2xx:-0} + tool ))"
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

dir=$WORK/n$N
mkdir -p "$dir"
echo "== $N questions: generating and importing" >&2
$KB gen --count "$N" --seed 1 -o "$dir/q.ndjson"
KB_NO_SEED=1 KB_LOG=warn $KB --data-dir "$dir/data" import "$dir/q.ndjson" >/dev/null
KB_QUOTAS=off KB_MAX_EXPENSIVE=1024 KB_DATA_DIR=$dir/data KB_BIND=127.0.0.1:$PORT KB_NO_SEED=1 \
  KB_LOG=warn $KB >"$dir/kb.log" 2>&1 &
pid=$!
cleanup() {
  kill $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
wait_ready
# Both paths warm (the index's pages, the read cache) before anything is counted.
wrk -t1 -c4 -d3s -s benches/load/search.lua "http://127.0.0.1:$PORT" >/dev/null 2>&1
wrk -t1 -c4 -d3s -s benches/load/mcp_search.lua "http://127.0.0.1:$PORT" >/dev/null 2>&1

{
  echo "# An MCP search against a REST search, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem/ {print $2}') GiB RAM, $(uname -sr); load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "kb $(git rev-parse --short HEAD), $N questions (SQLite), release build, quotas off; wrk ${DURATION}s per run, $ROUNDS rounds alternating REST and MCP; req/s and latencies are medians of the rounds (each round's req/s in brackets); the cost is the median of the rounds' MCP/REST ratios; latencies in ms; failures are non-2xx answers and tool errors."
  echo
  echo "| c | REST req/s | MCP req/s | throughput lost | p50 REST / MCP | p99 REST / MCP | p50 cost | p99 cost | failures |"
  echo "|---|---|---|---|---|---|---|---|---|"
} | tee "$OUT"

for c in $CONCURRENCY; do
  declare -a rest=() mcp=()
  for round in $(seq 1 "$ROUNDS"); do
    echo "== c=$c round $round" >&2
    rest+=("$(run search "$c")")
    mcp+=("$(run mcp_search "$c")")
  done
  field() { printf '%s\n' "$@" | awk -v f="$FIELD" '{print $f}'; }
  list() { printf '%s\n' "$@" | awk -v f="$FIELD" '{printf "%s%s", (NR > 1 ? ", " : ""), $f}'; }
  ratio() { paste <(field "${rest[@]}") <(field "${mcp[@]}") | awk '{print ($1 > 0 ? $2 / $1 : 0)}' | median; }
  FIELD=1; r_rps=$(field "${rest[@]}" | median); m_rps=$(field "${mcp[@]}" | median)
  r_list=$(list "${rest[@]}"); m_list=$(list "${mcp[@]}"); rps_ratio=$(ratio)
  FIELD=2; r_50=$(field "${rest[@]}" | median); m_50=$(field "${mcp[@]}" | median); p50_ratio=$(ratio)
  FIELD=3; r_99=$(field "${rest[@]}" | median); m_99=$(field "${mcp[@]}" | median); p99_ratio=$(ratio)
  FIELD=4; failures=$( (field "${rest[@]}"; field "${mcp[@]}") | awk '{s += $1} END {print s}')
  pct() { awk -v r="$1" 'BEGIN {printf "%+.1f %%", (r - 1) * 100}'; }
  echo "| $c | $r_rps [$r_list] | $m_rps [$m_list] | $(awk -v r="$rps_ratio" 'BEGIN {printf "%+.1f %%", (1 - r) * 100}') | $r_50 / $m_50 | $r_99 / $m_99 | $(pct "$p50_ratio") | $(pct "$p99_ratio") | $failures |" | tee -a "$OUT"
  unset rest mcp
done
echo "written to $OUT" >&2
