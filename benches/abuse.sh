#!/usr/bin/env bash
# Abuse benchmark: can kb hold its ground in public? Builds the release binary, imports N
# generated questions (100k by default), starts kb with quotas ON, and measures:
#
#  1. Load shedding: GET /questions/{id} p99 at c=4, idle and then while 64 clients hammer
#     search with a key whose quota does not stop them (target: within 3x of idle).
#  2. Abuse: a well-behaved study app (its own key, quota raised: 70 % GET by id, 10 % list,
#     10 % search, 10 % flashcard draws) at c=64 for DURATION s, idle and then together with
#     an abusive client (no key, expensive searches as fast as it can, c=32) and 200
#     connections dripping header lines. Reports 5xx other than 503 `overloaded` (target 0),
#     the app's p99 vs idle, 429/503 counts, and RSS.
#
# Not part of CI. Talks only to 127.0.0.1.
#
#   benches/abuse.sh
#   N=10000 DURATION=20 benches/abuse.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
DURATION=${DURATION:-60}
IDLE=${IDLE:-10}
PORT=${PORT:-18280}
WORK=$(mktemp -d /tmp/kb-abuse.XXXXXX)
ADMIN=bench-admin-key-of-at-least-32-characters
mkdir -p benches/results
OUT=benches/results/abuse-$(date -u +%Y-%m-%d).md
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null

echo "== building (release)" >&2
cargo build --release --locked -q --bin kb
KB=target/release/kb

echo "== $N questions" >&2
$KB gen --count "$N" --seed 1 -o "$WORK/q.ndjson"
KB_LOG=warn $KB --data-dir "$WORK/data" import "$WORK/q.ndjson" >/dev/null
APP_KEY=$($KB --data-dir "$WORK/data" keys create --scope read --name "study app" --rate 100000000/min | head -1)

KB_DATA_DIR=$WORK/data KB_BIND=127.0.0.1:$PORT KB_NO_SEED=1 KB_LOG=warn KB_ADMIN_KEY=$ADMIN \
  $KB >"$WORK/kb.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 400); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.05; done

# to_ms: wrk's latency figure in milliseconds.
. benches/common.sh
# wrk_run SCRIPT CONC SECONDS -> the wrk output (with the STATUS line)
wrk_run() {
  KB_N=$N KB_APP_KEY=$APP_KEY wrk -t2 -c"$2" -d"$3s" --latency -s "benches/abuse/$1.lua" \
    "http://127.0.0.1:$PORT" 2>&1
}
p99() { to_ms "$(echo "$1" | awk '$1 == "99%" {print $2}')"; }
rps() { echo "$1" | awk '/Requests\/sec/ {printf "%.0f", $2}'; }
status() { echo "$1" | grep '^STATUS' | sed 's/^STATUS //'; }
field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }

echo "== shedding: GET by id idle" >&2
idle_get=$(wrk_run get_by_id 4 "$IDLE")
echo "== shedding: GET by id while 64 clients hammer search" >&2
wrk_run search_flood 64 $((IDLE + 4)) >"$WORK/flood.txt" &
flood=$!
sleep 2
busy_get=$(wrk_run get_by_id 4 "$IDLE")
wait $flood
flood_out=$(cat "$WORK/flood.txt")

echo "== abuse: the app alone, c=64, ${IDLE}s" >&2
idle_app=$(wrk_run well_behaved 64 "$IDLE")
echo "== abuse: the app with an abuser and 200 slow-header connections, ${DURATION}s" >&2
DURATION=$DURATION python3 benches/abuse/slow_headers.py 127.0.0.1 "$PORT" >"$WORK/slow.txt" &
slow=$!
wrk_run abuser 32 "$DURATION" >"$WORK/abuser.txt" &
abuser=$!
sleep 1
app=$(wrk_run well_behaved 64 $((DURATION - 2)))
wait $abuser $slow
abuser_out=$(cat "$WORK/abuser.txt")
rss=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' /proc/$pid/status)
hwm=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' /proc/$pid/status)
metrics=$(curl -s "http://127.0.0.1:$PORT/metrics" -H "Authorization: Bearer $ADMIN" | grep '^kb_rejections_total' || true)

app_s=$(status "$app"); abuser_s=$(status "$abuser_out"); flood_s=$(status "$flood_out")
other5xx=$(( $(field "$app_s" other5xx) + $(field "$abuser_s" other5xx) + $(field "$flood_s" other5xx) + $(field "$(status "$busy_get")" other5xx) ))
{
  echo "# kb abuse benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem/ {print $2}') GiB RAM. $N questions, quotas on (defaults), the app's key raised."
  echo
  echo "## Load shedding: GET /questions/{id} at c=4"
  echo
  echo "| | requests/s | p99 ms | responses |"
  echo "|---|---:|---:|---|"
  echo "| idle | $(rps "$idle_get") | $(p99 "$idle_get") | $(status "$idle_get") |"
  echo "| while 64 clients hammer search | $(rps "$busy_get") | $(p99 "$busy_get") | $(status "$busy_get") |"
  echo "| (the 64 search clients) | $(rps "$flood_out") | $(p99 "$flood_out") | $flood_s |"
  echo
  echo "p99 ratio busy/idle: $(awk -v a="$(p99 "$busy_get")" -v b="$(p99 "$idle_get")" 'BEGIN {printf "%.1f", a / b}') (target <= 3)"
  echo
  echo "## Abuse: the app (c=64) with an abusive client and 200 slow-header connections"
  echo
  echo "| | requests/s | p99 ms | responses |"
  echo "|---|---:|---:|---|"
  echo "| the app alone (${IDLE}s) | $(rps "$idle_app") | $(p99 "$idle_app") | $(status "$idle_app") |"
  echo "| the app under abuse (${DURATION}s) | $(rps "$app") | $(p99 "$app") | $app_s |"
  echo "| the abuser (no key, c=32) | $(rps "$abuser_out") | $(p99 "$abuser_out") | $abuser_s |"
  echo
  echo "- slow-header connections: $(cat "$WORK/slow.txt")"
  echo "- 5xx other than 503 overloaded, all clients: **$other5xx** (target 0)"
  echo "- the app's p99 under abuse vs alone: $(awk -v a="$(p99 "$app")" -v b="$(p99 "$idle_app")" 'BEGIN {printf "%.1f", a / b}')x"
  echo "- RSS after the run: $rss MB (peak $hwm MB)"
  echo "- server counters: $(echo "$metrics" | tr '\n' ' ')"
} | tee "$OUT"
echo "written to $OUT" >&2
