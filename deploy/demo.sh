#!/usr/bin/env bash
# `make demo`: starts loomd and two CPU workers in the background (logs in
# var/), runs the support-triage workflow (deploy/demo/triage.yaml, tools
# from examples/tools/) with live per-step progress, prints its outputs and
# per-step timeline, then stops the daemons (also on Ctrl-C or failure).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=build/bin
mkdir -p var
PIDS=()
stop() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap stop EXIT INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export LOOM_ENDPOINT="tcp://127.0.0.1:$(port)"
WORKERS="tcp://127.0.0.1:$(port)"
rm -f var/loomd.ready
"$BIN/loomd" --client "$LOOM_ENDPOINT" --workers "$WORKERS" --ready-file var/loomd.ready \
  >var/loomd.log 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -f var/loomd.ready ] && break; sleep 0.05; done
[ -f var/loomd.ready ] || { echo "demo: loomd did not start, see var/loomd.log" >&2; exit 3; }
for w in 1 2; do
  "$BIN/loom-worker-cpu" --endpoint "$WORKERS" --id "demo-cpu-$w" >"var/worker-$w.log" 2>&1 &
  PIDS+=($!)
done
for _ in $(seq 100); do
  [ "$("$BIN/loom" workers --json 2>/dev/null | grep -c '"id"')" = 2 ] && break
  sleep 0.1
done
echo "== loomd on $LOOM_ENDPOINT, workers (logs in var/):"
"$BIN/loom" workers
echo
echo "== loom run deploy/demo/triage.yaml --input ticket=T-1001"
"$BIN/loom" run deploy/demo/triage.yaml --input ticket=T-1001
rc=$?
echo
echo "== exit status $rc (0 succeeded, 1 failed, 4 SLA missed, 3 system error)"
exit $rc
