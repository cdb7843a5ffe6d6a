#!/usr/bin/env bash
# Worker-side chaining on real processes (orchestrator/README.md, "Chains"):
# loomd (planner placement, default --chain-depth) and two real workers on
# loopback run a chain of five tool.exec steps, each reading the previous
# step's output (tests/integration/workflows/chain_exec.yaml). Checked:
#  1. results and events: the chain runs on the planned worker, s2..s5
#     sent ahead behind their predecessor ("chained" in STEP_STARTED),
#     every step once, attempt 1, output 5;
#  2. a failing middle step (s3) fails the run and stops the chain: s4 and
#     s5 never run;
#  3. cancel mid-chain (while s3 runs): the run is cancelled, s4 and s5
#     never run;
#  4. kill -9 of the worker while s3 runs (s4, s5 sent ahead behind it):
#     s1 and s2 are not run again, s3 runs again on the other worker
#     (attempt 2), s4 and s5 run once there (attempt 1), output 5.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
WF="$ROOT/tests/integration/workflows/chain_exec.yaml"
STEP="$ROOT/tests/integration/chain_step.sh"
start_loomd --heartbeat-ms 100 --heartbeat-timeout-ms 600
start_worker w1 --price 0.2; pid_w1=$WORKER_PID # the plan's (cheaper) worker
start_worker w2 --price 30; pid_w2=$WORKER_PID
run() { # DIR FAIL_AT HOLD [--no-wait]
  mkdir -p "$1"
  "$BIN/loom" run "$WF" --input script="$STEP" --input dir="$1" --input fail_at="$2" --input hold="$3" "${@:4}"
}
wait_for() { # FILE PATTERN COUNT: until PATTERN occurs COUNT times in FILE (30 s)
  for _ in $(seq 600); do [ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0; sleep 0.05; done
  fail "'$2' x$3 never appeared in $1: $(cat "$1" 2>/dev/null)"
}

# 1. results, events, attempts
run "$TMP/1" 0 0 --json >"$TMP/1.json" 2>"$TMP/1.err" || fail "chain run failed: $(cat "$TMP/1.err")"
id=$(jget "$TMP/1.json" 'd["run_id"]')
"$BIN/loom" watch "$id" >"$TMP/1.watch" 2>&1
python3 - "$TMP/1.json" "$TMP/1/effects" "$TMP/1.watch" <<'PY' || fail "chain results"
import json, sys
d = json.load(open(sys.argv[1]))
eff = open(sys.argv[2]).read().split("\n")
watch = open(sys.argv[3]).read()
assert d["state"] == "succeeded" and d["outputs"] == {"last": 5}, d
steps = {s["step"]: s for s in d["steps"]}
assert {s["worker"] for s in steps.values()} == {"w1"}, steps  # the plan's one worker
assert all(s["attempt"] == 1 and s["state"] == "succeeded" for s in steps.values()), steps
for n in range(1, 6):
    assert sum(1 for l in eff if l.startswith("s%d " % n)) == 1, eff
    assert eff.count("s%d-done" % n) == 1, eff
chained = [l for l in watch.split("\n") if "chained: sent ahead" in l]
assert len(chained) == 4 and not any(" s1 " in l for l in chained), watch
PY

# 2. a failing middle step stops the chain
run "$TMP/2" 3 0 --json >"$TMP/2.json" 2>"$TMP/2.err" && fail "a run whose s3 fails succeeded"
python3 - "$TMP/2.json" "$TMP/2/effects" <<'PY' || fail "failing middle step"
import json, sys
d = json.load(open(sys.argv[1]))
eff = open(sys.argv[2]).read()
assert d["state"] == "failed" and "s3" in d["error"], d
assert "s3 " in eff and "s3-done" not in eff and "s4" not in eff and "s5" not in eff, eff
steps = {s["step"]: s for s in d["steps"]}
assert steps["s2"]["state"] == "succeeded" and steps["s3"]["state"] == "failed", steps
assert all(steps[s]["state"] != "succeeded" for s in ("s4", "s5") if s in steps), steps
PY

# 3. cancel while s3 runs
id=$(run "$TMP/3" 0 3 --no-wait 2>"$TMP/3.err") || fail "submit: $(cat "$TMP/3.err")"
wait_for "$TMP/3/effects" "^s3 " 1
"$BIN/loom" cancel "$id" >/dev/null 2>&1 || fail "cancel refused"
touch "$TMP/3/go"
"$BIN/loom" watch "$id" --json >"$TMP/3.json" 2>/dev/null
sleep 0.5 # anything wrongly left to run behind s3 would have started by now
python3 - "$TMP/3.json" "$TMP/3/effects" <<'PY' || fail "cancel mid-chain"
import json, sys
d = json.load(open(sys.argv[1]))
eff = open(sys.argv[2]).read()
assert d["state"] == "cancelled", d
assert "s2-done" in eff and "s4" not in eff and "s5" not in eff, eff
PY

# 4. kill -9 of the worker while s3 runs
id=$(run "$TMP/4" 0 3 --no-wait 2>"$TMP/4.err") || fail "submit: $(cat "$TMP/4.err")"
wait_for "$TMP/4/effects" "^s3 " 1
keeper=$(awk '$1 == "s3" {print $2; exit}' "$TMP/4/effects")
pid=$(awk '{print $4}' "/proc/$keeper/stat" 2>/dev/null) # the keeper's parent: the worker
case $pid in "$pid_w1") victim=w1;; "$pid_w2") victim=w2;; *) fail "s3's worker not found";; esac
[ "$victim" = w1 ] || fail "s3 ran on $victim, not on the plan's worker w1"
kill -9 "$pid"
wait_for "$TMP/4/effects" "^s3 " 2 # run again elsewhere once the worker is declared lost
touch "$TMP/4/go"
"$BIN/loom" watch "$id" --json >"$TMP/4.json" 2>/dev/null || fail "run after the kill: $(cat "$TMP/4.json")"
python3 - "$TMP/4.json" "$TMP/4/effects" "$victim" <<'PY' || fail "kill -9 mid-chain"
import json, sys
d = json.load(open(sys.argv[1]))
eff = open(sys.argv[2]).read().split("\n")
victim = sys.argv[3]
assert d["state"] == "succeeded" and d["outputs"] == {"last": 5}, d
starts = lambda n: sum(1 for l in eff if l.startswith("s%d " % n))
assert starts(1) == 1 and starts(2) == 1, eff      # finished before the kill: not again
assert starts(3) == 2 and eff.count("s3-done") == 1, eff
assert starts(4) == 1 and starts(5) == 1, eff      # were ahead behind s3: run once, later
steps = {s["step"]: s for s in d["steps"]}
assert steps["s1"]["worker"] == victim and steps["s1"]["attempt"] == 1, steps
assert steps["s3"]["attempt"] == 2 and steps["s3"]["worker"] != victim, steps
assert steps["s4"]["attempt"] == 1 and steps["s5"]["worker"] != victim, steps
PY
echo ok
