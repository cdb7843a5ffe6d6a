#!/usr/bin/env bash
# Hostile input: a client sending garbage frames, a "worker" sending results
# for a task it does not own (and for unknown tasks), and a tool printing
# 1 GiB each get a clear error, and loomd keeps serving everyone else.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
PY=/usr/bin/python3
$PY -c 'import zmq, google.protobuf' 2>/dev/null || { echo "skip: python3-zmq/protobuf missing"; exit 77; }
export PYTHONPATH="$BUILD/gen/py"
HERE=$(dirname "$(readlink -f "$0")")
start_loomd
start_worker w1
# 1. garbage from a client
$PY "$HERE/hostile.py" garbage "$CLIENT_EP" >"$TMP/garbage.txt" 2>&1 || fail "garbage client: $(cat "$TMP/garbage.txt")"
grep -q "replies: [1-9]" "$TMP/garbage.txt" || fail "loomd answered no malformed request: $(cat "$TMP/garbage.txt")"
"$BIN/loom" workers >/dev/null || fail "loomd stopped serving after garbage"
# 2. a worker sending results for a task it does not own
"$BIN/loom" run "$ROOT/tests/integration/workflows/hostile.yaml" --input dir="$TMP" --json \
  >"$TMP/out.json" 2>"$TMP/run.log" &
runner=$!
for _ in $(seq 1500); do [ -e "$TMP/slow.started" ] && break; sleep 0.02; done
[ -e "$TMP/slow.started" ] || fail "the honest task did not start within 30 s"
# task ids are "<loomd epoch>.<n>": the honest run's only task is n = 1
epoch=$(grep -o 'epoch=[0-9a-f]*' "$TMP/loomd.log" | head -1 | cut -d= -f2)
$PY "$HERE/hostile.py" foreign "$WORKER_EP" "$epoch.1" >"$TMP/foreign.txt" 2>&1 ||
  fail "foreign results were accepted or not answered: $(cat "$TMP/foreign.txt")"
touch "$TMP/go"
wait $runner || fail "the honest run failed: $(cat "$TMP/run.log")"
grep -q '"honest": true' "$TMP/out.json" || fail "the run took the impostor's output: $(cat "$TMP/out.json")"
grep -q "does not own" "$TMP/loomd.log" || fail "loomd did not log the rejected result"
# 3. a tool printing 1 GiB
"$BIN/loom" run "$ROOT/tests/integration/workflows/flood.yaml" --json >"$TMP/flood.json" 2>"$TMP/flood.log"
rc=$?
[ $rc -eq 1 ] || fail "flood run should fail with exit 1, got $rc"
grep -q "more than 16777216 bytes" "$TMP/flood.json" || fail "no clear error: $(cat "$TMP/flood.json")"
# still serving, and the worker survived
"$BIN/loom" run "$ROOT/tests/integration/workflows/stitch.yaml" --input who=again --quiet >/dev/null 2>&1 ||
  fail "loomd/worker do not serve after the hostile inputs"
alive "$LOOMD_PID" || fail "loomd died"
echo ok
