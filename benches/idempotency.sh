#!/usr/bin/env bash
# The cost of `Idempotency-Key` on a POST: creating a question and adding an answer, at N
# questions (100k by default), each with a distinct key per request and without any, at
# concurrency 1 and 16. The two variants alternate ROUNDS times on one server, so drift (the
# database growing, other load on the machine) falls on both alike. Each row gives the median
# of the rounds of each variant, and the cost as the median of the rounds' ratios (keyed over
# unkeyed, each pair run back to back), which drift between rounds does not move. Prints a
# Markdown table and writes it to benches/results/idempotency-<date>[-postgres].md. Not part
# of CI. Quotas are off (KB_QUOTAS=off).
#
#   benches/idempotency.sh
#   N=1000 DURATION=3 ROUNDS=1 benches/idempotency.sh   # a quick look
#   PREBUILT=1 benches/idempotency.sh                   # use the release binary as it is
#   PG=postgres://user:pw@host:5432/postgres benches/idempotency.sh
#                                                       # on PostgreSQL (a database of its own
#                                                       # is created on that server and dropped)
#
# Honours CARGO_TARGET_DIR. Needs wrk (apt-get install -y wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-"1 16"}
SCENARIOS=${SCENARIOS:-"create add_answer"}
WORK=${WORK:-$(mktemp -d /tmp/kb-idem.XXXXXX)}
KEY=bench-admin-key-of-at-least-32-characters
PORT=${PORT:-18190}
TARGET=${CARGO_TARGET_DIR:-target}
mkdir -p benches/results
OUT=benches/results/idempotency-${DATE:-$(date -u +%Y-%m-%d)}${PG:+-postgres}.md

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

# run SCENARIO CONC KEYED -> "rps p50 p99 non2xx"
run() {
  local scenario=$1 conc=$2 keyed=$3 threads out
  threads=$(( conc < 2 ? 1 : 2 ))
  out=$(KB_N=$N KB_ADMIN_KEY=$KEY KB_IDEMPOTENCY=$keyed KB_RUN="r$(date +%s%N)" \
    wrk -t"$threads" -c"$conc" -d"${DURATION}s" --latency -s "benches/load/$scenario.lua" \
    "http://127.0.0.1:$PORT" 2>&1)
  local rps p50 p99 errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
  p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  errors=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  echo "$rps $p50 $p99 ${errors:-0}"
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

dir=$WORK/n$N
mkdir -p "$dir"
store="SQLite"
if [ -n "${PG:-}" ]; then
  db=kb_idem_bench_$$
  export KB_DATABASE_URL="${PG%/*}/$db"
  psql "$PG" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  store="PostgreSQL $(psql "$PG" -Atc 'SHOW server_version')"
fi
echo "== $N questions: generating and importing" >&2
$KB gen --count "$N" --seed 1 -o "$dir/q.ndjson"
KB_NO_SEED=1 KB_LOG=warn $KB --data-dir "$dir/data" import "$dir/q.ndjson" >/dev/null
KB_QUOTAS=off KB_DATA_DIR=$dir/data KB_BIND=127.0.0.1:$PORT KB_NO_SEED=1 KB_LOG=warn \
  KB_ADMIN_KEY=$KEY $KB >"$dir/kb.log" 2>&1 &
pid=$!
cleanup() {
  kill $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  if [ -n "${PG:-}" ]; then
    psql "$PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
wait_ready

{
  echo "# Cost of Idempotency-Key on a POST, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem/ {print $2}') GiB RAM, $(uname -sr); load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "$N questions ($store), wrk ${DURATION}s per run, $ROUNDS rounds alternating without and with a key; req/s and latencies are medians of the rounds (each round's req/s in brackets); the cost is the median of the rounds' keyed/unkeyed ratios; latencies in ms."
  echo
  echo "| POST | concurrency | without key req/s | with key req/s | cost (req/s lost) | p50 without | p50 with | p99 without | p99 with | non-2xx |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} | tee "$OUT"

for scenario in $SCENARIOS; do
  for c in $CONCURRENCY; do
    declare -a plain=() keyed=()
    for round in $(seq 1 "$ROUNDS"); do
      echo "== $scenario c=$c round $round" >&2
      plain+=("$(run "$scenario" "$c" 0)")
      keyed+=("$(run "$scenario" "$c" 1)")
    done
    field() { printf '%s\n' "$@" | awk -v f="$FIELD" '{print $f}'; }
    list() { printf '%s\n' "$@" | awk -v f="$FIELD" '{printf "%s%s", (NR > 1 ? ", " : ""), $f}'; }
    FIELD=1; p_rps=$(field "${plain[@]}" | median); k_rps=$(field "${keyed[@]}" | median)
    p_list=$(list "${plain[@]}"); k_list=$(list "${keyed[@]}")
    FIELD=2; p_50=$(field "${plain[@]}" | median); k_50=$(field "${keyed[@]}" | median)
    FIELD=3; p_99=$(field "${plain[@]}" | median); k_99=$(field "${keyed[@]}" | median)
    FIELD=4; errors=$( (field "${plain[@]}"; field "${keyed[@]}") | awk '{s += $1} END {print s}')
    FIELD=1
    ratio=$(paste <(field "${plain[@]}") <(field "${keyed[@]}") | awk '{print ($1 > 0 ? $2 / $1 : 0)}' | median)
    cost=$(awk -v r="$ratio" 'BEGIN {printf "%+.1f %%", (1 - r) * 100}')
    echo "| $scenario | $c | $p_rps [$p_list] | $k_rps [$k_list] | $cost | $p_50 | $k_50 | $p_99 | $k_99 | $errors |" | tee -a "$OUT"
    unset plain keyed
  done
done
if [ -n "${PG:-}" ]; then
  rows=$(psql "$KB_DATABASE_URL" -Atc 'SELECT COUNT(*) FROM idempotency_keys' 2>/dev/null || echo '?')
else
  rows=$(sqlite3 "$dir/data/kb.sqlite3" 'SELECT COUNT(*) FROM idempotency_keys' 2>/dev/null || echo '?')
fi
echo >>"$OUT"
echo "Idempotency records kept at the end: $rows." | tee -a "$OUT"
echo "written to $OUT" >&2
