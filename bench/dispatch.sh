#!/usr/bin/env bash
# make bench-dispatch: loomd + 2 CPU workers on loopback vs Dask distributed
# (LocalCluster, 2 worker processes) on the same shapes, in the same run.
# Environment: N (independent tasks, default 100000), M (chain length,
# default 10000), MEM (tasks for the memory check, default 1000000),
# DASK_N / DASK_M (Dask's shapes; default N/10 and M/10 because Dask needs
# minutes for the full ones on 2 cores — rates are per task either way;
# DASK_N=$N DASK_M=$M runs the full shapes).
set -u
BUILD=${BUILD:-build}
N=${N:-100000}; M=${M:-10000}; MEM=${MEM:-1000000}
DASK_N=${DASK_N:-$((N / 10))}; DASK_M=${DASK_M:-$((M / 10))}
TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CEP="tcp://127.0.0.1:$(port)"; WEP="tcp://127.0.0.1:$(port)"
"$BUILD/bin/loomd" --client "$CEP" --workers "$WEP" --log-level warn --ready-file "$TMP/ready" \
  >"$TMP/loomd.log" 2>&1 &
LOOMD=$!; PIDS+=($LOOMD)
for _ in $(seq 100); do [ -f "$TMP/ready" ] && break; sleep 0.05; done
for w in 1 2; do
  "$BUILD/bin/loom-worker-cpu" --endpoint "$WEP" --id "bench-w$w" --log-level warn >"$TMP/w$w.log" 2>&1 &
  PIDS+=($!)
done
for _ in $(seq 100); do
  [ "$(LOOM_ENDPOINT=$CEP "$BUILD/bin/loom" workers --json 2>/dev/null | grep -c '"id"')" = 2 ] && break
  sleep 0.05
done
echo "bench-dispatch: $(nproc) cores, loomd + 2 CPU workers on loopback, noop tasks"
echo "loomd:"
# the raw ZeroMQ round trip before and after loomd's run (alternating sides;
# the lower p50 of the two is the peer of the chained-step latency)
"$BUILD/bin/zmq_rtt" 20000 | tee "$TMP/rtt1.txt" | grep -v '^RESULT'
"$BUILD/bin/bench-dispatch" "$CEP" "$LOOMD" "$N" "$M" "$MEM" | tee "$TMP/loom.out" | grep -v '^RESULT'
"$BUILD/bin/zmq_rtt" 20000 | tee "$TMP/rtt2.txt" | grep -v '^RESULT'
echo "dask.distributed $(/usr/bin/python3 -c 'import distributed; print(distributed.__version__)') (LocalCluster, 2 worker processes):"
/usr/bin/python3 "$(dirname "$0")/dask_dispatch.py" "$DASK_N" "$DASK_M" 2>/dev/null | tee "$TMP/dask.out" | grep -v '^RESULT'
get() { sed -n "s/^RESULT $1=//p" "$TMP"/*.out | head -1; }
echo "ratio (loomd / dask, tasks per second):"
for k in ind_one ind_many chain_one chain_many; do
  l=$(get ${k}_rate); d=$(get dask_${k}_rate)
  [ -n "$l" ] && [ -n "$d" ] && awk -v k=$k -v l=$l -v d=$d 'BEGIN{printf "  %-12s %10.0f vs %8.0f   %6.0fx\n", k, l, d, l/d}'
done
rtt=$(sed -n 's/^RESULT zmq_rtt_p50_us=//p' "$TMP"/rtt1.txt "$TMP"/rtt2.txt | sort -g | head -1)
awk -v p=$(get chain_one_p50_us) -v r="$rtt" 'BEGIN{printf "chained step p50: %.0f us; raw ZeroMQ round trip p50 (same run): %.0f us; ratio %.2f (target <= 1.5)\n", p, r, (r > 0 ? p / r : 0)}'
