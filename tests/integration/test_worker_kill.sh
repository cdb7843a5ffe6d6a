#!/usr/bin/env bash
# kill -9 of a worker in the middle of a task (not restarted): loomd
# notices the missed heartbeats, waits the adoption grace, re-runs the task
# on the other worker, and the run succeeds. Side effects are counted in a
# file: the step that already reported success (a) ran once, the
# interrupted one (b) started twice but finished once (its keeper killed the
# orphaned tool once no worker claimed it, before loomd ran b elsewhere),
# and c ran once.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
start_loomd --heartbeat-ms 100 --heartbeat-timeout-ms 600
start_worker w1; pid_w1=$WORKER_PID
start_worker w2; pid_w2=$WORKER_PID
"$BIN/loom" run "$ROOT/tests/integration/workflows/killme.yaml" --input dir="$TMP" --json \
  >"$TMP/out.json" 2>"$TMP/run.log" &
runner=$!; PIDS+=("$runner") # killed by cleanup if the test fails
# b's tool writes "b-start <worker pid>" and waits for the go file
for _ in $(seq 600); do grep -q b-start "$TMP/effects" 2>/dev/null && break; sleep 0.05; done
keeper=$(awk '$1 == "b-start" {print $2; exit}' "$TMP/effects" 2>/dev/null)
pid=$(awk '{print $4}' "/proc/$keeper/stat" 2>/dev/null) # the keeper's parent: the worker
case $pid in "$pid_w1") victim=w1;; "$pid_w2") victim=w2;; *) fail "step b never ran (effects: $(cat "$TMP/effects" 2>/dev/null))";; esac
kill -9 "$pid"
echo "killed $victim while it ran b"
# the orphaned tool goes on until its keeper kills it; once b runs again
# elsewhere, let that run finish
for _ in $(seq 600); do [ "$(grep -c b-start "$TMP/effects")" -ge 2 ] && break; sleep 0.05; done
alive "$keeper" && fail "the orphaned tool still runs after b started elsewhere"
touch "$TMP/go"
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
