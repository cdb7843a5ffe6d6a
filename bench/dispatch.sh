#!/usr/bin/env bash
# make bench-dispatch: loomd + 2 CPU workers on loopback vs Dask distributed
# (LocalCluster, 2 worker processes) on the same shapes, in the same run.
# Environment: N (independent tasks, default 100000), M (chain length,
# default 10000), MEM (tasks for the memory check, default 1000000),
# DASK_N / DASK_M (Dask's shapes; default N/10 and M/10 because Dask needs
# minutes for the full ones on 2 cores — rates are per task either way;
# DASK_N=$N DASK_M=$M runs the full shapes), CURVE_N (independent tasks
# for the secure-mode comparison, default N), CURVE_ROUNDS (default 3).
# The shapes run twice: on loomd with two workers (every task a worker
# round trip) and on a loomd with --inline-ops noop (noop run in loomd).
# Secure mode: a second loomd with --keys (CURVE on both ports, admitted
# worker keys, signed tokens) and two workers of its own; the independent
# shapes alternate between the two loomds and the ratio secure / plain is
# printed per round and as the median (target >= 0.7).
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
# waits up to 60 s for 2 registered workers; fails (with the logs) rather
# than letting a run wait forever for workers that never came
await_workers() { # ENDPOINT LOGS...
  local ep=$1; shift
  for _ in $(seq 600); do
    [ "$(LOOM_ENDPOINT=$ep "$BUILD/bin/loom" workers --json 2>/dev/null | grep -c '"id"')" = 2 ] && return 0
    sleep 0.1
  done
  echo "bench-dispatch: the 2 workers of $ep did not register within 60 s; logs:" >&2
  tail -n 5 "$@" >&2
  exit 1
}
await_workers "$CEP" "$TMP"/loomd.log "$TMP"/w?.log
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "bench-dispatch: $(nproc) cores, load average $(load) (1/5/15 min) at the start; loomd + 2 CPU workers on loopback, noop tasks"
echo "loomd:"
# the raw ZeroMQ round trip before and after loomd's run (alternating sides;
# the lower p50 of the two is the peer of the chained-step latency)
"$BUILD/bin/zmq_rtt" 20000 | tee "$TMP/rtt1.txt" | grep -v '^RESULT'
"$BUILD/bin/bench-dispatch" "$CEP" "$LOOMD" "$N" "$M" "$MEM" | tee "$TMP/loom.out" | grep -v '^RESULT'
"$BUILD/bin/zmq_rtt" 20000 | tee "$TMP/rtt2.txt" | grep -v '^RESULT'
# The same shapes on a loomd that runs noop itself (--inline-ops noop): no
# worker round trip per task, so a chain moves at loomd's own speed.
IEP="tcp://127.0.0.1:$(port)"
"$BUILD/bin/loomd" --client "$IEP" --workers "tcp://127.0.0.1:$(port)" --inline-ops noop --log-level warn \
  --ready-file "$TMP/iready" >"$TMP/iloomd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -f "$TMP/iready" ] && break; sleep 0.05; done
echo "loomd --inline-ops noop (noop runs in loomd, no worker round trip):"
"$BUILD/bin/bench-dispatch" "$IEP" 0 "$N" "$M" 0 | tee "$TMP/inline.res" | grep -v '^RESULT'
echo "dask.distributed $(/usr/bin/python3 -c 'import distributed; print(distributed.__version__)') (LocalCluster, 2 worker processes):"
/usr/bin/python3 "$(dirname "$0")/dask_dispatch.py" "$DASK_N" "$DASK_M" 2>/dev/null | tee "$TMP/dask.out" | grep -v '^RESULT'
get() { sed -n "s/^RESULT $1=//p" "$TMP"/*.out | head -1; }
echo "ratio (loomd / dask, tasks per second):"
for k in ind_one ind_many chain_one chain_many; do
  l=$(get ${k}_rate); d=$(get dask_${k}_rate); i=$(sed -n "s/^RESULT ${k}_rate=//p" "$TMP/inline.res")
  [ -n "$l" ] && [ -n "$d" ] && awk -v k=$k -v l=$l -v d=$d 'BEGIN{printf "  %-12s %10.0f vs %8.0f   %6.0fx   (workers)\n", k, l, d, l/d}'
  [ -n "$i" ] && [ -n "$d" ] && awk -v k=$k -v l=$i -v d=$d 'BEGIN{printf "  %-12s %10.0f vs %8.0f   %6.0fx   (--inline-ops noop)\n", k, l, d, l/d}'
done
rtt=$(sed -n 's/^RESULT zmq_rtt_p50_us=//p' "$TMP"/rtt1.txt "$TMP"/rtt2.txt | sort -g | head -1)
# The chained step latency: a chain's wall time (submit to end) per step,
# the median over 7 chains of M/10 steps run one at a time, against the raw
# round trip (the lower p50 of the two zmq_rtt runs around loomd's). The
# per-task p50 in the table (ready in loomd to result in loomd) is not it:
# with worker-side chaining (loomd --chain-depth, default 32) a chained
# step's result is often in loomd when the step is released, so that p50
# has no round trip in it.
awk -v p=$(get chain_step_p50_us) -v lo=$(get chain_step_min_us) -v hi=$(get chain_step_max_us) -v r="$rtt" \
  'BEGIN{printf "chained step latency p50: %.1f us (range %.1f-%.1f; wall time per step, 7 chains of %d); raw ZeroMQ round trip p50 (same run): %.0f us; ratio %.2f (target <= 1.5)\n", p, lo, hi, '"$((M / 10))"', r, (r > 0 ? p / r : 0)}'
awk -v c=$(get chain_one_rate) -v r="$rtt" 'BEGIN{if (c > 0) printf "chain of %s, wall time per step: %.1f us (%.2f x the raw round trip)\n", "'"$M"'", 1e6 / c, (r > 0 ? 1e6 / c / r : 0)}'

# --- secure mode (CURVE + ZAP + tokens) vs plain, same run, alternating
CURVE_N=${CURVE_N:-$N}; CURVE_ROUNDS=${CURVE_ROUNDS:-3}
K="$TMP/keys"
"$BUILD/bin/loom" keygen --dir "$K" >/dev/null
SCEP="tcp://127.0.0.1:$(port)"; SWEP="tcp://127.0.0.1:$(port)"
"$BUILD/bin/loomd" --keys "$K" --client "$SCEP" --workers "$SWEP" --log-level warn \
  --ready-file "$TMP/sready" >"$TMP/sloomd.log" 2>&1 &
SLOOMD=$!; PIDS+=($SLOOMD)
for _ in $(seq 100); do [ -f "$TMP/sready" ] && break; sleep 0.05; done
for w in 1 2; do
  "$BUILD/bin/loom" keygen --dir "$TMP" --name "sw$w" >/dev/null && cp "$TMP/sw$w.pub" "$K/workers/"
  "$BUILD/bin/loom-worker-cpu" --endpoint "$SWEP" --id "secure-w$w" --log-level warn \
    --server-key "$K/loomd.pub" --key "$TMP/sw$w.key" >"$TMP/sw$w.log" 2>&1 &
  PIDS+=($!)
done
TOKEN=$("$BUILD/bin/loom" keygen --token --subject bench --secret-file "$K/auth.secret")
LOOM_SERVER_KEY="$K/loomd.pub" LOOM_AUTH_TOKEN=$TOKEN await_workers "$SCEP" "$TMP"/sloomd.log "$TMP"/sw?.log
echo "secure mode (loomd --keys: CURVE on both ports, worker allow-list, HMAC tokens) vs plain,"
echo "independent shapes, $CURVE_N tasks, $CURVE_ROUNDS alternating rounds:"
for r in $(seq "$CURVE_ROUNDS"); do
  "$BUILD/bin/bench-dispatch" "$CEP" 0 "$CURVE_N" 0 0 >"$TMP/p$r.out"
  LOOM_SERVER_KEY="$K/loomd.pub" LOOM_AUTH_TOKEN=$TOKEN \
    "$BUILD/bin/bench-dispatch" "$SCEP" 0 "$CURVE_N" 0 0 >"$TMP/s$r.out"
  for k in ind_one ind_many; do
    p=$(sed -n "s/^RESULT ${k}_rate=//p" "$TMP/p$r.out"); c=$(sed -n "s/^RESULT ${k}_rate=//p" "$TMP/s$r.out")
    awk -v r=$r -v k=$k -v p=$p -v c=$c 'BEGIN{printf "  round %d %-9s plain %9.0f  secure %9.0f tasks/s  ratio %.2f\n", r, k, p, c, c/p}'
    echo "$k $(awk -v p=$p -v c=$c 'BEGIN{print c/p}')" >>"$TMP/ratios"
  done
done
for k in ind_one ind_many; do
  sort -g <(sed -n "s/^$k //p" "$TMP/ratios") | awk -v k=$k '{a[NR]=$1} END{printf "secure / plain %-9s median %.2f (range %.2f-%.2f; target >= 0.7)\n", k, a[int((NR+1)/2)], a[1], a[NR]}'
done
echo "load average $(load) (1/5/15 min) at the end (a shared 2-core machine: figures under load are lower)"
