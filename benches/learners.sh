#!/usr/bin/env bash
# Learners' data ([docs/learners.md](../docs/learners.md)) for one heavy learner: Q generated
# questions (5,000) and N reviews (100,000) over the past DAYS days (300), shaped like a real
# history (benches/learners/bench.py: each card's reviews days apart, mostly `good`, some
# `again`, two sessions a day in Asia/Shanghai):
#   1. setup: the history posted to …/reviews/batch, 1,000 a request in time order, reviews/s;
#      then the wait for the fits kb queued by itself meanwhile (at 64 reviews, then at each
#      doubling) to finish;
#   2. progress: GET …/stats?days=30 and ?days=365 (tz=Asia/Shanghai) with wrk for DURATION
#      seconds (20) at c=1 and c=4: req/s, p50/p90/p99/max; then each store query behind it
#      timed on its own (sqlite3 CLI, or psql EXPLAIN ANALYZE on PostgreSQL) with its plan;
#   3. the history: GET …/reviews as NDJSON (all N), EXPORTS times (3), seconds and reviews/s;
#      and GET /api/v1/export?with_learners=true the same number of times;
#   4. a fit: POST …/settings/fit on an idle server, polled until `fit` is idle (seconds,
#      `parameters.source`, the CPU of kb's fit thread); then search latency while fits run:
#      ROUNDS (5) rounds, each wrk searching at c=4 while fits run back to back for PHASE
#      seconds (20; the last fit is waited for, then wrk is stopped with SIGINT; at most
#      MAX_FIT seconds, 900), then the same wrk for as long with no fit; p99 with and
#      without, and the median of the rounds' paired ratios.
# Writes benches/results/learners-<date>[-postgres].md. Not part of CI. Quotas are off
# (KB_QUOTAS=off); everything else is kb's default. wrk, Python and kb share the machine.
#
#   benches/learners.sh                          # about 20 minutes at the defaults, depending
#                                                # on how long a fit takes under load
#   N=10000 DURATION=5 EXPORTS=1 ROUNDS=1 PHASE=5 benches/learners.sh   # a quick look
#   PREBUILT=1 benches/learners.sh               # use the release binary as it is
#   KEEP=1 benches/learners.sh                   # keep the data directory (and the history)
#   KB=/path/to/kb PREBUILT=1 benches/learners.sh   # or another binary
#   PG=postgres://user:pw@host:5432/postgres benches/learners.sh
#                                                # on PostgreSQL (a database of its own is
#                                                # created on that server and dropped)
#
# Honours CARGO_TARGET_DIR. Needs wrk (apt-get install -y wrk), python3, curl, and sqlite3 (or
# psql) for the query timings.
set -euo pipefail
cd "$(dirname "$0")/.."

Q=${Q:-5000}
N=${N:-100000}
DAYS=${DAYS:-300}
SEED=${SEED:-1}
DURATION=${DURATION:-20}
EXPORTS=${EXPORTS:-3}
ROUNDS=${ROUNDS:-5}
PHASE=${PHASE:-20}
MAX_FIT=${MAX_FIT:-900}
TZ_NAME=Asia/Shanghai
LEARNER=bench-learner
WORK=${WORK:-$(mktemp -d /tmp/kb-learners.XXXXXX)}
KEY=bench-admin-key-of-at-least-32-characters
PORT=${PORT:-18480}
TARGET=${CARGO_TARGET_DIR:-target}
mkdir -p benches/results
OUT=benches/results/learners-${DATE:-$(date -u +%Y-%m-%d)}${PG:+-postgres}.md

if [ -z "${PREBUILT:-}" ]; then
  echo "== building (release)" >&2
  cargo build --release --locked -q --bin kb
fi
KB=${KB:-$TARGET/release/kb}
PY="python3 benches/learners/bench.py"
base=http://127.0.0.1:$PORT
auth="Authorization: Bearer $KEY"

wait_ready() {
  for _ in $(seq 1 20000); do
    curl -sf "$base/readyz" >/dev/null 2>&1 && return 0
    sleep 0.01
  done
  echo "kb did not become ready" >&2
  return 1
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

# wrk_run CONC SECONDS URL [env...] -> the RESULT line's fields
wrk_run() {
  local conc=$1 secs=$2 url=$3 threads
  shift 3
  threads=$(( conc < 2 ? 1 : 2 ))
  env "$@" wrk -t"$threads" -c"$conc" -d"${secs}s" --timeout 30s -H "$auth" -s benches/learners/wrk.lua "$url" \
    | awk '/^RESULT/ {$1 = ""; print substr($0, 2)}'
}

dir=$WORK/kb
mkdir -p "$dir"
store="SQLite"
if [ -n "${PG:-}" ]; then
  db=kb_learners_bench_$$
  export KB_DATABASE_URL="${PG%/*}/$db"
  psql "$PG" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  store="PostgreSQL $(psql "$PG" -Atc 'SHOW server_version' | cut -d' ' -f1)"
fi
echo "== $Q questions: generating and importing" >&2
$KB gen --count "$Q" --seed 1 -o "$dir/q.ndjson"
KB_NO_SEED=1 KB_LOG=warn $KB --data-dir "$dir/data" import "$dir/q.ndjson" >/dev/null
KB_QUOTAS=off KB_DATA_DIR=$dir/data KB_BIND=127.0.0.1:$PORT KB_NO_SEED=1 \
  KB_LOG=warn,kb::service::learners=info KB_ADMIN_KEY=$KEY $KB >"$dir/kb.log" 2>&1 &
pid=$!
cleanup() {
  kill $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  if [ -n "${PG:-}" ]; then
    psql "$PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  fi
  [ -n "${KEEP:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT
wait_ready

{
  echo "# Learners' data: one learner with $N reviews, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem/ {print $2}') GiB RAM, $(uname -sr); load average at start $(cut -d' ' -f1-3 /proc/loadavg). $store; kb $($KB --version | awk '{print $2}') $(if [ -f "${KB%/*}/COMMIT" ]; then echo "built from $(cut -c1-7 "${KB%/*}/COMMIT")"; else echo "(checkout at $(git rev-parse --short HEAD))"; fi), quotas off; wrk, Python and kb on the same cores. Latencies in ms."
  echo
} | tee "$OUT"

# 1. Setup
echo "== loading $N reviews" >&2
cpu0=$(cpu_s $pid)
read -r l_reviews l_cards l_batches l_secs l_rate l_p50 l_max l_applied l_dup l_refused < <(
  $PY load "$base" "$KEY" "$LEARNER" "$N" "$DAYS" "$SEED")
cpu1=$(cpu_s $pid)
echo "== waiting for the fits kb queued by itself" >&2
read -r w_secs w_source w_reviews < <($PY wait-fit "$base" "$KEY" "$LEARNER" 3600)
auto_fits=$(grep -c 'fitted FSRS parameters' "$dir/kb.log" || true)
{
  echo "## Setup"
  echo
  echo "| measure | figure |"
  echo "|---|---|"
  echo "| questions | $Q (kb gen --seed 1, kb import) |"
  echo "| reviews posted | $l_reviews over $l_cards cards, past $DAYS days, $l_batches batches of up to 1,000 in time order |"
  echo "| results | $l_applied applied, $l_dup duplicate, $l_refused refused |"
  echo "| loading | $l_secs s, **$l_rate reviews/s**; a batch p50 $l_p50 ms, max $l_max ms; kb CPU $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.1f", b - a}') s |"
  echo "| fits kb ran by itself meanwhile (logged) | $auto_fits; the last finished $w_secs s after the load (parameters: $w_source, from $w_reviews reviews) |"
  echo
} | tee -a "$OUT"

# 2. Progress
{
  echo "## Progress: GET …/stats (tz=$TZ_NAME), wrk ${DURATION} s per row"
  echo
} | tee -a "$OUT"
summaries=""
echo "| days | c | req/s | p50 | p90 | p99 | max | non-2xx / errors | kb CPU (cores) |" | tee -a "$OUT"
echo "|---|---:|---:|---:|---:|---:|---:|---|---:|" | tee -a "$OUT"
for days in 30 365; do
  summaries+="- days=$days: \`$($PY stats "$base" "$KEY" "$LEARNER" "$days" "$TZ_NAME")\`"$'\n'
  for c in 1 4; do
    echo "== stats days=$days c=$c" >&2
    c0=$(cpu_s $pid)
    read -r n secs p50 p90 p99 max non2xx errs < <(wrk_run "$c" "$DURATION" \
      "$base/api/v1/learners/$LEARNER/stats?days=$days&tz=$TZ_NAME")
    c1=$(cpu_s $pid)
    echo "| $days | $c | $(awk -v n="$n" -v s="$secs" 'BEGIN {printf "%.1f", n / s}') | $p50 | $p90 | $p99 | $max | $non2xx / $errs | $(awk -v a="$c0" -v b="$c1" -v s="$secs" 'BEGIN {printf "%.2f", (b - a) / s}') |" | tee -a "$OUT"
  done
done
{
  echo
  echo "What the learner's progress looked like (one request each; \`ms\` as timed by the client):"
  echo
  printf '%s' "$summaries"
  echo
} | tee -a "$OUT"

# The store's queries behind it, each on its own, best of 3, with its plan. The SQL is copied
# from src/store/learners.rs (keep in step), parameters inlined.
since30=$(python3 -c "
from datetime import datetime, timedelta; from zoneinfo import ZoneInfo
z = ZoneInfo('$TZ_NAME'); d = datetime.now(z).date() - timedelta(days=29)
print(int(datetime(d.year, d.month, d.day, tzinfo=z).timestamp() * 1_000_000))")
since365=$(python3 -c "
from datetime import datetime, timedelta; from zoneinfo import ZoneInfo
z = ZoneInfo('$TZ_NAME'); d = datetime.now(z).date() - timedelta(days=364)
print(int(datetime(d.year, d.month, d.day, tzinfo=z).timestamp() * 1_000_000))")
period_sql() {
  echo "SELECT quarter, count(*) AS reviews, sum(again) AS again,
    sum(due) AS due_reviews, sum(due * (1 - again)) AS recalled
 FROM (SELECT r.reviewed_at / 900000000 AS quarter,
        CASE WHEN r.rating = 'again' THEN 1 ELSE 0 END AS again,
        CASE WHEN r.prior_due <= r.reviewed_at THEN 1 ELSE 0 END AS due
       FROM reviews r WHERE r.learner = '$LEARNER' AND r.reviewed_at >= $1) t
 GROUP BY quarter"
}
quarters_sql="SELECT quarter FROM review_quarters WHERE learner = '$LEARNER' ORDER BY quarter"
horizon=$(( $(date +%s) * 1000000 + 31 * 86400000000 ))
cards_sql="SELECT count(*) AS cards,
    sum(CASE WHEN interval_days < 1 AND reps <= 1 THEN 1 ELSE 0 END) AS learning,
    sum(CASE WHEN interval_days < 1 AND reps > 1 THEN 1 ELSE 0 END) AS relearning,
    min(due) AS next_due
 FROM review_cards WHERE learner = '$LEARNER'"
due_sql="SELECT due / 900000000 AS quarter, count(*) FROM review_cards
 WHERE learner = '$LEARNER' AND due < $horizon GROUP BY due / 900000000"
history_sql() {
  echo "SELECT r.id, r.review_id, r.question_id, q.external_id, r.rating, r.reviewed_at,
    r.stability, r.difficulty, r.interval_days,
    p.stability AS before_stability, p.difficulty AS before_difficulty,
    p.reviewed_at AS before_reviewed_at, p.interval_days AS before_interval_days
 FROM reviews r
 LEFT JOIN questions q ON q.id = r.question_id
 LEFT JOIN reviews p ON p.id = (
    SELECT p2.id FROM reviews p2
    WHERE p2.learner = r.learner AND p2.question_id = r.question_id
      AND (p2.reviewed_at < r.reviewed_at
           OR (p2.reviewed_at = r.reviewed_at AND p2.id < r.id))
    ORDER BY p2.reviewed_at DESC, p2.id DESC LIMIT 1)
 WHERE r.learner = '$LEARNER' AND r.id > $1
 ORDER BY r.id LIMIT 5000"
}
by_card_sql="SELECT r.id, r.review_id, r.question_id, q.external_id, r.rating, r.reviewed_at,
    r.stability, r.difficulty, r.interval_days
 FROM reviews r LEFT JOIN questions q ON q.id = r.question_id
 WHERE r.learner = '$LEARNER'
 ORDER BY r.question_id, r.reviewed_at, r.id"
mid_id=$( if [ -n "${PG:-}" ]; then
  psql "$KB_DATABASE_URL" -Atc "SELECT id FROM reviews WHERE learner = '$LEARNER' ORDER BY id OFFSET $((N / 2)) LIMIT 1"
else
  sqlite3 "$dir/data/kb.sqlite3" "SELECT id FROM reviews WHERE learner = '$LEARNER' ORDER BY id LIMIT 1 OFFSET $((N / 2))"
fi )
# For comparison: the quarter hours as they were read before review_quarters kept them.
distinct_sql="SELECT DISTINCT reviewed_at / 900000000 FROM reviews WHERE learner = '$LEARNER'"
declare -a q_names=("period_quarters, days=30" "period_quarters, days=365"
                    "review_quarter_hours" "(for comparison: the same from the reviews, DISTINCT)"
                    "card_figures: counts" "card_figures: due per quarter hour, next 31 days"
                    "review_history (JSON pages), first page of 5,000" "review_history, a page of 5,000 from the middle"
                    "review_history_by_card (the NDJSON stream), all")
declare -a q_sqls=("$(period_sql "$since30")" "$(period_sql "$since365")" "$quarters_sql" "$distinct_sql"
                   "$cards_sql" "$due_sql" "$(history_sql 0)" "$(history_sql "$mid_id")" "$by_card_sql")
{
  echo "The store's queries behind them, each run on its own (best of 3, every row read):"
  echo
  echo "| query | rows | ms |"
  echo "|---|---:|---:|"
} | tee -a "$OUT"
plans=""
for i in "${!q_names[@]}"; do
  sql=${q_sqls[$i]}
  if [ -n "${PG:-}" ]; then
    ms=$(for _ in 1 2 3; do psql "$KB_DATABASE_URL" -Atc "EXPLAIN (ANALYZE, FORMAT JSON) $sql" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Execution Time"])'; done | sort -g | head -1)
    rows=$(psql "$KB_DATABASE_URL" -Atc "SELECT count(*) FROM ($sql) t")
    plan=$(psql "$KB_DATABASE_URL" -Atc "EXPLAIN $sql")
  else
    # Every row read and printed to /dev/null (the shell's timer goes to standard output).
    ms=$(printf 'PRAGMA cache_size = -16000;\n.output /dev/null\n.timer on\n%s;\n%s;\n%s;\n' \
      "$sql" "$sql" "$sql" \
      | sqlite3 "$dir/data/kb.sqlite3" 2>&1 | awk '/^Run Time/ {printf "%.1f\n", $4 * 1000}' | sort -g | head -1)
    rows=$(sqlite3 "$dir/data/kb.sqlite3" "SELECT count(*) FROM ($sql)")
    plan=$(sqlite3 "$dir/data/kb.sqlite3" "EXPLAIN QUERY PLAN $sql")
  fi
  echo "| ${q_names[$i]} | $rows | $ms |" | tee -a "$OUT"
  plans+="${q_names[$i]}:"$'\n'"$plan"$'\n\n'
done
{
  echo
  echo "Their plans ($( if [ -n "${PG:-}" ]; then echo "PostgreSQL's EXPLAIN"; else echo "the sqlite3 CLI $(sqlite3 --version | cut -d' ' -f1); kb bundles its own SQLite, whose plans may differ"; fi )):"
  echo
  echo '```'
  printf '%s' "$plans"
  echo '```'
  echo
} | tee -a "$OUT"

# 3. The history
echo "== the history as NDJSON" >&2
{
  echo "## The history"
  echo
  echo "| request | run | seconds | items | MB | items/s |"
  echo "|---|---:|---:|---:|---:|---:|"
} | tee -a "$OUT"
for run in $(seq 1 "$EXPORTS"); do
  read -r secs bytes < <(curl -sf -o "$WORK/history.ndjson" -w '%{time_total} %{size_download}\n' \
    -H "$auth" -H 'Accept: application/x-ndjson' "$base/api/v1/learners/$LEARNER/reviews")
  read -r lines _ first last < <($PY history-check "$WORK/history.ndjson")
  echo "| GET …/reviews, NDJSON | $run | $secs | $lines | $(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1e6}') | **$(awk -v n="$lines" -v s="$secs" 'BEGIN {printf "%.0f", n / s}')** |" | tee -a "$OUT"
done
for run in $(seq 1 "$EXPORTS"); do
  read -r secs bytes < <(curl -sf -o "$WORK/export.ndjson" -w '%{time_total} %{size_download}\n' \
    -H "$auth" "$base/api/v1/export?with_learners=true")
  ereviews=$(python3 -c "
import json, sys
n = 0
for line in open(sys.argv[1], 'rb'):
    o = json.loads(line)
    n += len(o.get('reviews', [])) if 'learner' in o else 0
print(n)" "$WORK/export.ndjson")
  elines=$(wc -l <"$WORK/export.ndjson")
  echo "| GET /api/v1/export?with_learners=true ($Q questions, then the learner) | $run | $secs | $ereviews reviews in $elines lines | $(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1e6}') | $(awk -v n="$ereviews" -v s="$secs" 'BEGIN {printf "%.0f", n / s}') |" | tee -a "$OUT"
done
echo | tee -a "$OUT"

# 4. A fit, and searches while fits run
echo "== a fit on an idle server" >&2
read -r f_secs f_source f_reviews f_cpu f_kbcpu f_nice < <($PY fit "$base" "$KEY" "$LEARNER" "$pid" 2>"$WORK/fit-threads")
{
  echo "## A fit"
  echo
  echo "| measure | figure |"
  echo "|---|---|"
  echo "| POST …/settings/fit until \`fit\` is idle, nothing else running | **$f_secs s**; parameters.source \`$f_source\`, from $f_reviews reviews; fit thread CPU $f_cpu s (nice $f_nice), kb CPU $f_kbcpu s |"
  echo
  echo "kb's $(cat "$WORK/fit-threads")."
  echo
  echo "Search (wrk c=4, the queries of benches/load/search.lua) while fits of this learner run back to back for at least $PHASE s (the last one waited for; at most $MAX_FIT s), then for as long with none, alternating:"
  echo
  echo "| round | phase | seconds | searches/s | p50 | p90 | p99 | max | non-2xx / errors | kb CPU s | fits: count, mean / max s, fit thread CPU s |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---|"
} | tee -a "$OUT"
ratios=()
fit_p99s=()
idle_p99s=()
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round: search with a fit" >&2
  c0=$(cpu_s $pid)
  KB_SEARCH=1 wrk -t2 -c4 -d"${MAX_FIT}s" --timeout 30s -H "$auth" -s benches/learners/wrk.lua "$base" >"$WORK/wrk-fit" &
  wrk_pid=$!
  sleep 0.2
  read -r r_fits _ r_mean r_max r_source _ r_cpu < <($PY fits "$base" "$KEY" "$LEARNER" "$pid" "$PHASE")
  kill -INT $wrk_pid 2>/dev/null || true
  wait $wrk_pid
  c1=$(cpu_s $pid)
  sed -i -n 's/^RESULT //p' "$WORK/wrk-fit"
  read -r n secs p50 p90 p99 max non2xx errs <"$WORK/wrk-fit"
  echo "| $round | fit | $secs | $(awk -v n="$n" -v s="$secs" 'BEGIN {printf "%.0f", n / s}') | $p50 | $p90 | $p99 | $max | $non2xx / $errs | $(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.1f", b - a}') | $r_fits, $r_mean / $r_max s ($r_source), $r_cpu s |" | tee -a "$OUT"
  fit_p99=$p99
  idle_secs=$(awk -v s="$secs" 'BEGIN {printf "%d", s + 0.5}')
  echo "== round $round: search, no fit, ${idle_secs}s" >&2
  c0=$(cpu_s $pid)
  read -r n secs p50 p90 p99 max non2xx errs < <(wrk_run 4 "$idle_secs" "$base" KB_SEARCH=1)
  c1=$(cpu_s $pid)
  echo "| $round | idle | $secs | $(awk -v n="$n" -v s="$secs" 'BEGIN {printf "%.0f", n / s}') | $p50 | $p90 | $p99 | $max | $non2xx / $errs | $(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.1f", b - a}') | |" | tee -a "$OUT"
  fit_p99s+=("$fit_p99")
  idle_p99s+=("$p99")
  ratios+=("$(awk -v f="$fit_p99" -v i="$p99" 'BEGIN {printf "%.3f", f / i}')")
done
{
  echo
  echo "p99 with a fit running: median $(printf '%s\n' "${fit_p99s[@]}" | median) ms; idle: median $(printf '%s\n' "${idle_p99s[@]}" | median) ms; the rounds' ratios (fit / idle) $(IFS=,; echo "${ratios[*]}" | sed 's/,/, /g'), median **$(printf '%s\n' "${ratios[@]}" | median)** (target ≤ 1.20)."
} | tee -a "$OUT"
echo "written to $OUT" >&2
