#!/usr/bin/env bash
# make bench-http: loomd's HTTP/JSON gateway under load, on loopback.
#  1. small REST calls: wrk (keep-alive, 64 connections, 2 threads) on
#     GET /v1/health (HTTP -> gateway -> loomd's RPC -> back), next to
#     GET /healthz (answered by the HTTP layer alone: the ceiling of the
#     HTTP side on this machine) and GET /v1/runs/{id} (a real run with its
#     steps), alternating, 3 rounds of 5 s, medians and ranges.
#  2. 1,000 concurrent SSE watchers of one running run: time until all
#     have their first event, then time from cancelling the run until all
#     1,000 have the final event and the stream's end.
# The machine is shared and noisy (2 cores, other builds): read ratios.
set -u
. "$(dirname "$(readlink -f "$0")")/../tests/integration/lib.sh"
command -v wrk >/dev/null || { echo "bench-http: wrk not installed (deploy/install-deps.sh)"; exit 1; }
N_WATCHERS=${N_WATCHERS:-1000}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
ulimit -n 20000 2>/dev/null || true
export LOOM_AUTH_TOKEN=bench-token
HP=$(free_port)
start_loomd --auth-token "$LOOM_AUTH_TOKEN" --http "127.0.0.1:$HP" --log-level warn
start_worker w1 --log-level warn
BASE="http://127.0.0.1:$HP"
run=$("$BIN/loom" run "$ROOT/tests/integration/workflows/stitch.yaml" --input who=bench --no-wait)
"$BIN/loom" watch "$run" --quiet >/dev/null 2>&1 || fail "bench run failed"

rate() { # URL -> requests/s
  wrk -t2 -c64 -d"${SECS}s" -H "Authorization: Bearer $LOOM_AUTH_TOKEN" "$1" 2>&1 |
    awk '/^Requests\/sec/ {print int($2)} /Non-2xx/ {print "non2xx " $0 > "/dev/stderr"}'
}
declare -a GW RAW GET
for r in $(seq "$ROUNDS"); do
  RAW+=("$(rate "$BASE/healthz")")
  GW+=("$(rate "$BASE/v1/health")")
  GET+=("$(rate "$BASE/v1/runs/$run")")
done
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "median %d  range %d-%d", a[int((NR+1)/2)], a[1], a[NR]}'; }
echo "REST, wrk -t2 -c64, keep-alive, $ROUNDS rounds of ${SECS}s (requests/s):"
echo "  GET /healthz        (HTTP layer only, the ceiling)   $(stats "${RAW[@]}")"
echo "  GET /v1/health      (through the gateway and RPC)    $(stats "${GW[@]}")"
echo "  GET /v1/runs/{id}   (a run: its steps and fan-out items)  $(stats "${GET[@]}")"
gw_med=$(printf '%s\n' "${GW[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
raw_med=$(printf '%s\n' "${RAW[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
awk -v g="$gw_med" -v r="$raw_med" 'BEGIN {printf "  gateway / HTTP-only ratio %.2f; target >= 5000/s: %s\n", g / r, (g >= 5000) ? "met" : "NOT met"}'

# 1,000 SSE watchers on one running run
mkdir -p "$TMP/c"
crun=$("$BIN/loom" run "$ROOT/tests/integration/workflows/cancel.yaml" --input dir="$TMP/c" --no-wait)
for _ in $(seq 200); do [ -s "$TMP/c/long.pid" ] && break; sleep 0.05; done
mkfifo "$TMP/go"
/usr/bin/python3 "$ROOT/bench/sse_watchers.py" "$BASE" "$crun" "$N_WATCHERS" "$LOOM_AUTH_TOKEN" \
  <"$TMP/go" >"$TMP/sse.out" 2>&1 &
sse=$!
exec 9>"$TMP/go"
for _ in $(seq 600); do grep -q '^ready' "$TMP/sse.out" && break; alive $sse || break; sleep 0.1; done
grep -q '^ready' "$TMP/sse.out" || fail "watchers did not connect: $(cat "$TMP/sse.out")"
conns=$(ss -tn state established "( sport = :$HP )" 2>/dev/null | tail -n +2 | wc -l)
"$BIN/loom" cancel "$crun" >/dev/null || fail "cancel failed"
echo >&9
wait $sse; rc=$?
exec 9>&-
echo "SSE: $N_WATCHERS concurrent watchers of one run ($conns connections open on the HTTP port)"
echo "  all connected with their first event in $(sed -n 's/^ready //p' "$TMP/sse.out") s"
echo "  cancel -> final event and end on all of them in $(sed -n 's/^ended \([^ ]*\).*/\1/p' "$TMP/sse.out") s ($(sed -n 's/^ended [^ ]* //p' "$TMP/sse.out") of $N_WATCHERS ended cleanly)"
[ $rc = 0 ] || fail "watchers failed: $(cat "$TMP/sse.out")"
alive "$LOOMD_PID" || fail "loomd died"
