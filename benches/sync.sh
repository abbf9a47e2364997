#!/usr/bin/env bash
# Staying-in-step benchmark, at N questions (default 100,000) on SQLite, plus two replicas on
# PostgreSQL for the cross-replica figure:
#   - reading the change feed from its start, 1,000 events a page (a first sync without an
#     export), events/s;
#   - STREAMS open Server-Sent-Event streams (default 1,000): kb's RSS before and with them
#     open, and how long a write takes to reach every stream (p50/p99/max over WRITES writes);
#   - the same on PostgreSQL with the streams on replica B and the writes on replica A.
# Writes a Markdown table to benches/results/sync-<date>.md. Not part of CI. Quotas are off and
# the live caps raised: this measures what the server can do, not how it refuses.
#
#   benches/sync.sh
#   N=10000 STREAMS=200 benches/sync.sh
#   PREBUILT=1 benches/sync.sh     # use target/release as it is
#   POSTGRES=0 benches/sync.sh     # skip the PostgreSQL part
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
STREAMS=${STREAMS:-1000}
WRITES=${WRITES:-20}
WORK=${WORK:-$(mktemp -d /tmp/kb-sync.XXXXXX)}
KEY=bench-admin-key-of-at-least-32-characters
PORT=${PORT:-18280}
mkdir -p benches/results
OUT=benches/results/sync-$(date -u +%Y-%m-%d).md
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [ -z "${PREBUILT:-}" ]; then
  echo "== building (release)" >&2
  cargo build --release --locked -q --bin kb
fi
KB=target/release/kb

wait_ready() {
  for _ in $(seq 1 20000); do
    curl -sf "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.01
  done
  echo "kb did not become ready" >&2
  return 1
}
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
common=(KB_QUOTAS=off KB_NO_SEED=1 KB_LOG=warn KB_ADMIN_KEY=$KEY KB_MAX_CONNECTIONS=8192
        KB_LIVE_PER_CREDENTIAL=100000 KB_LIVE_PER_ADDRESS=100000)

echo "== $N questions: generating and importing" >&2
$KB gen --count "$N" --seed 1 -o "$WORK/q.ndjson"
env "${common[@]}" $KB --data-dir "$WORK/s" import "$WORK/q.ndjson" >/dev/null
env "${common[@]}" KB_DATA_DIR=$WORK/s KB_BIND=127.0.0.1:$PORT $KB >"$WORK/s.log" 2>&1 &
pid=$!
wait_ready $PORT
base=http://127.0.0.1:$PORT

echo "== reading the feed from its start" >&2
read -r f_events f_pages f_secs f_rate f_mbs < <(python3 benches/sync/feed.py "$base" "$KEY" 1000)
read -r f2_events f2_pages f2_secs f2_rate f2_mbs < <(python3 benches/sync/feed.py "$base" "$KEY" 1000)

echo "== $STREAMS streams" >&2
rss_before=$(rss_mb $pid)
coproc STREAMS_PROC { python3 benches/sync/streams.py "$base" "$base" "$KEY" "$STREAMS" "$WRITES" 0.5; }
read -r opened <&"${STREAMS_PROC[0]}"
sleep 1
rss_open=$(rss_mb $pid)
read -r s_p50 s_p99 s_max s_got s_expected <&"${STREAMS_PROC[0]}"
rss_after=$(rss_mb $pid)
wait "$STREAMS_PROC_PID" 2>/dev/null || true
kill $pid; wait $pid 2>/dev/null || true

pg_row=""
if [ "${POSTGRES:-1}" = 1 ]; then
  pg_server=$(.ci/postgres)
  pg_db=kb_bench_sync_$$
  pg_url="${pg_server%/*}/$pg_db"
  psql "$pg_server" -qc "DROP DATABASE IF EXISTS $pg_db" -c "CREATE DATABASE $pg_db"
  echo "== PostgreSQL: two replicas, streams on B, writes on A" >&2
  env "${common[@]}" KB_DATABASE_URL=$pg_url KB_NO_SEED=0 KB_DATA_DIR=$WORK/pa KB_BIND=127.0.0.1:$((PORT + 1)) $KB >"$WORK/pa.log" 2>&1 &
  pa=$!
  wait_ready $((PORT + 1))
  env "${common[@]}" KB_DATABASE_URL=$pg_url KB_DATA_DIR=$WORK/pb KB_BIND=127.0.0.1:$((PORT + 2)) $KB >"$WORK/pb.log" 2>&1 &
  pb=$!
  wait_ready $((PORT + 2))
  read -r p_p50 p_p99 p_max p_got p_expected < <(python3 benches/sync/streams.py \
    "http://127.0.0.1:$((PORT + 2))" "http://127.0.0.1:$((PORT + 1))" "$KEY" 100 "$WRITES" 0.5 | tail -n 1)
  kill $pa $pb; wait $pa $pb 2>/dev/null || true
  psql "$pg_server" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)"
  pg_row="| a write on replica A reaching 100 streams on replica B (PostgreSQL $(psql "$pg_server" -Atc 'SHOW server_version')) | p50 $p_p50 ms, p99 $p_p99 ms, max $p_max ms ($p_got of $p_expected deliveries) |"
fi

{
  echo "# kb staying-in-step benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem/ {print $2}') GiB RAM, $(uname -sr). $N questions on SQLite; client and server on the same machine."
  echo
  echo "| measure | figure |"
  echo "|---|---|"
  echo "| the feed read from its start, 1,000 events a page ($f_events events, $f_pages pages) | $f_rate events/s ($f_secs s, $f_mbs MB/s); again: $f2_rate events/s |"
  echo "| kb's RSS with no stream / with $STREAMS streams open / after $WRITES writes reached them | $rss_before MB / $rss_open MB / $rss_after MB |"
  echo "| a write reaching each of $STREAMS streams, from the moment it was sent | p50 $s_p50 ms, p99 $s_p99 ms, max $s_max ms ($s_got of $s_expected deliveries) |"
  [ -n "$pg_row" ] && echo "$pg_row"
} | tee "$OUT"
