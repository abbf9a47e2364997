#!/usr/bin/env bash
# Webhook deliveries ([docs/webhooks.md](../docs/webhooks.md)), at N questions (100k by default),
# receivers on 127.0.0.1 (benches/webhooks/bench.py: a Python receiver answering 204 at once):
#   1. throughput to 1 endpoint: Q1 questions (2,000) written while the endpoint is disabled,
#      then the endpoint enabled; from the PATCH to the last delivery received, deliveries/s;
#   2. throughput to ENDPOINTS endpoints (50): Q50 questions (200, so 10,000 deliveries)
#      written while they are disabled, then all enabled; from the first PATCH to the last
#      delivery, deliveries/s in total. Both also check every delivery arrived once and in
#      feed order per endpoint; each runs TP_ROUNDS times (3);
#   3. latency from an acknowledged write to its delivery: one healthy endpoint, one writer
#      at RATES questions a second (10 then 20) for LAT_SECS (60) each; per question the time
#      from its 201 to the receiver getting its question.created (same clock), p50/p99/max;
#   4. a receiver that is down: ENDPOINTS endpoints aimed at a closed port (connection
#      refused) against none, in alternating phases on one server so the machine's noise falls
#      on both alike: ROUNDS (10) rounds of PHASE seconds (60) with the endpoints registered
#      and enabled, then PHASE seconds with none. In each phase three wrk run together: GET by
#      id (c=8), search (c=8) and writes (c=1, KB_WRITE_DELAY_MS=50 between a 201 and the
#      next write: about 15 writes/s, each an event queued for every endpoint). The endpoints
#      are registered at the start of each down phase and deleted after it (DOWN=toggle: once,
#      then enabled and disabled; enabling then catches up with the events of the phase
#      without them in one burst). Reported: p99 and req/s per phase kind (medians of the
#      rounds), the median of the rounds' paired ratios, kb's CPU time, and the delivery
#      attempts made (kb_webhook_attempts_total from /metrics); then kb's CPU at rest for IDLE
#      seconds (10) with the endpoints down and two events queued for each (written while
#      they were disabled), and with none.
# Writes benches/results/webhooks-<date>[-postgres].md. Not part of CI. Quotas are off
# (KB_QUOTAS=off), load shedding out of the way (KB_MAX_EXPENSIVE=1024), private receivers
# allowed (KB_WEBHOOKS_ALLOW_PRIVATE=true); every other webhook setting is its default.
#
#   benches/webhooks.sh                                 # about 35 minutes
#   N=1000 Q1=300 Q50=20 TP_ROUNDS=1 LAT_SECS=10 PHASE=10 ROUNDS=2 benches/webhooks.sh
#                                                       # a quick look (2 minutes)
#   PARTS="throughput latency" benches/webhooks.sh      # only some parts (throughput,
#                                                       # latency, down)
#   PREBUILT=1 benches/webhooks.sh                      # use the release binary as it is
#   PG=postgres://user:pw@host:5432/postgres benches/webhooks.sh
#                                                       # on PostgreSQL (a database of its own
#                                                       # is created on that server and dropped)
#
#   KB_COMMIT=b4236b0 PREBUILT=1 benches/webhooks.sh  # name the commit a prebuilt binary is of
#   RAW=/tmp/lat benches/webhooks.sh                   # also every write's times (latency part)
#
# kb inherits the environment, so other settings can be tried the same way
# (KB_WEBHOOKS_CONCURRENCY=50 …); the results file names the ones that differ.
# Honours CARGO_TARGET_DIR. Needs wrk (apt-get install -y wrk) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
Q1=${Q1:-2000}
Q50=${Q50:-200}
ENDPOINTS=${ENDPOINTS:-50}
TP_ROUNDS=${TP_ROUNDS:-3}
RATES=${RATES:-"10 20"}
LAT_SECS=${LAT_SECS:-60}
PHASE=${PHASE:-60}
ROUNDS=${ROUNDS:-10}
DOWN=${DOWN:-recreate}
IDLE=${IDLE:-10}
PARTS=${PARTS:-"throughput latency down"}
WORK=${WORK:-$(mktemp -d /tmp/kb-webhooks.XXXXXX)}
KEY=bench-admin-key-of-at-least-32-characters
PORT=${PORT:-18380}
DEAD_PORT=${DEAD_PORT:-$((PORT + 9))}
TARGET=${CARGO_TARGET_DIR:-target}
mkdir -p benches/results
OUT=benches/results/webhooks-${DATE:-$(date -u +%Y-%m-%d)}${PG:+-postgres}.md

if ! command -v wrk >/dev/null; then
  apt-get install -y wrk >/dev/null
fi
if [ -z "${PREBUILT:-}" ]; then
  echo "== building (release)" >&2
  cargo build --release --locked -q --bin kb
fi
KB=$TARGET/release/kb
BENCH="python3 benches/webhooks/bench.py"
. benches/common.sh

wait_ready() {
  for _ in $(seq 1 20000); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0
    sleep 0.01
  done
  echo "kb did not become ready" >&2
  return 1
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# The machine's load now, and the busiest processes that are not this benchmark's.
machine() {
  local busy
  busy=$(top -bn2 -d0.5 -o %CPU | awk '/^top -/ {n++} n == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 >= 10 \
    && $12 !~ /^(kb|wrk|python3|top)$/ {printf "%s%s %s%%", (k++ ? ", " : ""), $12, $9}')
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg)${busy:+; busy: $busy}"
}
metrics() { curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/metrics"; }
# Delivery attempts made so far (every outcome and kind).
attempts() { metrics | awk '/^kb_webhook_attempts_total/ {s += $NF} END {printf "%d", s}'; }
# Deliveries queued, and in how many endpoints' queues (an endpoint with 2 or more: its head
# waits for a retry with more behind it).
queued() {
  metrics | awk '/^kb_webhook_queue_depth/ {s += $NF; if ($NF >= 2) m++}
    END {printf "%d (%d endpoints with ≥ 2)", s, m}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

dir=$WORK/n$N
mkdir -p "$dir"
store="SQLite"
if [ -n "${PG:-}" ]; then
  db=kb_webhooks_bench_$$
  export KB_DATABASE_URL="${PG%/*}/$db"
  psql "$PG" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  store="PostgreSQL $(psql "$PG" -Atc 'SHOW server_version')"
fi
echo "== $N questions: generating and importing" >&2
$KB gen --count "$N" --seed 1 -o "$dir/q.ndjson"
KB_NO_SEED=1 KB_LOG=warn $KB --data-dir "$dir/data" import "$dir/q.ndjson" >/dev/null
KB_QUOTAS=off KB_MAX_EXPENSIVE=1024 KB_WEBHOOKS_ALLOW_PRIVATE=true KB_DATA_DIR=$dir/data \
  KB_BIND=127.0.0.1:$PORT KB_NO_SEED=1 KB_LOG=warn KB_ADMIN_KEY=$KEY $KB >"$dir/kb.log" 2>&1 &
pid=$!
cleanup() {
  kill $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  if [ -n "${PG:-}" ]; then
    psql "$PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  fi
  if [ -n "${KEEP_LOG:-}" ]; then cp "$dir/kb.log" "$KEEP_LOG"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
wait_ready
base=http://127.0.0.1:$PORT
# Which code: KB_COMMIT names it when the binary was built elsewhere (PREBUILT).
built=${KB_COMMIT:-$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src migrations Cargo.toml Cargo.lock 2>/dev/null || echo " with uncommitted changes")}

{
  echo "# Webhook deliveries, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem/ {print $2}') GiB RAM, $(uname -sr); $(machine) at start."
  echo "kb $built, $N questions ($store), release build; webhook settings at their defaults but for KB_WEBHOOKS_ALLOW_PRIVATE=true${KB_WEBHOOKS_CONCURRENCY:+ and KB_WEBHOOKS_CONCURRENCY=$KB_WEBHOOKS_CONCURRENCY} (so KB_WEBHOOKS_CONCURRENCY ${KB_WEBHOOKS_CONCURRENCY:-16}, KB_WEBHOOKS_FIRST_RETRY 5s); receivers in one Python process (ThreadingHTTPServer, 204 at once) on the same machine; latencies in ms."
} | tee "$OUT"

if [[ " $PARTS " == *" throughput "* ]]; then
  {
    echo
    echo "## Throughput: queued events sent once the endpoints are enabled"
    echo
    echo "Before: $(machine)."
    echo
    echo "| endpoints | questions written while disabled | deliveries expected | received | queued while disabled | seconds from the PATCH to the last | deliveries/s | first delivery after (ms) | duplicates | out of order | CPU s, kb / receiver | writes/s while disabled |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
  } | tee -a "$OUT"
  for spec in "1 $Q1" "$ENDPOINTS $Q50"; do
    read -r e q <<<"$spec"
    rates=()
    for round in $(seq 1 "$TP_ROUNDS"); do
      echo "== throughput: $e endpoint(s), $q questions, round $round" >&2
      read -r _ _ expected got secs rate first pending dups ooo wrate kcpu rcpu < <(KB_PID=$pid $BENCH throughput "$base" "$KEY" "$e" "$q")
      rates+=("$rate")
      echo "| $e | $q | $expected | $got | $pending | $secs | $rate | $first | $dups | $ooo | $kcpu / $rcpu | $wrate |" | tee -a "$OUT"
    done
    echo "| **$e, median of $TP_ROUNDS** | | | | | | **$(printf '%s\n' "${rates[@]}" | median)** | | | | | |" | tee -a "$OUT"
  done
  { echo; echo "After: $(machine)."; } | tee -a "$OUT"
fi

if [[ " $PARTS " == *" latency "* ]]; then
  {
    echo
    echo "## Latency: from a write's 201 to its delivery, 1 healthy endpoint"
    echo
    echo "Before: $(machine)."
    echo
    echo "| writes/s asked (achieved), c=1 | seconds | writes | delivered | p50 | p90 | p99 | max | from the write's sending p50 / p99 | the write itself p50 / p99 |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
  } | tee -a "$OUT"
  for rate in $RATES; do
    echo "== latency at $rate writes/s for ${LAT_SECS}s" >&2
    read -r n got p50 p90 p99 max s50 s99 w50 w99 achieved < <(RAW=${RAW:+$RAW-$rate} $BENCH latency "$base" "$KEY" "$rate" "$LAT_SECS")
    echo "| $rate ($achieved) | $LAT_SECS | $n | $got | $p50 | $p90 | $p99 | $max | $s50 / $s99 | $w50 / $w99 |" | tee -a "$OUT"
  done
  { echo; echo "After: $(machine)."; } | tee -a "$OUT"
fi

# phase -> "get_p99 get_rps search_p99 search_rps write_p99 write_rps non2xx cpu_s attempts"
phase() {
  local a0 t0 out
  a0=$(attempts); t0=$(cpu_ticks)
  KB_N=$N wrk -t1 -c8 -d"${PHASE}s" --latency -s benches/load/get_by_id.lua "$base" >"$WORK/get.txt" 2>&1 &
  local g=$!
  wrk -t1 -c8 -d"${PHASE}s" --latency -s benches/load/search.lua "$base" >"$WORK/search.txt" 2>&1 &
  local s=$!
  KB_ADMIN_KEY=$KEY KB_RUN="w$(date +%s%N)" wrk -t1 -c1 -d"${PHASE}s" --latency \
    -s benches/webhooks/writes.lua "$base" >"$WORK/write.txt" 2>&1
  wait $g $s
  local cpu att line=""
  cpu=$(awk -v a="$t0" -v b="$(cpu_ticks)" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) / hz}')
  att=$(( $(attempts) - a0 ))
  local errors=0
  for f in get search write; do
    out=$(cat "$WORK/$f.txt")
    line+="$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')") "
    line+="$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}') "
    errors=$(( errors + $(echo "$out" | awk '/Non-2xx/ {s += $NF} /Socket errors/ {s += 1} END {print s + 0}') ))
  done
  echo "$line$errors $cpu $att"
}

if [[ " $PARTS " == *" down "* ]]; then
  if (exec 3<>"/dev/tcp/127.0.0.1/$DEAD_PORT") 2>/dev/null; then
    echo "something listens on port $DEAD_PORT: set DEAD_PORT" >&2
    exit 1
  fi
  dead=http://127.0.0.1:$DEAD_PORT/hook
  {
    echo
    echo "## A receiver that is down: $ENDPOINTS endpoints at a closed port against none"
    echo
    echo "Before: $(machine)."
    echo
    echo "$ROUNDS rounds of ${PHASE}s with the endpoints, then ${PHASE}s without ($([ "$DOWN" = toggle ] && echo "registered once, enabled and disabled" || echo "registered, enabled, at the start of each down phase and deleted after it")); three wrk at once in each phase: GET by id c=8, search c=8, writes c=1 with 50 ms between a 201 and the next write. Latencies are wrk's p99 in ms."
    echo
    echo "| round | phase | GET p99 | GET req/s | search p99 | search req/s | write p99 | writes/s | non-2xx, socket errors | kb CPU s | delivery attempts | queued at the end |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  } | tee -a "$OUT"
  down=(); up=()
  ids=""
  if [ "$DOWN" = toggle ]; then
    ids=$($BENCH register "$base" "$KEY" "$ENDPOINTS" "$dead")
  fi
  for round in $(seq 1 "$ROUNDS"); do
    echo "== down: round $round, with the endpoints" >&2
    if [ "$DOWN" = toggle ]; then
      # shellcheck disable=SC2086
      $BENCH toggle "$base" "$KEY" on $ids
    else
      ids=$($BENCH register "$base" "$KEY" "$ENDPOINTS" "$dead" on)
    fi
    r=$(phase)
    q=$(queued)
    down+=("$r")
    echo "| $round | $ENDPOINTS down | $(echo "$r" | awk '{printf "%s | %s | %s | %s | %s | %s | %s | %s | %s", $1, $2, $3, $4, $5, $6, $7, $8, $9}') | $q |" | tee -a "$OUT"
    # shellcheck disable=SC2086
    if [ "$DOWN" = toggle ]; then $BENCH toggle "$base" "$KEY" off $ids; else $BENCH delete "$base" "$KEY" $ids; fi
    sleep 2
    echo "== down: round $round, without" >&2
    r=$(phase)
    up+=("$r")
    echo "| $round | none | $(echo "$r" | awk '{printf "%s | %s | %s | %s | %s | %s | %s | %s | %s", $1, $2, $3, $4, $5, $6, $7, $8, $9}') | $(queued) |" | tee -a "$OUT"
  done
  if [ "$DOWN" = toggle ]; then
    # shellcheck disable=SC2086
    $BENCH delete "$base" "$KEY" $ids
  fi
  field() { printf '%s\n' "$@" | awk -v f="$FIELD" '{print $f}'; }
  # summary: for each measure, the median with / without and the median of the rounds' ratios
  {
    echo
    echo "After: $(machine)."
    echo
    echo "| measure | median with $ENDPOINTS endpoints down | median without | median of the rounds' ratios (with / without) |"
    echo "|---|---:|---:|---:|"
  } | tee -a "$OUT"
  for spec in "1:GET by id p99 (ms)" "2:GET by id req/s" "3:search p99 (ms)" "4:search req/s" \
      "5:write p99 (ms)" "6:writes/s" "8:kb CPU s per phase" "9:delivery attempts per phase"; do
    FIELD=${spec%%:*}; name=${spec#*:}
    with=$(field "${down[@]}" | median); without=$(field "${up[@]}" | median)
    if field "${up[@]}" | awk '$1 <= 0 {bad = 1} END {exit !bad}'; then
      ratio="–"
    else
      ratio=$(paste <(field "${down[@]}") <(field "${up[@]}") | awk '{print $1 / $2}' | median)
      ratio=$(awk -v r="$ratio" 'BEGIN {printf "%.3f (%+.1f %%)", r, (r - 1) * 100}')
    fi
    echo "| $name | $with | $without | $ratio |" | tee -a "$OUT"
  done
  FIELD=9
  total=$(field "${down[@]}" | awk '{s += $1} END {print s}')
  # kb at rest: the endpoints down with two events queued each, no request coming in.
  idle_cpu() {
    local t0
    t0=$(cpu_ticks); sleep "$IDLE"
    awk -v a="$t0" -v b="$(cpu_ticks)" -v hz="$(getconf CLK_TCK)" -v s="$IDLE" 'BEGIN {printf "%.0f", (b - a) / hz / s * 100}'
  }
  echo "== down: at rest" >&2
  ids=$($BENCH register "$base" "$KEY" "$ENDPOINTS" "$dead")
  for k in 1 2; do
    curl -sf -o /dev/null -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
      -d "{\"title\": \"webhook bench at rest $k $$\", \"category\": \"golang\"}" "$base/api/v1/questions"
  done
  # shellcheck disable=SC2086
  $BENCH toggle "$base" "$KEY" on $ids
  sleep 2
  rest_queued=$(queued)
  rest_with=$(idle_cpu)
  # shellcheck disable=SC2086
  $BENCH delete "$base" "$KEY" $ids
  sleep 2
  rest_without=$(idle_cpu)
  { echo; echo "Delivery attempts during the $ROUNDS down phases ($((ROUNDS * PHASE)) s with $ENDPOINTS endpoints refusing connections): $total in all."
    echo
    echo "At rest (no request for ${IDLE}s), $ENDPOINTS endpoints down, registered disabled, two questions written, then enabled (so each queue's first event fails and waits for its retry, the second behind it; queued: $rest_queued): kb used $rest_with % of a core; $rest_without % with no endpoint."; } | tee -a "$OUT"
fi

# What kb logged (KB_LOG=warn: warnings and errors only).
{
  echo
  echo "## kb's log"
  echo
  lines=$(grep -c . "$dir/kb.log" || true)
  if [ "${lines:-0}" -eq 0 ]; then
    echo "Nothing logged at warn or above."
  else
    echo "$lines lines at warn or above; by message (first 10 kinds):"
    echo
    echo '```'
    sed -E 's/\x1b\[[0-9;]*m//g; s/^[^ ]+ +//' "$dir/kb.log" | cut -c1-160 | sort | uniq -c | sort -rn | head -10
    echo '```'
  fi
} | tee -a "$OUT"
echo "written to $OUT" >&2
