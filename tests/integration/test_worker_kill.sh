#!/usr/bin/env bash
# kill -9 of a worker in the middle of a task: loomd notices the missed
# heartbeats, re-runs the task on the other worker, and the run succeeds.
# Side effects are counted in a file: the step that already reported
# success (a) ran once, the interrupted one (b) started twice but finished
# once (its orphaned tool died with the worker), and c ran once.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
start_loomd --heartbeat-ms 100 --heartbeat-timeout-ms 600
start_worker w1; pid_w1=$WORKER_PID
start_worker w2; pid_w2=$WORKER_PID
"$BIN/loom" run "$ROOT/tests/integration/workflows/killme.yaml" --input dir="$TMP" --json \
  >"$TMP/out.json" 2>"$TMP/run.log" &
runner=$!
victim=""
for _ in $(seq 200); do
  if grep -q b-start "$TMP/effects" 2>/dev/null; then
    id=$("$BIN/loom" runs --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')
    victim=$("$BIN/loom" status "$id" --json | python3 -c '
import json, sys
for s in json.load(sys.stdin)["steps"]:
    if s["step"] == "b" and s["state"] == "running": print(s["worker"])')
    [ -n "$victim" ] && break
  fi
  sleep 0.02
done
[ -n "$victim" ] || fail "step b never ran"
case $victim in w1) kill -9 "$pid_w1";; w2) kill -9 "$pid_w2";; *) fail "unknown worker $victim";; esac
echo "killed $victim while it ran b"
wait $runner; rc=$?
[ $rc -eq 0 ] || fail "run did not succeed after the kill (exit $rc): $(cat "$TMP/run.log")"
sleep 2 # an orphaned b (if any) would have finished by now
python3 - "$TMP/out.json" "$TMP/effects" "$victim" <<'PY' || fail "assertions failed"
import json, sys
d = json.load(open(sys.argv[1]))
eff = open(sys.argv[2]).read().split()
victim = sys.argv[3]
assert d["state"] == "succeeded" and d["outputs"] == {"a": 1, "c": 2}, d
assert eff.count("a") == 1, eff            # reported success: never re-run
assert eff.count("b-start") == 2, eff      # interrupted, re-run elsewhere
assert eff.count("b-done") == 1, eff       # the killed attempt never finished
assert eff.count("c") == 1, eff
b = [s for s in d["steps"] if s["step"] == "b"][0]
assert b["attempt"] == 2 and b["worker"] != victim, b
print("effects:", eff)
PY
grep -q "worker lost" "$TMP/loomd.log" || fail "loomd did not log the lost worker"
echo ok
