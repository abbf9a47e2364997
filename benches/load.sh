#!/usr/bin/env bash
# Load benchmark: builds the release binary, generates and imports 1k, 100k and 1M questions,
# and measures import throughput, cold start, RSS, and requests/s with p50/p99 for /healthz,
# /readyz, GET by id (one id, uniform ids, and a hot set: 90 % of requests to 1 % of the ids),
# list, search, suggest and quiz at concurrency 1, 16 and 64, a mixed 90/10 read/write run, the
# probes and GET by id again with quotas on, and two bare axum endpoints (the ceilings: a small
# JSON object, and a body of kb's mean GET size looked up by id) in the same run, with kb's
# share of each. Prints a Markdown table and writes
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
#   POSTGRES=0 benches/load.sh      # skip the PostgreSQL column (on by default: .ci/postgres
#                                   # finds, starts or installs a server; PG_SIZE=100000)
#
# The PostgreSQL part, at PG_SIZE questions: import rate, GET by id, search, quiz and mixed
# 90/10 on one replica, each as a ratio to the SQLite figure of the same run, then replication
# lag (benches/load/lag.py) between two replicas while the mixed load runs on the first.
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
  local port=$1 tries=${2:-2000}
  for _ in $(seq 1 "$tries"); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.005
  done
  echo "kb did not become ready" >&2
  return 1
}

# Every id read once, so GET by id measures a server that has been up a while rather than its
# first minutes (the store read alone: KB_CACHE_MB=0, see benches/ab.sh).
warm() {
  echo "== $N: reading every question once (warming the question cache)" >&2
  KB_N=$N wrk -t2 -c16 -d"$(( N / 10000 + 2 ))s" -s benches/load/warm.lua "http://127.0.0.1:$1" >/dev/null 2>&1
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
shares=()
declare -A sqlite_rps sqlite_p99 sqlite_import
# rps_of ROW / p99_of ROW: fields of a run_wrk table row.
rps_of() { echo "$1" | awk -F'|' '{gsub(/ /, "", $5); print $5}'; }
p99_of() { echo "$1" | awk -F'|' '{gsub(/ /, "", $7); print $7}'; }
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

  # The mean size of kb's own GET by id answers here: the sized bare route answers as much.
  mean_size=$(python3 - "$PORT" "$N" <<'PY'
import http.client, random, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
sizes = []
for i in random.Random(5).sample(range(1, n + 1), min(n, 500)):
    c.request("GET", f"/api/v1/questions/{i}")
    sizes.append(len(c.getresponse().read()))
print(round(sum(sizes) / len(sizes)))
PY
)
  warm "$PORT"
  for scenario in healthz readyz get_one get_by_id get_hot list search suggest quiz; do
    for c in $CONCURRENCY; do
      echo "== $N: $scenario c=$c" >&2
      row=$(run_wrk "$scenario" "$scenario" "$c" "$PORT")
      rows+=("$row")
      sqlite_rps["$N $scenario $c"]=$(rps_of "$row")
      sqlite_p99["$N $scenario $c"]=$(p99_of "$row")
    done
  done
  echo "== $N: bare (ceilings; sized body $mean_size bytes)" >&2
  $BARE 127.0.0.1:$BARE_PORT "$N" "$mean_size" &
  bare=$!
  for _ in $(seq 1 400); do
    curl -sf "http://127.0.0.1:$BARE_PORT/bare" >/dev/null 2>&1 && break
    sleep 0.05
  done
  for c in $CONCURRENCY; do
    echo "== $N: bare c=$c" >&2
    row=$(run_wrk "bare axum, small JSON (ceiling)" bare "$c" "$BARE_PORT")
    rows+=("$row")
    sqlite_rps["$N bare $c"]=$(rps_of "$row")
    row=$(run_wrk "bare axum, $mean_size-byte body by id (ceiling)" bare_sized "$c" "$BARE_PORT")
    rows+=("$row")
    sqlite_rps["$N bare_sized $c"]=$(rps_of "$row")
  done
  kill $bare
  wait $bare 2>/dev/null || true
  share() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f %%", 100 * a / b; else print "-" }'; }
  for c in $CONCURRENCY; do
    shares+=("| $N | $c | $(share "${sqlite_rps["$N healthz $c"]}" "${sqlite_rps["$N bare $c"]}") | $(share "${sqlite_rps["$N get_one $c"]}" "${sqlite_rps["$N bare_sized $c"]}") | $(share "${sqlite_rps["$N get_hot $c"]}" "${sqlite_rps["$N bare_sized $c"]}") | $(share "${sqlite_rps["$N get_by_id $c"]}" "${sqlite_rps["$N bare_sized $c"]}") | $(share "${sqlite_rps["$N get_by_id $c"]}" "${sqlite_rps["$N bare $c"]}") |")
  done
  rss_read=$(rss_mb $pid)
  anon_read=$(anon_mb $pid)
  for c in 16; do
    echo "== $N: mixed c=$c" >&2
    row=$(run_wrk "mixed 90/10 read/write" mixed "$c" "$PORT")
    rows+=("$row")
    sqlite_rps["$N mixed $c"]=$(rps_of "$row")
    sqlite_p99["$N mixed $c"]=$(p99_of "$row")
  done
  rss_end=$(rss_mb $pid)
  hwm=$(hwm_mb $pid)
  kill $pid
  wait $pid 2>/dev/null || true
  # The same reads with quotas on (rates raised so nothing is refused): the route guard's
  # bucket is part of what a request costs.
  KB_QUOTAS=on KB_ANONYMOUS_RATE=1000000000/min KB_KEY_RATE=1000000000/min KB_MAX_EXPENSIVE=1024 KB_MMAP_MB=${KB_MMAP_MB:-0} KB_DATA_DIR=$dir/data KB_BIND=127.0.0.1:$PORT KB_NO_SEED=1 KB_LOG=warn KB_ADMIN_KEY=$KEY \
    $KB >"$dir/kb-quotas.log" 2>&1 &
  pid=$!
  wait_ready "$PORT"
  warm "$PORT"
  for scenario in healthz get_one get_by_id; do
    echo "== $N: $scenario c=16, quotas on" >&2
    rows+=("$(run_wrk "$scenario (quotas on)" "$scenario" 16 "$PORT")")
  done
  kill $pid
  wait $pid 2>/dev/null || true
  summary+=("| $N | $import_s | $import_rate | $du_mb | $cold_ms | $rss_start | $rss_read ($anon_read private) | $hwm |")
  sqlite_import[$N]=$import_rate
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
  echo
  echo "## kb as a share of the bare server in the same run"
  echo
  echo "Small: the bare small JSON endpoint; sized: the bare body of kb's mean GET size, by id."
  echo
  echo "| questions | concurrency | /healthz of small | GET one id (cached) of sized | GET hot set of sized | GET uniform ids of sized | GET uniform ids of small |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${shares[@]}"
} | tee -a "$OUT"

PG_SIZE=${PG_SIZE:-100000}
if [ "${POSTGRES:-1}" = 1 ] && [ -n "${sqlite_import[$PG_SIZE]:-}" ]; then
  pg_server=$(.ci/postgres)
  pg_db=kb_bench_$$
  pg_url="${pg_server%/*}/$pg_db"
  psql "$pg_server" -qc "DROP DATABASE IF EXISTS $pg_db" -c "CREATE DATABASE $pg_db"
  N=$PG_SIZE
  dir=$WORK/pg
  mkdir -p "$dir"
  echo "== PostgreSQL $N: generating and importing" >&2
  $KB gen --count "$N" --seed 1 -o "$dir/q.ndjson"
  start=$(date +%s.%N)
  KB_DATABASE_URL=$pg_url KB_NO_SEED=1 KB_LOG=warn $KB --data-dir "$dir/a" import "$dir/q.ndjson" >/dev/null
  end=$(date +%s.%N)
  pg_import=$(awk -v n="$N" -v a="$start" -v b="$end" 'BEGIN {printf "%.0f", n / (b - a)}')
  pg_env=(KB_DATABASE_URL=$pg_url KB_QUOTAS=off KB_MAX_EXPENSIVE=1024 KB_NO_SEED=1 KB_LOG=warn KB_ADMIN_KEY=$KEY)
  env "${pg_env[@]}" KB_DATA_DIR=$dir/a KB_BIND=127.0.0.1:$((PORT + 2)) $KB >"$dir/a.log" 2>&1 &
  pg_a=$!
  wait_ready $((PORT + 2))
  warm $((PORT + 2))
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
  pg_rows=("| import (questions/s) | - | $pg_import | ${sqlite_import[$N]} | $(ratio "$pg_import" "${sqlite_import[$N]}") | | |")
  for scenario in get_by_id search quiz mixed; do
    for c in 1 16; do
      [ "$scenario" = mixed ] && [ "$c" = 1 ] && continue
      key="$N $scenario $c"
      [ -z "${sqlite_rps[$key]:-}" ] && continue
      echo "== PostgreSQL $N: $scenario c=$c" >&2
      row=$(run_wrk "$scenario" "$scenario" "$c" $((PORT + 2)))
      rps=$(rps_of "$row"); p99=$(p99_of "$row")
      pg_rows+=("| $scenario | $c | $rps | ${sqlite_rps[$key]} | $(ratio "$rps" "${sqlite_rps[$key]}") | $p99 | ${sqlite_p99[$key]} |")
    done
  done
  echo "== PostgreSQL $N: a second replica (builds its index from the database)" >&2
  start=$(date +%s%N)
  env "${pg_env[@]}" KB_DATA_DIR=$dir/b KB_BIND=127.0.0.1:$((PORT + 3)) $KB >"$dir/b.log" 2>&1 &
  pg_b=$!
  wait_ready $((PORT + 3)) 120000
  replica_build_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "== PostgreSQL $N: replication lag under the mixed load (c=16 on replica A)" >&2
  KB_N=$N KB_ADMIN_KEY=$KEY wrk -t2 -c16 -d"${LAG_DURATION:-60}s" -s benches/load/mixed.lua \
    "http://127.0.0.1:$((PORT + 2))" >"$dir/lag-wrk.txt" 2>&1 &
  lag_wrk=$!
  read -r lag_n lag_p50 lag_p99 lag_max < <(python3 benches/load/lag.py \
    "http://127.0.0.1:$((PORT + 2))" "http://127.0.0.1:$((PORT + 3))" "$KEY" "${LAG_PROBES:-200}" 0.2)
  wait $lag_wrk || true
  lag_rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$dir/lag-wrk.txt")
  kill $pg_a $pg_b
  wait $pg_a $pg_b 2>/dev/null || true
  psql "$pg_server" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)"
  {
    echo
    echo "## PostgreSQL (one replica unless said), $N questions, PostgreSQL $(psql "$pg_server" -Atc 'SHOW server_version') on this machine"
    echo
    echo "| measure | concurrency | PostgreSQL req/s | SQLite req/s | ratio | PostgreSQL p99 ms | SQLite p99 ms |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${pg_rows[@]}"
    echo
    echo "Replication lag, write acknowledged by replica A until replica B's search finds it, $lag_n probes"
    echo "while the mixed 90/10 load ran on A at $lag_rps req/s: p50 $lag_p50 ms, p99 $lag_p99 ms, max $lag_max ms."
    echo "A second replica with an empty data directory was ready (index built from PostgreSQL) in $replica_build_ms ms."
  } | tee -a "$OUT"
fi

if [ "${CRASH:-0}" = 1 ]; then
  echo "== crash test: SIGKILL in the middle of a 100k import (release build)" >&2
  KB_CRASH_IMPORT_N=100000 cargo test --release --locked --test api \
    a_sigkill_mid_import_then_the_same_import_again_equals_a_clean_import 2>&1 | tail -3 | tee -a "$OUT"
fi
rm -rf "$WORK"
echo "written to $OUT" >&2
